"""Counter-based random numbers for P members at once, on the training device.

A draw is a pure function of (member key, counter, element index): the splitmix64 hash of
the member's stream position. So P members draw all their numbers in one batch of tensor
ops whatever P is, member k's numbers are those of a run of one with its seed (they do not
depend on who else is in the population), and a resumed run needs only the counter.

Everything is plain int64/float32 tensor arithmetic (int64 products wrap modulo 2**64 on
CPU and CUDA alike), so the CPU suite checks the same code that runs on a GPU, against the
pure-Python reference `splitmix64`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1, _MIX2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
_TWO_PI = 2 * math.pi
# Gamma(a + 1) candidates per draw (Marsaglia-Tsang accepts >= 95% each for shape >= 1): all
# of them are rejected with probability < 1e-10, and then the last candidate is used.
GAMMA_TRIES = 8
BETA_UNIFORMS = 3 * GAMMA_TRIES + 1  # uniforms per Gamma draw (two Gammas per Beta draw)
_AHEAD_ELEMENTS = 1 << 22  # most random numbers made ahead in one batch (16 MiB of float32)


def _signed(value: int) -> int:
    """An unsigned 64-bit integer as the int64 with the same bits."""
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


def splitmix64(value: int) -> int:
    """Pure-Python splitmix64 finaliser (the reference for the tensor version)."""
    z = value & _MASK64
    z = ((z ^ (z >> 30)) * _MIX1) & _MASK64
    z = ((z ^ (z >> 27)) * _MIX2) & _MASK64
    return z ^ (z >> 31)


def _shift_right(z: Tensor, bits: int) -> Tensor:
    """Logical (unsigned) right shift of int64 bits."""
    return (z >> bits) & ((1 << (64 - bits)) - 1)


def _mix(z: Tensor) -> Tensor:
    z = (z ^ _shift_right(z, 30)) * _signed(_MIX1)
    z = (z ^ _shift_right(z, 27)) * _signed(_MIX2)
    return z ^ _shift_right(z, 31)


def open_uniform(words: Tensor) -> Tensor:
    """24-bit integers in [0, 2**24) -> float32 uniforms in the open interval (0, 1)."""
    return (words.float() + 0.5) * 2.0**-24


def beta_from_uniforms(u: Tensor, alpha: Tensor) -> Tensor:
    """Symmetric `Beta(alpha, alpha)` draws from open uniforms: (..., 2, n, BETA_UNIFORMS) ->
    (..., n), float32; `alpha` > 0 broadcasts against (..., 2, n).

    `lam = G1 / (G1 + G2)` with `G ~ Gamma(alpha)`, in log space so that tiny alpha, where
    the gammas underflow, is exact: `Gamma(a) = Gamma(a + 1) * U**(1/a)`, and `Gamma(a + 1)`
    by Marsaglia-Tsang with `GAMMA_TRIES` candidates (3 uniforms each), the first accepted.
    """
    a = alpha.unsqueeze(-1)
    d = a + 1.0 - 1.0 / 3.0
    c = torch.rsqrt(9.0 * d)
    tries = u[..., :3 * GAMMA_TRIES].unflatten(-1, (3, GAMMA_TRIES))
    x = torch.sqrt(-2.0 * torch.log(tries[..., 0, :])) * torch.cos(_TWO_PI * tries[..., 1, :])
    v = (1.0 + c * x) ** 3
    positive = v > 0
    log_v = torch.log(torch.where(positive, v, 1.0))
    accept = positive & (torch.log(tries[..., 2, :]) < 0.5 * x * x + d - d * v + d * log_v)
    first = torch.where(accept.any(-1), accept.to(torch.uint8).argmax(-1), GAMMA_TRIES - 1)
    log_gamma = torch.log(d[..., 0]) + log_v.gather(-1, first.unsqueeze(-1))[..., 0]
    log_gamma = log_gamma + torch.log(u[..., -1]) / a[..., 0]
    return torch.sigmoid(log_gamma[..., 0, :] - log_gamma[..., 1, :])


class _Same:
    """A tensor argument in a cache key: equal only to itself (and kept alive by the key, so
    its id is never reused while the key exists)."""

    def __init__(self, tensor: Tensor) -> None:
        self.tensor = tensor

    def __hash__(self) -> int:
        return id(self.tensor)

    def __eq__(self, other) -> bool:
        return isinstance(other, _Same) and other.tensor is self.tensor


class CounterRNG:
    """Random streams of P members, keyed by their seeds; `counter` names one draw.

    Each method takes a counter and a per-member shape and returns (P, *shape). The same
    counter and shape give the same numbers; callers give every draw its own counter.

    Draws are made ahead: a request for counter c also computes the same request for
    c + stride, c + 2 * stride, ... (up to `ahead` of them, fewer for large draws) in one
    batch of ops and keeps them until asked for. Since a draw is a pure function of its
    counter, this changes no number, only how many ops a training step dispatches.

    A counter may also be a 0-dim int64 tensor on the device (a captured training step reads
    its counters there): then the draw is computed from it directly, with the same numbers
    as for the equal int, and nothing is made ahead.
    """

    def __init__(self, seeds: Sequence[int], device: torch.device | str = "cpu", *,
                 stride: int = 1, ahead: int = 16) -> None:
        self.seeds = [int(s) for s in seeds]
        self.device = torch.device(device)
        keys = [_signed(splitmix64(s * _GOLDEN + 1)) for s in self.seeds]
        self.keys = torch.tensor(keys, dtype=torch.int64, device=self.device)
        self.stride, self.ahead = stride, ahead
        self._steps: dict[int, Tensor] = {}  # count -> stream offsets (1..count) * golden
        self._ready: dict[tuple, Tensor] = {}  # (kind, counter, args) -> a draw made ahead

    @property
    def members(self) -> int:
        return len(self.seeds)

    def _draw(self, kind: str, counter: int | Tensor, args: tuple, size: int, compute
              ) -> Tensor:
        """`compute(counters)` -> (P, len(counters), ...), served one counter at a time."""
        if isinstance(counter, Tensor):
            return compute(counter.reshape(1))[:, 0]
        key = (kind, counter, args)
        ready = self._ready.pop(key, None)
        if ready is not None:
            return ready
        # draws made ahead for earlier counters will never be asked for again
        self._ready = {k: v for k, v in self._ready.items() if k[1] > counter}
        ahead = max(1, min(self.ahead, _AHEAD_ELEMENTS // max(1, size * self.members)))
        counters = [counter + j * self.stride for j in range(ahead)]
        batch = compute(counters)
        for j in range(1, ahead):
            self._ready[(kind, counters[j], args)] = batch[:, j]
        return batch[:, 0]

    def _bits(self, counters: list[int] | Tensor, count: int) -> Tensor:
        """(P, len(counters), count) random int64 words: splitmix64 along each stream."""
        if isinstance(counters, Tensor):  # int64 products wrap like the Python ints' mask
            offsets = counters * _signed(_GOLDEN)
        else:
            offsets = torch.tensor([_signed(c * _GOLDEN) for c in counters],
                                   dtype=torch.int64, device=self.device)
        start = _mix(self.keys.unsqueeze(1) + offsets)
        steps = self._steps.get(count)
        if steps is None:
            index = torch.arange(1, count + 1, device=self.device, dtype=torch.int64)
            steps = self._steps[count] = index * _signed(_GOLDEN)
        return _mix(start.unsqueeze(2) + steps)

    def _uniform(self, counters: list[int] | Tensor, shape: tuple[int, ...]) -> Tensor:
        count = math.prod(shape)
        words = self._bits(counters, (count + 1) // 2)
        halves = torch.stack([_shift_right(words, 40), _shift_right(words, 8) & 0xFFFFFF], -1)
        u = open_uniform(halves.flatten(2)[..., :count])
        return u.reshape(self.members, len(counters), *shape)

    def bits(self, counter: int | Tensor, count: int) -> Tensor:
        """(P, count) random int64 words of draw `counter`."""
        return self._draw("bits", counter, (count,), count,
                          lambda counters: self._bits(counters, count))

    def uniform(self, counter: int | Tensor, *shape: int) -> Tensor:
        """Float32 uniforms in the open interval (0, 1), 24 bits each, two per word."""
        return self._draw("uniform", counter, shape, math.prod(shape),
                          lambda counters: self._uniform(counters, shape))

    def normal(self, counter: int | Tensor, *shape: int) -> Tensor:
        """Standard normals (Box-Muller from two uniforms each)."""

        def compute(counters):
            u = self._uniform(counters, (2, *shape))
            return torch.sqrt(-2.0 * torch.log(u[:, :, 0])) * torch.cos(_TWO_PI * u[:, :, 1])

        return self._draw("normal", counter, shape, 2 * math.prod(shape), compute)

    def randint(self, counter: int | Tensor, high: Tensor | int, *shape: int) -> Tensor:
        """Integers in [0, high); `high` is an int or one per member, shape (P,)."""
        count = math.prod(shape)
        args = (shape, high if isinstance(high, int) else _Same(high))
        if isinstance(high, Tensor):
            high = high.to(self.device, torch.int64).reshape(-1, 1, 1)

        def compute(counters):
            words = _shift_right(self._bits(counters, count), 1)  # 63 bits, >= 0
            return (words % high).reshape(self.members, len(counters), *shape)

        return self._draw("randint", counter, args, count, compute)

    def permutations(self, counter: int | Tensor, n: int, count: int = 1) -> Tensor:
        """`count` random permutations of range(n) per member, shape (P, count, n)."""
        return self.bits(counter, count * n).reshape(self.members, count, n).argsort(-1)

    def beta(self, counter: int | Tensor, alpha: Tensor, *shape: int) -> Tensor:
        """Symmetric `Beta(alpha, alpha)` draws, one alpha > 0 per member (P,) -> (P, *shape).

        `lam = G1 / (G1 + G2)` with `G ~ Gamma(alpha)`, computed in log space (exact for tiny
        alpha, where the gammas underflow): `Gamma(a) = Gamma(a + 1) * U**(1/a)`, and
        `Gamma(a + 1)` by Marsaglia-Tsang with `GAMMA_TRIES` candidates, the first accepted
        (`beta_from_uniforms`, which `mixup.sample_lam` uses too).
        """
        n = math.prod(shape)
        a = alpha.to(self.device, torch.float32).reshape(-1, 1, 1, 1)  # (P, C, 2, n)

        def compute(counters):
            u = self._uniform(counters, (2, n, BETA_UNIFORMS))
            return beta_from_uniforms(u, a).reshape(self.members, len(counters), *shape)

        return self._draw("beta", counter, (shape, _Same(alpha)), n * BETA_UNIFORMS * 2,
                          compute)
