"""Toy GAN metrics (VEEGAN / PacGAN definitions) and a 2D Frechet distance.

A sample is *high quality* when it lies within `threshold` (3) standard deviations of its
nearest mode; a mode is *covered* when it is the nearest mode of at least one high-quality
sample. *Reverse KL* is KL(p || uniform) for p the histogram of high-quality samples over
modes: 0 when every mode gets an equal share, log(K) when all sit on one mode.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..frechet import frechet_distance, statistics


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
