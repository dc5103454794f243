#!/usr/bin/env bash
# The demo on the bundled sample (raw/sample): what a new user types, step by step.
# Edit freely: every step is a plain `curate` command.
set -uo pipefail
OUT=exports/demo
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

# 1. The seed's annotation file: string answers, a Windows path, a wrong key.
step curate validate raw/sample/seed_train.json
# 2. Let the tool write a corrected copy (the input is never changed).
step curate validate raw/sample/seed_train.json --fix "$OUT/seed_train.fixed.json" \
    --image-root raw/sample
# 3. The bundled sample in the LAVIS VQA contract: valid.
step curate validate raw/sample/annotations.json --json "$OUT/validate_report.json" || exit 1
