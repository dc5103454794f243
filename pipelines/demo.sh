#!/usr/bin/env bash
# The demo on the bundled sample (raw/sample): what a new user types, step by step.
# Edit freely: every step is a plain `curate` command. Outputs go to exports/demo/.
set -uo pipefail
OUT=exports/demo
mkdir -p "$OUT"
# keep the demo's FiftyOne datasets apart from your own
export FIFTYONE_DATABASE_DIR="$PWD/$OUT/fiftyone-db"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
must() { step "$@" || { echo "demo step failed: $*"; exit 1; }; }

# 1. The seed's annotation file: string answers, a Windows path, a wrong key (exit code 1).
step curate validate raw/sample/seed_train.json
# 2. A corrected copy (the input is never changed).
step curate validate raw/sample/seed_train.json --fix "$OUT/seed_train.fixed.json" \
    --image-root raw/sample
# 3. The bundled sample in the LAVIS VQA contract: valid.
must curate validate raw/sample/annotations.json --json "$OUT/validate_report.json"
# 4. Into FiftyOne: the fall/ and no_fall/ folders, then the checks (tags for the App).
must curate ingest raw/sample --dataset falldown-demo --overwrite
must curate check --dataset falldown-demo --json "$OUT/check_report.json"
# (curate review --dataset falldown-demo opens the App; tag exclude / relabel:yes / relabel:no)
# 5. Mix with easy-VQA: 70% general VQA, task balanced to 50% yes.
must curate mix --dataset falldown-demo --easy-vqa --vqav2-ratio 0.7 --seed 0 \
    --out "$OUT/mix" --overwrite
# 6. Train the tiny BLIP-2 (LAVIS's own code, CPU, random weights: a smoke run, not a model).
must curate train "$OUT/mix/lavis.yaml" run.max_epoch=2 --run-id demo
# 7. Ask it, and score it on the held-out split (exit code 3 = collapse alarm).
must curate predict "$OUT/mix/runs/demo/checkpoint_best.pth" raw/sample/fall/0000.png \
    raw/sample/no_fall/camera.png
step curate eval "$OUT/mix/runs/demo/checkpoint_best.pth" --data "$OUT/mix/test.json"
echo
echo "demo done: outputs in $OUT/ (the full collapse experiment: python pipelines/collapse_experiment.py)"
