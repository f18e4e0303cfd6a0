"""A training step as one fixed set of device-only ops, replayed from a CUDA graph on CUDA.

A toy step has fixed shapes and small matmuls: on a GPU its few hundred kernel launches cost
more than their work. With `capture` on, the trainer keeps everything a step reads from the
host on the device instead: the generator-step and draw counters (`StepClock`), the learning
rate (tensors in Adam's param groups, set in the step from its schedule), the stats sums
and the divergence record. A step is then a pure function of device state. The clock wraps a
`gan_step.GANStep` and the trainer's `record` (what the trainer keeps of a step's stats), and
touches nothing else of the trainer. On CUDA it runs eagerly
for `WARMUP` steps (real training steps, on a side stream, which lets cuBLAS and Adam set up),
is recorded once as a CUDA graph, and is replayed from then on. On the CPU the same step runs
eagerly every time: that is how the CPU suite checks everything but the replay itself.

A step whose structure changes (the plain rows D scores once an alpha schedule reaches 0) is
recorded once per structure. Loading a checkpoint drops the graphs: Adam's state tensors are
new, so the next steps warm up and record again.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .gan_step import GANStep
from .schedule import MemberSchedules
from .stats import Stat

WARMUP = 3  # eager steps of one structure before it is recorded


def resolve_capture(capture: bool | None, device: torch.device) -> bool:
    """`train.capture`: None means on CUDA only (where it is faster), else as given."""
    return torch.device(device).type == "cuda" if capture is None else bool(capture)


class StepClock:
    """The step's host-side inputs, kept on the device and advanced by the step itself.

    `step` is the `GANStep` it runs; `record(stats, at)` folds a step's stats into the
    trainer's device state (part of the recorded step); `train` the `train` section (lr and
    its schedule); `at` and `draws` the trainer's generator steps and counters done."""

    def __init__(self, step: GANStep, record: Callable[[dict[str, Stat], Tensor], None], *,
                 train, at: int, draws: int) -> None:
        device = step.device
        self.gan_step, self.record = step, record
        self.step = torch.zeros((), dtype=torch.int64, device=device)  # generator steps done
        self.draws = torch.zeros((), dtype=torch.int64, device=device)  # counters used
        self.lr = torch.tensor(train.lr, dtype=torch.float32, device=device)
        self.d_lr = torch.tensor(train.lr * train.d_lr_ratio, dtype=torch.float32, device=device)
        self.lr_schedule = (None if train.lr_schedule.constant
                            else MemberSchedules([train.lr_schedule], train.steps, device))
        self.graphs: dict[object, tuple[torch.cuda.CUDAGraph, dict[str, Stat]]] = {}
        self.warm: dict[object, int] = {}
        self.base_lr, self.d_lr_ratio = train.lr, train.d_lr_ratio
        self.attach(at, draws)

    def set_lr(self) -> None:
        if self.lr_schedule is not None:
            self.lr.copy_(self.lr_schedule.at(self.step)[0] * self.base_lr)
            self.d_lr.copy_(self.lr * self.d_lr_ratio)

    def attach(self, at: int, draws: int) -> None:
        """Take the host state (after construction or a loaded checkpoint): the counters,
        and Adam's groups reading the lr tensors (G's, D's) in a capturable way."""
        self.step.fill_(at)
        self.draws.fill_(draws)
        self.gan_step.set_lr(self.lr, self.d_lr, capturable=True)
        self.graphs.clear()
        self.warm.clear()

    # --- running a step -----------------------------------------------------------------

    def _step(self, at: int) -> dict[str, Stat]:
        """The step as device ops: the lr, the step, the record, the clock's advance."""
        self.set_lr()
        stats = self.gan_step(self.draws, at, self.step)
        self.step += 1
        self.record(stats, self.step)
        self.draws += self.gan_step.per_step
        return stats

    def run(self, at: int) -> dict[str, Stat]:
        """Generator step `at` + 1: replayed when recorded, else eager (and recorded when
        warm); returns its stats (on a replay, the graph's output tensors)."""
        device = self.gan_step.device
        key = self.gan_step.structure(at)
        recorded = self.graphs.get(key)
        if recorded is None and device.type == "cuda" and self.warm.get(key, 0) >= WARMUP:
            recorded = self.graphs[key] = self._record_graph(at)
        if recorded is not None:
            graph, stats = recorded  # the graph's outputs: this step's stats
            graph.replay()
            return stats
        if device.type == "cuda":  # warm up off the default stream, as capture asks
            side = torch.cuda.Stream(device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):
                stats = self._step(at)
            torch.cuda.current_stream(device).wait_stream(side)
        else:
            stats = self._step(at)
        self.warm[key] = self.warm.get(key, 0) + 1
        return stats

    def _record_graph(self, at: int) -> tuple[torch.cuda.CUDAGraph, dict[str, Stat]]:
        """Record one step without running it; returns the graph and the tensors its stats
        land in."""
        self.gan_step.zero_grad()  # gradients live in the graph's memory
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            stats = self._step(at)
        return graph, stats
