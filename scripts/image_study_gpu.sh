#!/usr/bin/env bash
# The image study on one lent GPU, in one call: every arm and seed of scripts/image_study.sh
# trained side by side (one process each), stopped at BUDGET seconds if not done, and the run
# folders (metrics, sample grids, checkpoints to resume from) copied out under $OUT as
# image_study.tar.gz.partNN (15 MiB pieces). Untested on a GPU so far: STEPS is sized from
# an H100 figure (a DCGAN step of this width on 32x32 digits: ~7,200 images/s
# alone), not measured. The study's table (FID and KID in a LeNet feature space,
# scripts/image_study_report.py) is written to $OUT; Inception FID (its weights are too big to
# travel) is read afterwards on a CPU, from the runs unpacked there:
#   python scripts/image_study_report.py --runs runs/image_study/fashion-mnist --inception 10000
# Data travel in as the .gz files only (30 MB; decompressed they exceed what can travel):
#   mkdir -p data/FashionMNIST/raw && cp ROOT/FashionMNIST/raw/*.gz data/FashionMNIST/raw/
#   run: source .gpu/prelude.sh && scripts/image_study_gpu.sh
#        carry: .whl .gpu data/FashionMNIST/raw   (and runs/image_study to continue a study)
# Settings: those of scripts/image_study.sh, plus STEPS (default 5000), BUDGET (default 480).
set -euo pipefail
fail() { echo "image_study_gpu.sh: $*" >&2; exit 2; }
[ "$#" = 0 ] || fail "unknown argument '$1' (settings come from the environment)"
HERE=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)  # the clone's scripts; paths: the caller's
"$HERE/image_study.sh" --check  # bad ARMS, SEEDS, LOSS, STEPS, DATASET or ARCH exit 2 here
DATASET=${DATASET:-fashion-mnist} ARCH=${ARCH:-dcgan} LOSS=${LOSS:-bce}
SEEDS=${SEEDS:-0 1 2} ARMS=${ARMS:-erm mixup levers}
RUNS=${RUNS:-runs/image_study} OUT=${OUT:-out} BUDGET=${BUDGET:-480}
export STEPS=${STEPS:-5000} DATA_ROOT=${DATA_ROOT:-data} DATASET ARCH LOSS RUNS
export MIXUP_GAN=${MIXUP_GAN:-mixup-gan}
[[ $BUDGET =~ ^[1-9][0-9]{0,8}$ ]] || fail "BUDGET '$BUDGET': whole seconds, at least 1"
if compgen -G "$OUT/image_study.tar.gz.part*" > /dev/null; then  # never mixed with new parts
  fail "$OUT already holds image_study.tar.gz.part* of an earlier call: move them away"
fi
files=$(${PYTHON:-python3} -c '
import sys
from mixup_gan.datasets import IDX_SETS, idx_files
if sys.argv[1] not in IDX_SETS:
    sets = ", ".join(IDX_SETS)
    print(f"image_study_gpu.sh: DATASET {sys.argv[1]!r}: only the sets whose .gz files travel to "
          f"the GPU machine ({sets})", file=sys.stderr)
    sys.exit(2)
print(IDX_SETS[sys.argv[1]].folder, *idx_files(IDX_SETS[sys.argv[1]]))' "$DATASET")
read -r folder names <<< "$files"
raw="$DATA_ROOT/$folder/raw"
for name in $names; do  # torchvision reads the decompressed files
  [ -f "$raw/$name" ] && continue
  [ -f "$raw/$name.gz" ] || fail "no $raw/$name.gz (carry the set's 4 .gz files in, as above)"
  gunzip -c "$raw/$name.gz" > "$raw/$name.part" 2> /dev/null ||
    { rm -f "$raw/$name.part"; fail "$raw/$name.gz: not a gzip file (copy it again)"; }
  mv "$raw/$name.part" "$raw/$name"
done
mkdir -p "$RUNS" "$OUT"
pids=()
set -f  # SEEDS and ARMS are word lists, never file patterns
for seed in $SEEDS; do
  for arm in $ARMS; do
    SEEDS=$seed ARMS=$arm timeout "$BUDGET" "$HERE/image_study.sh" \
      > "$RUNS/log_${arm}_seed$seed.txt" 2>&1 &
    pids+=($!)
  done
done
set +f
late=0 failed=0
for pid in "${pids[@]}"; do  # 124: stopped at BUDGET (resumable); anything else: a failed run
  wait "$pid" || { rc=$?; if [ "$rc" = 124 ]; then late=1; else failed=$rc; fi; }
done
tail -n 4 "$RUNS"/log_*.txt
${PYTHON:-python3} "$HERE/image_study_report.py" --runs "$RUNS/$DATASET" --dataset "$DATASET" \
  --data-root "$DATA_ROOT" --out "$OUT" || { rc=$?; [ "$failed" != 0 ] || failed=$rc; }
tar czf - --exclude=tensorboard "$RUNS" | split -b 15M -d - "$OUT/image_study.tar.gz.part"
ls -l "$OUT"
if [ "$failed" != 0 ]; then
  echo "a run or the report failed (status $failed): its log is above"
elif [ "$late" = 1 ]; then
  echo "the budget ran out before every run finished: rerun with $RUNS carried in to go on"
else
  echo "every run finished"
fi
exit "$failed"  # 0 when runs only ran out of time
