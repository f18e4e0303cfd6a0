"""The one training loop, for GAN and classifier trainers: a step, the hooks when due, the
sync points, the progress bar and the divergence check, the step's rows flushed.

A trainer gives the loop `step` (steps done), `run_step()` (one step, with no host read),
`check_finite()` (at a sync point: raise `TrainingDiverged`, naming the step), `postfix()`
(what the progress bar shows) and `stats` (its `stats.Stats` channel, whose rows the loop
flushes after each step's hooks). The host reads the trainer's device state only at sync
points: before hooks run, every `sync_every` steps and after the last step, so a diverged
run stops before any hook (a checkpoint, say) sees its weights.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from tqdm.auto import tqdm

from .hooks import Hook
from .stats import Stats


class Steppable(Protocol):
    step: int
    stats: Stats

    def run_step(self) -> None: ...

    def check_finite(self) -> None: ...

    def postfix(self) -> dict[str, str]: ...


def fit_iter(trainer: Steppable, steps: int, hooks: Iterable[Hook] = (), *,
             progress: bool = True, desc: str = "train", sync_every: int = 1) -> Iterator[None]:
    """Train `trainer` until `steps` steps are done, calling hooks when due; yields after
    each step, so that a caller can interleave runs (`runs.interleave`).

    A hook due every step syncs every step; host-only work belongs at `every=sync_every`.
    """
    hooks = list(hooks)
    bar = tqdm(total=steps, initial=trainer.step, disable=not progress, desc=desc,
               dynamic_ncols=True)
    try:
        while trainer.step < steps:
            trainer.run_step()
            trainer.step += 1
            due = [hook for hook in hooks if hook.due(trainer.step, steps)]
            if due or trainer.step % sync_every == 0 or trainer.step == steps:
                trainer.check_finite()
                if progress:
                    bar.set_postfix(trainer.postfix())
            bar.update(1)
            for hook in due:
                hook.fn(trainer)
            trainer.stats.flush(trainer.step)
            yield
    finally:
        bar.close()
