#!/usr/bin/env bash
# Install with the test extras, then run the test suite (slow checks: add -m slow).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
.venv/bin/python -m ruff check mixup_gan tests benchmarks scripts
exec .venv/bin/python -m pytest "$@"
