"""Mixup primitives shared by the GAN and classification code.

`sample_lam` draws mixing coefficients, `blend` forms convex combinations, and
`mixup_batch` / `Mixup` implement standard classification mixup (Zhang et al., 2017).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import Tensor

Distribution = Literal["beta", "uniform"]
DISTRIBUTIONS: tuple[str, ...] = ("beta", "uniform")


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


def check_alpha(alpha: float, distribution: str = "beta") -> float:
    """Validate a mixup `alpha` for `distribution` and return it as a float."""
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        raise ValueError(f"alpha must be a number >= 0, got {alpha!r}") from None
    if math.isnan(value) or value < 0 or math.isinf(value):
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
    if distribution == "uniform" and value > 1:
        # Uniform(0, alpha) with alpha > 1 would extrapolate instead of interpolating.
        raise ValueError(f"alpha must be in [0, 1] for the uniform distribution, got {alpha!r}")
    return value


@generator_alias
def sample_lam(
    alpha: float,
    n: int,
    *,
    distribution: Distribution = "beta",
    per_sample: bool = True,
    rng: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Draw mixing coefficients, shape (n,).

    `lam ~ Beta(alpha, alpha)` (the paper) or `Uniform(0, alpha)` (the authors' released toy
    code); one value per sample, or one shared by the batch (`per_sample=False`, still shape
    (n,)). `alpha = 0` gives lam = 1 (no mixing). Sampling happens on the rng's device
    (so a CPU rng gives the same values whatever `device` is), in float32 at least, then
    moves to `device` / `dtype`.
    """
    alpha = check_alpha(alpha, distribution)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    device = torch.device(device) if device is not None else torch.device("cpu")
    if alpha == 0:
        return torch.ones(n, device=device, dtype=dtype)
    draw_device = rng.device if rng is not None else device
    count = n if per_sample else 1
    if distribution == "beta":
        # Beta(a, a) is the first coordinate of Dirichlet(a, a); unlike torch.distributions,
        # this private op accepts a generator, and it guards the small-alpha underflow case.
        concentration = torch.full((count, 2), alpha, device=draw_device, dtype=torch.float32)
        lam = torch._sample_dirichlet(concentration, generator=rng)[:, 0]
    else:
        lam = torch.rand(count, device=draw_device, generator=rng) * alpha
    lam = lam.to(device=device, dtype=dtype)
    return lam if per_sample else lam.expand(n).clone()


def blend(a: Tensor, b: Tensor, lam: Tensor | float) -> Tensor:
    """Return `lam * a + (1 - lam) * b`, broadcasting one `lam` per sample.

    `a`, `b`: (N, ...); `lam`: a float, a 0-d tensor or shape (N,). Exact at the ends
    (lam = 1 gives `a`, lam = 0 gives `b`) because `torch.lerp` switches its formula at 0.5.
    """
    if not isinstance(lam, Tensor):
        lam = torch.tensor(lam, device=a.device, dtype=a.dtype)
    if lam.dim() == 1:
        if lam.shape[0] != a.shape[0]:
            raise ValueError(f"lam has {lam.shape[0]} values for a batch of {a.shape[0]}")
        lam = lam.reshape(-1, *([1] * (a.dim() - 1)))
    elif lam.dim() != 0:
        raise ValueError(f"lam must be a scalar or shape (N,), got shape {tuple(lam.shape)}")
    return torch.lerp(b, a, lam.to(a.dtype))


def check_batch(name: str, x: Tensor, *, check_finite: bool = True) -> None:
    """Clear errors for the bad inputs every mixup entry point refuses."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.dim() == 0 or x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {tuple(x.shape)})")
    if check_finite and not bool(torch.isfinite(x).all()):
        raise ValueError(
            f"{name} contains NaN or Inf values (pass check_finite=False to skip this check)"
        )


@generator_alias
def random_permutation(n: int, *, rng: torch.Generator | None, device) -> Tensor:
    """A random permutation of range(n), drawn on the rng's device."""
    draw_device = rng.device if rng is not None else device
    return torch.randperm(n, generator=rng, device=draw_device).to(device)


# --- classification mixup ---------------------------------------------------------------


