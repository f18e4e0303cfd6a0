"""Mixup primitives shared by the GAN and classification code.

`sample_lam` draws mixing coefficients, `blend` forms convex combinations, and
`mixup_batch` / `Mixup` implement standard classification mixup (Zhang et al., 2017).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import Tensor

from .arguments import DISTRIBUTIONS as DISTRIBUTIONS
from .arguments import (
    check_alpha,
    check_batch,
    check_lam,
    check_perm,
    check_probabilities,
    check_rng,
    choice,
    count,
    flag,
    generator_alias,
    show,
    unit_interval,
)
from .rng import BETA_UNIFORMS, beta_from_uniforms, open_uniform

Distribution = Literal["beta", "uniform"]
_CHUNK = 1 << 16  # Beta draws made at once (50 uniforms each)


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
    (so a CPU rng gives the same values whatever `device` is), in float32, then moves to
    `device` / `dtype`. Beta draws use the population engine's sampler
    (`rng.beta_from_uniforms`, in log space: tiny alpha puts lam near 0 and 1, as it should),
    fed with 24-bit uniforms from `rng`.
    """
    alpha = check_alpha(alpha, distribution)
    n, per_sample, rng = count("n", n), flag("per_sample", per_sample), check_rng(rng)
    device = _device(device)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {show(dtype)}")
    if alpha == 0:
        return torch.ones(n, device=device, dtype=dtype)
    draw_device = rng.device if rng is not None else device
    draws = n if per_sample else 1
    if distribution == "beta":
        a = torch.tensor(alpha, device=draw_device, dtype=torch.float32)
        lam = torch.cat([beta_from_uniforms(open_uniform(torch.randint(
            1 << 24, (2, min(_CHUNK, draws - start), BETA_UNIFORMS), generator=rng,
            device=draw_device, dtype=torch.int32)), a) for start in range(0, draws, _CHUNK)])
    else:
        lam = torch.rand(draws, device=draw_device, generator=rng) * alpha
    lam = lam.to(device=device, dtype=dtype)
    return lam if per_sample else lam.expand(n).clone()


def _device(device) -> torch.device:
    """`device` (None = CPU) as a torch.device, a ValueError naming a bad one."""
    if device is None:
        return torch.device("cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be a torch.device or a name like 'cpu' or 'cuda', "
                         f"got {device!r}") from None


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


@generator_alias
def random_permutation(n: int, *, rng: torch.Generator | None, device) -> Tensor:
    """A random permutation of range(n), drawn on the rng's device."""
    draw_device = check_rng(rng).device if rng is not None else device
    return torch.randperm(n, generator=rng, device=draw_device).to(device)


# --- classification mixup ---------------------------------------------------------------


def soft_targets(
    y: Tensor, num_classes: int | None = None, *, label_smoothing: float = 0.0, dtype=None
) -> Tensor:
    """Turn integer labels (N,) or probabilities (N, C) into (optionally smoothed) probabilities.

    Smoothing follows timm: `y * (1 - s) + s / C`, so each row still sums to 1. Probability
    labels must be >= 0 and sum to 1 per row (within 1e-3, more for half precision).
    """
    label_smoothing = unit_interval("label_smoothing", label_smoothing, top_open=True)
    num_classes = None if num_classes is None else count("num_classes", num_classes, minimum=1)
    if not isinstance(y, Tensor):
        raise TypeError(f"labels y must be a torch.Tensor, got {show(y)}")
    if y.dim() == 1 and not y.is_floating_point() and not y.is_complex() \
            and y.dtype != torch.bool:
        if num_classes is None:
            raise ValueError("num_classes is required with integer class labels")
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
            bad = y[(y < 0) | (y >= num_classes)][0].item()
            raise ValueError(f"label {bad} is out of range for num_classes={num_classes}")
        probs = torch.nn.functional.one_hot(y.long(), num_classes).to(dtype or torch.float32)
    elif y.dim() == 2 and y.is_floating_point() and y.shape[1] > 0:
        if num_classes is not None and y.shape[1] != num_classes:
            raise ValueError(
                f"probability labels have {y.shape[1]} classes but num_classes={num_classes}"
            )
        check_probabilities(y)
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
    ratio = math.sqrt(1.0 - unit_interval("lam", lam))
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    draw_device = check_rng(rng).device if rng is not None else x.device
    cy = int(torch.randint(height, (1,), generator=rng, device=draw_device))
    cx = int(torch.randint(width, (1,), generator=rng, device=draw_device))
    y1, y2 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
    x1, x2 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
    mixed = x.clone()
    mixed[..., y1:y2, x1:x2] = source[..., y1:y2, x1:x2]
    return mixed, 1.0 - (y2 - y1) * (x2 - x1) / (height * width)


