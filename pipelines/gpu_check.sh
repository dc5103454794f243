#!/usr/bin/env bash
# bash pipelines/gpu_check.sh          on a machine with a CUDA GPU, from the repo root
# bash pipelines/gpu_check.sh --cpu    CPU rehearsal (tiny flow amp off, small-scale bench)
#
# The whole GPU check (docs/gpu_check.md):
#   1. install the wheels in .gpu_wheels/ (scripts/gpu_wheels.sh) into /tmp/site;
#   2. the tiny flow on CUDA: export -> train (fp32; amp fp16; amp bf16 + fused AdamW)
#      -> predict -> eval;
#   3. blip2_t5 at full size from random weights in the real file layouts, built through our
#      loading code: s/step and peak memory at batch 4, 8, 16 with LAVIS's settings and each
#      speed option, predict_answers throughput, loader images/s (benchmarks/gpu_train_bench.py).
# Each part has its own time limit and log; one failure still reports the others. Results:
# $OUT/results.json and $OUT/results.md (OUT defaults to exports/gpu-check), logs beside them.
# Nothing is downloaded; big files (about 14 GB of weights) stay in $WORK, outside $OUT.
set -u
MODE=gpu
[ "${1:-}" = "--cpu" ] && MODE=cpu
OUT=${OUT:-exports/gpu-check}
WORK=${WORK:-/tmp/gpu-check-work}
BUDGET=${BUDGET:-540}  # seconds for everything, so the check ends within 10 minutes
PY=${PYTHON:-python3}
STARTED=$(date +%s)
mkdir -p "$OUT" "$WORK"
: >"$OUT/parts.jsonl"
export TOKENIZERS_PARALLELISM=false FIFTYONE_DO_NOT_TRACK=true PYTHONWARNINGS=ignore

part() { # part NAME SECONDS COMMAND...: run with a time limit, log, record rc and seconds
  local name=$1 limit=$2 start rc
  shift 2
  start=$(date +%s)
  timeout "$limit" bash -c '"$@"' _ "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  printf '{"part": "%s", "rc": %d, "seconds": %d}\n' "$name" "$rc" "$(($(date +%s) - start))" >>"$OUT/parts.jsonl"
  echo "$name: rc=$rc ($(($(date +%s) - start)) s)"
  return $rc
}
curate() { "$PY" -c 'import sys; from curation.cli import app; sys.argv[0] = "curate"; app()' "$@"; }

install_wheels() {
  "$PY" -c 'import lavis, transformers' 2>/dev/null && return 0
  ls .gpu_wheels/*.whl >/dev/null || { echo "no .gpu_wheels/: run scripts/gpu_wheels.sh here and carry it"; return 1; }
  "$PY" -m pip install --quiet --no-index --no-deps --target /tmp/site .gpu_wheels/*.whl || return 1
  # LAVIS imports spaCy at module level and never uses it here (35 MB saved): an empty stub
  "$PY" -c 'import spacy' 2>/dev/null || { mkdir -p /tmp/site/spacy && : >/tmp/site/spacy/__init__.py; }
  # transformers 4.26.1 pins tokenizers<0.14 (no cp312 wheel); the GPU machine's 0.23 works when the
  # T5 folder has tokenizer.json, which ours has
  sed -i -E 's/"tokenizers": "tokenizers[^"]*"/"tokenizers": "tokenizers>=0.11.1"/' \
    /tmp/site/transformers/dependency_versions_table.py
  "$PY" -c 'import lavis, torch; from curation.training import import_plugin; import_plugin(); print("lavis ok, cuda", torch.cuda.is_available())'
}
export PYTHONPATH="$PWD:/tmp/site${PYTHONPATH:+:$PYTHONPATH}"

tiny_flow() { # tiny_flow DEVICE RUN-ID OVERRIDES...
  local device=$1 run=$2 ckpt image
  shift 2
  local ex=$WORK/tiny/export
  [ -f "$ex/lavis.yaml" ] || curate export --task raw/sample/annotations.json --image-root raw/sample \
    --out "$ex" --model tiny --seed 0 || return 1
  curate train "$ex/lavis.yaml" run.device="$device" run.max_epoch=2 "$@" --run-id "$run" || return 1
  ckpt=$ex/runs/$run/checkpoint_best.pth
  image=$(ls raw/sample/fall/* | head -n 1)
  curate predict "$ckpt" "$image" --json || return 1
  curate eval "$ckpt" --data "$ex/test.json" --out "$OUT/eval-$run"
  local rc=$?
  [ $rc = 0 ] || [ $rc = 3 ] # 3: the collapse alarm, expected of a 2-epoch tiny model
}

export -f curate install_wheels tiny_flow
export OUT WORK PY
rm -rf "$WORK/tiny"
if [ $MODE = gpu ]; then
  part install 180 install_wheels
  part tiny_fp32 120 tiny_flow cuda fp32 run.amp=false
  part tiny_amp_fp16 120 tiny_flow cuda amp16 run.amp=true
  part tiny_amp_bf16_fused 120 tiny_flow cuda bf16 run.amp=true run.amp_dtype=bf16 run.fused_adamw=true
  left=$((BUDGET - ($(date +%s) - STARTED) - 15))
  part bench "$left" "$PY" benchmarks/gpu_train_bench.py --out "$OUT/bench" --work "$WORK/bench" --profile
else
  part tiny_cpu 600 tiny_flow cpu cpu run.amp=false
  part bench 900 "$PY" benchmarks/gpu_train_bench.py --out "$OUT/bench" --work "$WORK/bench" --cpu-smoke
fi

# one JSON and one markdown table with every part (a part that failed shows its log's tail)
"$PY" - "$OUT" <<'EOF'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
parts = [json.loads(l) for l in (out / "parts.jsonl").read_text().splitlines() if l.strip()]
for p in parts:
    log = out / f"{p['part']}.log"
    p["log_tail"] = log.read_text(errors="replace")[-1500:] if p["rc"] not in (0,) and log.exists() else ""
bench = out / "bench" / "bench.json"
result = {"parts": parts, "bench": json.loads(bench.read_text()) if bench.exists() else None}
(out / "results.json").write_text(json.dumps(result, indent=1) + "\n")
md = ["# GPU check", "", "| part | exit code | seconds |", "| --- | --- | --- |"]
md += [f"| {p['part']} | {p['rc']} | {p['seconds']} |" for p in parts]
if (out / "bench" / "bench.md").exists():
    md += ["", (out / "bench" / "bench.md").read_text()]
for p in parts:
    if p["log_tail"]:
        md += ["", f"## {p['part']} (exit {p['rc']}): end of its log", "", "```", p["log_tail"], "```"]
(out / "results.md").write_text("\n".join(md) + "\n")
print("\n".join(md[:4 + len(parts)]))
EOF
