#!/usr/bin/env bash
# Everything that needs a GPU, in one call of a lent GPU machine (see ../shared/gpu/README.md):
# the CUDA benchmarks on a quiet card, a toy run through the CLI, then the paper's Figure-5 grid
# at 20,000 iterations in the background while the test suite runs on CUDA. Logs, the grid's
# tables and figures come back under $OUT (at most 8 files). Usage, on that machine:
#   source .gpu/prelude.sh && bash benchmarks/gpu_check.sh [seconds budget, default 560]
set -u
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
BUDGET=${1:-560}
START=$(date +%s)
left() { echo $(( BUDGET - ($(date +%s) - START) )); }
say() { echo "== $* (t=$(( $(date +%s) - START )) s)" | tee -a "$OUT/log.txt"; }

say device
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv 2>&1 \
  | tee -a "$OUT/log.txt"

say "bench_sweep (quiet card)"
timeout 150 python3 benchmarks/bench_sweep.py --skip-cpu 2>&1 | tee -a "$OUT/log.txt"

say "bench_image"
timeout 100 python3 benchmarks/bench_image.py 2>&1 | tee -a "$OUT/log.txt"

say "toy run through the CLI (paper setup, hooks on), captured and not"
for capture in true false; do
  timeout 60 mixup-gan toy --config configs/toy/ring_mixup.yaml --no-progress \
    --set output.name=ring_$capture --set train.steps=3000 --set output.dir=/tmp/runs \
    --set train.capture=$capture 2>&1 | tail -3 | tee -a "$OUT/log.txt"
  python3 -c "import json; s = json.load(open('/tmp/runs/ring_$capture/summary.json')); \
print('capture=$capture', {k: s.get(k) for k in ('iterations_per_second', 'modes', 'hq_share', 'steps', 'device')})" \
    2>&1 | tee -a "$OUT/log.txt"
done

say "Figure-5 grid, 20,000 iterations, in the background"
GRID_SET='data.reference: null, train.steps: 20000, eval.every: 1000, eval.snapshots: [10, 100, 1000, 10000, 20000], output.checkpoint_every: 5000'
grid() {  # $1: sweep name, $2: extra run settings
  ( time mixup-gan sweep -c configs/sweeps/figure5_20k.yaml --no-progress --set name=$1 \
      --set output=/tmp/sweeps --set "set={$GRID_SET$2}" ) >> "$OUT/grid.txt" 2>&1
}
# If the captured step failed on this card, the grid still runs, without capture.
( grid figure5_20k "" || grid figure5_20k_plain ", train.capture: false" ) &
GRID=$!

say "test suite on CUDA"
timeout $(( $(left) - 60 > 60 ? $(left) - 60 : 60 )) python3 -m pytest -q -p no:cacheprovider \
  -n 6 --timeout 300 2>&1 | tail -40 | tee "$OUT/pytest.txt"

say "waiting for the grid"
while kill -0 $GRID 2>/dev/null && [ "$(left)" -gt 15 ]; do sleep 5; done
kill -0 $GRID 2>/dev/null && { say "grid not finished: stopped"; pkill -f "mixup_gan.cli sweep"; }
tail -5 "$OUT/grid.txt" | tee -a "$OUT/log.txt"
tar -C /tmp/sweeps -czf "$OUT/grid.tgz" --exclude checkpoint.pt . 2>/dev/null
say done
