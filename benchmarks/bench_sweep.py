"""Population training vs the same runs one after another, at the paper's toy setup.

Prints, measured in this one run: total toy iterations per second of a population of P = 10
runs vs the same 10 runs trained one after another with the single-run loop (P = 1), their
ratio, the population's model FLOP utilization against this machine's measured matmul rate
at the same shapes, and peak memory for P = 1, 10, 30 (each in a fresh process).
Usage: python benchmarks/bench_sweep.py
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import torch
from bench_toy import reference_iteration
from common import matmul_flops_per_second, toy_flops_per_iteration

from mixup_gan.config import LossConfig, ModelConfig, TrainConfig
from mixup_gan.toy.data import ring
from mixup_gan.toy.runner import build_toy_trainer

P, STEPS = 10, 12
MODEL, TRAIN = ModelConfig(), TrainConfig()  # paper setup: 3x512, batch 128, n_dis 5


def trainers(members: int, count: int):
    losses = [LossConfig(alpha=a) for a in (0.1, 0.2, 0.5, 1.0)]
    seeds = list(range(members * count))
    return [
        build_toy_trainer(MODEL, TRAIN, [losses[s % 4] for s in chunk], [ring()] * members,
                          chunk, torch.device("cpu"))
        for chunk in (seeds[i:i + members] for i in range(0, len(seeds), members))
    ]


def seconds_for(group) -> float:
    for t in group:  # warm up
        t.train_step()
    start = time.perf_counter()
    for t in group:
        for _ in range(STEPS):
            t.train_step()
    return time.perf_counter() - start


def peak_memory_mb(members: int) -> float:
    """Peak resident memory a population adds: nets, Adam states and 2 training steps.

    Runs in a fresh process that resets the kernel's high-water mark (VmHWM) after the
    imports (Linux `/proc/self/clear_refs`), so the import peak does not hide it.
    """
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n"
        "from bench_sweep import trainers\n"
        "def status(key):\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith(key): return int(line.split()[1])\n"
        "open('/proc/self/clear_refs', 'w').write('5')\n"
        "base = status('VmRSS')\n"
        f"t = trainers({members}, 1)[0]; t.train_step(); t.train_step()\n"
        "print((status('VmHWM') - base) / 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip())


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{P} runs x {STEPS} iterations at the paper's toy setup")
    sequential, population = trainers(1, P), trainers(P, 1)
    # Alternate twice and keep each one's best, so both see the same machine conditions.
    seq_s = min(seconds_for(sequential), seconds_for(sequential))
    pop_s = min(seconds_for(population), seconds_for(population))
    seq_rate, pop_rate = P * STEPS / seq_s, P * STEPS / pop_s
    print(f"  one after another: {seq_rate:6.1f} run-iterations/s")
    print(f"  population P={P}:   {pop_rate:6.1f} run-iterations/s")
    print(f"  ratio population / sequential: {pop_rate / seq_rate:.2f}x")
    reference = reference_iteration("pool")  # the released code's loop, one run at a time
    reference()
    start = time.perf_counter()
    for _ in range(STEPS):
        reference()
    ref_rate = STEPS / (time.perf_counter() - start)
    print(f"  released-code-style loop (bench_toy.py), one after another: {ref_rate:6.1f} "
          f"run-iterations/s; population / that: {pop_rate / ref_rate:.2f}x")
    flops = toy_flops_per_iteration(TRAIN.batch_size, TRAIN.n_dis, MODEL.latent_dim,
                                    MODEL.hidden, MODEL.depth)
    peak = matmul_flops_per_second(TRAIN.batch_size, MODEL.hidden, MODEL.hidden)
    for name, rate in (("sequential", seq_rate), ("population", pop_rate)):
        print(f"  {name:<11} model FLOP utilization: {100 * flops * rate / peak:4.0f}% "
              f"({flops * rate / 1e9:.1f} of {peak / 1e9:.1f} GFLOP/s measured for "
              f"({TRAIN.batch_size}x{MODEL.hidden})@({MODEL.hidden}x{MODEL.hidden}))")
    del sequential, population
    print("peak memory above the imports, after 2 training steps (fresh process each):")
    for members in (1, 10, 30):
        mb = peak_memory_mb(members)
        print(f"  P={members:<3} {mb:8.1f} MB   ({mb / members:6.1f} MB per member)")


if __name__ == "__main__":
    main()
