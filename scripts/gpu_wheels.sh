#!/usr/bin/env bash
# bash scripts/gpu_wheels.sh [DEST]      (default DEST: .gpu_wheels, git-ignored)
#
# Fetches (where a package registry is reachable) the wheels a bare CUDA machine lacks,
# for its Python 3.12: pipelines/gpu_check.sh installs them there with
#   pip install --no-index --no-deps --target /tmp/site DEST/*.whl
# For a GPU machine without network or registry: copy the folder beside the checkout,
# kept small (at most 60 MiB) so it travels with it. Which wheels, and why, is in
# docs/gpu_check.md.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-.gpu_wheels}
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
mkdir -p "$DEST"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# binary wheels for CPython 3.12 (or pure Python), never a build
BINARY=(
  "salesforce-lavis==1.0.2" "transformers==4.26.1" "huggingface_hub==0.24.7"
  "timm==0.4.12" "omegaconf==2.3.0" "webdataset==1.0.2" "braceexpand==0.1.7"
  "ftfy==6.3.1" "decord==0.6.0" "pycocotools==2.0.11" "msgspec==0.22.0"
  "pydantic==2.14.4" "pydantic_core==2.50.5" "annotated_types" "typing_inspection"
  "typing_extensions" "wcwidth==0.9.4" "portalocker" "einops"
)
# source-only releases: built here into (pure Python) wheels
SDIST=("antlr4-python3-runtime==4.9.3" "fairscale==0.4.4" "iopath==0.1.10" "contexttimer==0.3.3")

"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux_2_28_x86_64 --platform any -d "$DEST" "${BINARY[@]}"
for spec in "${SDIST[@]}"; do
  name=${spec%%==*}
  ls "$DEST" | grep -qi "^${name//-/_}-" || "$PY" -m pip wheel --quiet --no-deps -w "$DEST" "$spec"
done

# pycocoevalcap 1.2 ships ~100 MB of Java jars and METEOR data that LAVIS never calls for VQA:
# drop them (and their RECORD lines) so the folder stays small
if ! ls "$DEST" | grep -q '^pycocoevalcap-1.2-.*trimmed'; then
  "$PY" -m pip download --quiet --no-deps --only-binary=:all: -d "$TMP" "pycocoevalcap==1.2"
  "$PY" - "$TMP"/pycocoevalcap-1.2-*.whl "$DEST" <<'PYEOF'
import sys, zipfile, pathlib
src, dest = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
# the name keeps the wheel format (name-version-build-py-abi-plat): build tag "0trimmed"
out = dest / src.name.replace("pycocoevalcap-1.2-", "pycocoevalcap-1.2-0trimmed-")
drop = lambda n: n.endswith((".jar", ".gz")) or "/stanford-corenlp" in n
with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
    for item in zin.infolist():
        if drop(item.filename):
            continue
        data = zin.read(item)
        if item.filename.endswith("/RECORD"):
            lines = data.decode().splitlines()
            data = ("\n".join(l for l in lines if not drop(l.split(",")[0])) + "\n").encode()
        zout.writestr(item, data)
print(f"{out.name}: {out.stat().st_size / 2**20:.1f} MiB")
PYEOF
fi
du -sh "$DEST"
total=$(du -sm "$DEST" | cut -f1)
if [ "$total" -gt 60 ]; then
  echo "error: $DEST holds ${total} MiB; keep it at most 60 MiB, small enough to copy with the checkout" >&2
  exit 1
fi
