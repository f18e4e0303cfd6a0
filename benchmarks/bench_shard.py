"""A sweep in 1 process vs sharded over 2 (`--shard K/N`): run-iterations per second.

Prints, measured in this one run:
- on the CPU (default): a sweep of 4 equal populations (2 members each) trained by 1 process,
  then by 2 processes at once (shards 0/2 and 1/2), each on one thread; run-iterations per
  second (members x steps over the wall time from the first process starting to train to the
  last one done, the report included) and the ratio 2 shards / 1;
- with `--cuda`: a sweep of 16 populations (24 members each, the paper's toy nets) sharded over
  1, 2, 4, ... GPUs (one process per GPU, placed by torchrun's LOCAL_RANK), and over 2
  processes sharing GPU 0, each with its ratio to 1 GPU.
Each process imports everything, then waits for a start signal, so imports are not timed.
Usage: python benchmarks/bench_shard.py [--cuda] [--steps N]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from mixup_gan.config import load_config
from mixup_gan.toy.sweep import SweepConfig, expand, resolve_shard, run_sweep

REPO = Path(__file__).resolve().parent.parent
CPU_SWEEP = """
set:
  model.hidden: 128
  model.depth: 3
  train.steps: {steps}
  train.device: cpu
  eval.every: {steps}
  eval.n_samples: 500
  output.checkpoint_every: {steps}
grid:
  data.name: [ring, grid]
  loss.alpha: [0.2]
seeds: [0, 1, 2, 3]
population: 2
"""
CUDA_SWEEP = """
set:
  train.steps: {steps}
  train.device: cuda
  eval.every: {steps}
  eval.n_samples: 2000
  output.checkpoint_every: {steps}
grid:
  data.name: [ring, grid]
  loss.alpha: [0.1, 0.2, 0.5, 1.0]
seeds: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23]
population: 24
"""


def worker(sweep: str, shard: str, go: str) -> None:
    """One shard: import, say ready, wait for `go`, train; print start and end times."""
    torch.set_num_threads(1)
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.01)
    start = time.time()
    run_sweep(sweep, progress=False, shard=resolve_shard(shard or None))
    print(json.dumps({"start": start, "end": time.time()}), flush=True)


def sweep_rate(text: str, processes: int, folder: Path, env_of) -> tuple[float, int]:
    """(run-iterations per second, run-iterations) of the sweep `text` trained by
    `processes` processes at once; `env_of(k)` adds process k's environment."""
    out = folder / f"n{processes}-{len(list(folder.iterdir()))}"
    path = folder / f"{out.name}.yaml"
    path.write_text(text + f"output: {out}\nname: sweep\n")
    work = sum(r.config.train.steps for r in expand(load_config(path, SweepConfig), str(path)))
    go = folder / f"{out.name}.go"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    jobs = []
    for k in range(processes):
        extra, shard = env_of(k, processes)
        jobs.append(subprocess.Popen(
            [sys.executable, __file__, "--worker", str(path), shard, str(go)],
            env={**env, **extra}, stdout=subprocess.PIPE, text=True))
    for job in jobs:
        assert job.stdout.readline().strip() == "ready"
    go.touch()
    times = [json.loads(job.communicate()[0].strip().splitlines()[-1]) for job in jobs]
    assert all(job.returncode == 0 for job in jobs)
    wall = max(t["end"] for t in times) - min(t["start"] for t in times)
    return work / wall, work


def main() -> None:
    steps = int(sys.argv[sys.argv.index("--steps") + 1]) if "--steps" in sys.argv else None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if "--cuda" not in sys.argv:
            text = CPU_SWEEP.format(steps=steps or 300)

            def flag(k: int, n: int) -> tuple[dict, str]:
                return {}, f"{k}/{n}"

            one, work = sweep_rate(text, 1, folder, flag)
            two, _ = sweep_rate(text, 2, folder, flag)
            print(f"CPU, {os.cpu_count()} cores: a sweep of 4 populations x 2 members "
                  f"({work} run-iterations), one thread per process")
            print(f"  1 process:            {one:8.1f} run-iterations/s")
            print(f"  2 shards (--shard):   {two:8.1f} run-iterations/s")
            print(f"  ratio 2 shards / 1:   {two / one:.2f}x")
            return
        gpus = torch.cuda.device_count()
        text = CUDA_SWEEP.format(steps=steps or 1000)

        def torchrun(per_gpu: int):  # torchrun's variables; LOCAL_RANK picks the GPU
            return lambda k, n: ({"RANK": str(k), "WORLD_SIZE": str(n),
                                  "LOCAL_RANK": str(k // per_gpu)}, "")

        print(f"CUDA: {gpus} x {torch.cuda.get_device_name()}; a sweep of 16 populations x "
              "24 members, the paper's toy nets")
        base = None
        counts = [g for g in (1, 2, 4, 8) if g <= gpus]
        for label, processes, per_gpu in ([(f"{g} GPU(s), 1 process each", g, 1)
                                           for g in counts]
                                          + [("1 GPU, 2 processes", 2, 2)]):
            rate, work = sweep_rate(text, processes, folder, torchrun(per_gpu))
            base = base or rate
            print(f"  {label:<28} {rate:9.0f} run-iterations/s ({work} run-iterations), "
                  f"{rate / base:.2f}x of 1 GPU")


if __name__ == "__main__":
    if "--worker" in sys.argv:
        worker(*sys.argv[sys.argv.index("--worker") + 1:][:3])
    else:
        main()
