"""Classifiers: an MLP and a small CNN for 8x8 digits, a LeNet for 28x28 and 32x32 images,
PreAct ResNet-18 for CIFAR."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MLP(nn.Sequential):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden: int = 256):
        super().__init__(nn.Flatten(), nn.Linear(math.prod(input_shape), hidden), nn.ReLU(),
                         nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


class SmallCNN(nn.Sequential):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden: int = 64):
        channels, height, width = input_shape
        super().__init__(
            nn.Conv2d(channels, hidden, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(hidden * (height // 2) * (width // 2), num_classes),
        )


class LeNet(nn.Module):
    """Two 5x5 conv + 2x2 max-pool stages (`hidden` and 2*`hidden` channels), a 128-unit
    layer (`features`), then the logits (`head`). For 28x28 or 32x32 images; at `hidden` 8 it
    has a seventh of the 784-256-256-10 MLP's weights and costs about 4x its step on a CPU;
    32 is the classic width."""

    min_side = 16  # the smallest height and width the two stages leave a pixel of

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden: int = 32):
        super().__init__()
        channels, height, width = input_shape
        side = [(n - 4) // 2 for n in (height, width)]  # after one conv-pool stage
        flat = 2 * hidden * ((side[0] - 4) // 2) * ((side[1] - 4) // 2)
        self.body = nn.Sequential(
            nn.Conv2d(channels, hidden, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(hidden, 2 * hidden, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(flat, 128), nn.ReLU(),
        )
        self.head = nn.Linear(128, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))

    @torch.no_grad()
    def features(self, x: Tensor, batch: int = 1000) -> Tensor:
        """The 128-d layer of `x` in eval mode, in float64 (for FID statistics)."""
        self.eval()
        return torch.cat([self.body(x[i:i + batch]) for i in range(0, len(x), batch)]).double()


class PreActBlock(nn.Module):
    """Pre-activation residual block (He et al., 2016), as in the mixup CIFAR code."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(in_planes), nn.BatchNorm2d(planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.shortcut = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class PreActResNet18(nn.Module):
    """PreAct ResNet-18 for 32x32 images: (N, 3, 32, 32) -> (N, num_classes)."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden: int = 64):
        super().__init__()
        self.conv1 = nn.Conv2d(input_shape[0], 64, 3, 1, 1, bias=False)
        layers, in_planes = [], 64
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [PreActBlock(in_planes, planes, stride), PreActBlock(planes, planes)]
            in_planes = planes
        self.layers = nn.Sequential(*layers)
        self.linear = nn.Linear(512, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        # Like the mixup authors' CIFAR model: no BN-ReLU after the last block.
        out = self.layers(self.conv1(x))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


CLASSIFIERS = {"mlp": MLP, "cnn": SmallCNN, "lenet": LeNet, "preact_resnet18": PreActResNet18}
