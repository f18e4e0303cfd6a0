"""MLPs for toy GANs: the paper's G and D are 3 hidden layers of 512 ReLU units."""

from __future__ import annotations

from torch import Tensor, nn


class MLP(nn.Sequential):
    """`depth` hidden Linear+ReLU layers of width `hidden`, then a Linear output layer."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 512, depth: int = 3) -> None:
        layers: list[nn.Module] = []
        width = in_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, out_dim))
        super().__init__(*layers)


class ToyGenerator(MLP):
    """Latent (N, latent_dim) -> points (N, 2)."""

    def __init__(self, latent_dim: int = 2, hidden: int = 512, depth: int = 3) -> None:
        super().__init__(latent_dim, 2, hidden, depth)
        self.latent_dim = latent_dim


class ToyDiscriminator(MLP):
    """Points (N, 2) -> one logit per point, shape (N,)."""

    def __init__(self, hidden: int = 512, depth: int = 3) -> None:
        super().__init__(2, 1, hidden, depth)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x).squeeze(1)
