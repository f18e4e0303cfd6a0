"""Figure-5-style pictures: real vs generated points, optional D heatmap, metrics over time."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from .metrics import LIVE, Metric, drawn  # noqa: E402

REAL_COLOR, FAKE_COLOR = "#f28e2b", "#4e79a7"


@dataclass
class Snapshot:
    """Generated points at one step, and optionally D's output on a square grid."""

    step: int
    fake: Tensor  # (N, 2)
    d_grid: Tensor | None = None  # (R, R) over [-limit, limit]^2, row = y
    title: str | None = None  # default: "step N"


def d_grid(discriminator, limit: float, resolution: int = 100, device="cpu") -> Tensor:
    """D's raw output on a resolution x resolution grid over [-limit, limit]^2."""
    axis = torch.linspace(-limit, limit, resolution)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    points = torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1).to(device)
    with torch.no_grad():
        out = discriminator(points)
    return out.reshape(resolution, resolution).float().cpu()


def draw_snapshot(ax, real: Tensor, snap: Snapshot, limit: float):
    if snap.d_grid is not None:
        ax.imshow(snap.d_grid.numpy(), extent=(-limit, limit, -limit, limit), origin="lower",
                  cmap="Greys", alpha=0.6, aspect="equal")
    ax.scatter(*real[:, :2].T.numpy(), s=2, c=REAL_COLOR, alpha=0.5, linewidths=0)
    ax.scatter(*snap.fake[:, :2].T.numpy(), s=2, c=FAKE_COLOR, alpha=0.5, linewidths=0)
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(snap.title or f"step {snap.step}", fontsize=9)
    outside = (snap.fake[:, :2].abs() > limit).any(dim=1).float().mean().item()
    if outside > 0:  # a collapsed run can leave an empty-looking panel: say where its points went
        ax.text(0.02, 0.02, f"{outside:.0%} off the plot" if outside >= 0.01 else
                "<1% off the plot", transform=ax.transAxes, fontsize=7, color=FAKE_COLOR)


def save_snapshot(path: Path, real: Tensor, snap: Snapshot, limit: float) -> None:
    fig, ax = plt.subplots(figsize=(3, 3), dpi=120)
    draw_snapshot(ax, real, snap, limit)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def save_grid(path: Path, rows: Sequence[tuple[str, Tensor, Sequence[Snapshot]]],
              limit: float | Sequence[float], title: str = "") -> None:
    """Rows of snapshots, like the paper's Figure 5; each row is (label, real, snapshots),
    drawn over [-limit, limit]^2 (one limit, or one per row: datasets differ in size)."""
    limits = [limit] * len(rows) if isinstance(limit, (int, float)) else list(limit)
    n_cols = max(len(snaps) for _, _, snaps in rows)
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(2.2 * n_cols, 2.3 * len(rows) + 0.3),
                             dpi=120, squeeze=False)
    for ax_row, (label, real, snaps), row_limit in zip(axes, rows, limits, strict=True):
        for ax, snap in zip(ax_row, snaps, strict=False):
            draw_snapshot(ax, real, snap, row_limit)
        for ax in ax_row[len(snaps):]:
            ax.axis("off")
        if label:
            ax_row[0].set_ylabel(label, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    try:
        fig.savefig(path)
    finally:  # a path that cannot be written leaks no figure
        plt.close(fig)


def save_strip(path: Path, real: Tensor, snaps: Sequence[Snapshot], limit: float,
               label: str = "") -> None:
    """Snapshots side by side, like one row of the paper's Figure 5."""
    save_grid(path, [("", real, snaps)], limit, title=label)


def draw_metric(ax, metric: Metric, steps: list, values: list, n_modes: int | None,
                color: str = "C0", live: list | None = None, ema_start: int = 0) -> None:
    """One metric against the step, drawn as its registry entry's `scale` says; with `live`
    (a run with an EMA of G: the live G's values), those dotted beside the EMA's, and a
    vertical line at `ema_start` unless it is 0 (not marked)."""
    values = [math.nan if v is None else v for v in values]
    ax.plot(steps, values, marker="o", ms=3, color=color, label="EMA of G" if live else None)
    if live:
        live = [math.nan if v is None else v for v in live]
        ax.plot(steps, live, ls=":", color="black", label="live G")
        if ema_start:
            ax.axvline(ema_start, color="grey", lw=0.8, ls="-.", label="EMA starts")
        ax.legend(fontsize=7)
        values = values + live  # the scale fits both
    ax.set_ylabel(metric.label)
    if metric.scale == "modes" and n_modes is not None:
        ax.axhline(n_modes, color="grey", lw=0.8, ls="--")
        ax.set_ylim(0, n_modes + 0.5)
    elif metric.scale == "share":  # scaled to the data (a few percent is a flat line on 0-1)
        top = max((v for v in values if math.isfinite(v)), default=0.0)
        ax.set_ylim(0, min(1.02, max(0.01, 1.15 * top)))
    elif metric.scale == "log":
        ax.set_yscale("log")


def save_metrics_plot(path: Path, rows: Sequence[dict], n_modes: int | None,
                      ema_start: int = 0) -> None:
    """The registry's drawn metrics against the step: on data with modes, modes covered and
    the high-quality share; without, the mean losses, the Frechet distance and, for data on a
    curve, the shares near and of the curve (a metric no row holds is not drawn). A run with
    an EMA of G draws its live G's values too, dotted, and marks `ema_start` (the generator
    step where its EMA starts averaging; 0: from the start, not marked)."""
    steps = [r["step"] for r in rows]
    if ema_start > max(steps, default=0):  # past the run: its EMA never started
        ema_start = 0
    metrics = [m for m in drawn(n_modes is not None)
               if any(r.get(m.name) is not None for r in rows)]
    losses = n_modes is None
    fig, axes = plt.subplots(1, losses + len(metrics), figsize=(8, 3), dpi=120, squeeze=False)
    axes = list(axes[0])
    if losses:
        axes[0].plot(steps, [r["d_loss"] for r in rows], label="D")
        axes[0].plot(steps, [r["g_loss"] for r in rows], label="G")
        axes[0].set_ylabel("mean loss")
        axes[0].legend()
    for i, metric in enumerate(metrics, start=losses):
        live = [r.get(LIVE + metric.name) for r in rows]
        draw_metric(axes[i], metric, steps, [r.get(metric.name) for r in rows], n_modes,
                    color=f"C{i}", live=live if any(v is not None for v in live) else None,
                    ema_start=ema_start)
    for ax in axes:
        ax.set_xlabel("generator step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
