"""The run folder `runs/<name>/`: resolved config, metrics.jsonl, checkpoint, summary.json.

One place decides how a run starts, resumes or refuses to: a run folder with a checkpoint is
resumed when its config matches (only keys that do not change the training trajectory may
differ), and refused with the differing keys named otherwise. Nothing but an explicit
`--overwrite` deletes, and only a folder this package made as a run folder. One process at a
time writes a run folder: a second is refused while the first holds its lock.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

from .checkpoint import load_checkpoint, save_checkpoint
from .config import ConfigError, config_to_dict, save_config

# Keys that may change between a run and its resume: they do not alter the trajectory (more
# steps or epochs extend a run; evaluation, output and where the data or device are, or
# whether a step is replayed from a CUDA graph, do not change what is trained).
RESUMABLE_PREFIXES = ("train.steps", "train.epochs", "train.device", "train.capture",
                      "data.reference", "data.root", "data.download", "data.workers", "eval.",
                      "output.")
MARKER = ".mixup-gan-run"  # written into every run folder: --overwrite removes only these


def check_run_name(name: str, key: str = "output.name") -> str:
    """A run name is one plain folder name: never a path, '.', '..' or empty."""
    if (not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name
            or Path(name).is_absolute()):
        raise ConfigError(f"{key} {name!r}: a run name must be a plain folder name "
                          "(no '/', not '.' or '..')")
    return name


def is_run_folder(path: Path) -> bool:
    """Whether `path` was made by this package as a run folder."""
    return (path / MARKER).is_file() or (
        (path / "config.yaml").is_file() and (path / "checkpoint.pt").is_file())


def make_folder(path: Path, key: str) -> Path:
    """`mkdir -p path`; a path that cannot be made is a ConfigError naming `key`."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{key}: cannot create the folder {path} "
                          f"({exc.strerror or exc})") from None
    if not os.access(path, os.W_OK):
        raise ConfigError(f"{key}: the folder {path} is not writable")
    return path


class FolderLock:
    """An exclusive lock on `<folder>.lock` beside a folder, held while a process writes it.

    The kernel drops it when the process ends, killed or not, so a crash never leaves a
    folder locked.
    """

    def __init__(self, folder: Path) -> None:
        self.path = folder.with_name(f".{folder.name}.lock")
        self.handle = None

    def acquire(self, what: str) -> None:
        if self.handle is not None:
            return
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().strip() or "?"
            handle.close()
            raise ConfigError(f"{what} is in use by another mixup-gan process (pid {pid}); "
                              "wait for it to finish, or choose another output.name") from None
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        self.handle = handle

    def release(self) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None


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
        self.root = Path(root)
        self.path = self.root / check_run_name(name)
        self.config = self.path / "config.yaml"
        self.metrics = self.path / "metrics.jsonl"
        self.checkpoint = self.path / "checkpoint.pt"
        self.summary = self.path / "summary.json"
        self.lock = FolderLock(self.path)
        self.finished = False  # the checkpoint is already at (or past) the last step

    def start(self, config, *, overwrite: bool = False, steps: int | None = None,
              members: bool = False) -> dict | None:
        """Lock and prepare the folder; return the checkpoint state to resume from, or None.

        `steps`: the run's last step (epoch); a checkpoint already there marks the run
        finished, and then nothing in the folder is rewritten. `members`: `config` maps
        population members' ids to their configs. Raises `ConfigError` when a checkpoint
        exists for a different config, the folder is another process's, or cannot be made.
        """
        make_folder(self.root, "output.dir")
        self.lock.acquire(str(self.path))
        foreign = (self.path.is_dir() and any(self.path.iterdir())
                   and not is_run_folder(self.path))
        if foreign:  # never mix a run into (or later delete) someone else's files
            raise ConfigError(f"output.name: {self.path} holds files but is not a mixup-gan run "
                              f"folder: refusing to {'delete' if overwrite else 'write into'} "
                              "it; choose another output.name")
        if overwrite and self.path.exists():
            shutil.rmtree(self.path)
        make_folder(self.path, "output.dir")
        (self.path / MARKER).touch()
        state = None
        if self.checkpoint.exists():
            state = load_checkpoint(self.checkpoint)
            differing = config_differences(state.get("config", {}), config_to_dict(config),
                                           members=members)
            if differing:
                raise ConfigError(
                    f"{self.path} holds a run with a different config ({', '.join(differing)}); "
                    "pass --overwrite to start again or choose another output.name"
                )
            self.finished = steps is not None and int(state["step"]) >= steps
        if not self.finished:
            self.truncate_metrics(after_step=int(state["step"]) if state else 0)
            save_config(config, self.config)
        return state

    def close(self) -> None:
        """Release the folder for other processes."""
        self.lock.release()

    def read_summary(self) -> dict | None:
        return json.loads(self.summary.read_text()) if self.summary.is_file() else None

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


def config_differences(old: dict, new: dict, *, members: bool = False) -> list[str]:
    """Keys whose values differ between two config dicts, ignoring resumable keys.

    `members`: both map population members' ids to their configs; each member is compared
    with the same rule, and a member present on one side only is a difference.
    """
    if members:
        out = [f"member {k!r} {'added' if k in new else 'removed'}"
               for k in sorted(set(old) ^ set(new))]
        for k in old:
            if k in new:
                out += [f"{k}: {d}" for d in config_differences(old[k], new[k])]
        return out
    a, b = _flatten(old), _flatten(new)
    keys = sorted(set(a) | set(b))
    return [
        f"{k}: {a.get(k)!r} -> {b.get(k)!r}"
        for k in keys
        if a.get(k) != b.get(k) and not k.startswith(RESUMABLE_PREFIXES)
    ]
