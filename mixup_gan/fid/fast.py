"""Faster feature extraction with torch-fidelity's own extractor module, by precision:

- `fp32` (default): each BasicConv2d's batch norm folded into its convolution (torch's
  `fuse_conv_bn_eval`; eval-mode BN is an affine map, so the fold is exact up to float
  rounding), and the weights in channels_last, which the CPU (oneDNN) and cuDNN convolutions
  run faster; features agree with torch-fidelity's to ~1e-5 and FID to far better than 4
  significant digits (tests/test_fid.py checks both, benchmarks/bench_fid.py measures it);
- `bf16`: the same net under bfloat16 autocast: less exact (its FID difference is printed by
  benchmarks/bench_fid.py), faster on chips with native bfloat16 (recent GPUs, CPUs with
  AVX512-BF16 or AMX); on CPUs without it bfloat16 is emulated and slower. Its statistics
  and caches are kept apart from fp32's (`extractor_id` gains "+bf16");
- `reference`: torch-fidelity's module untouched (for checks and benchmarks).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

PRECISIONS = ("fp32", "bf16", "reference")


def fold_batch_norms(net: nn.Module) -> int:
    """Fold every eval-mode `bn` (BatchNorm2d) after a `conv` (Conv2d) of one block into the
    convolution, in place; the block's forward then runs conv -> Identity -> ReLU. Returns
    how many were folded."""
    folded = 0
    for block in net.modules():
        conv, bn = getattr(block, "conv", None), getattr(block, "bn", None)
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and not bn.training:
            block.conv, block.bn = fuse_conv_bn_eval(conv, bn), nn.Identity()
            folded += 1
    return folded


class _Autocast:
    """A module's forward under autocast to `dtype`, float32 outputs (picklable wrapper)."""

    def __init__(self, forward, device_type: str, dtype: torch.dtype) -> None:
        self.forward, self.device_type, self.dtype = forward, device_type, dtype

    def __call__(self, *args):
        with torch.autocast(self.device_type, dtype=self.dtype):
            out = self.forward(*args)
        return tuple(o.float() for o in out)


def speed_up(extractor: nn.Module, precision: str, device: torch.device) -> nn.Module:
    """`extractor` (already on `device`, in eval mode) prepared for `precision`, in place."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} not in {PRECISIONS}")
    if precision == "reference":
        return extractor
    fold_batch_norms(extractor)
    extractor.to(memory_format=torch.channels_last)
    if precision == "bf16":
        extractor.forward = _Autocast(extractor.forward, device.type, torch.bfloat16)
    return extractor
