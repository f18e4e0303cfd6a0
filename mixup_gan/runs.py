"""The run folder `runs/<name>/`: resolved config, metrics.jsonl, checkpoint, summary.json.

One place decides how a run starts, resumes or refuses to: a run folder with a checkpoint is
resumed when its config matches (only keys that do not change the training trajectory may
differ), and refused with the differing keys named otherwise.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

from .checkpoint import load_checkpoint, save_checkpoint
from .config import ConfigError, config_to_dict, save_config

# Keys that may change between a run and its resume: they do not alter the trajectory.
RESUMABLE_PREFIXES = ("train.steps", "eval.", "output.")


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _finite_or_none(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class RunFolder:
    """Paths and files of one run."""

    def __init__(self, root: str | Path, name: str) -> None:
        self.path = Path(root) / name
        self.config = self.path / "config.yaml"
        self.metrics = self.path / "metrics.jsonl"
        self.checkpoint = self.path / "checkpoint.pt"
        self.summary = self.path / "summary.json"

    def start(self, config, *, overwrite: bool = False) -> dict | None:
        """Prepare the folder; return the checkpoint state to resume from, or None.

        Raises `ConfigError` when a checkpoint exists for a different config.
        """
        if overwrite and self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        state = None
        if self.checkpoint.exists():
            state = load_checkpoint(self.checkpoint)
            differing = config_differences(state.get("config", {}), config_to_dict(config))
            if differing:
                raise ConfigError(
                    f"{self.path} holds a run with a different config ({', '.join(differing)}); "
                    "pass --overwrite to start again or choose another output.name"
                )
        self.truncate_metrics(after_step=int(state["step"]) if state else 0)
        save_config(config, self.config)
        return state

    def fit(self, trainer, steps: int, hooks, *, progress: bool) -> None:
        """`trainer.fit`, with a divergence message that says what became of the checkpoint."""
        from .train import TrainingDiverged

        try:
            trainer.fit(steps, hooks, progress=progress)
        except TrainingDiverged as exc:
            kept = (f"the last good checkpoint {self.checkpoint} is intact"
                    if self.checkpoint.exists() else "no checkpoint had been written yet")
            raise TrainingDiverged(f"{exc}; {kept}") from None

    def save(self, state: dict, config, name: str = "checkpoint.pt") -> None:
        """Atomically write the checkpoint (or another named state), with its config."""
        save_checkpoint({**state, "config": config_to_dict(config)}, self.path / name)

    def log(self, row: dict) -> None:
        """Append one metrics row (non-finite numbers become null)."""
        clean = {k: _finite_or_none(v) for k, v in row.items()}
        with self.metrics.open("a") as handle:
            handle.write(json.dumps(clean) + "\n")

    def read_metrics(self) -> list[dict]:
        if not self.metrics.exists():
            return []
        return [json.loads(line) for line in self.metrics.read_text().splitlines() if line]

    def truncate_metrics(self, after_step: int) -> None:
        """Drop rows logged after `after_step` (work lost since the last checkpoint)."""
        rows = [r for r in self.read_metrics() if r.get("step", 0) <= after_step]
        self.metrics.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def write_summary(self, summary: dict) -> None:
        clean = {k: _finite_or_none(v) for k, v in summary.items()}
        self.summary.write_text(json.dumps(clean, indent=2) + "\n")


def config_differences(old: dict, new: dict) -> list[str]:
    """Keys whose values differ between two config dicts, ignoring resumable keys."""
    a, b = _flatten(old), _flatten(new)
    keys = sorted(set(a) | set(b))
    return [
        f"{k}: {a.get(k)!r} -> {b.get(k)!r}"
        for k in keys
        if a.get(k) != b.get(k) and not k.startswith(RESUMABLE_PREFIXES)
    ]
