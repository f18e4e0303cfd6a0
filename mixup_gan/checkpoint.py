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
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, truncated, corrupt or not of the expected kind."""


def atomic_write(path: str | Path, data: bytes | str | Callable[[BinaryIO], None], *,
                 fsync: bool = True) -> Path:
    """Write an output file atomically: `data` (bytes, text, or a function writing to the open
    binary handle) goes to `<path>.tmp` in the same folder, then replaces `path`. A crash or a
    full disk leaves the old file (or none), never a truncated one. A failure is an `OSError`
    naming `path` (what the command line prints), with the temporary file removed."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("wb") as handle:
            if callable(data):
                data(handle)
            else:
                handle.write(data.encode() if isinstance(data, str) else data)
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # a full disk, a folder gone read-only: the old file stays
        tmp.unlink(missing_ok=True)
        kept = "the previous one is intact" if path.exists() else "none was written before"
        raise OSError(exc.errno, f"cannot write it ({exc.strerror or exc}); {kept}",
                      str(path)) from None
    return path


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Atomically write `state` to `path` (same directory temp file + os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return atomic_write(path, lambda handle: torch.save(state, handle))
    except OSError as exc:
        raise CheckpointError(f"{path}: {exc.strerror}") from None


def _clipped(text: str, width: int = 100) -> str:
    """`text` cut to about `width` characters at a word boundary (mid-word only with no space late
    enough), marked with " ..." when cut."""
    if len(text) <= width:
        return text
    cut = text.rfind(" ", width // 2, width + 1)
    return text[:cut if cut > 0 else width].rstrip() + " ..."


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint with `weights_only=True`; clear `CheckpointError` when unreadable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        reason = _clipped(reason)
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint, or not one "
                              f"({reason})") from None
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
    step = state["step"]
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise CheckpointError(f"{what}: step is {step!r}, not a count of steps (tampered or "
                              "not a mixup-gan checkpoint)")
    for key in ("nets", "optimizers"):
        if not isinstance(state[key], dict):
            raise CheckpointError(f"{what}: {key} is a {type(state[key]).__name__}, not a "
                                  "mapping (tampered or not a mixup-gan checkpoint)")
    return state


def check_state(state: Any, template: Any, what: str, key: str = "") -> None:
    """That a loaded `state` has the structure of `template` (what the trainer or net would
    write now): every key of a mapping, tensors of the same shape and dtype kind, ints
    where ints are, sequences of the same length. A `CheckpointError` names `what` (the
    file) and the first key that differs: a checkpoint of another model size, a member
    count that differs, a tampered file. Mappings may hold more keys (an optimizer's state
    fills as it steps)."""
    where = key or "the top level"

    def fail(problem: str) -> None:
        raise CheckpointError(f"{what}: {where} {problem} (a checkpoint of another model or "
                              "population, or a tampered file)")

    if isinstance(template, dict):
        if not isinstance(state, dict):
            fail(f"is a {type(state).__name__}, expected a mapping")
        for k, inner in template.items():
            if k not in state:
                fail(f"lacks {k!r}")
            check_state(state[k], inner, what, f"{key}.{k}" if key else str(k))
    elif isinstance(template, torch.Tensor):
        if template.dim() == 0 and isinstance(state, (int, float)) and not isinstance(state,
                                                                                    bool):
            return  # a scalar held as a number or as a tensor (an lr under CUDA graphs)
        if not isinstance(state, torch.Tensor):
            fail(f"is a {type(state).__name__}, expected a tensor")
        if tuple(state.shape) != tuple(template.shape):
            fail(f"has shape {tuple(state.shape)}, expected {tuple(template.shape)}")
        if state.dtype.is_floating_point != template.dtype.is_floating_point:
            fail(f"has dtype {state.dtype}, expected {template.dtype}")
    elif isinstance(template, (list, tuple)):
        if not isinstance(state, (list, tuple)):
            fail(f"is a {type(state).__name__}, expected a list")
        if len(state) != len(template):
            fail(f"has {len(state)} entries, expected {len(template)}")
        for i, (s, t) in enumerate(zip(state, template, strict=True)):
            check_state(s, t, what, f"{key}[{i}]")
    elif isinstance(template, bool):
        if not isinstance(state, bool):
            fail(f"is {state!r}, expected true or false")
    elif isinstance(template, int):
        if not isinstance(state, int) or isinstance(state, bool):
            fail(f"is {state!r}, expected an integer")
    elif isinstance(template, float) and (not isinstance(state, (int, float, torch.Tensor))
                                          or isinstance(state, bool)):
        fail(f"is {state!r}, expected a number")
