#!/usr/bin/env bash
# Reproduce the paper's Table 5 and Table 6 on the shared datasets and write the reports under
# docs/results/. Resumable: after an interruption (Ctrl-C, kill, reboot) run it again and only the
# missing cells are computed. Extra arguments go to `taskneurons bench table6`, e.g.
#   benchmarks/run_table6.sh --protocol paper --structures S1 S2
#   JOBS=8 benchmarks/run_table6.sh --executor ray --address auto
set -euo pipefail
cd "$(dirname "$0")/.."

DATA="${DATA:-../shared/datasets/paper}"
OUT="${OUT:-docs/results}"
JOBS="${JOBS:-2}"
SEEDS="${SEEDS:-10}"

taskneurons bench table5 --data-dir "$DATA" --out "$OUT/table5" --n-jobs 1 --quiet
time taskneurons bench table6 --data-dir "$DATA" --out "$OUT/table6" --n-jobs "$JOBS" --seeds "$SEEDS" "$@"
# results.jsonl.lock (left next to each results file) only guards a running writer: do not commit it.
