#!/usr/bin/env bash
# The image study: ERM vs the paper's mixup (real-fake, Beta(0.2)) vs mixup with the toy
# recipe's levers (zero-centred gradient penalty 1 on the mixed points, lr decayed linearly
# to 0), one run per arm and seed, one after another. Two more arms split the levers:
# erm_decay (ERM with the lr decay alone) and mixup_decay (the paper's mixup with the lr
# decay, no penalty); name them in ARMS. Rerun the same command to resume: finished runs
# only report, an interrupted one resumes from its last checkpoint.
#   scripts/image_study.sh                      # Fashion-MNIST, DCGAN, BCE, seeds 0-2
#   DATASET=mnist LOSS=hinge SEEDS="0" scripts/image_study.sh
# Settings (environment): DATASET (fashion-mnist, mnist), ARCH (dcgan, sn_resnet), LOSS
# (bce, hinge), SEEDS, ARMS (erm mixup levers; also erm_decay mixup_decay), STEPS (default:
# the config's), DATA_ROOT (data; fill it with `mixup-gan data fetch $DATASET --root data`),
# RUNS (runs/image_study), MIXUP_GAN (the command; default: python -m mixup_gan.cli), EXTRA
# (more --set arguments). `scripts/image_study.sh --check` only checks the settings (ARMS,
# SEEDS, LOSS, ARCH, STEPS, DATASET, each arm's config), as the study does before its first run.
set -euo pipefail
set -f  # SEEDS, ARMS and EXTRA are split into words, never expanded as file patterns
if [ "$#" -gt 0 ] && [ "$*" != --check ]; then  # the one argument there is: --check, once
  arg=$1; [ "$1" = --check ] && arg=$2
  echo "image_study.sh: unknown argument '$arg' (settings come from the environment; --check)" >&2
  exit 2
fi
DATASET=${DATASET:-fashion-mnist} ARCH=${ARCH:-dcgan} LOSS=${LOSS:-bce}
SEEDS=${SEEDS:-0 1 2} ARMS=${ARMS:-erm mixup levers}
DATA_ROOT=${DATA_ROOT:-data} RUNS=${RUNS:-runs/image_study}
MIXUP_GAN=${MIXUP_GAN:-python -m mixup_gan.cli}
ROOT=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)  # the clone's configs, from any folder
decay=(--set "train.lr_schedule={kind: linear, final: 0}")
known="erm mixup levers erm_decay mixup_decay"
fail() { echo "image_study.sh: $*" >&2; exit 2; }
arm_settings() {  # the config and the levers of arm $1
  case $1 in
    erm) config=erm levers=() ;;
    mixup) config=mixup levers=() ;;
    levers) config=mixup levers=(--set loss.gradient_penalty=1 "${decay[@]}") ;;
    erm_decay) config=erm levers=("${decay[@]}") ;;
    mixup_decay) config=mixup levers=("${decay[@]}") ;;
    *) fail "unknown arm '$1' (${known// /, })" ;;
  esac
  config_file="$ROOT/configs/image/${DATASET//-/_}_${ARCH}_${config}.yaml"
}
# every setting checked before the first run trains
[ -n "${ARMS//[[:space:]]/}" ] || fail "ARMS names no arm (${known// /, })"
[ -n "${SEEDS//[[:space:]]/}" ] || fail "SEEDS names no seed"
twice() { printf '%s\n' $1 | sort | uniq -d | head -n 1; }  # a word of list $1 given twice
for seed in $SEEDS; do  # as YAML reads them: no leading zeros (010 would be seed 8), < 2**63
  [[ $seed =~ ^(0|[1-9][0-9]{0,18})$ && ! ($seed > 9223372036854775807 && ${#seed} == 19) ]] ||
    fail "SEEDS: '$seed' is not a seed (whole numbers without leading zeros, space-separated)"
done
for list in SEEDS ARMS; do
  again=$(twice "${!list}")
  [ -z "$again" ] || fail "$list: '$again' twice"
done
case $LOSS in bce | hinge) ;; *) fail "LOSS '$LOSS': the study's losses are bce and hinge" ;; esac
case $ARCH in dcgan | sn_resnet) ;; *) fail "ARCH '$ARCH': dcgan or sn_resnet" ;; esac
[[ -z ${STEPS:-} || $STEPS =~ ^[1-9][0-9]{0,17}$ ]] ||
  fail "STEPS '$STEPS': a whole number of steps"
case $DATASET in  # a dataset's name has dashes, its config file's underscores
  *_*) fail "DATASET '$DATASET': write it with dashes (${DATASET//_/-})" ;;
esac
for arm in $ARMS; do
  arm_settings "$arm"
  [ -f "$config_file" ] || fail "no config $config_file (DATASET=$DATASET, ARCH=$ARCH)"
done
[ "${1:-}" = --check ] && exit 0
for seed in $SEEDS; do  # seed-major: every arm's seed 0 first, so early results compare
  for arm in $ARMS; do
    arm_settings "$arm"
    args=(image --config "$config_file" --no-progress
          --set "data.root=$DATA_ROOT" --set data.download=false --set "output.dir=$RUNS/$DATASET"
          --set "output.name=${ARCH}_${LOSS}_${arm}_seed$seed" --set "train.seed=$seed"
          --set "loss.name=$LOSS" "${levers[@]}")
    [ -n "${STEPS:-}" ] && args+=(--set "train.steps=$STEPS")
    echo "== $(date -u +%H:%M:%S) $DATASET $ARCH $LOSS $arm seed $seed"
    # shellcheck disable=SC2086  # MIXUP_GAN and EXTRA are word lists
    $MIXUP_GAN "${args[@]}" ${EXTRA:-}
  done
done
