"""The files `mixup-gan fid` reads and writes, checked at the door.

- `read_rgb8`: one image file as 8-bit RGB. 16-bit pixels (modes I;16, I;16B, I;16L, I;16N)
  are scaled to 0..255 (v / 257, rounded); 32-bit integer (I) and float (F) pixels have no
  fixed range and are refused; a truncated or corrupt file is a FIDError naming it.
- `check_stats_file`: a `--save-stats` file's content (keys, types, shapes, finite values).
- `check_outputs`: outputs never replace an input or each other (they are written with
  `checkpoint.atomic_write` / `save_checkpoint`: a temporary file renamed into place).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .inception import FIDError

SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")
NO_RANGE = {"I": "32-bit integer", "F": "32-bit float"}


def read_rgb8(path: str | Path) -> Image.Image:
    """The image at `path`, fully decoded, as an 8-bit RGB PIL image (see the module doc)."""
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in NO_RANGE:
                raise FIDError(f"{path}: mode {image.mode} ({NO_RANGE[image.mode]}) pixels "
                               "have no fixed range; save the image as 8- or 16-bit")
            if image.mode in SIXTEEN_BIT:
                wide = np.asarray(image).astype(np.uint32)
                return Image.fromarray(((wide * 255 + 32767) // 65535).astype(np.uint8),
                                       "L").convert("RGB")
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise FIDError(f"{path}: not a readable image ({exc})") from None


def _finite_float(value, path: Path, name: str, dims: int) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not torch.is_tensor(value) or not value.is_floating_point():
        kind = f"{value.dtype} tensor" if torch.is_tensor(value) else type(value).__name__
        raise FIDError(f"{path}: statistics '{name}' is a {kind}, expected a float tensor")
    if value.dim() != dims or 0 in value.shape:
        raise FIDError(f"{path}: statistics '{name}' has shape {tuple(value.shape)}, expected "
                       f"{'(D,)' if dims == 1 else '(D, D)'}")
    if not torch.isfinite(value).all():
        raise FIDError(f"{path}: statistics '{name}' holds NaN or infinite values")
    return value


def check_stats_file(path: Path, state: dict, key: str) -> dict:
    """The {mu, sigma} of a statistics file, or a FIDError naming the file and the fault:
    mu (D,), sigma (D, D) symmetric, both finite floats; extractor_id and layer strings."""
    stats = state[key]
    if not isinstance(stats, dict):
        raise FIDError(f"{path}: '{key}' is a {type(stats).__name__}, expected "
                       "{mu, sigma}")
    missing = [k for k in ("mu", "sigma") if k not in stats]
    if missing:
        raise FIDError(f"{path}: statistics lack {', '.join(missing)}")
    mu = _finite_float(stats["mu"], path, "mu", 1)
    sigma = _finite_float(stats["sigma"], path, "sigma", 2)
    if sigma.shape != (len(mu), len(mu)):
        raise FIDError(f"{path}: statistics 'mu' has {len(mu)} features but 'sigma' is "
                       f"{tuple(sigma.shape)}")
    scale = sigma.abs().max().item()
    if (sigma - sigma.T).abs().max().item() > 1e-6 * max(scale, 1e-30):
        raise FIDError(f"{path}: statistics 'sigma' is not symmetric (not a covariance)")
    for name in ("extractor_id", "layer"):
        if not isinstance(state.get(name), str):
            raise FIDError(f"{path}: '{name}' is missing or not a string; write the file "
                           "again with --save-stats")
    return {"mu": mu, "sigma": sigma}


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_outputs(outputs: dict[str, Path | None], inputs: list[str | None]) -> None:
    """No output may be one of the input files, the folder an input is read from (or a file
    inside it), or another output; paths are compared resolved (links followed)."""
    named = [(flag, Path(path)) for flag, path in outputs.items() if path is not None]
    for flag, out in named:
        for spec in inputs:
            if spec is None or not Path(spec).exists():
                continue  # a registered dataset name
            source = Path(spec)
            inside = source.is_dir() and out.resolve().is_relative_to(source.resolve())
            if inside or _same_file(out, source):
                raise FIDError(f"{flag} {out}: is the input {spec}{' (or in it)' * inside}; "
                               "choose another file")
    for i, (flag, out) in enumerate(named):
        for other_flag, other in named[i + 1:]:
            if _same_file(out, other):
                raise FIDError(f"{flag} {out}: is also {other_flag}; give them different files")
