"""MLPs for toy GANs, stacked over a population of independent members.

The paper's G and D are 3 hidden layers of 512 ReLU units. Here every weight carries a
leading member dimension P, so P independent networks run as one batched matmul
(`baddbmm`) and one optimizer updates them all (Adam is elementwise: that is exactly P
independent Adams). A single run is the population of one. Each member is initialised from
its own `torch.Generator`, so member k of a population starts exactly like a run of one
with member k's seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn


class StackedLinear(nn.Module):
    """P independent linear layers: (P, N, in) -> (P, N, out)."""

    def __init__(self, members: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(members, 1, out_dim))

    def reset_parameters(self, generators: Sequence[torch.Generator]) -> None:
        """nn.Linear's default init, U(-1/sqrt(in), 1/sqrt(in)), one generator per member."""
        bound = 1 / math.sqrt(self.weight.shape[1])
        with torch.no_grad():
            for k, gen in enumerate(generators):
                w = torch.rand(self.weight.shape[1:], generator=gen, dtype=torch.float32)
                b = torch.rand(self.bias.shape[1:], generator=gen, dtype=torch.float32)
                self.weight[k].copy_((2 * w - 1) * bound)
                self.bias[k].copy_((2 * b - 1) * bound)

    def forward(self, x: Tensor) -> Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class StackedMLP(nn.Module):
    """`depth` hidden layers of `hidden` ReLU units for each of `members` networks.

    Input (P, N, in_dim) -> (P, N, out_dim). A population of one also takes (N, in_dim).
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 512, depth: int = 3, *,
                 members: int = 1, seeds: Sequence[int] | None = None) -> None:
        super().__init__()
        widths = [in_dim] + [hidden] * depth + [out_dim]
        self.layers = nn.ModuleList(
            StackedLinear(members, a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.members = members
        seeds = list(seeds) if seeds is not None else list(range(members))
        if len(seeds) != members:
            raise ValueError(f"{members} members need {members} seeds, got {len(seeds)}")
        self.reset_parameters([torch.Generator().manual_seed(s) for s in seeds])

    def reset_parameters(self, generators: Sequence[torch.Generator]) -> None:
        for layer in self.layers:
            layer.reset_parameters(generators)

    def forward(self, x: Tensor) -> Tensor:
        return self.run(x, 0, len(self.layers))

    def features(self, x: Tensor, k: int) -> Tensor:
        """The activations after the first `k` hidden layers (ReLU applied)."""
        return self.run(x, 0, k)

    def head(self, h: Tensor, k: int) -> Tensor:
        """The rest of the net on features `h` from `features(x, k)`:
        `head(features(x, k), k) == forward(x)`."""
        return self.run(h, k, len(self.layers))

    def run(self, x: Tensor, start: int, stop: int) -> Tensor:
        """Layers `start` to `stop` - 1, each hidden one followed by its ReLU."""
        single = x.dim() == 2
        if single:
            if self.members != 1:
                raise ValueError(f"a population of {self.members} needs input (P, N, in)")
            x = x.unsqueeze(0)
        last = len(self.layers) - 1
        for i in range(start, stop):
            x = self.layers[i](x)
            if i < last:
                x = torch.relu(x)
        return x.squeeze(0) if single else x


class ToyGenerator(StackedMLP):
    """Latent (P, N, latent_dim) -> points (P, N, 2); a population of one takes (N, latent)."""

    def __init__(self, latent_dim: int = 2, hidden: int = 512, depth: int = 3, *,
                 members: int = 1, seeds: Sequence[int] | None = None) -> None:
        super().__init__(latent_dim, 2, hidden, depth, members=members, seeds=seeds)
        self.latent_dim = latent_dim


class ToyDiscriminator(StackedMLP):
    """Points (P, N, 2) -> one logit per point, (P, N); a population of one takes (N, 2).

    `features(x, k)` and `head(h, k)` split it after its k-th hidden layer, where
    `loss.mix_layer: k` mixes real and fake features instead of points."""

    def __init__(self, hidden: int = 512, depth: int = 3, *, members: int = 1,
                 seeds: Sequence[int] | None = None) -> None:
        super().__init__(2, 1, hidden, depth, members=members, seeds=seeds)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x).squeeze(-1)

    def head(self, h: Tensor, k: int) -> Tensor:
        return super().head(h, k).squeeze(-1)
