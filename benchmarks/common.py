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
