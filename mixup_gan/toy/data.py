"""Toy 2D distributions: 8-Gaussian ring, 25-Gaussian grid, swiss roll, and user point files.

Scales:
- "paper" (the mixup paper, Figure 5): ring of 8 Gaussians on the unit circle and a
  25-Gaussian grid at {-1, -0.5, 0, 0.5, 1}^2, both with std 0.01.
- "wgan-gp" (WGAN-GP toy code): ring radius 2, std 0.02, divided by 1.414; grid at
  {-2..2}^2, std 0.05, divided by 2.828; swiss roll (noise 0.25, columns x and z) / 7.5.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..checkpoint import atomic_write
from ..config import ConfigError

FLOAT32_MAX = float(torch.finfo(torch.float32).max)


class PointFileError(ValueError):
    """A point file that cannot be used; the message names the file and the line."""


@dataclass
class ToyDistribution:
    """A 2D distribution we can sample from, with its mode centres and std where known.

    Mixtures of Gaussians sample a centre uniformly and add isotropic noise; point sets
    (`points`) resample rows uniformly; the swiss roll is generated on the fly.
    """

    name: str
    centers: Tensor | None = None  # (K, 2) mode centres
    std: float | None = None
    points: Tensor | None = None  # (M, 2) for file-backed data
    limit: float = 1.5  # half-width of the square used for pictures
    curve: Tensor | None = None  # (C, 2) the noiseless curve, densely, for data on a curve

    @property
    def has_modes(self) -> bool:
        return self.centers is not None and self.std is not None

    @property
    def has_curve(self) -> bool:
        return self.curve is not None and self.std is not None

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Draw n points, shape (n, 2), float32, on the generator's device (CPU by default)."""
        device = generator.device if generator is not None else torch.device("cpu")
        if self.points is not None:
            idx = torch.randint(len(self.points), (n,), generator=generator, device=device)
            return self.points.to(device)[idx]
        if self.name == "swissroll":
            return _swiss_roll(n, generator, device)
        centers = self.centers.to(device)
        idx = torch.randint(len(centers), (n,), generator=generator, device=device)
        noise = torch.randn(n, 2, generator=generator, device=device)
        return centers[idx] + self.std * noise


SWISS_NOISE, SWISS_SCALE = 0.25, 7.5


def _swiss_roll_curve(u: Tensor) -> Tensor:
    """Points on the noiseless swiss roll for uniforms u (...,) -> (..., 2), unscaled."""
    t = 1.5 * math.pi * (1 + 2 * u)
    return torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=-1)


def _swiss_roll(n: int, generator, device) -> Tensor:
    # scikit-learn's make_swiss_roll(noise=0.25), columns x and z, divided by 7.5.
    curve = _swiss_roll_curve(torch.rand(n, generator=generator, device=device))
    return (curve + SWISS_NOISE * torch.randn(n, 2, generator=generator, device=device)) \
        / SWISS_SCALE


class MemberSampler:
    """Real batches for P population members, each from its own toy distribution.

    `sampler(rng, counter, n)` -> (P, n, 2), drawn with `CounterRNG` counters `counter`
    (component or row index), `counter + 1` (noise) and `counter + 2` (swiss roll position),
    in the same few ops whatever P is. Mixtures and point files are one case (a point file is
    a mixture of its rows with std 0): each distinct table of centres is stored once.
    """

    def __init__(self, dists: Sequence[ToyDistribution], device: torch.device | str) -> None:
        tables: dict[bytes, tuple[int, int]] = {}  # table contents -> (offset, rows)
        rows: list[Tensor] = []
        offsets, counts, stds, swiss = [], [], [], []
        for dist in dists:
            table = dist.points if dist.points is not None else dist.centers
            swiss.append(table is None)
            if table is None:  # the swiss roll
                offsets.append(0)
                counts.append(1)
                stds.append(dist.std)
                continue
            key = table.numpy().tobytes()
            if key not in tables:
                tables[key] = (sum(len(r) for r in rows), len(table))
                rows.append(table.float())
            offsets.append(tables[key][0])
            counts.append(tables[key][1])
            stds.append(dist.std if dist.points is None else 0.0)
        self.device = torch.device(device)
        self.table = torch.cat(rows).to(self.device) if rows else None
        self.offset = torch.tensor(offsets, device=self.device).unsqueeze(1)
        self.count = torch.tensor(counts, device=self.device)
        self.std = torch.tensor(stds, device=self.device).reshape(-1, 1, 1)
        self.swiss = torch.tensor(swiss, device=self.device).reshape(-1, 1, 1)
        self.any_swiss = any(swiss)

    def __call__(self, rng, counter: int, n: int) -> Tensor:
        base = None
        if self.table is not None:
            base = self.table[self.offset + rng.randint(counter, self.count, n)]
        if self.any_swiss:
            curve = _swiss_roll_curve(rng.uniform(counter + 2, n)) / SWISS_SCALE
            base = curve if base is None else torch.where(self.swiss, curve, base)
        return base + self.std * rng.normal(counter + 1, n, 2)


