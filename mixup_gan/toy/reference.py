"""Fixed reference point sets in `toy_data/`, so evaluation numbers compare across versions."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from .data import grid, ring, swissroll, write_points

REFERENCE_POINTS = 2500
# file name -> (distribution, seed)
REFERENCE_SETS = {
    "ring_paper.csv": (lambda: ring("paper"), 1),
    "grid_paper.csv": (lambda: grid("paper"), 2),
    "ring_wgan-gp.csv": (lambda: ring("wgan-gp"), 3),
    "grid_wgan-gp.csv": (lambda: grid("wgan-gp"), 4),
    "swissroll.csv": (swissroll, 5),
}


def write_reference_sets(out: str | Path) -> dict[str, str]:
    """Write every reference set into `out`; return {path: sha256}."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    digests = {}
    for filename, (make, seed) in REFERENCE_SETS.items():
        points = make().sample(REFERENCE_POINTS, torch.Generator().manual_seed(seed))
        path = out / filename
        write_points(points, path)
        digests[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests
