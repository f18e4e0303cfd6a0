"""Toy GAN metrics (VEEGAN / PacGAN definitions) and a 2D Frechet distance.

A sample is *high quality* when it lies within `threshold` (3) standard deviations of its
nearest mode; a mode is *covered* when it is the nearest mode of at least one high-quality
sample. *Reverse KL* is KL(p || uniform) for p the histogram of high-quality samples over
modes: 0 when every mode gets an equal share, log(K) when all sit on one mode.

`METRICS` is the one registry of toy metrics: a run's metrics rows, a sweep's results.csv
and summary.md, the printed summary, a run's metrics.png and a sweep's summary.png all read
it. A new metric is one `register(Metric(...))` call (here, or before a run starts).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ..frechet import frechet_distance, statistics

if TYPE_CHECKING:
    from .data import ToyDistribution


def mode_metrics(samples: Tensor, centers: Tensor, std: float, threshold: float = 3.0) -> dict:
    """Modes covered, high-quality share and reverse KL of (N, 2) samples against (K, 2) modes.

    With no high-quality sample, reverse KL is undefined and reported as NaN.
    """
    samples = samples.detach().to(torch.float64).cpu()
    centers = centers.to(torch.float64).cpu()
    dist, nearest = torch.cdist(samples, centers).min(dim=1)
    good = dist <= threshold * std
    counts = torch.bincount(nearest[good], minlength=len(centers)).to(torch.float64)
    n_good = int(good.sum())
    if n_good:
        p = counts / n_good
        nonzero = p > 0
        reverse_kl = float((p[nonzero] * torch.log(p[nonzero] * len(centers))).sum())
    else:
        reverse_kl = math.nan
    return {
        "modes": int((counts > 0).sum()),
        "hq_share": n_good / len(samples),
        "reverse_kl": reverse_kl,
    }


def frechet_2d(samples: Tensor, reference: Tensor) -> float:
    """Frechet distance between Gaussians fitted to two point sets: the points are the
    features, measured by the same torch-fidelity code as image FID (`mixup_gan.fid`)."""
    return frechet_distance(statistics(samples.detach().to(torch.float64)),
                            statistics(reference.detach().to(torch.float64)))


@dataclass
class Judged:
    """What a metric is computed from: generated points (N, 2), their distribution and the
    reference points (M, 2) they are judged against; the mode statistics computed once."""

    samples: Tensor
    dist: ToyDistribution
    reference: Tensor

    @cached_property
    def modes(self) -> dict:
        return mode_metrics(self.samples, self.dist.centers, self.dist.std)


@dataclass(frozen=True)
class Metric:
    """One toy metric.

    name: its key in metrics rows, results.csv, summary.md and the printed summary.
    label: what it is, as an axis shows it. better: "higher" or "lower".
    compute: the value from a `Judged`. needs_modes: only for data with known modes.
    fmt: format spec of the printed summary. scale: how a figure draws it: "modes" (0 to
    the mode count, a line at the count), "share" (a fraction), "log" (log axis).
    drawn: the figures it is a panel of: "modal" (data with modes), "modeless" (data
    without), "" (none: tables only).
    """

    name: str
    label: str
    better: str
    compute: Callable[[Judged], float]
    needs_modes: bool = False
    fmt: str = ".4g"
    scale: str = "linear"
    drawn: str = ""

    def __post_init__(self) -> None:
        if self.better not in ("higher", "lower"):
            raise ValueError(f"metric {self.name!r}: better is 'higher' or 'lower'")

    @property
    def arrow(self) -> str:
        """↑ when higher is better, ↓ when lower is."""
        return "↑" if self.better == "higher" else "↓"


METRICS: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    """Add a metric to the registry (every table, summary and figure reads it)."""
    if metric.name in METRICS:
        raise ValueError(f"a toy metric named {metric.name!r} is registered already")
    METRICS[metric.name] = metric
    return metric


register(Metric("modes", "modes covered", "higher", lambda j: j.modes["modes"],
                needs_modes=True, fmt="d", scale="modes", drawn="modal"))
register(Metric("hq_share", "high-quality share", "higher", lambda j: j.modes["hq_share"],
                needs_modes=True, scale="share", drawn="modal"))
register(Metric("reverse_kl", "reverse KL", "lower", lambda j: j.modes["reverse_kl"],
                needs_modes=True))
register(Metric("frechet", "2D Frechet distance", "lower",
                lambda j: frechet_2d(j.samples, j.reference), scale="log", drawn="modeless"))


def evaluate(samples: Tensor, dist: ToyDistribution, reference: Tensor) -> dict:
    """Every registered metric that applies to `dist`, for one set of (N, 2) points."""
    judged = Judged(samples, dist, reference)
    return {m.name: m.compute(judged) for m in METRICS.values()
            if dist.has_modes or not m.needs_modes}


def drawn(has_modes: bool) -> list[Metric]:
    """The metrics a figure draws for data with (or without) known modes."""
    return [m for m in METRICS.values() if m.drawn == ("modal" if has_modes else "modeless")]
