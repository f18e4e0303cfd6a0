"""The two classic mistakes with a mixup discriminator, caught where they happen.

1. D's outputs are probabilities (a trailing `nn.Sigmoid`, as in PyTorch's DCGAN example):
   the loss takes raw outputs (logits), so a D squashed to [0, 1] can never say "fake".
   A trailing Sigmoid *and* every output of the first batch in [0, 1] is certainly wrong: an
   error. Outputs all in [0, 1] without a Sigmoid found: a warning.
2. Batch-statistics normalisation (BatchNorm*, SyncBatchNorm) in training mode: D's output on
   a sample depends on the rest of its batch, which undoes the per-sample soft targets of
   mixup (D wins: D(G(z)) goes to 1). A warning.

Each D is looked at once (the first call that sees it), so the output check costs one host
sync per D, not per step; nothing is checked while `torch.compile` traces.
"""

from __future__ import annotations

import os
import sys
import warnings
import weakref
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

OPT_OUT = "pass check_discriminator=False if you know better"
MIN_OUTPUTS = 16  # fewer outputs all in [0, 1] are too likely by chance to warn about
_INTERNAL = (os.path.dirname(__file__), os.path.dirname(torch.__file__))
# One registry per check: (weakly held objects, ids of objects that cannot be weakly held).
_Registry = tuple[weakref.WeakSet, set[int]]
_OUTPUTS_SEEN: _Registry = (weakref.WeakSet(), set())
_BATCH_STATS_DONE: _Registry = (weakref.WeakSet(), set())


class DiscriminatorWarning(UserWarning):
    """A discriminator that mixup is likely to train into failure."""


def first_look(discriminator: Callable, registry: _Registry = _OUTPUTS_SEEN) -> bool:
    """True the first time `discriminator` is seen by `registry` (a bound method counts as
    its object)."""
    owner = getattr(discriminator, "__self__", discriminator)
    refs, ids = registry
    try:
        if owner in refs:
            return False
        refs.add(owner)
    except TypeError:  # not weak-referenceable: remembered by id
        if id(owner) in ids:
            return False
        ids.add(id(owner))
    return True


def _done(discriminator: Callable, registry: _Registry) -> bool:
    owner = getattr(discriminator, "__self__", discriminator)
    try:
        return owner in registry[0]
    except TypeError:
        return id(owner) in registry[1]


def _name(discriminator: Callable) -> str:
    return type(getattr(discriminator, "__self__", discriminator)).__name__


def batch_statistics_layers(discriminator: Callable) -> list[str]:
    """'path (BatchNorm2d)' for each batch-statistics normalisation layer in training mode."""
    if not isinstance(discriminator, nn.Module):
        return []
    return [f"{path or '<root>'} ({type(m).__name__})"
            for path, m in discriminator.named_modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]


def _warn(message: str) -> None:
    """A `DiscriminatorWarning` pointing at the first caller outside this package and torch."""
    level, frame = 2, sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_INTERNAL):
        level, frame = level + 1, frame.f_back
    warnings.warn(message, DiscriminatorWarning, stacklevel=level)


def warn_batch_statistics(discriminator: Callable, fix: str, *, once: bool = False) -> None:
    """Warn when D normalises with batch statistics in training mode; `fix` says what to do.

    `once`: at most once per D, and a D without such layers in training mode now (a first,
    validation call in eval mode) is looked at again on later calls; a D without any
    batch-norm layer is looked at once.
    """
    if once and _done(discriminator, _BATCH_STATS_DONE):
        return
    layers = batch_statistics_layers(discriminator)
    has_batch_norm = isinstance(discriminator, nn.Module) and any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) for m in discriminator.modules())
    if once and (layers or not has_batch_norm):
        first_look(discriminator, _BATCH_STATS_DONE)
    if layers:
        _warn(
            f"{_name(discriminator)} normalises with batch statistics in training mode "
            f"({', '.join(layers[:3])}{', ...' if len(layers) > 3 else ''}): with mixup D's "
            "output on a sample depends on the rest of its batch, which undoes the per-sample "
            f"soft targets (D wins, D(G(z)) -> 1). {fix}")


def trailing_sigmoid(discriminator: Callable) -> str | None:
    """The path of D's last registered layer when it is an `nn.Sigmoid`."""
    if not isinstance(discriminator, nn.Module):
        return None
    leaves = [(p, m) for p, m in discriminator.named_modules() if not any(m.children())]
    if leaves and isinstance(leaves[-1][1], nn.Sigmoid):
        return leaves[-1][0] or "<root>"
    return None


def check_outputs(discriminator: Callable, outputs: Sequence[Tensor],
                  sigmoid: str | None) -> None:
    """Refuse (trailing Sigmoid) or warn about (at least `MIN_OUTPUTS`) outputs that all lie
    in [0, 1]."""
    count = sum(o.numel() for o in outputs)
    if sigmoid is None and count < MIN_OUTPUTS:
        return
    if not all(bool(((o >= 0) & (o <= 1)).all()) for o in outputs):
        return
    name = _name(discriminator)
    if sigmoid is not None:
        raise ValueError(
            f"{name} ends in nn.Sigmoid ({sigmoid}) and all its outputs are in [0, 1]: the "
            "loss takes raw outputs (logits), so this D can never say 'fake'. Remove the "
            f"Sigmoid (BCE applies one inside the loss; hinge and the others want raw "
            f"scores), or {OPT_OUT}")
    _warn(
        f"every output of {name} on this batch is in [0, 1]: the loss takes raw outputs "
        "(logits), not probabilities. If D ends in a sigmoid, remove it (BCE applies it "
        f"inside the loss); else {OPT_OUT}")


def is_compiling() -> bool:
    return torch.compiler.is_compiling()
