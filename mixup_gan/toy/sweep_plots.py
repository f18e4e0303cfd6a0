"""Sweep figures: final metrics against alpha with spread over seeds, and final snapshots."""

from __future__ import annotations

import statistics
from pathlib import Path

import torch

from .data import make_distribution
from .plots import Snapshot, plt, save_grid
from .runner import PICTURE_POINTS, reference_points

X_KEY = "loss.alpha"


def _panels(runs) -> tuple[list[str], list[tuple]]:
    """Grid keys other than alpha and the seed, and their value combinations."""
    keys = [k for k in runs[0].values if k not in (X_KEY, "train.seed")]
    combos = list(dict.fromkeys(tuple(r.values[k] for k in keys) for r in runs))
    return keys, combos


def save_sweep_figures(root: Path, runs, final: dict[str, dict]) -> None:
    """summary.png and snapshots.png for the runs that have logged rows (`final`: last rows)."""
    if not final or X_KEY not in runs[0].values:
        return
    runs = [r for r in runs if r.id in final]
    keys, combos = _panels(runs)
    save_metric_figure(root / "summary.png", runs, final, keys, combos)
    save_snapshot_figure(root, runs, keys, combos)


def save_metric_figure(path: Path, runs, final: dict, keys: list[str], combos) -> None:
    """Modes covered (top) and high-quality share (bottom) vs alpha, mean +- std over seeds."""
    datasets = list(dict.fromkeys(r.config.data.name for r in runs))
    fig, axes = plt.subplots(2, len(datasets), figsize=(4.2 * len(datasets), 6), dpi=120,
                             squeeze=False)
    for col, dataset in enumerate(datasets):
        for combo in combos:
            chosen = [r for r in runs if r.config.data.name == dataset
                      and tuple(r.values[k] for k in keys) == combo]
            if not chosen:
                continue
            alphas = sorted({r.values[X_KEY] for r in chosen})
            label = ", ".join(f"{k.split('.')[-1]} {v}" for k, v in zip(keys, combo, strict=True)
                              if k != "data.name") or "runs"
            for row, metric in enumerate(("modes", "hq_share")):
                means, spreads = [], []
                for alpha in alphas:
                    values = [final[r.id].get(metric) for r in chosen if r.values[X_KEY] == alpha]
                    values = [v for v in values if v is not None]
                    means.append(statistics.mean(values) if values else float("nan"))
                    spreads.append(statistics.pstdev(values) if len(values) > 1 else 0.0)
                axes[row][col].errorbar(alphas, means, yerr=spreads, marker="o", ms=4,
                                        capsize=3, label=label)
        dist = make_distribution(dataset) if dataset != "points" else None
        if dist is not None and dist.has_modes:
            axes[0][col].axhline(len(dist.centers), color="grey", lw=0.8, ls="--")
        axes[0][col].set_title(dataset)
        axes[0][col].set_ylabel("modes covered")
        axes[1][col].set_ylabel("high-quality share")
        axes[1][col].set_ylim(0, 1.02)
        for row in range(2):
            axes[row][col].set_xlabel("alpha (0 = ERM)")
            axes[row][col].grid(alpha=0.3)
        axes[0][col].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def save_snapshot_figure(root: Path, runs, keys: list[str], combos) -> None:
    """Final samples of the first seed: one row per setting, one column per alpha."""
    samples: dict[str, torch.Tensor] = {}
    for path in (root / "populations").glob("*/final_samples.pt"):
        state = torch.load(path, weights_only=True)
        samples.update(zip(state["ids"], state["fake"], strict=True))
    first_seed = runs[0].values["train.seed"]
    alphas = sorted({r.values[X_KEY] for r in runs})
    grid_rows, limit = [], 1.5
    for combo in combos:
        chosen = {r.values[X_KEY]: r for r in runs if r.values["train.seed"] == first_seed
                  and tuple(r.values[k] for k in keys) == combo}
        if not chosen or any(r.id not in samples for r in chosen.values()):
            continue
        cfg = next(iter(chosen.values())).config
        dist = make_distribution(cfg.data.name, scale=cfg.data.scale, path=cfg.data.path)
        limit = dist.limit
        real = reference_points(cfg, dist)[:PICTURE_POINTS]  # what the runs were judged on
        snaps = [Snapshot(cfg.train.steps, samples[chosen[a].id], title=f"alpha {a}")
                 for a in alphas if a in chosen]
        label = ", ".join(f"{k.split('.')[-1]} {v}" for k, v in zip(keys, combo, strict=True))
        grid_rows.append((label, real, snaps))
    if grid_rows:
        save_grid(root / "snapshots.png", grid_rows, limit,
                  title=f"final samples, seed {first_seed}; columns: alpha {alphas}")

