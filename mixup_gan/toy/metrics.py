"""Toy GAN metrics (VEEGAN / PacGAN definitions) and a 2D Frechet distance.

A sample is *high quality* when it lies within `threshold` (3) standard deviations of its
nearest mode; a mode is *covered* when it is the nearest mode of at least one high-quality
sample. *Reverse KL* is KL(p || uniform) for p the histogram of high-quality samples over
modes: 0 when every mode gets an equal share, log(K) when all sit on one mode.

Data on a curve (the swiss roll) has no modes; the same 3-std rule judges it against the
noiseless curve: a sample is *near the curve* within 3 noise std of it, and a point of the
curve is *covered* when a sample lies within 3 std of it (the curve's points are spaced as the
data is, so the covered share is the share of the data's mass the samples reach). A perfect
generator scores about 99.7% near (a 1D normal within 3 std) and 100% covered.

`METRICS` is the one registry of toy metrics: a run's metrics rows, a sweep's results.csv
and summary.md, the printed summary, a run's metrics.png and a sweep's summary.png all read
it. A new metric is one `register(Metric(...))` call (here, or before a run starts).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor

from ..frechet import frechet_distance, statistics
from .data import DATASETS, ToyDistribution, make_distribution


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


def curve_metrics(samples: Tensor, curve: Tensor, std: float, threshold: float = 3.0,
                  chunk: int = 1024) -> dict:
    """The share of (N, 2) samples within `threshold` std of the (C, 2) curve points, and the
    share of curve points with a sample within `threshold` std (computed in chunks of
    samples: the full N x C distance matrix is never held)."""
    samples = samples.detach().to(torch.float64).cpu()
    curve = curve.to(torch.float64).cpu()
    radius = threshold * std
    near, covered = 0, torch.zeros(len(curve), dtype=torch.bool)
    for part in samples.split(chunk):
        close = torch.cdist(part, curve) <= radius
        near += int(close.any(dim=1).sum())
        covered |= close.any(dim=0)
    return {"near_curve": near / len(samples), "curve_covered": float(covered.double().mean())}


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

    @cached_property
    def curve(self) -> dict:
        return curve_metrics(self.samples, self.dist.curve, self.dist.std)


@dataclass(frozen=True)
class Metric:
    """One toy metric.

    name: its key in metrics rows, results.csv, summary.md and the printed summary.
    label: what it is, as an axis shows it. better: "higher" or "lower".
    compute: the value from a `Judged`. needs: what the data must have for it to apply:
    "modes" (known mode centres), "curve" (a known curve), "" (any data).
    fmt: format spec of the printed summary. scale: how a figure draws it: "modes" (0 to
    the mode count, a line at the count), "share" (a fraction), "log" (log axis).
    drawn: the figures it is a panel of: "modal" (data with modes), "modeless" (data
    without), "" (none: tables only).
    """

    name: str
    label: str
    better: str
    compute: Callable[[Judged], float]
    needs: str = ""
    fmt: str = ".4g"
    scale: str = "linear"
    drawn: str = ""

    def __post_init__(self) -> None:
        if self.better not in ("higher", "lower"):
            raise ValueError(f"metric {self.name!r}: better is 'higher' or 'lower'")
        if self.needs not in ("", "modes", "curve"):
            raise ValueError(f"metric {self.name!r}: needs is '', 'modes' or 'curve'")

    def applies(self, dist: ToyDistribution) -> bool:
        """Whether `dist` has what this metric needs."""
        return {"": True, "modes": dist.has_modes, "curve": dist.has_curve}[self.needs]

    def applies_to(self, name: str) -> bool:
        """Whether it applies to the dataset named `name` (a `data.name`; a point file has
        neither modes nor a curve): what a sweep's table and figures decide from rows."""
        return self.applies(make_distribution(name)) if name in DATASETS else not self.needs

    def most(self, dist: ToyDistribution) -> float:
        """The largest value it takes on `dist` (all metrics are >= 0): the mode count for
        a count of modes, 1 for a share, no bound for a distance."""
        if self.scale == "modes":
            return float(len(dist.centers))
        return 1.0 if self.scale == "share" else math.inf

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
                needs="modes", fmt="d", scale="modes", drawn="modal"))
register(Metric("hq_share", "high-quality share", "higher", lambda j: j.modes["hq_share"],
                needs="modes", scale="share", drawn="modal"))
register(Metric("reverse_kl", "reverse KL", "lower", lambda j: j.modes["reverse_kl"],
                needs="modes"))
register(Metric("frechet", "2D Frechet distance", "lower",
                lambda j: frechet_2d(j.samples, j.reference), scale="log", drawn="modeless"))
register(Metric("near_curve", "share near the curve", "higher",
                lambda j: j.curve["near_curve"], needs="curve", scale="share", drawn="modeless"))
register(Metric("curve_covered", "share of the curve covered", "higher",
                lambda j: j.curve["curve_covered"], needs="curve", scale="share",
                drawn="modeless"))


LIVE = "live_"  # with an EMA of G, the live G's metrics too, under these names (`live_modes`)


def evaluate(samples: Tensor, dist: ToyDistribution, reference: Tensor) -> dict:
    """Every registered metric that applies to `dist`, for one set of (N, 2) points."""
    judged = Judged(samples, dist, reference)
    return {m.name: m.compute(judged) for m in METRICS.values() if m.applies(dist)}


def drawn(has_modes: bool) -> list[Metric]:
    """The metrics a figure draws for data with (or without) known modes."""
    return [m for m in METRICS.values() if m.drawn == ("modal" if has_modes else "modeless")]
