"""Atomic checkpoints: write to a temporary file, fsync, then rename over the old one.

A crash mid-write leaves the previous checkpoint intact. Loading uses `weights_only=True`,
so a checkpoint holds only tensors and plain Python containers.
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
