#!/usr/bin/env bash
# A normal install must work: build the wheel, install it with its core dependencies
# only into a fresh venv (no -e, no repo on sys.path), and run the commands from a
# folder outside the repo. Catches package data left out of the wheel and heavy
# imports that escape their extra. Run by .ci/run after `make test`; about 30 s.
#
#   bash scripts/wheel_smoke.sh            (PYTHON=python3.11 by default)
#
# Decision for `curate export --model tiny` (the default preset): it writes a
# tokenizer with `tokenizers`, which comes with the `lavis` extra (the tiny preset
# is only useful for training, which needs that extra). On a core install it must
# stop with exit 2 and the install hint, and leave no output folder; with
# `tokenizers` installed on top it must work from the wheel too.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3.11}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

fail() { echo "wheel smoke: FAILED: $*" >&2; exit 1; }

# build from a copy so the checkout gets no build/ or egg-info folders
mkdir "$WORK/src"
cp -r "$REPO/pyproject.toml" "$REPO/README.md" "$REPO/curation" "$WORK/src/"
find "$WORK/src" -name __pycache__ -prune -exec rm -rf {} +
"$PYTHON" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
"$VPY" -m pip install --quiet --upgrade "setuptools>=77" wheel   # SPDX license string
"$VPY" -m pip wheel --quiet --no-deps --no-build-isolation -w "$WORK/dist" "$WORK/src"
WHEEL="$(ls "$WORK"/dist/falldown_curate-*.whl)"
"$VPY" - "$WHEEL" "$REPO" <<'PY'
import pathlib, sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
repo = pathlib.Path(sys.argv[2])
# every data file the package ships (presets, builder config, questions), found, not listed
need = ["curation/py.typed"] + sorted(
    p.relative_to(repo).as_posix() for p in (repo / "curation" / "data").rglob("*") if p.is_file()
)
missing = [n for n in need if n not in names]
sys.exit(f"wheel smoke: FAILED: not in the wheel: {missing}" if missing else 0)
PY
"$VPY" -m pip install --quiet "$WHEEL"   # core dependencies only, no extras
CURATE="$WORK/venv/bin/curate"

cd "$WORK"   # outside the repo: only the installed package can be imported
"$VPY" -c "import curation, sys; p = curation.__file__; sys.exit(0 if '/site-packages/' in p else f'curation imported from {p}')"
SAMPLE="$REPO/raw/sample"

"$CURATE" validate "$SAMPLE/annotations.json" || fail "curate validate"

"$CURATE" export --task "$SAMPLE/annotations.json" --out real --model blip2_t5 \
    || fail "curate export --model blip2_t5"
test -f real/lavis.yaml -a -f real/train.json || fail "blip2_t5 export is incomplete"

set +e
out="$("$CURATE" export --task "$SAMPLE/annotations.json" --out tiny 2>&1)"
rc=$?
set -e
echo "$out"
[ "$rc" = 2 ] || fail "curate export --model tiny without tokenizers: exit $rc, expected 2"
grep -q "pip install 'falldown-curate\[lavis\]'" <<<"$out" || fail "no install hint"
! grep -q Traceback <<<"$out" || fail "a traceback"
[ -z "$(ls -A | grep -v -x -e real -e src -e venv -e dist)" ] || fail "a failed export left files: $(ls -A)"

"$VPY" -m pip install --quiet "tokenizers==0.13.3"
"$CURATE" export --task "$SAMPLE/annotations.json" --out tiny || fail "curate export --model tiny"
test -f tiny/model/t5/tokenizer.json || fail "tiny export has no tokenizer"
echo "wheel smoke: ok ($(basename "$WHEEL"): validate, export --model blip2_t5, export --model tiny)"