def soft_targets(
    y: Tensor, num_classes: int | None = None, *, label_smoothing: float = 0.0, dtype=None
) -> Tensor:
    """Turn integer labels (N,) or probabilities (N, C) into (optionally smoothed) probabilities.

    Smoothing follows timm: `y * (1 - s) + s / C`, so each row still sums to 1.
    """
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
    if y.dim() == 1 and not y.is_floating_point():
        if num_classes is None:
            raise ValueError("num_classes is required with integer class labels")
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
            bad = y[(y < 0) | (y >= num_classes)][0].item()
            raise ValueError(f"label {bad} is out of range for num_classes={num_classes}")
        probs = torch.nn.functional.one_hot(y, num_classes).to(dtype or torch.float32)
    elif y.dim() == 2 and y.is_floating_point():
        if num_classes is not None and y.shape[1] != num_classes:
            raise ValueError(
                f"probability labels have {y.shape[1]} classes but num_classes={num_classes}"
            )
        probs = y.to(dtype or y.dtype)
    else:
        raise ValueError(
            "labels must be integer class indices (N,) or float probabilities (N, C), "
            f"got dtype {y.dtype} and shape {tuple(y.shape)}"
        )
    if label_smoothing:
        probs = probs * (1.0 - label_smoothing) + label_smoothing / probs.shape[1]
    return probs


MODES: tuple[str, ...] = ("mixup", "cutmix")


@generator_alias
def paste_box(x: Tensor, source: Tensor, lam: float, rng: torch.Generator | None):
    """CutMix: paste a random box of `source` into `x`; returns (mixed, lam of what is left).

    The box covers about `1 - lam` of each image (side `sqrt(1 - lam)`), centred uniformly and
    clipped at the border, so the returned lam (the share of `x` kept) is exact.
    """
    height, width = x.shape[-2:]
    ratio = math.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    draw_device = rng.device if rng is not None else x.device
    cy = int(torch.randint(height, (1,), generator=rng, device=draw_device))
    cx = int(torch.randint(width, (1,), generator=rng, device=draw_device))
    y1, y2 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
    x1, x2 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
    mixed = x.clone()
    mixed[..., y1:y2, x1:x2] = source[..., y1:y2, x1:x2]
    return mixed, 1.0 - (y2 - y1) * (x2 - x1) / (height * width)


