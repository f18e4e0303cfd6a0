"""`pixel-pool`: a tiny feature extractor registered with torch-fidelity.

Each image's pixels averaged over a 4x4 grid of cells per channel (48 numbers). It is linear
in the pixels, needs no weights and runs anywhere, which makes it the extractor for offline
tests, benchmarks of the plumbing and quick smoke checks; its FID is NOT comparable to the
Inception FID anyone publishes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch_fidelity import FeatureExtractorBase, register_feature_extractor
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

NAME = "pixel-pool"


class PixelPool(FeatureExtractorBase):
    def __init__(self, name, features_list, **kwargs) -> None:
        super().__init__(name, features_list)

    @staticmethod
    def get_provided_features_list():
        return ("pool",)

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return "pool"

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 3, 4, 4, dtype=torch.uint8)

    def forward(self, x):
        if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected uint8 (N, 3, H, W), got {x.dtype} {tuple(x.shape)}")
        return (F.adaptive_avg_pool2d(x.float(), 4).flatten(1),)


if NAME not in FEATURE_EXTRACTORS_REGISTRY:
    register_feature_extractor(NAME, PixelPool)
