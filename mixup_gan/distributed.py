"""Multi-process training under `torchrun`: process group, per-rank device and seed.

`torchrun --nproc_per_node N -m mixup_gan.cli image --config ...` runs N processes; each
draws its own batches (the global batch is N x train.batch_size), DistributedDataParallel
averages gradients, and only rank 0 writes the run folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from .config import ConfigError
from .runtime import resolve_device

RANK_SEED_STRIDE = 1_000_003  # rank r trains on seed + r * stride; rank 0 on the seed itself


@dataclass
class Ranks:
    rank: int
    world: int
    local: int

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup(device_name: str) -> tuple[Ranks | None, torch.device]:
    """Join the process group when launched by torchrun; returns (ranks or None, device)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_name)
    if world <= 1:
        return None, device
    ranks = Ranks(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda" and ranks.local >= torch.cuda.device_count():
        local = int(os.environ.get("LOCAL_WORLD_SIZE", ranks.local + 1))
        raise ConfigError(
            f"torchrun started {local} processes on this machine but it has "
            f"{torch.cuda.device_count()} GPU(s): use --nproc_per_node "
            f"{torch.cuda.device_count()}, or train.device=cpu to train on the CPU")
    if device.type == "cuda":
        device = torch.device("cuda", ranks.local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return ranks, device


def wrap(net: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel around a net already on `device`."""
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(net, device_ids=ids)


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
