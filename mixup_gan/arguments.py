"""Checked arguments of the Python API: each bad value is one clear ValueError (a value out
of range) or TypeError (a value of the wrong kind) that names the argument and the value.

The alpha rule lives here once: `check_alpha` (the API) and `mixup_options.alpha_problem`
(the config schemas) both ask `alpha_error`.
"""

from __future__ import annotations

import functools
import math
import numbers
import operator
import warnings

import torch
from torch import Tensor

DISTRIBUTIONS: tuple[str, ...] = ("beta", "uniform")
# Beta(alpha, alpha) is sampled in float32 (rng.beta_from_uniforms): accurate from 1e-37 to
# 1e7 (mean and variance checked); past 1e6 lam is 0.5 within 4e-4 anyway, and a positive
# alpha under 1e-30 puts lam at 0 or 1 to float32 precision.
ALPHA_MIN, ALPHA_MAX = 1e-30, 1e6


def show(value) -> str:
    """A short description of a value for a message (no tensor dumps)."""
    if isinstance(value, Tensor) or hasattr(value, "shape") and hasattr(value, "dtype"):
        if tuple(value.shape) == () and hasattr(value, "item"):
            return f"{value.item()!r} (a 0-d {type(value).__name__} of dtype {value.dtype})"
        return f"a {type(value).__name__} of shape {tuple(value.shape)} and dtype {value.dtype}"
    text = repr(value)
    return f"{text[:60]}... ({type(value).__name__})" if len(text) > 60 else \
        f"{text} ({type(value).__name__})"


def _unwrap(value):
    """A 0-d tensor or numpy scalar/array as the Python number it holds; others unchanged."""
    if hasattr(value, "shape") and hasattr(value, "item") and tuple(value.shape) == ():
        return value.item()
    return value


def real_number(name: str, value) -> float:
    """A real number (int, float, numpy scalar, 0-d tensor) as a float; bools, strings,
    complex numbers and tensors of more than one element are a TypeError."""
    number = _unwrap(value)
    if isinstance(number, bool) or not isinstance(number, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {show(value)}")
    try:
        return float(number)
    except OverflowError:  # an int past the float range
        return math.inf if number > 0 else -math.inf


def unit_interval(name: str, value, *, top_open: bool = False) -> float:
    """A real number in [0, 1] (or [0, 1) with `top_open`), NaN refused."""
    number = real_number(name, value)
    if not (0.0 <= number < 1.0 if top_open else 0.0 <= number <= 1.0):
        raise ValueError(f"{name} must be in [0, {'1)' if top_open else '1]'}, got {value!r}")
    return number


def flag(name: str, value) -> bool:
    """A bool (a numpy bool or 0-d bool tensor too); 0, 1 and strings are a TypeError."""
    value = _unwrap(value)
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {show(value)}")
    return value


def count(name: str, value, *, minimum: int = 0) -> int:
    """An integer >= `minimum` (a numpy integer or 0-d integer tensor too)."""
    number = _unwrap(value)
    if isinstance(number, bool):
        raise TypeError(f"{name} must be an integer, got {show(value)}")
    try:
        number = operator.index(number)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {show(value)}") from None
    if number < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {number}")
    return number


def choice(name: str, value, choices: tuple[str, ...]) -> str:
    """One of `choices` (strings)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_rng(rng) -> torch.Generator | None:
    """`rng`: a torch.Generator, or None for torch's global one."""
    if rng is not None and not isinstance(rng, torch.Generator):
        raise TypeError(f"rng must be a torch.Generator or None, got {show(rng)} "
                        "(for a seed, pass torch.Generator().manual_seed(seed))")
    return rng


def generator_alias(fn):
    """`generator=` is the old name of `rng=` (a torch.Generator): still accepted for one
    release, with a DeprecationWarning."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if "generator" in kwargs:
            if "rng" in kwargs:
                raise TypeError(f"{fn.__qualname__}: pass rng= only (generator= is its old name)")
            warnings.warn(f"{fn.__qualname__}(generator=...) is deprecated: pass rng=...",
                          DeprecationWarning, stacklevel=2)
            kwargs["rng"] = kwargs.pop("generator")
        return fn(*args, **kwargs)

    return wrapper


def check_batch(name: str, x: Tensor, *, check_finite: bool = True) -> None:
    """Clear errors for the bad inputs every mixup entry point refuses."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.dim() == 0 or x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {tuple(x.shape)})")
    if flag("check_finite", check_finite) and not bool(torch.isfinite(x).all()):
        raise ValueError(
            f"{name} contains NaN or Inf values (pass check_finite=False to skip this check)"
        )


