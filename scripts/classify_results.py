"""ERM vs mixup, clean and with 20/50/80% corrupted labels, 3 seeds each: the paper's
memorization table on the 8x8 digits (default) or Fashion-MNIST, with an MLP (default) or,
on Fashion-MNIST, a small CNN (`--net lenet`).

Trains what is missing (finished runs are only read back), then prints a markdown table.
Usage: python scripts/classify_results.py [--dataset digits|fashion-mnist] [--net mlp|lenet]
           [--corrupt 0 0.2 0.5 0.8] [--out runs/classify-results]
           [--set KEY=VALUE ...] (e.g. --set data.root=/data)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mixup_gan.classify.config import ClassifyConfig
from mixup_gan.classify.data import load_data
from mixup_gan.classify.runner import run_classify
from mixup_gan.config import ConfigError, load_config
from mixup_gan.toy.sweep.report import mean_spread

METHODS = {"ERM": "erm", "mixup (alpha 1)": "mixup"}
CORRUPT, SEEDS = (0.0, 0.2, 0.5, 0.8), (0, 1, 2)
CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "classify"


def main() -> None:
    parser = argparse.ArgumentParser(description="ERM vs mixup with 0/20/50/80%% corrupted "
                                     "labels, 3 seeds each: trains what is missing, prints "
                                     "the memorization table.")
    parser.add_argument("--dataset", default="digits", choices=("digits", "fashion-mnist"),
                        help="configs/classify/<dataset>_{erm,mixup}.yaml")
    parser.add_argument("--net", default="mlp", choices=("mlp", "lenet"),
                        help="lenet: configs/classify/<dataset>_lenet_{erm,mixup}.yaml")
    parser.add_argument("--corrupt", type=float, nargs="+", default=CORRUPT, metavar="SHARE",
                        help="the corrupted shares to train, in order (default: 0 0.2 0.5 0.8)")
    parser.add_argument("--out", default="runs/classify-results",
                        help="where the run folders go (finished runs are read back)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for every run")
    args = parser.parse_args()
    if args.net == "lenet" and args.dataset == "digits":
        raise ConfigError("--net lenet: the digits are 8x8 and a LeNet needs 16x16 or more "
                          "(use --dataset fashion-mnist)")
    for share in args.corrupt:  # run names hold whole percents: c20 for 0.2
        if not (0 <= share <= 1 and abs(share * 100 - round(share * 100)) < 1e-9):
            raise ConfigError(f"--corrupt {share:g}: give shares in [0, 1] in whole "
                              "percents, e.g. 0.2 0.5")
    net = "" if args.net == "mlp" else f"{args.net}_"
    prefix = ("" if args.dataset == "digits" else "fmnist_") + net
    configs = {  # every run's config checked before anything trains
        (corrupt, mode, seed): load_config(
            CONFIGS / f"{args.dataset.replace('-', '_')}_{net}{mode}.yaml",
            ClassifyConfig, [f"data.corrupt={corrupt}", f"train.seed={seed}",
                             f"output.dir={args.out}", "output.progress=false", *args.set])
        for corrupt in args.corrupt for mode in METHODS.values() for seed in SEEDS}
    print("| labels corrupted | method | seeds | last test error | best test error "
          "| train acc. (given labels) | memorized (corrupted subset) |")
    print("|---|---|---|---|---|---|---|")
    for corrupt in args.corrupt:
        data = None
        for method, mode in METHODS.items():
            results = []
            for seed in SEEDS:
                cfg = configs[corrupt, mode, seed]
                data = data or load_data(cfg.data)  # corruption uses data.corrupt_seed only
                name = f"{prefix}c{round(corrupt * 100)}_{mode}_s{seed}"
                results.append(run_classify(cfg, name, data=data))
            cells = [mean_spread([r[k] for r in results]) for k in
                     ("last_test_error", "best_test_error", "train_accuracy", "memorized")]
            print(f"| {corrupt:.0%} | {method} | {len(results)} | " + " | ".join(cells) + " |",
                  flush=True)


if __name__ == "__main__":
    try:
        main()
    except ConfigError as exc:  # a bad --set or a missing dataset: one line, as the CLI says it
        print(f"classify_results.py: {exc}", file=sys.stderr)
        sys.exit(2)
