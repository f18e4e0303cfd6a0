"""Summarise toy runs named SHAPE_METHOD_sSEED into a markdown table and a snapshot figure.

Usage: python scripts/results_table.py runs/results-2000 [--figure docs/figures/x.png]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections import defaultdict
from pathlib import Path

from mixup_gan.config import load_config
from mixup_gan.toy.data import make_distribution, read_points
from mixup_gan.toy.plots import save_grid
from mixup_gan.toy.runner import PICTURE_POINTS, load_snapshots


def mean_spread(values: list) -> str:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return "n/a"
    text = f"{statistics.mean(finite):.3g} ± {statistics.pstdev(finite):.2g}"
    missing = len(values) - len(finite)
    return text + (f" ({missing} n/a)" if missing else "")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("--figure", type=Path)
    parser.add_argument("--figure-seed", type=int, default=0, help="seed whose runs are drawn")
    args = parser.parse_args()
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for summary_path in sorted(args.root.glob("*/summary.json")):
        shape, method, _ = summary_path.parent.name.split("_")
        groups[(shape, method)].append(json.loads(summary_path.read_text()))
    print("| data | D loss | seeds | steps | modes covered | high-quality share "
          "| reverse KL | 2D Frechet |")
    print("|---|---|---|---|---|---|---|---|")
    for (shape, method), runs in sorted(groups.items()):
        label = "ERM (alpha 0)" if method == "erm" else "mixup (alpha 0.2)"
        cells = [mean_spread([r.get(k) for r in runs])
                 for k in ("modes", "hq_share", "reverse_kl", "frechet")]
        head = f"| {shape} | {label} | {len(runs)} | {runs[0]['steps']} | "
        print(head + " | ".join(cells) + " |")
    if args.figure:
        rows, limit = [], 1.5
        for run_dir in sorted(args.root.iterdir()):
            if not (run_dir / "summary.json").exists():
                continue
            if not run_dir.name.endswith(f"_s{args.figure_seed}"):
                continue
            cfg = load_config(run_dir / "config.yaml")
            dist = make_distribution(cfg.data.name, scale=cfg.data.scale)
            real = read_points(cfg.data.reference)[:PICTURE_POINTS]
            rows.append((run_dir.name, real, load_snapshots(run_dir)))
            limit = dist.limit
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        save_grid(args.figure, rows, limit)
        print(f"\nfigure: {args.figure}")


if __name__ == "__main__":
    main()