@generator_alias
def mix_inputs(
    x: Tensor,
    *,
    alpha: float,
    mode: str = "mixup",
    distribution: Distribution = "beta",
    per_sample: bool = False,
    lam: Tensor | float | None = None,
    perm: Tensor | None = None,
    rng: torch.Generator | None = None,
    check_finite: bool = True,
) -> tuple[Tensor, Tensor, Tensor]:
    """Mix a batch with a permutation of itself: returns `(x_mixed, perm, lam)`.

    mixup: `x_mixed = lam * x + (1 - lam) * x[perm]`. cutmix: a box of `x[perm]` is pasted into
    every image (N, C, H, W), one box per batch, and lam becomes the share of `x` left.
    `lam` has shape (N,). Pass `lam` and/or `perm` to fix them (tests, reproductions);
    otherwise one lam per batch (the paper) or per sample (mixup only).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    check_batch("x", x, check_finite=check_finite)
    n = x.shape[0]
    if mode == "cutmix" and (per_sample or x.dim() < 3):
        raise ValueError("cutmix needs images (N, ..., H, W) and one lam per batch "
                         "(per_sample=False)")
    if lam is None:
        lam = sample_lam(
            alpha, n, distribution=distribution, per_sample=per_sample,
            rng=rng, device=x.device, dtype=x.dtype,
        )
    else:
        lam = torch.as_tensor(lam, device=x.device, dtype=x.dtype).expand(n)
    if perm is None:
        perm = random_permutation(n, rng=rng, device=x.device)
    if mode == "cutmix":
        mixed, kept = paste_box(x, x[perm], float(lam[0]), rng)
        return mixed, perm, torch.full_like(lam, kept)
    return blend(x, x[perm], lam), perm, lam


@generator_alias
def mixup_batch(
    x: Tensor,
    y: Tensor,
    *,
    alpha: float,
    num_classes: int | None = None,
    mode: str = "mixup",
    distribution: Distribution = "beta",
    per_sample: bool = False,
    label_smoothing: float = 0.0,
    lam: Tensor | float | None = None,
    perm: Tensor | None = None,
    rng: torch.Generator | None = None,
    check_finite: bool = True,
) -> tuple[Tensor, Tensor]:
    """Classification mixup: returns `(x_mixed, y_soft)`.

    x: (N, ...) floats; y: integer labels (N,) (then `num_classes` is required) or
    probabilities (N, C). `y_soft = lam * t + (1 - lam) * t[perm]` with `t` the (smoothed)
    one-hot targets, shape (N, C), usable directly as `torch.nn.CrossEntropyLoss` targets.
    Smoothing is applied once, here: do not also pass `label_smoothing` to the criterion.
    `mode="cutmix"` pastes a box instead of blending (see `mix_inputs`); targets use the
    exact share of each image kept.
    """
    targets = soft_targets(y, num_classes, label_smoothing=label_smoothing, dtype=x.dtype)
    if targets.shape[0] != x.shape[0]:
        raise ValueError(f"x has {x.shape[0]} samples but y has {targets.shape[0]}")
    x_mixed, perm, lam = mix_inputs(
        x, alpha=alpha, mode=mode, distribution=distribution, per_sample=per_sample, lam=lam,
        perm=perm, rng=rng, check_finite=check_finite,
    )
    return x_mixed, blend(targets, targets[perm], lam)


def mixup_criterion(
    criterion: Callable[[Tensor, Tensor], Tensor],
    logits: Tensor,
    y_a: Tensor,
    y_b: Tensor,
    lam: Tensor | float,
) -> Tensor:
    """The `(y_a, y_b, lam)` form: `lam * crit(logits, y_a) + (1 - lam) * crit(logits, y_b)`.

    With one lam per batch any criterion works; with per-sample lam (shape (N,)) the criterion
    must return per-sample losses (`reduction="none"`), which are then averaged.
    """
    loss_a, loss_b = criterion(logits, y_a), criterion(logits, y_b)
    lam = torch.as_tensor(lam, device=logits.device, dtype=loss_a.dtype)
    if lam.dim() == 1 and loss_a.dim() == 0:
        if not bool((lam == lam[0]).all()):
            raise ValueError(
                "per-sample lam needs a criterion with reduction='none' (got a scalar loss)"
            )
        lam = lam[0]
    return torch.lerp(loss_b, loss_a, lam).mean()


class Mixup:
    """Classification mixup as a batch transform and a DataLoader collate function.

    ``mix = Mixup(alpha=1.0, num_classes=10)``; then ``x, y_soft = mix(x, y)`` on a batch, or
    ``DataLoader(ds, batch_size=128, collate_fn=mix.collate)``.
    """

    @generator_alias
    def __init__(
        self,
        alpha: float = 1.0,
        num_classes: int | None = None,
        *,
        mode: str = "mixup",
        distribution: Distribution = "beta",
        per_sample: bool = False,
        label_smoothing: float = 0.0,
        rng: torch.Generator | None = None,
    ) -> None:
        check_alpha(alpha, distribution)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.alpha, self.num_classes, self.mode = alpha, num_classes, mode
        self.distribution, self.per_sample = distribution, per_sample
        self.label_smoothing, self.rng = label_smoothing, rng

    def __call__(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        return mixup_batch(
            x, y, alpha=self.alpha, num_classes=self.num_classes, mode=self.mode,
            distribution=self.distribution, per_sample=self.per_sample,
            label_smoothing=self.label_smoothing, rng=self.rng,
        )

    def collate(self, samples: Sequence) -> tuple[Tensor, Tensor]:
        """Collate `(x, y)` samples with the default collate, then mix the batch."""
        x, y = torch.utils.data.default_collate(samples)
        return self(x, y)

    def __repr__(self) -> str:
        return (
            f"Mixup(alpha={self.alpha}, num_classes={self.num_classes}, mode={self.mode!r}, "
            f"distribution={self.distribution!r}, per_sample={self.per_sample}, "
            f"label_smoothing={self.label_smoothing})"
        )
