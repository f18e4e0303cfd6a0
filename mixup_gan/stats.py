"""The one stats channel: what a training step reports, summed on the device, and the one
merged metrics row per logged step that the loop hands to its writers.

A step returns its stats: a name -> each member's value, a (P,) device tensor, or a
`(value, counted)` pair when a value exists for some members only at this step (D's mean
output on the mixed rows, for the members that mixed). `Stats.add` folds them into device
sums and counts in place, with no host read, so it is part of a captured step. At a sync
point a hook `drain`s the means since the last drain into this step's rows (one per
member) and `log`s host values (metrics, FID) into them; the loop's `flush` hands the
merged rows to the writers: `metrics.jsonl`, TensorBoard, whatever a run kind adds.

A new stat is one more entry in what a step returns (`gan_step.GANStep`); it reaches the
rows, the summary (each key's last value) and TensorBoard with no more code. Names ending
in `_loss` are losses: the progress bar and a divergence message show them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from .config import ConfigError

Stat = Tensor | tuple[Tensor, Tensor]  # (P,) values, or (values, counted (P,) bool)
Writer = Callable[[list[dict]], None]  # gets one logged step's rows, one per member


class Stats:
    """Device sums of named per-member values, and the rows of the step being logged."""

    def __init__(self, members: int = 1, device: torch.device | str = "cpu") -> None:
        self.members, self.device = members, torch.device(device)
        self.sums: dict[str, Tensor] = {}  # name -> (P,) float64
        self.counts: dict[str, Tensor] = {}  # name -> (P,) float64: steps summed
        self.labels: list[dict] = [{} for _ in range(members)]  # first in every row
        self.rows: list[dict] = [{} for _ in range(members)]
        self.writers: list[Writer] = []
        self.board = None  # the run's TensorBoard SummaryWriter when output.tensorboard

    # --- the device side: part of a step, no host read ------------------------------------

    def add(self, stats: dict[str, Stat]) -> None:
        """Fold one step's stats (detached tensors) into the sums, in place."""
        for name, value in stats.items():
            counted = None
            if isinstance(value, tuple):
                value, counted = value
            if name not in self.sums:
                self.sums[name] = torch.zeros(self.members, dtype=torch.float64,
                                              device=self.device)
                self.counts[name] = torch.zeros_like(self.sums[name])
            if counted is None:
                self.sums[name] += value.double()
                self.counts[name] += 1
            else:
                self.sums[name] += torch.where(counted, value.double(), 0.0)
                self.counts[name] += counted

    # --- the host side: at sync points ----------------------------------------------------

    def pop_means(self) -> list[dict[str, float]]:
        """Each member's mean of each stat since the last call (one host read), then zero
        the sums in place (a captured step adds to these very tensors). A stat a member did
        not report since then is left out of its dict."""
        if not self.sums:
            return [{} for _ in range(self.members)]
        names = list(self.sums)
        sums = torch.stack([self.sums[n] for n in names])
        counts = torch.stack([self.counts[n] for n in names])
        means, counted = (sums / counts.clamp(min=1)).tolist(), (counts > 0).tolist()
        for name in names:
            self.sums[name].zero_()
            self.counts[name].zero_()
        return [{n: means[i][k] for i, n in enumerate(names) if counted[i][k]}
                for k in range(self.members)]

    def drain(self) -> None:
        """The means since the last drain into this step's rows."""
        for row, means in zip(self.rows, self.pop_means(), strict=True):
            row.update(means)

    def log(self, values: dict, member: int | None = None) -> None:
        """Host values (metrics, FID) into this step's row of `member`, or of every member."""
        for k in range(self.members) if member is None else [member]:
            self.rows[k].update(values)

    def flush(self, step: int) -> None:
        """Hand this step's merged rows to the writers (if anything was logged), then clear."""
        if not any(self.rows):
            return
        rows = [{**label, "step": step, **row} for label, row in zip(self.labels, self.rows,
                                                                      strict=True)]
        self.rows = [{} for _ in range(self.members)]
        for write in self.writers:
            write(rows)

    # --- checkpoint state -----------------------------------------------------------------

    def state_dict(self) -> dict:
        out = {name: value.cpu() for name, value in self.sums.items()}
        out.update({f"{name}/count": value.cpu() for name, value in self.counts.items()})
        return out

    def load_state_dict(self, state: dict) -> None:
        """Sums and counts as `state_dict` wrote them; a checkpoint of an earlier version
        holds `{name: sum, "count": steps}`."""
        shared = state.get("count")
        for name in self.sums:  # sums the checkpoint does not hold start at zero
            self.sums[name].zero_()
            self.counts[name].zero_()
        for name, value in state.items():
            if name == "count" or name.endswith("/count"):
                continue
            count = state.get(f"{name}/count", shared)
            for into, source in ((self.sums, value), (self.counts, count)):
                if name not in into:
                    into[name] = torch.zeros(self.members, dtype=torch.float64,
                                             device=self.device)
                into[name].copy_(torch.as_tensor(source, dtype=torch.float64))


# --- TensorBoard: optional, reads the same rows -------------------------------------------

def open_tensorboard(path: Path | None):
    """A TensorBoard SummaryWriter on `path` (`output.tensorboard`); with `path` None only
    check that it can be made. A ConfigError naming the key when tensorboard is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError("output.tensorboard: true needs the tensorboard package; "
                          "pip install tensorboard (or set output.tensorboard: false)") from None
    return None if path is None else SummaryWriter(str(path))


def board_writer(board) -> Writer:
    """Writes each row's numbers as scalars (losses under loss/, the rest under stats/; a
    population member's under its `run` id)."""

    def write(rows: list[dict]) -> None:
        for row in rows:
            where = f"{row['run']}/" if "run" in row else ""
            for key, value in row.items():
                if key in ("step", "run") or isinstance(value, bool):
                    continue
                if isinstance(value, (int, float)) and math.isfinite(value):
                    group = "loss" if key.endswith("_loss") else "stats"
                    board.add_scalar(f"{where}{group}/{key}", value, row["step"])
        board.flush()

    return write
