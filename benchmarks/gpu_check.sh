#!/usr/bin/env bash
# Everything that needs a GPU, in one call of a lent GPU machine (see ../shared/gpu/README.md):
# the CUDA benchmarks on a quiet card, a toy run through the CLI, then the paper's Figure-5 grid
# at 20,000 iterations in the background while the test suite runs on CUDA. Logs, the grid's
# tables and figures come back under $OUT (at most 8 files). Usage, on that machine:
#   source .gpu/prelude.sh && bash benchmarks/gpu_check.sh [seconds] [stage ...]
# stages: bench sides shard toy grid tests (default: bench toy grid tests, in that order; sides
# is only bench_sweep's populations side by side vs one after another; shard is bench_shard's
# sweep sharded over 1, 2, 4, 8 GPUs, as many as there are, and 2 processes on one GPU,
# through torchrun's RANK/WORLD_SIZE/LOCAL_RANK); GRID_CONFIG picks the sweep (default
# configs/sweeps/figure5_20k.yaml; configs/sweeps/ablation_20k.yaml is issue 25's 20,000-
# iteration ablation), GRID_GRID replaces its grid, e.g.
# GRID_GRID='{data.name: [ring, grid], model.latent_dim: [2]}'. If the
# sweep fails with its populations side by side, it resumes with one at a time.
set -u
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
BUDGET=${1:-560}
shift || true
STAGES=${*:-bench toy grid tests}
START=$(date +%s)
left() { echo $(( BUDGET - ($(date +%s) - START) )); }
say() { echo "== $* (t=$(( $(date +%s) - START )) s)" | tee -a "$OUT/log.txt"; }
has() { [[ " $STAGES " == *" $1 "* ]]; }

say "device; stages: $STAGES"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv 2>&1 \
  | tee -a "$OUT/log.txt"

if has bench; then
  say "bench_sweep (quiet card)"
  timeout 150 python3 benchmarks/bench_sweep.py --skip-cpu 2>&1 | tee -a "$OUT/log.txt"
  say "bench_image"
  timeout 100 python3 benchmarks/bench_image.py 2>&1 | tee -a "$OUT/log.txt"
fi

if has sides; then
  say "bench_sweep: populations side by side"
  timeout 120 python3 benchmarks/bench_sweep.py --skip-cpu --skip-rates 2>&1 | tee -a "$OUT/log.txt"
fi

if has shard; then
  say "bench_shard: a sweep sharded over GPU counts"
  timeout 200 python3 benchmarks/bench_shard.py --cuda --steps 300 2>&1 | tee -a "$OUT/log.txt"
fi

if has toy; then
  say "toy run through the CLI (paper setup, hooks on), captured and not"
  for capture in true false; do
    timeout 60 mixup-gan toy --config configs/toy/ring_mixup.yaml --no-progress \
      --set output.name=ring_$capture --set train.steps=3000 --set output.dir=/tmp/runs \
      --set train.capture=$capture 2>&1 | tail -3 | tee -a "$OUT/log.txt"
  done
fi

GRID=""
if has grid; then
  GRID_CONFIG=${GRID_CONFIG:-configs/sweeps/figure5_20k.yaml}
  say "sweep $GRID_CONFIG in the background"
  EXTRA=()
  [ -n "${GRID_GRID:-}" ] && EXTRA=(--set "grid=$GRID_GRID")
  sweep() {
    OMP_NUM_THREADS=2 mixup-gan sweep -c "$GRID_CONFIG" --no-progress \
      --set output=/tmp/sweeps "${EXTRA[@]}" "$@"
  }
  ( time { sweep || { echo "== side by side failed: resuming one population at a time"
                      sweep --set concurrent=1; }; } ) > "$OUT/grid.txt" 2>&1 &
  GRID=$!
fi

if has tests; then
  say "test suite on CUDA"
  OMP_NUM_THREADS=1 timeout $(( $(left) - 30 > 60 ? $(left) - 30 : 60 )) python3 -m pytest \
    -q -p no:cacheprovider -p no:benchmark -n 10 -rfE --tb=short --timeout 300 \
    > "$OUT/pytest.txt" 2>&1
  tail -25 "$OUT/pytest.txt" | tee -a "$OUT/log.txt"
fi

if [ -n "$GRID" ]; then
  say "waiting for the grid"
  while kill -0 $GRID 2>/dev/null && [ "$(left)" -gt 10 ]; do sleep 5; done
  kill -0 $GRID 2>/dev/null && { say "grid not finished: stopped"; pkill -f "mixup_gan.cli sweep"; }
  tail -5 "$OUT/grid.txt" | tee -a "$OUT/log.txt"
  tar -C /tmp/sweeps -czf "$OUT/grid.tgz" --exclude checkpoint.pt . 2>/dev/null
fi
say done
