#!/usr/bin/env bash
# ERM vs mixup (alpha 0.2) on the paper's ring and grid setups, 3 seeds each.
# Usage: scripts/toy_results.sh [STEPS]   (default 2000; the paper runs 20000)
# Then:  python scripts/results_table.py runs/results-STEPS
set -euo pipefail
steps="${1:-2000}"
for shape in ring grid; do
  for method in erm mixup; do
    for seed in 0 1 2; do
      mixup-gan toy --config "configs/toy/${shape}_${method}.yaml" --no-progress \
        --set train.steps="$steps" --set train.seed="$seed" \
        --set output.dir="runs/results-${steps}" --set output.name="${shape}_${method}_s${seed}"
    done
  done
done