def ring(scale: str = "paper") -> ToyDistribution:
    """8 Gaussians evenly spaced on a circle."""
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    unit = torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    if scale == "paper":
        return ToyDistribution("ring", unit.float(), 0.01, limit=1.5)
    return ToyDistribution("ring", (2 * unit / 1.414).float(), 0.02 / 1.414, limit=2.0)


def grid(scale: str = "paper") -> ToyDistribution:
    """25 Gaussians on a 5 x 5 grid."""
    coords = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0], dtype=torch.float64)
    centers = torch.cartesian_prod(coords, coords)
    if scale == "paper":
        return ToyDistribution("grid", (centers / 2).float(), 0.01, limit=1.5)
    return ToyDistribution("grid", (centers / 2.828).float(), 0.05 / 2.828, limit=1.2)


CURVE_POINTS = 4000  # the noiseless swiss roll at this many evenly spaced positions


def swissroll(scale: str = "wgan-gp") -> ToyDistribution:
    """The swiss roll: no modes, a curve. `curve` holds the noiseless roll at evenly spaced
    positions (spaced as the data is: uniform in the roll's parameter), `std` its noise."""
    u = (torch.arange(CURVE_POINTS, dtype=torch.float64) + 0.5) / CURVE_POINTS
    return ToyDistribution("swissroll", std=SWISS_NOISE / SWISS_SCALE, limit=2.0,
                           curve=(_swiss_roll_curve(u) / SWISS_SCALE).float())


def read_points(path: str | Path) -> Tensor:
    """Read a CSV with a header holding columns `x` and `y`; returns (M, 2) float32.

    Raises `PointFileError` naming the file and line for missing columns, non-numeric or
    non-finite values, and files with fewer than 2 points; and naming the file for one that
    is not UTF-8 text (a byte-order mark is accepted) or not CSV (a giant field, NUL bytes).
    """
    path = Path(path)
    if not path.is_file():
        raise PointFileError(f"{path}: point file not found")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return _parse_points(path, handle)
    except UnicodeDecodeError as exc:
        raise PointFileError(f"{path}: not UTF-8 text (byte {exc.start}: "
                             f"{exc.object[exc.start:exc.start + 1]!r}); save it as UTF-8 CSV"
                             ) from None


def _parse_points(path: Path, handle: io.TextIOBase) -> Tensor:
    """The rows of an open point file; a malformed row (a field past the csv module's size
    limit, a NUL byte) is a `PointFileError` naming its line."""
    reader = csv.reader(handle)
    try:
        return _parse_rows(path, reader)
    except csv.Error as exc:
        raise PointFileError(f"{path}, line {reader.line_num}: not a CSV row ({exc})") from None


def _parse_rows(path: Path, reader) -> Tensor:
    header = next(reader, None)
    if header is None:
        raise PointFileError(f"{path}: the file is empty (expected a header with x,y)")
    names = [h.strip().lower() for h in header]
    missing = [c for c in ("x", "y") if c not in names]
    if missing:
        raise PointFileError(
            f"{path}, line 1: missing column(s) {', '.join(missing)} (header: {header})")
    ix, iy = names.index("x"), names.index("y")
    rows: list[tuple[float, float]] = []
    for row in reader:
        line_no = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        try:
            x, y = float(row[ix]), float(row[iy])
        except (ValueError, IndexError):
            raise PointFileError(f"{path}, line {line_no}: expected numbers in columns x and "
                                 f"y, got {str(row)[:80]}") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise PointFileError(f"{path}, line {line_no}: non-finite value in {row}")
        if max(abs(x), abs(y)) > FLOAT32_MAX:
            raise PointFileError(f"{path}, line {line_no}: {row} does not fit a float32 "
                                 f"(|value| <= {FLOAT32_MAX:.3g})")
        rows.append((x, y))
    if len(rows) < 2:
        raise PointFileError(f"{path}: needs at least 2 points, found {len(rows)}")
    return torch.tensor(rows, dtype=torch.float32)


def write_points(points: Tensor, path: str | Path) -> None:
    """Write (M, 2) points as a CSV with header x,y (full float32 precision), atomically."""
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["x", "y"])
    writer.writerows([f"{x:.9g}", f"{y:.9g}"] for x, y in points.tolist())
    atomic_write(path, text.getvalue())


def point_file(path: str | Path) -> ToyDistribution:
    """Any 2D point set: sampling resamples its rows (no known modes)."""
    points = read_points(path)
    limit = float(points.abs().max()) * 1.1
    return ToyDistribution(Path(path).stem, points=points, limit=limit)


# The toy datasets by `data.name` (the config's choices): a builder taking the scale, or
# "points", a CSV file (`data.path`).
DATASETS = {"ring": ring, "grid": grid, "swissroll": swissroll}
NAMES = (*DATASETS, "points")


def make_distribution(name: str, *, scale: str = "paper", path: str | None = None):
    """Build a toy distribution from config values (`data.name`, `data.scale`, `data.path`)."""
    if name == "points":
        if not path:
            raise ConfigError("data.path is required when data.name is 'points'")
        return point_file(path)
    if name not in DATASETS:
        raise ConfigError(f"data.name: unknown toy dataset {name!r}; choose one of "
                          f"{sorted(DATASETS)}")
    return DATASETS[name](scale)
