"""The Frechet distance between Gaussians fitted to two feature sets (FID's formula), computed
by torch-fidelity's own functions. Small on purpose: the toy metrics use it on 2D points
without loading the rest of the FID machinery (images, Inception, dataset registration)."""

from __future__ import annotations

import torch
from torch_fidelity.metric_fid import (
    KEY_METRIC_FID,
    fid_features_to_statistics,
    fid_statistics_to_metric,
)


class FrechetError(ValueError):
    """Features that cannot give FID statistics."""


def statistics(features: torch.Tensor) -> dict:
    """FID statistics {mu, sigma} of (N, D) features (torch-fidelity's estimator)."""
    if features.dim() != 2 or len(features) < 2:
        raise FrechetError(f"FID statistics need at least 2 samples of (N, D) features, "
                           f"got {tuple(features.shape)}")
    return fid_features_to_statistics(features.detach().cpu())


def frechet_distance(stats_1: dict, stats_2: dict) -> float:
    """Frechet distance between two Gaussians given as {mu, sigma} (torch-fidelity's).

    A distance is >= 0: the matrix square root's rounding can make a set's distance to
    itself a tiny negative number (-5e-4 seen), which is reported as 0.
    """
    value = float(fid_statistics_to_metric(stats_1, stats_2, verbose=False)[KEY_METRIC_FID])
    return max(value, 0.0)
