"""The run folder `runs/<name>/`: resolved config, metrics.jsonl, checkpoint, summary.json.

One place decides how a run starts, resumes or refuses to: a run folder with a checkpoint is
resumed when its config matches (only keys that do not change the training trajectory may
differ: those the schema marks `resumable`, see `fields.key_marks`), and refused with the
differing keys named otherwise. Nothing but an explicit
`--overwrite` deletes, and only a folder this package made as a run folder. One process at a
time writes a run folder: a second is refused while the first holds its lock.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import shutil
from functools import cache
from pathlib import Path
from typing import Any

from .checkpoint import (
    CheckpointError,
    atomic_write,
    check_layout,
    load_checkpoint,
    save_checkpoint,
)
from .config import ConfigError, config_to_dict, save_config
from .fields import key_marks

MARKER = ".mixup-gan-run"  # written into every run folder: --overwrite removes only these
SWEEP_MARKER = ".mixup-gan-sweep"  # written into every sweep folder
MARKER_TEXT = "made by mixup-gan; --overwrite deletes this folder only while it holds " \
              "nothing but what mixup-gan writes\n"
RUN_FILES = frozenset({MARKER, "config.yaml", "metrics.jsonl", "checkpoint.pt", "best.pt",
                       "summary.json", "final_samples.pt", "snapshots.pt", "snapshots.png",
                       "metrics.png"})
RUN_SUBFOLDERS = {"snapshots": "step_", "samples": "step_", "generators": "step_",
                  "tensorboard": "events.out."}
MAX_NAME = 200  # characters of a run or sweep name (a file name has at most 255 bytes)


def check_run_name(name: str, key: str = "output.name") -> str:
    """A run (or sweep) name is one plain folder name: never a path, '.', '..' or empty,
    at most `MAX_NAME` characters."""
    if (not isinstance(name, str) or not name.strip() or name in (".", "..") or "/" in name
            or "\\" in name or "\0" in name or Path(name).is_absolute()):
        raise ConfigError(f"{key} {name!r}: a run name must be a plain folder name "
                          "(no '/', not '.' or '..')")
    if len(name.encode()) > MAX_NAME:
        raise ConfigError(f"{key} {name[:20]!r}...: a run name has at most {MAX_NAME} "
                          f"characters, this one has {len(name)}")
    return name


def folder_identity(path: str | Path) -> Path:
    """The one identity of a folder, whatever the path that names it: symlinks and `..`
    resolved (the folder need not exist yet). Every lock and ownership check keys on it, so
    `runs/b -> runs/a` is the same folder as `runs/a`."""
    return Path(os.path.realpath(path))


def owned(path: Path, marker: str = MARKER, legacy=None) -> bool:
    """Whether `path` was made by this package: it holds `marker` with the text this package
    writes (empty: written by versions before the text), or passes `legacy(path)`."""
    mark = path / marker
    if mark.is_file() and not mark.is_symlink():
        try:
            return mark.read_text() in ("", MARKER_TEXT)
        except (OSError, UnicodeDecodeError):
            return False
    return legacy is not None and legacy(path)


def is_run_folder(path: Path) -> bool:
    """Whether `path` was made by this package as a run folder."""
    return owned(path)


def foreign_file(path: Path) -> Path | None:
    """The first file under a run folder that no run writes (None: only ours)."""
    for entry in sorted(path.iterdir()):
        name = entry.name.removesuffix(".tmp")
        if entry.is_symlink():
            return entry
        if entry.is_dir() and name in RUN_SUBFOLDERS:
            inner = next((f for f in sorted(entry.rglob("*"))
                          if f.is_symlink() or not f.name.startswith(RUN_SUBFOLDERS[name])),
                         None)
            if inner is not None:
                return inner
        elif not (entry.is_file() and name in RUN_FILES):
            return entry
    return None


def claim_folder(path: Path, key: str, *, marker: str = MARKER, legacy=None,
                 overwrite: bool = False, where: str = "") -> Path:
    """Make `path` (a run or sweep folder) ours to write, or refuse with a ConfigError naming
    `key` (after `where`, e.g. the sweep file): a folder that holds files but was not made
    by this package is never written into, and `overwrite` deletes only a folder proven ours
    that holds nothing but what runs write.
    The folder is handled through its identity (a symlink to it is followed, never deleted).
    Returns the identity."""
    real = folder_identity(path)
    shown = path if real == Path(path).absolute() else f"{path} (-> {real})"
    if real.is_dir() and any(real.iterdir()) and not owned(real, marker, legacy):
        raise ConfigError(f"{where}{key}: {shown} holds files but is not a mixup-gan "
                          f"{'run' if marker == MARKER else 'sweep'} folder: refusing to "
                          f"{'delete' if overwrite else 'write into'} it; choose another "
                          f"{key}")
    if overwrite and real.is_dir():
        stray = foreign_file(real)
        if stray is not None:
            raise ConfigError(f"{where}{key}: {shown} holds {stray.relative_to(real)}, which "
                              "mixup-gan did not write: refusing to delete the folder; move "
                              f"that file away or choose another {key}")
        shutil.rmtree(real)
    make_folder(real, f"{where}{key}")
    if not (real / marker).is_file() or (real / marker).read_text() != MARKER_TEXT:
        atomic_write(real / marker, MARKER_TEXT, fsync=False)
    return real


def read_jsonl(path: Path) -> list[dict]:
    """The rows of a JSON-lines file we append to (metrics.jsonl, results.jsonl).

    A crash mid-write leaves a partial last line: it is dropped (every whole row is kept,
    and the next write rewrites the file without it). Any other line that is not a JSON
    object is a ConfigError naming the file and the line."""
    if not path.is_file():
        return []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it ({exc})") from None
    lines = text.split("\n")
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            if number == len(lines):  # no newline after it: a write cut short
                break
            row = None
        if not isinstance(row, dict):
            raise ConfigError(f"{path}, line {number}: not a JSON object ({line[:60]!r}); "
                              "the file is damaged: fix or remove that line")
        rows.append(row)
    return rows


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

    def __init__(self, folder: Path, key: str = "output.name") -> None:
        real = folder_identity(folder)  # one lock per folder, however it is named
        self.path = real.with_name(f".{real.name}.lock")
        self.key, self.handle = key, None  # key: the setting that names the folder

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
                              f"wait for it to finish, or choose another {self.key}") from None
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


def _step(row: dict) -> int:
    step = row.get("step", 0)
    return step if isinstance(step, (int, float)) and not isinstance(step, bool) else 0


def _finite_or_none(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class RunFolder:
    """Paths and files of one run."""

    def __init__(self, root: str | Path, name: str, key: str = "output.name") -> None:
        self.root, self.key = Path(root), key  # key: the setting naming it (sweeps: name)
        self.path = self.root / check_run_name(name)
        self.config = self.path / "config.yaml"
        self.metrics = self.path / "metrics.jsonl"
        self.checkpoint = self.path / "checkpoint.pt"
        self.summary = self.path / "summary.json"
        self.lock = FolderLock(self.path, key)
        self.finished = False  # the checkpoint is already at (or past) the last step

    def start(self, config, *, overwrite: bool = False, steps: int | None = None,
              members: bool = False) -> dict | None:
        """Lock and prepare the folder; return the checkpoint state to resume from, or None.

        `config`: the run's config (a schema dataclass, whose marks say which keys a resume
        may change). `steps`: the run's last step (epoch); a checkpoint already there marks
        the run finished, and then nothing in the folder is rewritten. `members`: `config`
        maps population members' ids to their configs. Raises `ConfigError` when a checkpoint
        exists for a different config, the folder is another process's, or cannot be made.
        """
        make_folder(self.root, "output.dir")
        self.lock.acquire(str(self.path))
        claim_folder(self.path, self.key, overwrite=overwrite)
        state = None
        if self.checkpoint.exists():
            state = check_layout(load_checkpoint(self.checkpoint), str(self.checkpoint))
            if not isinstance(state.get("config", {}), dict):
                raise CheckpointError(f"{self.checkpoint}: its config is not a mapping "
                                      "(tampered or not a mixup-gan checkpoint)")
            schema = type(next(iter(config.values())) if members else config)
            differing = config_differences(state.get("config", {}), config_to_dict(config),
                                           schema, members=members)
            if differing:
                raise ConfigError(
                    f"{self.path} holds a run with a different config ({', '.join(differing)}); "
                    f"pass --overwrite to start again or choose another {self.key}"
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
        """The summary of a finished run; None when there is none or it is damaged (it is
        written again from the metrics)."""
        try:
            summary = json.loads(self.summary.read_text())
        except (OSError, ValueError):
            return None
        return summary if isinstance(summary, dict) else None

    def save(self, state: dict, config, name: str = "checkpoint.pt") -> None:
        """Atomically write the checkpoint (or another named state), with its config."""
        save_checkpoint({**state, "config": config_to_dict(config)}, self.path / name)

    def log(self, row: dict) -> None:
        """Append one metrics row (non-finite numbers become null)."""
        clean = {k: _finite_or_none(v) for k, v in row.items()}
        with self.metrics.open("a") as handle:
            handle.write(json.dumps(clean) + "\n")

    def read_metrics(self) -> list[dict]:
        return read_jsonl(self.metrics)

    def truncate_metrics(self, after_step: int) -> None:
        """Drop rows logged after `after_step` (work lost since the last checkpoint) and a
        partial last line."""
        rows = [r for r in self.read_metrics() if _step(r) <= after_step]
        atomic_write(self.metrics, "".join(json.dumps(r) + "\n" for r in rows))

    def write_summary(self, summary: dict) -> None:
        clean = {k: _finite_or_none(v) for k, v in summary.items()}
        atomic_write(self.summary, json.dumps(clean, indent=2) + "\n")


def config_differences(old: dict, new: dict, schema, *, members: bool = False) -> list[str]:
    """Keys whose values differ between two config dicts of `schema`, ignoring the keys it
    marks resumable.

    `members`: both map population members' ids to their configs; each member is compared
    with the same rule, and a member present on one side only is a difference.
    """
    if members:
        out = [f"member {k!r} {'added' if k in new else 'removed'}"
               for k in sorted(set(old) ^ set(new))]
        for k in old:
            if k in new:
                out += [f"{k}: {d}" for d in config_differences(old[k], new[k], schema)]
        return out
    # A key that an older version did not write trains as its default does (options are
    # added with defaults that leave training unchanged), so it is filled in before comparing.
    defaults = _defaults(schema)
    a, b = {**defaults, **_flatten(old)}, {**defaults, **_flatten(new)}
    keys = sorted(set(a) | set(b))
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys
            if a.get(k) != b.get(k) and _trains(k, a, b, schema)]


@cache
def _defaults(schema) -> dict[str, Any]:
    """The schema's default config, flattened (read it, never change it: it is cached)."""
    return _flatten(config_to_dict(schema()))


def _trains(key: str, old: dict, new: dict, schema) -> bool:
    """Whether a change of `key` (flattened) changes what is trained: any key but those the
    schema marks resumable; a `trains_when` key (an image folder's root: the folder *is*
    the data) only resumes naming the same folder, symlinks resolved."""
    marks = key_marks(schema, key)
    if not marks.get("resumable"):
        return True
    if marks.get("trains_when"):
        sibling, value = marks["trains_when"]
        other = f"{key.rpartition('.')[0]}.{sibling}".lstrip(".")
        if old.get(other) == value or new.get(other) == value:
            return not (isinstance(old.get(key), str) and isinstance(new.get(key), str)
                        and folder_identity(old[key]) == folder_identity(new[key]))
    return False
