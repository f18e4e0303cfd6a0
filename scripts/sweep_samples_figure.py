"""Draw every run's final samples of a finished sweep: one row per setting, one column per
seed, over the points each run was judged on (from the populations' final_samples.pt).

Usage: python scripts/sweep_samples_figure.py runs/sweeps/levers_screen OUT.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from mixup_gan.toy.plots import Snapshot, save_grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path, help="a sweep folder (with populations/)")
    parser.add_argument("out", type=Path, help="the PNG to write")
    args = parser.parse_args()
    runs = json.loads((args.sweep / "sweep.json").read_text())["runs"]
    samples = {}
    for path in sorted((args.sweep / "populations").glob("*/final_samples.pt")):
        state = torch.load(path, weights_only=True)
        for k, run_id in enumerate(state["ids"]):
            samples[run_id] = (state["fake"][k], state["real"][k], state["limits"][k])
    rows: dict[str, list[str]] = {}
    for run_id in runs:  # the sweep's order: settings, then seeds
        setting = ",".join(p for p in run_id.split(",") if not p.startswith("train.seed="))
        if run_id in samples:
            rows.setdefault(setting, []).append(run_id)
    if not rows:
        raise SystemExit(f"{args.sweep}: no final samples yet (is the sweep finished?)")
    grid, limit = [], 1.5
    for setting, ids in rows.items():
        fake, real, limit = samples[ids[0]]
        snaps = [Snapshot(0, samples[i][0], title=i.split("train.seed=")[-1].join(("seed ", "")))
                 for i in ids]
        label = setting.replace("train.", "").replace("loss.", "").replace(",", "\n")
        grid.append((label, real, snaps))
    save_grid(args.out, grid, limit, title=f"{args.sweep.name}: final samples")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
