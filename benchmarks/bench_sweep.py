"""Population training vs the same runs one after another, at the paper's toy setup.

Prints, measured in this one run:
- dispatched aten ops per `train_step` for P = 1 and P = 16 and their ratio (the CPU-side
  proxy for kernel launches: a member-vectorized step dispatches the same ops whatever P is),
  and how many of them read a value back to the host (host syncs; should be 0);
- on CUDA: run-iterations per second for P = 1, 10, 30, 100, 300 of our engine with the step
  replayed from a CUDA graph (`train.capture`, the default there) and without, next to a plain
  loop over the same stacked MLPs written here (same shapes and random work: batched matmuls,
  Beta lam, fused Adam, fp32, no per-member Python), and the ratio captured / plain loop;
- on the CPU: total toy iterations per second of a population of P = 10 runs vs the same 10
  runs one after another (P = 1), their ratio, the model FLOP utilization against this
  machine's measured matmul rate at the same shapes, and peak memory for P = 1, 10, 30 (each
  in a fresh process).
Usage: python benchmarks/bench_sweep.py [--skip-cpu] [--skip-rates]
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from bench_toy import reference_iteration
from common import matmul_flops_per_second, toy_flops_per_iteration
from torch.utils._python_dispatch import TorchDispatchMode

from mixup_gan.gan_config import LossConfig
from mixup_gan.runs import interleave
from mixup_gan.runtime import make_adam
from mixup_gan.toy.config import ToyModelConfig, ToyTrainConfig
from mixup_gan.toy.data import ring
from mixup_gan.toy.nets import ToyDiscriminator, ToyGenerator
from mixup_gan.toy.runner import build_toy_trainer

P, STEPS = 10, 12
MODEL, TRAIN = ToyModelConfig(), ToyTrainConfig()  # paper setup: 3x512, batch 128, n_dis 5


def trainers(members: int, count: int, device: str = "cpu", capture: bool | None = None):
    losses = [LossConfig(alpha=a) for a in (0.1, 0.2, 0.5, 1.0)]
    seeds = list(range(members * count))
    train = dataclasses.replace(TRAIN, capture=capture)
    return [
        build_toy_trainer(MODEL, train, [losses[s % 4] for s in chunk], [ring()] * members,
                          chunk, torch.device(device))
        for chunk in (seeds[i:i + members] for i in range(0, len(seeds), members))
    ]


class _Ops(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops = self.host_reads = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        self.host_reads += func.__name__.split(".")[0] in ("_local_scalar_dense", "nonzero")
        return func(*args, **(kwargs or {}))


def dispatched_ops(members: int, steps: int = 16) -> tuple[float, float]:
    """Mean dispatched aten ops and host reads per train_step (after one warm-up step)."""
    trainer = trainers(members, 1)[0]
    trainer.train_step()
    with _Ops() as counter:
        for _ in range(steps):
            trainer.train_step()
    return counter.ops / steps, counter.host_reads / steps


def plain_loop(members: int, device: torch.device):
    """One iteration of the same stacked MLPs, written plainly: real-fake mixup with Beta
    lam drawn by torch.distributions on the device, saturating G loss, fused Adam."""
    G = ToyGenerator(MODEL.latent_dim, MODEL.hidden, MODEL.depth, members=members).to(device)
    D = ToyDiscriminator(MODEL.hidden, MODEL.depth, members=members).to(device)
    opt_g, opt_d = (make_adam(net.parameters(), TRAIN.lr, TRAIN.betas) for net in (G, D))
    centers = ring().centers.to(device)
    shape = (members, TRAIN.batch_size)
    beta = torch.distributions.Beta(torch.full(shape, 0.2, device=device),
                                    torch.full(shape, 0.2, device=device))

    def iteration() -> None:
        for _ in range(TRAIN.n_dis):
            real = centers[torch.randint(8, shape, device=device)] + 0.01 * torch.randn(
                *shape, 2, device=device)
            with torch.no_grad():
                fake = G(torch.randn(*shape, MODEL.latent_dim, device=device))
            lam = beta.sample()
            x = lam[..., None] * real + (1 - lam[..., None]) * fake
            loss = F.binary_cross_entropy_with_logits(D(x), lam, reduction="none").mean(1)
            opt_d.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt_d.step()
        D.requires_grad_(False)
        out = D(G(torch.randn(*shape, MODEL.latent_dim, device=device)))
        D.requires_grad_(True)
        opt_g.zero_grad(set_to_none=True)
        (-F.softplus(out).mean(1)).sum().backward()
        opt_g.step()

    return iteration


def cuda_rates(members: int, device: torch.device, seconds: float = 3.0) -> list[float]:
    """Run-iterations per second of our engine (its `fit`, no hooks) with the step captured
    and without, and of the plain loop."""

    def rate(advance) -> float:
        advance(5)  # warm up (and record the captured step)
        torch.cuda.synchronize()
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            advance(20)
            count += 20
            torch.cuda.synchronize()
        return members * count / (time.perf_counter() - start)

    rates = []
    for capture in (True, False):
        trainer = trainers(members, 1, str(device), capture)[0]
        rates.append(rate(lambda k, t=trainer: t.fit(t.step + k, progress=False)))
        del trainer
    iteration = plain_loop(members, device)
    return [*rates, rate(lambda k: [iteration() for _ in range(k)])]


def sweep_rates(device: torch.device, steps: int = 300) -> tuple[float, float]:
    """Run-iterations per second of the Figure-5 sweep's populations (captured steps, no
    hooks), trained one after another and side by side."""
    sizes = (24, 6) * 3

    def rate(at_once: int) -> float:
        group = [trainers(members, 1, str(device))[0] for members in sizes]
        interleave([(device, partial(t.fit_iter, 5, progress=False)) for t in group],
                   at_once)  # warm up and record each step
        torch.cuda.synchronize()
        start = time.perf_counter()
        interleave([(device, partial(t.fit_iter, 5 + steps, progress=False)) for t in group],
                   at_once)
        torch.cuda.synchronize()
        return sum(sizes) * steps / (time.perf_counter() - start)

    return rate(1), rate(len(sizes))


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
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; paper toy setup")
    (one, one_sync), (sixteen, sixteen_sync) = dispatched_ops(1), dispatched_ops(16)
    print(f"dispatched aten ops per train_step (CPU): P=1 {one:.0f}, P=16 {sixteen:.0f}, "
          f"ratio {sixteen / one:.2f} (host reads per step: {one_sync:g} / {sixteen_sync:g})")
    if torch.cuda.is_available():
        device = torch.device("cuda")
        print(f"run-iterations per second on {torch.cuda.get_device_name()} "
              "(ours captured | ours not captured | plain stacked loop | captured / plain):")
        for members in () if "--skip-rates" in sys.argv else (1, 10, 30, 100, 300):
            captured, eager, plain = cuda_rates(members, device)
            print(f"  P={members:<4} {captured:9.0f} | {eager:9.0f} | {plain:9.0f} | "
                  f"{captured / plain:.2f}x")
        one_by_one, side_by_side = sweep_rates(device)
        print(f"Figure-5 sweep populations (24, 6, 24, 6, 24, 6 members), run-iterations per "
              f"second: one after another {one_by_one:.0f}, side by side {side_by_side:.0f}, "
              f"ratio {side_by_side / one_by_one:.2f}x")
    if "--skip-cpu" in sys.argv:
        return
    print(f"CPU: {P} runs x {STEPS} iterations")
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
