"""Sweeps past one process: which populations shard K of N trains, and what is not done yet.

A sweep is split over N processes by its population list alone (no process group, no
collective): the split is a deterministic function of the populations' costs (members x
steps) and N, so every process, and the report, can tell which populations are whose. The
shard comes from `--shard K/N` or from the launcher's environment: torchrun's RANK /
WORLD_SIZE (and LOCAL_RANK for the GPU), a SLURM job array's task id and count; inside a
SLURM array of torchrun jobs, task t's rank r is shard t x WORLD_SIZE + r.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from ...config import ConfigError, config_to_dict
from ...run_folder import RunFolder, config_differences
from ..config import ToyConfig
from .grid import SweepRun, group_name

FLAG = "--shard"


@dataclass(frozen=True)
class Shard:
    """Process `index` of `count`; `local_rank`: the GPU index torchrun gives this process."""

    index: int = 0
    count: int = 1
    local_rank: int | None = None
    source: str = ""  # where it came from, for messages: "--shard 1/2", "RANK=1, WORLD_SIZE=2"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


WHOLE = Shard()


MAX_SHARDS = 65536  # the split's cost grows with N: a typo must not allocate for hours


def parse_shard(text: str) -> Shard:
    """`K/N` with 0 <= K < N; anything else is a ConfigError naming the flag."""
    match = re.fullmatch(r"\s*(-?[0-9]+)\s*/\s*(-?[0-9]+)\s*", text, flags=re.ASCII)
    if not match:
        raise ConfigError(f"{FLAG} {text!r}: expected K/N, e.g. {FLAG} 0/4 (process K of N, "
                          "K counted from 0)")
    index, count = int(match[1]), int(match[2])
    if not 1 <= count <= MAX_SHARDS:
        raise ConfigError(f"{FLAG} {text!r}: N must be 1 to {MAX_SHARDS}")
    if not 0 <= index < count:
        raise ConfigError(f"{FLAG} {text!r}: K must be 0 to {count - 1} (counted from 0)")
    return Shard(index, count, source=f"{FLAG} {text.strip()}")


def _int_env(environ: Mapping[str, str], name: str) -> int:
    text = environ[name]
    try:
        if not text.strip().isascii():
            raise ValueError(text)
        return int(text)
    except ValueError:
        raise ConfigError(f"environment variable {name}={text!r} is not an integer") from None


def _pair(environ: Mapping[str, str], index_name: str, count_name: str) -> tuple[int, int]:
    index, count = _int_env(environ, index_name), _int_env(environ, count_name)
    if not 1 <= count <= MAX_SHARDS or not 0 <= index < count:
        raise ConfigError(f"environment variables {index_name}={index}, {count_name}={count}: "
                          f"expected 0 <= {index_name} < {count_name}; or pass {FLAG} K/N")
    return index, count


def _slurm_array(environ: Mapping[str, str]) -> tuple[int, int] | None:
    """(task, tasks) of a SLURM job array; ids may start anywhere and step (--array=4-11:2)."""
    if "SLURM_ARRAY_TASK_ID" not in environ:
        return None
    task = _int_env(environ, "SLURM_ARRAY_TASK_ID")
    first = _int_env(environ, "SLURM_ARRAY_TASK_MIN") if "SLURM_ARRAY_TASK_MIN" in environ else 0
    step = _int_env(environ, "SLURM_ARRAY_TASK_STEP") if "SLURM_ARRAY_TASK_STEP" in environ else 1
    if "SLURM_ARRAY_TASK_COUNT" in environ:
        tasks = _int_env(environ, "SLURM_ARRAY_TASK_COUNT")
    elif "SLURM_ARRAY_TASK_MAX" in environ:
        tasks = (_int_env(environ, "SLURM_ARRAY_TASK_MAX") - first) // max(step, 1) + 1
    else:
        raise ConfigError("environment variable SLURM_ARRAY_TASK_ID is set without "
                          f"SLURM_ARRAY_TASK_COUNT; pass {FLAG} K/N")
    offset = task - first
    if step < 1 or offset % step or not 0 <= offset // step < tasks:
        raise ConfigError(f"SLURM array task {task} (min {first}, step {step}, count {tasks}): "
                          f"array ids must be one range, e.g. --array=0-7; or pass {FLAG} K/N")
    return offset // step, tasks


def shard_from_env(environ: Mapping[str, str] = os.environ) -> Shard:
    """The launcher's shard: torchrun's RANK of WORLD_SIZE, a SLURM array's task of its
    count, or both combined; the whole sweep when neither is set."""
    parts, names = [], []
    if (array := _slurm_array(environ)) is not None:
        parts.append(array)
        names.append(f"SLURM_ARRAY_TASK_ID={environ['SLURM_ARRAY_TASK_ID']}")
    if "WORLD_SIZE" in environ or "RANK" in environ:
        for name in ("RANK", "WORLD_SIZE"):
            if name not in environ:
                raise ConfigError(f"environment variable {name} is not set but "
                                  f"{'WORLD_SIZE' if name == 'RANK' else 'RANK'} is; "
                                  f"pass {FLAG} K/N")
        parts.append(_pair(environ, "RANK", "WORLD_SIZE"))
        names.append(f"RANK={environ['RANK']}, WORLD_SIZE={environ['WORLD_SIZE']}")
    index, count = 0, 1
    for part_index, part_count in parts:  # an array of torchrun jobs: task-major
        index, count = index * part_count + part_index, count * part_count
    local = _int_env(environ, "LOCAL_RANK") if "LOCAL_RANK" in environ else None
    return Shard(index, count, local, ", ".join(names))


def resolve_shard(flag: str | None, environ: Mapping[str, str] = os.environ) -> Shard:
    """`--shard K/N` when given (it must agree with a launcher that shards), else the
    launcher's environment."""
    env = shard_from_env(environ)
    if flag is None:
        return env
    given = parse_shard(flag)
    if env.count > 1 and (given.index, given.count) != (env.index, env.count):
        raise ConfigError(f"{FLAG} {flag}: the launcher says this is shard {env} "
                          f"({env.source}); drop {FLAG} or make them agree")
    return Shard(given.index, given.count, env.local_rank, given.source)


