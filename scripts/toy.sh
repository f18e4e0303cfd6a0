#!/usr/bin/env bash
# The main job: install, then train ERM and the best mixup recipe side by side on the
# 8-Gaussian ring (configs/sweeps/quickstart.yaml, a few minutes on 2 CPU cores); prints the
# comparison table and writes runs/sweeps/quickstart/ (snapshots.png: both generators' samples).
# Extra arguments go to `mixup-gan sweep`, e.g. scripts/toy.sh --set seeds=[1]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/mixup-gan sweep --config configs/sweeps/quickstart.yaml "$@"
