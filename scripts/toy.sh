#!/usr/bin/env bash
# The main job: install, then train the default toy mixup-GAN (8-Gaussian ring, ~1 minute).
# Extra arguments go to `mixup-gan toy`, e.g. scripts/toy.sh --set train.steps=200
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/mixup-gan toy --config configs/toy/default.yaml "$@"
