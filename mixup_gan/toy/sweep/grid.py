"""A sweep file's grid: every run's config, fully checked before anything trains, and runs
grouped into populations that can share stacked networks."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from ...config import (
    ConfigError,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    key_marks,
    load_config,
    option,
    path_keys,
    section_paths,
)
from ...member_losses import member_planner
from ...run_folder import check_run_name
from ..config import ToyConfig
from ..data import DATASETS, NAMES, ToyDistribution, make_distribution
from ..metrics import METRICS
from ..runner import reference_points

_SECTIONS = section_paths(ToyConfig)  # what `set`, `grid` and `cases` write out as key paths
_PATHS = path_keys(ToyConfig)  # their keys that are paths (relative to the sweep file's folder)


@dataclass
class SweepConfig:
    base: str | None = option(None, path=True, doc="run config every run starts from")
    set: dict[str, Any] = option({}, paths=_PATHS, doc="overrides applied to every run")
    grid: dict[str, Any] = option({}, paths=_PATHS,
                                  doc="config key -> list of values; runs = product x seeds")
    cases: list[dict[str, Any]] = option(
        [], paths=_PATHS, doc="settings, each a mapping of config keys to values (e.g. one "
                              "lever added at a time); runs = cases x grid product x seeds")
    seeds: list[int] = option([0, 1, 2])
    population: int = option(30, gt=0, doc="most members trained together")
    concurrent: int | None = option(
        None, gt=0, doc="populations trained side by side, a step of each in turn (each on a "
                        "CUDA stream of its own); null: up to 8 on CUDA, 1 on CPU")
    output: str = option("runs/sweeps", doc="folder for this sweep's results")
    name: str | None = option(None, doc="default: the sweep file's stem")
    targets: dict[str, dict[str, float]] = option(
        {}, doc="data.name -> {metric: value}: the value a seed must reach (at least it where "
                "higher is better, at most where lower); summary.md counts the seeds that do")


@dataclass
class SweepRun:
    """One run of the grid: its id, grid values and resolved config."""

    id: str
    values: dict[str, Any]
    config: ToyConfig
    flat: dict[str, Any] = field(repr=False, default_factory=dict)
    dist: ToyDistribution | None = field(repr=False, default=None)  # its data, shared
    reference: torch.Tensor | None = field(repr=False, default=None)  # the points it is judged by


def _flat(config: ToyConfig) -> dict[str, Any]:
    return {f"{section}.{key}": value for section, values in config_to_dict(config).items()
            for key, value in values.items()}


def _lookup(data: dict, path: str) -> Any:
    """The value at a key path of a checked config (so every case shows the same type)."""
    for key in path.split("."):
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _key_paths(mapping: dict[str, Any], where: str) -> dict[str, Any]:
    """`mapping` with its sections written out as key paths, nested ones too: `train:
    {steps: 10}` means `train.steps: 10` and `train.lr_schedule: {kind: cosine}` means
    `train.lr_schedule.kind: cosine`, so a section's other keys keep the base config's values
    (as `--set set.train.steps=10` gives too). A key given both ways, or a section replaced by
    a value, is an error."""
    paths: dict[str, Any] = {}

    def add(path: str, value: Any) -> None:
        if path in _SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"{where}.{path}: name a key of the section, e.g. "
                                  f"{path}.<key>")
            for inner, v in value.items():
                add(f"{path}.{inner}", v)
        elif path in paths:
            raise ConfigError(f"{where}.{path} is given twice (as a key path and inside "
                              "its section)")
        else:
            paths[path] = value

    for key, value in mapping.items():
        add(key, value)
    return paths


def checked(sweep: SweepConfig, source: str) -> SweepConfig:
    """`sweep` with every key written as a key path, once its rules are checked."""
    sweep = replace(sweep, set=_key_paths(sweep.set, f"{source}: set"),
                    grid=_key_paths(sweep.grid, f"{source}: grid"),
                    cases=[_key_paths(case, f"{source}: cases[{i}]")
                           for i, case in enumerate(sweep.cases)])
    if not sweep.grid and not sweep.cases:
        raise ConfigError(f"{source}: grid is empty: name at least one key to sweep, e.g. "
                          "'loss.alpha: [0, 0.2]', or list cases")
    if not sweep.seeds:
        raise ConfigError(f"{source}: seeds is empty")
    for key, values in sweep.grid.items():
        if not isinstance(values, list):
            raise ConfigError(f"{source}: grid.{key}: expected a list of values, got {values!r}")
        if not values:
            raise ConfigError(f"{source}: grid.{key} has no values")
    _check_targets(sweep.targets, source)
    if "train.seed" in sweep.grid:
        raise ConfigError(f"{source}: grid.train.seed: list seeds under 'seeds' instead")
    for i, case in enumerate(sweep.cases):
        if "train.seed" in case:
            raise ConfigError(f"{source}: cases[{i}].train.seed: list seeds under 'seeds' "
                              "instead")
        both = [k for k in case if k in sweep.grid]
        if both:
            raise ConfigError(f"{source}: cases[{i}].{both[0]} is also a grid key: set it "
                              "in one place")
    return sweep


def expand(sweep: SweepConfig, source: str) -> list[SweepRun]:
    """All runs of the sweep, each config fully checked (its reference points too); errors
    name the sweep file, the run and the key. Every run's `values` hold the same keys: the
    keys any case sets (the resolved value where a case leaves one out), the grid's, the
    seed."""
    sweep = checked(sweep, source)
    try:
        base = load_config(sweep.base, ToyConfig) if sweep.base else ToyConfig()
    except ConfigError as exc:  # say which file names the base
        raise ConfigError(f"{source}: base: {exc}") from None
    base_dict = apply_overrides(config_to_dict(base), sweep.set)
    config_from_dict(base_dict, ToyConfig, source=f"{source}: set")
    keys = list(sweep.grid)
    case_keys = list(dict.fromkeys(k for case in sweep.cases for k in case))
    runs, data_sets, seen = [], {}, set()
    for case, combo in itertools.product(sweep.cases or [{}],
                                         itertools.product(*(sweep.grid[k] for k in keys))):
        for seed in sweep.seeds:
            values = {**case, **dict(zip(keys, combo, strict=True)), "train.seed": seed}
            where = f"{source}: run {_run_id(values)}"
            config = config_from_dict(apply_overrides(base_dict, values), ToyConfig,
                                      source=where)
            resolved = config_to_dict(config)
            values = {**{k: _lookup(resolved, k) for k in case_keys},
                      **dict(zip(keys, combo, strict=True)), "train.seed": seed}
            data = (config.data.name, config.data.scale, config.data.path,
                    config.data.reference, config.eval.n_samples)
            if data not in data_sets:  # the same data and reference are read and checked once
                try:
                    dist = make_distribution(config.data.name, scale=config.data.scale,
                                             path=config.data.path)
                    data_sets[data] = dist, reference_points(config, dist)
                except (ConfigError, ValueError) as exc:
                    raise ConfigError(f"{where}: {exc}") from None
            run_id = _run_id(values)
            if run_id in seen:
                raise ConfigError(f"{where}: this run is listed twice (two cases or grid "
                                  "values give the same settings)")
            seen.add(run_id)
            runs.append(SweepRun(run_id, values, config, _flat(config), *data_sets[data]))
    return runs


def _check_targets(targets: dict[str, dict[str, float]], source: str) -> None:
    """Each target names a toy dataset and metrics that apply to it, with values a seed can
    reach. A dataset the sweep does not run (its grid narrowed by --set) has no row to count."""
    for name, wanted in targets.items():
        where = f"{source}: targets.{name}"
        if name not in NAMES:
            raise ConfigError(f"{where}: not a data.name (one of {list(NAMES)})")
        if not wanted:
            raise ConfigError(f"{where}: name at least one metric and the value a seed must "
                              "reach, e.g. {hq_share: 0.95}")
        for metric, value in wanted.items():
            if metric not in METRICS:
                raise ConfigError(f"{where}.{metric}: not a metric (one of {list(METRICS)})")
            m = METRICS[metric]
            if not m.applies_to(name):
                raise ConfigError(f"{where}.{metric}: {metric} does not apply to {name} "
                                  f"(it needs data with {m.needs})")
            if not math.isfinite(value):
                raise ConfigError(f"{where}.{metric}: expected a finite number, got {value!r}")
            top = m.most(make_distribution(name)) if name in DATASETS else math.inf
            if not 0 <= value <= top:
                raise ConfigError(f"{where}.{metric}: {value!r} can never be reached "
                                  f"({metric} lies between 0 and {top:g})")


def _run_id(values: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in values.items())


def _rows_class(config: ToyConfig) -> tuple:
    """What decides which parts D scores per step and whether a step pays for a double
    backward (a population computes every member's parts, and the penalty if any has one):
    the D-loss planner's own key for this one member, and where D mixes (`loss.mix_layer`)."""
    planner = member_planner([config.loss], torch.device("cpu"), config.train.steps)
    return (*planner.key(), config.loss.mix_layer)


def populations(runs: list[SweepRun], max_members: int) -> list[list[SweepRun]]:
    """Group runs that can share stacked networks, in chunks of at most `max_members`:
    members share every key the schema does not mark `per_member` (data, loss, seed)."""
    groups: dict[tuple, list[SweepRun]] = {}
    for run in runs:
        shared = tuple(sorted((k, json.dumps(v)) for k, v in run.flat.items()
                              if not key_marks(ToyConfig, k).get("per_member")))
        groups.setdefault((shared, _rows_class(run.config)), []).append(run)
    return [members[i:i + max_members] for members in groups.values()
            for i in range(0, len(members), max_members)]


def group_name(members: list[SweepRun]) -> str:
    """A population's folder name: fixed by its members' ids, so a rerun finds it."""
    digest = hashlib.sha1("|".join(r.id for r in members).encode()).hexdigest()[:10]
    return f"pop-{digest}"


def sweep_root(sweep: SweepConfig, path: Path) -> Path:
    """The sweep's folder, `output/name`: the name is one plain folder name."""
    if sweep.name is not None:
        return Path(sweep.output) / check_run_name(sweep.name, f"{path}: name")
    return Path(sweep.output) / check_run_name(path.stem, f"{path}: the file name (set name)")


def setting_of(row: dict, keys: list[str]) -> tuple:
    """The row's values of `keys` as a hashable tuple, the key that groups a setting's seeds:
    a list value (`train.betas: [0.5, 0.999]`) becomes a tuple, a mapping its sorted items."""
    def frozen(value):
        if isinstance(value, list | tuple):
            return tuple(frozen(v) for v in value)
        if isinstance(value, dict):
            return tuple(sorted((k, frozen(v)) for k, v in value.items()))
        return value
    return tuple(frozen(row[k]) for k in keys)
