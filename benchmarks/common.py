"""Timing helpers shared by the benchmark scripts (not part of the package)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def interleaved_times(fns: dict[str, Callable[[], None]], *, repeats: int = 7,
                      inner: int = 10, warmup: int = 3) -> dict[str, float]:
    """Median seconds per call of each function, timed in alternating rounds.

    Alternating the candidates round by round spreads machine noise evenly over them, so
    their ratio is measured under the same conditions in one run.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            samples[name].append((time.perf_counter() - start) / inner)
    return {name: statistics.median(values) for name, values in samples.items()}


def matmul_flops_per_second(m: int, k: int, n: int, *, seconds: float = 1.0) -> float:
    """Measured FLOP/s of (m x k) @ (k x n) float32 matmuls on this machine's CPU."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    out = torch.empty(m, n)
    for _ in range(20):
        torch.mm(a, b, out=out)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(20):
            torch.mm(a, b, out=out)
        count += 20
    return 2 * m * k * n * count / (time.perf_counter() - start)


def toy_flops_per_iteration(batch: int, n_dis: int, latent: int, hidden: int, depth: int) -> float:
    """Matmul FLOPs of one generator iteration of our toy loop (real-fake pairing)."""

    def weights(in_dim: int, out_dim: int) -> int:
        return in_dim * hidden + (depth - 1) * hidden * hidden + hidden * out_dim

    fwd_g, fwd_d = 2 * batch * weights(latent, 2), 2 * batch * weights(2, 1)
    d_step = fwd_g + 3 * fwd_d  # G forward (no grad); D forward + backward
    g_step = 3 * fwd_g + 2 * fwd_d  # G forward + backward; D forward + input gradient
    return n_dis * d_step + g_step