def place(device: torch.device, shard: Shard) -> torch.device:
    """`device`, on CUDA without an index: the GPU of this process's LOCAL_RANK."""
    if device.type != "cuda" or device.index is not None or shard.local_rank is None:
        return device
    if shard.local_rank >= torch.cuda.device_count():
        raise ConfigError(f"LOCAL_RANK={shard.local_rank} but this machine has "
                          f"{torch.cuda.device_count()} GPU(s): start at most that many "
                          "processes per machine (torchrun --nproc_per_node)")
    return torch.device("cuda", shard.local_rank)


def cost(members: list[SweepRun]) -> int:
    """What a population costs to train: run-iterations (members x steps)."""
    return len(members) * members[0].config.train.steps


def split(costs: list[int], count: int) -> list[int]:
    """The shard of each population: the costliest first, each to the least loaded shard
    (ties: the earlier population, the lower shard), so the shards' loads are balanced
    and every process computes the same split."""
    loads, owner = [0] * count, [0] * len(costs)
    for k in sorted(range(len(costs)), key=lambda k: (-costs[k], k)):
        shard = min(range(count), key=lambda s: (loads[s], s))
        owner[k] = shard
        loads[shard] += costs[k]
    return owner


def share(groups: list[list[SweepRun]], shard: Shard) -> list[list[SweepRun]]:
    """The populations shard `shard` trains, in the sweep's order."""
    owner = split([cost(g) for g in groups], shard.count)
    return [g for g, s in zip(groups, owner, strict=True) if s == shard.index]


def record(members: list[SweepRun]) -> dict:
    """What a population's folder keeps as its config: member id -> resolved config (the
    schema's dataclass: the run folder reads its resume marks)."""
    return {r.id: r.config for r in members}


def steps_done(root: Path, members: list[SweepRun]) -> int | None:
    """The last step a population finished for this sweep, None if it is not done: its
    summary reaches train.steps and its folder holds this sweep's training config (a folder
    left by a different one, about to be overwritten, is not done)."""
    folder = RunFolder(root / "populations", group_name(members))
    try:  # another process may be writing these right now: unreadable means not done
        summary = json.loads(folder.summary.read_text())
        saved = yaml.safe_load(folder.config.read_text())
    except (OSError, ValueError, yaml.YAMLError):
        return None
    steps = summary.get("steps") if isinstance(summary, dict) else None
    if (not isinstance(steps, int) or steps < members[0].config.train.steps
            or not isinstance(saved, dict)
            or config_differences(saved, config_to_dict(record(members)), ToyConfig,
                                  members=True)):
        return None
    return steps


def not_done(root: Path, groups: list[list[SweepRun]]) -> list[str]:
    """One line per population not done: its folder, members and the last step it logged."""
    lines = []
    for members in groups:
        if steps_done(root, members) is None:
            name = group_name(members)
            try:  # its process may be appending a row right now
                rows = RunFolder(root / "populations", name).read_metrics()
            except ValueError:
                rows = []
            steps = members[0].config.train.steps
            where = f"at step {rows[-1]['step']} of {steps}" if rows else "not started"
            lines.append(f"{name}: {len(members)} runs, {where} (first run {members[0].id})")
    return lines


def write_once(path: Path, text: str) -> None:
    """Write `text` to `path` atomically, unless it already holds exactly that: processes
    racing to write the same file leave it whole (a temporary file each, then a rename)."""
    try:
        if path.read_text() == text:
            return
    except (OSError, UnicodeDecodeError):
        pass
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it 0600: readers on a shared cluster
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
