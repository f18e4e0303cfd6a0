"""A training step as one fixed set of device-only ops, replayed from a CUDA graph on CUDA.

A toy step has fixed shapes and small matmuls: on a GPU its few hundred kernel launches cost
more than their work. With `capture` on, the trainer keeps everything a step reads from the
host on the device instead: the generator-step and draw counters (`StepClock`), the learning
rate (tensors in Adam's param groups, set in the step from its schedule), the loss sums and
the divergence record. A step is then a pure function of device state. On CUDA it runs eagerly
for `WARMUP` steps (real training steps, on a side stream, which lets cuBLAS and Adam set up),
is recorded once as a CUDA graph, and is replayed from then on. On the CPU the same step runs
eagerly every time: that is how the CPU suite checks everything but the replay itself.

A step whose structure changes (the plain rows D scores once an alpha schedule reaches 0) is
recorded once per structure. Loading a checkpoint drops the graphs: Adam's state tensors are
new, so the next steps warm up and record again.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .schedule import MemberSchedules

WARMUP = 3  # eager steps of one structure before it is recorded


def resolve_capture(capture: bool | None, device: torch.device) -> bool:
    """`train.capture`: None means on CUDA only (where it is faster), else as given."""
    return torch.device(device).type == "cuda" if capture is None else bool(capture)


class StepClock:
    """The step's host-side inputs, kept on the device and advanced by the step itself.

    `trainer` is the `train.GANTrainer` it serves."""

    def __init__(self, trainer) -> None:
        device, train = trainer.device, trainer.cfg
        self.step = torch.zeros((), dtype=torch.int64, device=device)  # generator steps done
        self.draws = torch.zeros((), dtype=torch.int64, device=device)  # counters used
        self.base = 0  # the host's draw counter where the step being run or recorded began
        self.lr = torch.tensor(train.lr, dtype=torch.float32, device=device)
        self.d_lr = torch.tensor(train.lr * train.d_lr_ratio, dtype=torch.float32, device=device)
        self.lr_schedule = (None if train.lr_schedule.constant
                            else MemberSchedules([train.lr_schedule], train.steps, device))
        self.graphs: dict[object, tuple[torch.cuda.CUDAGraph, dict[str, Tensor]]] = {}
        self.warm: dict[object, int] = {}
        self.per_step = 0  # counters one step uses
        self.base_lr, self.d_lr_ratio = train.lr, train.d_lr_ratio
        self.attach(trainer)

    def counter(self, host_counter: int) -> Tensor:
        """The device counter for the host counter `host_counter` of the current step."""
        return self.draws + (host_counter - self.base)

    def set_lr(self) -> None:
        if self.lr_schedule is not None:
            self.lr.copy_(self.lr_schedule.at(self.step)[0] * self.base_lr)
            self.d_lr.copy_(self.lr * self.d_lr_ratio)

    def attach(self, trainer) -> None:
        """Take the trainer's host state (after construction or a loaded checkpoint): the
        counters, and Adam's groups reading the lr tensors (G's, D's) in a capturable way."""
        self.step.fill_(trainer.step)
        self.draws.fill_(trainer.draws)
        trainer.set_lr(self.lr, self.d_lr, capturable=True)
        self.graphs.clear()
        self.warm.clear()

    # --- running a step -----------------------------------------------------------------

    def _step(self, trainer) -> dict[str, Tensor]:
        """The step as device ops: the trainer's step, the record, the clock's advance."""
        self.base = trainer.draws
        losses = trainer.train_step()
        self.step += 1
        trainer.record(losses, self.step)
        self.per_step = trainer.draws - self.base
        self.draws += self.per_step
        return losses

    def run(self, trainer) -> None:
        """One training step: replayed when recorded, else eager (and recorded when warm)."""
        key = trainer.losses.structure(trainer.step)
        recorded = self.graphs.get(key)
        if recorded is None and trainer.device.type == "cuda" and self.warm.get(key, 0) >= WARMUP:
            recorded = self.graphs[key] = self._record_graph(trainer)
        if recorded is not None:
            graph, trainer._last = recorded  # the graph's outputs: this step's losses
            graph.replay()
            trainer.draws += self.per_step
            return
        if trainer.device.type == "cuda":  # warm up off the default stream, as capture asks
            side = torch.cuda.Stream(trainer.device)
            side.wait_stream(torch.cuda.current_stream(trainer.device))
            with torch.cuda.stream(side):
                self._step(trainer)
            torch.cuda.current_stream(trainer.device).wait_stream(side)
        else:
            self._step(trainer)
        self.warm[key] = self.warm.get(key, 0) + 1

    def _record_graph(self, trainer) -> tuple[torch.cuda.CUDAGraph, dict[str, Tensor]]:
        """Record one step without running it (the host counter is put back); returns the
        graph and the tensors its losses land in."""
        draws = trainer.draws
        trainer.opt_d.zero_grad(set_to_none=True)  # gradients live in the graph's memory
        trainer.opt_g.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            losses = self._step(trainer)
        trainer.draws = draws
        return graph, losses