def alpha_error(alpha: float, distribution: str) -> str | None:
    """What is wrong with a real `alpha` for `distribution`, as "<alpha> must ...", or None
    when it can be sampled: 0 (no mixing), or in [ALPHA_MIN, ALPHA_MAX] for Beta(alpha,
    alpha) and in [ALPHA_MIN, 1] for Uniform(0, alpha), which past 1 would extrapolate."""
    if math.isnan(alpha) or alpha < 0:
        return f"{alpha!r} must be >= 0"
    if math.isinf(alpha):
        return f"{alpha!r} must be finite"
    if distribution == "uniform" and alpha > 1:
        return f"{alpha!r} must be <= 1 with distribution 'uniform' (Uniform(0, alpha) " \
               "past 1 extrapolates)"
    if alpha > ALPHA_MAX:
        return f"{alpha!r} must be <= {ALPHA_MAX:.0e} (Beta(alpha, alpha) is 0.5 within 4e-4 " \
               "there: for a fixed lam, pass lam)"
    if 0 < alpha < ALPHA_MIN:
        return f"{alpha!r} must be 0 or >= {ALPHA_MIN:.0e} (lam is 0 or 1 below it)"
    return None


def check_alpha(alpha, distribution: str = "beta") -> float:
    """Validate a mixup `alpha` for `distribution` and return it as a float."""
    choice("distribution", distribution, DISTRIBUTIONS)
    value = real_number("alpha", alpha)
    problem = alpha_error(value, distribution)
    if problem:
        raise ValueError(f"alpha {problem}")
    return value


def check_probabilities(y: Tensor) -> None:
    """Probability labels (N, C): finite, >= 0, each row summing to 1 (within 1e-3)."""
    tol = max(1e-3, torch.finfo(y.dtype).eps * y.shape[1])
    sums = y.double().sum(1)
    bad_rows = ((y < 0).any(1) | ~torch.isfinite(y).all(1) | ((sums - 1).abs() > tol))
    if bool(bad_rows.any()):
        row = int(bad_rows.nonzero()[0, 0])
        raise ValueError(
            f"probability labels y must be finite, >= 0 and sum to 1 per row: row {row} "
            f"holds min {float(y[row].min()):g} and sums to {float(sums[row]):g}"
        )


def check_lam(lam, n: int, device, dtype) -> Tensor:
    """A given lam (a number, a 0-d tensor or shape (n,), each in [0, 1]) as shape (n,)."""
    if not isinstance(lam, Tensor) or lam.dim() == 0:
        return torch.full((n,), unit_interval("lam", lam), device=device, dtype=dtype)
    if not lam.is_floating_point() or lam.shape != (n,):
        raise ValueError(f"lam must be a number in [0, 1] or a float tensor of shape ({n},) "
                         f"for a batch of {n}, got {show(lam)}")
    outside = ~((lam >= 0) & (lam <= 1)).reshape(-1)  # NaN is outside
    if bool(outside.any()):
        raise ValueError(f"lam must be in [0, 1], got {float(lam.reshape(-1)[outside][0]):g}")
    return lam.to(device=device, dtype=dtype).expand(n)


def check_perm(perm, n: int, device) -> Tensor:
    """A given pairing: integer indices into the batch, shape (n,)."""
    if not isinstance(perm, Tensor) or perm.is_floating_point() or perm.dtype == torch.bool \
            or perm.is_complex() or perm.shape != (n,):
        raise ValueError(f"perm must be an integer tensor of shape ({n},) for a batch of {n}, "
                         f"got {show(perm)}")
    if n and (int(perm.min()) < 0 or int(perm.max()) >= n):
        raise ValueError(f"perm must hold indices in [0, {n}), got {int(perm.min())} to "
                         f"{int(perm.max())}")
    return perm.to(device)