def check_mode(mode, per_sample) -> tuple[str, bool]:
    """`mode` and `per_sample`, checked together (cutmix pastes one box per batch)."""
    mode, per_sample = choice("mode", mode, MODES), flag("per_sample", per_sample)
    if mode == "cutmix" and per_sample:
        raise ValueError("per_sample=True does not go with mode='cutmix' (one box and one lam "
                         "per batch)")
    return mode, per_sample


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
    `lam` has shape (N,). Pass `lam` (in [0, 1]) and/or `perm` (indices into the batch) to
    fix them (tests, reproductions); otherwise one lam per batch (the paper) or per sample
    (mixup only).
    """
    check_alpha(alpha, distribution)
    mode, per_sample = check_mode(mode, per_sample)
    check_rng(rng)
    check_batch("x", x, check_finite=check_finite)
    n = x.shape[0]
    if mode == "cutmix" and x.dim() < 3:
        raise ValueError(f"cutmix needs images (N, ..., H, W), got x of shape {tuple(x.shape)}")
    if lam is None:
        lam = sample_lam(
            alpha, n, distribution=distribution, per_sample=per_sample,
            rng=rng, device=x.device, dtype=x.dtype,
        )
    else:
        lam = check_lam(lam, n, x.device, x.dtype)
        if mode == "cutmix" and not bool((lam == lam[0]).all()):
            raise ValueError("cutmix takes one lam per batch: lam must be a number or equal "
                             "values")
    perm = random_permutation(n, rng=rng, device=x.device) if perm is None else \
        check_perm(perm, n, x.device)
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
    check_batch("x", x, check_finite=False)  # the finite check comes in mix_inputs
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
    must return per-sample losses (`reduction="none"`), which are then averaged. `lam`: a
    number, a 0-d tensor or shape (N,), in [0, 1].
    """
    loss_a, loss_b = criterion(logits, y_a), criterion(logits, y_b)
    lam = check_lam(lam, logits.shape[0], logits.device, loss_a.dtype)
    if loss_a.dim() == 0:
        if not bool((lam == lam[0]).all()):
            raise ValueError(
                "per-sample lam needs a criterion with reduction='none' (got a scalar loss)"
            )
        lam = lam[0]
    return torch.lerp(loss_b, loss_a, lam).mean()


class Mixup:
    """Classification mixup as a batch transform and a DataLoader collate function.

    ``mix = Mixup(alpha=1.0, num_classes=10)``; then ``x, y_soft = mix(x, y)`` on a batch, or
    ``DataLoader(ds, batch_size=128, collate_fn=mix.collate)``. Every option is checked here,
    at construction, with the same rules as `mixup_batch`.
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
        self.alpha = check_alpha(alpha, distribution)
        self.num_classes = None if num_classes is None else count("num_classes", num_classes,
                                                                  minimum=1)
        self.mode, self.per_sample = check_mode(mode, per_sample)
        self.distribution = distribution
        self.label_smoothing = unit_interval("label_smoothing", label_smoothing, top_open=True)
        self.rng = check_rng(rng)

    def __call__(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        return mixup_batch(
            x, y, alpha=self.alpha, num_classes=self.num_classes, mode=self.mode,
            distribution=self.distribution, per_sample=self.per_sample,
            label_smoothing=self.label_smoothing, rng=self.rng,
        )

    def collate(self, samples: Sequence) -> tuple[Tensor, Tensor]:
        """Collate `(x, y)` samples with the default collate, then mix the batch."""
        first = samples[0] if isinstance(samples, Sequence) and len(samples) else None
        if not isinstance(first, (tuple, list)) or len(first) != 2:
            got = ("no samples" if first is None else f"samples of {len(first)} fields"
                   if isinstance(first, (tuple, list)) else f"samples like {show(first)}")
            raise TypeError(f"Mixup.collate takes (x, y) samples, got {got}: collate samples "
                            "with more fields yourself and call the Mixup on (x, y)")
        x, y = torch.utils.data.default_collate(samples)
        return self(x, y)

    def __repr__(self) -> str:
        return (
            f"Mixup(alpha={self.alpha}, num_classes={self.num_classes}, mode={self.mode!r}, "
            f"distribution={self.distribution!r}, per_sample={self.per_sample}, "
            f"label_smoothing={self.label_smoothing})"
        )
