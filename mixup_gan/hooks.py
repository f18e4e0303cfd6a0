"""When a training loop calls back: every N steps, at given steps, after the last step.

The one loop (`loop.py`) calls them for GAN and classifier trainers alike, and the run
skeleton adds its checkpoint hook to them. A hook logs into the step's row through the
trainer's stats channel (`trainer.stats.drain()`, `trainer.stats.log({...})`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Hook:
    """Call `fn(trainer)` after every `every`-th step, at the steps in `at`, and (when
    `final`) after the last step."""

    fn: Callable[[Any], None]
    every: int | None = None
    at: Iterable[int] = ()
    final: bool = True
    _at: frozenset[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._at = frozenset(self.at)

    def due(self, step: int, last: int) -> bool:
        return (
            (self.every is not None and step % self.every == 0)
            or step in self._at
            or (self.final and step == last)
        )
