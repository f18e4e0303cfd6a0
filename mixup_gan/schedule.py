"""Schedules: a value that changes over training, as a multiplier of its configured value.

`Schedule(kind, final, start, end)` multiplies a value by 1 until step `start`, then moves the
multiplier to `final` by step `end` (default: the run's last step), linearly or along a
half cosine, and keeps it there. `alpha: 0.2` with `alpha_schedule: {kind: linear, final: 0}`
anneals alpha from 0.2 to 0; `lr_schedule: {kind: linear, final: 0}` decays the learning rate
to 0. One mechanism for every scheduled value; `MemberSchedules` evaluates P members' at once on
the training device, without a host sync.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .config import option

KINDS = ("constant", "linear", "cosine")


@dataclass(frozen=True)
class Schedule:
    kind: str = option("constant", choices=KINDS, doc="constant, linear or cosine")
    final: float = option(0.0, ge=0.0, le=1e3, doc="multiplier reached at `end`")
    start: int = option(0, ge=0, doc="step where the change begins")
    end: int | None = option(None, gt=0, doc="step where `final` is reached; null = last step")

    def check(self) -> tuple[str, str] | None:
        if self.end is not None and self.end <= self.start:
            return "end", f"{self.end} must be after start {self.start}"
        return None

    @property
    def constant(self) -> bool:
        return self.kind == "constant"

    def multiplier(self, step: int, last: int) -> float:
        """The multiplier at generator step `step` of a run of `last` steps."""
        if self.constant:
            return 1.0
        end = self.end if self.end is not None else last
        t = min(max((step - self.start) / max(end - self.start, 1), 0.0), 1.0)
        if self.kind == "cosine":
            t = (1.0 - math.cos(math.pi * t)) / 2.0
        return 1.0 + (self.final - 1.0) * t


class MemberSchedules:
    """P members' schedules of one value, evaluated together: `at(step)` -> (P,) multipliers."""

    def __init__(self, schedules: Sequence[Schedule], last: int, device) -> None:
        self.constant = all(s.constant for s in schedules)
        # A multiplier is 0 exactly from its `end` on when `final` is 0 (t reaches 1 there),
        # so the first step where some member's is 0 is known now, not re-derived per step.
        ends = [s.end if s.end is not None else last
                for s in schedules if not s.constant and s.final == 0]
        self.first_zero = min(ends, default=None)
        if self.constant:
            return

        def tensor(values):
            return torch.tensor(values, dtype=torch.float32, device=device)

        self.scheduled = tensor([not s.constant for s in schedules])
        self.cosine = tensor([s.kind == "cosine" for s in schedules])
        self.final = tensor([s.final for s in schedules])
        self.start = tensor([s.start for s in schedules])
        self.span = tensor([max((s.end if s.end is not None else last) - s.start, 1)
                            for s in schedules])

    def any_zero(self, step: int) -> bool:
        """Whether some member's multiplier is 0 at `step` (decided on the host: schedules are
        functions of the step, so this costs no sync)."""
        return self.first_zero is not None and step >= self.first_zero

    def at(self, step: int | Tensor) -> Tensor | None:
        """The multipliers at `step` (an int, or a device tensor in a captured step), or None
        when every schedule is constant."""
        if self.constant:
            return None
        t = ((step - self.start) / self.span).clamp(0.0, 1.0)
        t = torch.lerp(t, (1.0 - torch.cos(math.pi * t)) / 2.0, self.cosine)
        return 1.0 + (self.final - 1.0) * t * self.scheduled
