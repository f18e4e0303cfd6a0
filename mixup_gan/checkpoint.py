"""Atomic checkpoints: write to a temporary file, fsync, then rename over the old one.

A crash mid-write leaves the previous checkpoint intact. Loading uses `weights_only=True`,
so a checkpoint holds only tensors and plain Python containers.

Every run's checkpoint has one layout (`training_state` builds it, every trainer uses it):
    step        generator iterations (GAN runs) or epochs (classification) done
    nets        {name: state dict}: generator, discriminator, ema / model
    optimizers  {name: state dict}: generator, discriminator / model, lr_schedule
    rng         the random streams' state: {seeds, draws} (GAN) / a torch.Generator state
    progress    what the loop carries across steps: loss sums, divergence, best error...
    config      the run's resolved config (added by the run folder)
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, truncated, corrupt or not of the expected kind."""


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Atomically write `state` to `path` (same directory temp file + os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # a full disk, a folder gone read-only: the old file stays
        tmp.unlink(missing_ok=True)
        kept = "the previous one is intact" if path.exists() else "none was written before"
        raise CheckpointError(f"cannot write {path} ({exc.strerror or exc}); {kept}") from None
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint with `weights_only=True`; clear `CheckpointError` when unreadable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint, or not one "
                              f"({reason[:100]})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a mixup-gan checkpoint (top level is not a dict)")
    return state


def training_state(step: int, nets: dict, optimizers: dict, rng, progress: dict) -> dict:
    """A trainer's checkpoint state in the one layout above."""
    return {"step": int(step), "nets": nets, "optimizers": optimizers, "rng": rng,
            "progress": progress}


def check_layout(state: dict, what: str = "this checkpoint") -> dict:
    """`state` if it has the one layout; a CheckpointError for an older or foreign file."""
    if not {"step", "nets", "optimizers", "rng", "progress"} <= set(state):
        raise CheckpointError(f"{what} was not written by this version of mixup-gan (or is "
                              "no training checkpoint) and cannot be resumed exactly; pass "
                              "--overwrite to start the run again")
    return state
