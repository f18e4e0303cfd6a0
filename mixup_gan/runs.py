"""The one run skeleton every run kind goes through (toy, image, classify, sweep populations):

    folder (lock, check, resume) -> restore -> fit(steps, hooks) -> checkpoints -> summary

A run kind builds its trainer (anything with `step`, `fit(steps, hooks, progress=...)`,
`state_dict()` and `load_state_dict()`) and its hooks, and describes itself in a `Run`;
`execute` does the rest the same way for all: one checkpoint hook, one divergence message,
one summary (each metric's last logged value plus what the kind adds), and nothing rewritten when a
finished run is started again. A trainer with a stats channel (`stats.Stats`, as the GAN and
classifier trainers have) gets its writers here: its merged rows go to `metrics.jsonl` and,
with `output.tensorboard`, to TensorBoard; the summary reads the same rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from .checkpoint import check_layout, check_state, load_checkpoint
from .hooks import Hook
from .run_folder import RunFolder
from .runtime import TrainingDiverged
from .stats import board_writer, open_tensorboard


class Trainer(Protocol):
    """What the skeleton drives; a `stats` channel (`stats.Stats`) is optional: a trainer
    without one writes its own rows."""

    step: int

    def fit_iter(self, steps: int, hooks: list[Hook], *, progress: bool) -> Iterator[None]:
        """Train to `steps`, calling hooks when due, yielding after each step."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


@dataclass
class Run:
    """What the skeleton needs to know of one run.

    `record` is what the folder keeps as the run's config (a config, or `{member id:
    config}` with `members=True`); `hooks()` is called after the restore (a hook may read
    what the folder holds); `summarize(rows)` adds the kind's entries to the summary;
    `rate = (key, scale)` names the speed figure: `scale` units per step per second;
    `tensorboard` (`output.tensorboard`) also writes the rows to `<run>/tensorboard`.
    Under DDP every process runs `execute`; only the `main` one writes the folder.
    """

    folder: RunFolder
    record: Any
    trainer: Trainer
    steps: int
    device: torch.device
    checkpoint_every: int
    overwrite: bool = False
    progress: bool = True
    members: bool = False
    hooks: Callable[[], list[Hook]] = list
    summarize: Callable[[list[dict]], dict] = field(default=lambda rows: {})
    rate: tuple[str, float] = ("iterations_per_second", 1.0)
    main: bool = True
    barrier: Callable[[], None] = field(default=lambda: None)
    tensorboard: bool = False


def execute(run: Run) -> dict:
    """Train (or resume, or only report) `run`; returns its summary ({} off the main process)."""
    return interleave([(run.device, lambda: execute_iter(run))], at_once=1)[0]


def execute_iter(run: Run) -> Generator[None, None, dict]:
    """`execute` one step at a time: yields after each training step, returns the summary."""
    folder, trainer = run.folder, run.trainer
    stats, board = getattr(trainer, "stats", None), None
    if run.tensorboard and run.main:
        open_tensorboard(None)  # a missing package is named before anything is written
    try:
        state = None
        if run.main:
            state = folder.start(run.record, overwrite=run.overwrite, steps=run.steps,
                                 members=run.members)
        run.barrier()  # the main process has prepared the folder; the others read from it
        if not run.main and folder.checkpoint.exists():
            state = load_checkpoint(folder.checkpoint)
        if state is not None:  # a tampered file or another model's: named, before loading
            what = str(folder.checkpoint)
            check_state(check_layout(state, what), trainer.state_dict(), what)
            trainer.load_state_dict(state)
        if run.main and folder.finished and (summary := folder.read_summary()) is not None:
            return summary  # nothing to train: the run folder stays as it is
        if stats is not None and run.main:
            stats.writers.append(lambda rows: [folder.log(row) for row in rows])
            if run.tensorboard:
                board = stats.board = open_tensorboard(folder.path / "tensorboard")
                stats.writers.append(board_writer(board))

        def checkpoint(t: Trainer) -> None:
            if stats is not None:  # this step's rows are written before its checkpoint
                stats.flush(t.step)
            if run.main:
                folder.save(t.state_dict(), run.record)

        hooks = [*run.hooks(), Hook(checkpoint, every=run.checkpoint_every)]  # last
        first, started = trainer.step, time.perf_counter()
        try:
            yield from trainer.fit_iter(run.steps, hooks,
                                        progress=run.progress and run.main)
        except TrainingDiverged as exc:
            kept = (f"the last good checkpoint {folder.checkpoint} is intact"
                    if folder.checkpoint.exists() else "no checkpoint had been written yet")
            raise TrainingDiverged(f"{exc}; {kept}") from None
        elapsed = time.perf_counter() - started
        if not run.main:
            return {}
        rows = folder.read_metrics()
        key, scale = run.rate
        trained = trainer.step - first
        summary = {"name": folder.path.name, "steps": trainer.step, "device": str(run.device),
                   key: trained * scale / elapsed if trained and elapsed else None,
                   **last_values(rows), **run.summarize(rows)}
        folder.write_summary(summary)
        return summary
    finally:
        if board is not None:
            board.close()
        folder.close()


def last_values(rows: list[dict]) -> dict:
    """Each key's last logged value over metrics rows of any shape (a loss row, an FID row
    logged at the same step after it), the step aside."""
    last: dict = {}
    for row in rows:
        last.update(row)
    last.pop("step", None)
    return last


def interleave(jobs: Sequence[tuple[torch.device, Callable[[], Generator[Any, Any, Any]]]],
               at_once: int) -> list:
    """Run jobs, `(device, generator function)`, `at_once` at a time, one step of each in
    turn, from this one thread; returns their return values in order.

    With `at_once` > 1, each CUDA job's device work goes to a stream of its own, so the GPU
    runs the steps of several small jobs (a sweep's populations) side by side; one job at a
    time stays on the current stream. A job starts when a slot frees.
    The first exception stops everything: it is raised after the other running jobs are
    closed (their `finally` blocks run; what they wrote at their last checkpoint stays)."""
    results: list = [None] * len(jobs)
    waiting = iter(enumerate(jobs))
    running: list[tuple[int, torch.cuda.Stream | None, Generator]] = []
    try:
        while True:
            while len(running) < at_once and (job := next(waiting, None)) is not None:
                k, (device, start) = job
                side = at_once > 1 and device.type == "cuda"
                stream = torch.cuda.Stream(device) if side else None
                running.append((k, stream, start()))
            if not running:
                return results
            for entry in list(running):
                k, stream, steps = entry
                with nullcontext() if stream is None else torch.cuda.stream(stream):
                    try:
                        next(steps)
                    except StopIteration as done:
                        results[k] = done.value
                        running.remove(entry)
    finally:
        for _, _, steps in running:
            steps.close()
