"""Sweeps: a grid over config keys x seeds, trained as populations of toy GANs.

Every run of the grid is checked before any training starts (unknown keys, wrong types,
out-of-range values, an empty grid). Runs that can share stacked networks (same model and
shared training settings) are grouped into populations of at most `population` members;
each population trains in the one GAN loop and keeps its own checkpoint, so a killed sweep
continues where it stopped. Results: `results.jsonl` / `results.csv` (one row per run and
eval step), `summary.png` (modes and high-quality share vs alpha) and `snapshots.png`.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from .config import (
    ConfigError,
    RunConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
    option,
)
from .runs import RunFolder
from .toy.data import make_distribution
from .toy.runner import build_toy_trainer, evaluate, reference_points
from .runtime import eval_noise, resolve_device
from .train import Hook

# Keys that may differ between members of one population; everything else is shared.
MEMBER_PREFIXES = ("data.", "loss.", "train.seed")


@dataclass
class SweepConfig:
    base: str | None = option(None, doc="run config every run starts from (cwd-relative)")
    set: dict[str, Any] = option({}, doc="overrides applied to every run")
    grid: dict[str, list[Any]] = option({}, doc="config key -> values; runs = product x seeds")
    seeds: list[int] = option([0, 1, 2])
    population: int = option(30, gt=0, doc="most members trained together")
    output: str = option("runs/sweeps", doc="folder for this sweep's results")
    name: str | None = option(None, doc="default: the sweep file's stem")


@dataclass
class SweepRun:
    """One run of the grid: its id, grid values and resolved config."""

    id: str
    values: dict[str, Any]
    config: RunConfig
    flat: dict[str, Any] = field(repr=False, default_factory=dict)


def _flat(config: RunConfig) -> dict[str, Any]:
    out = {}
    for section, values in config_to_dict(config).items():
        for key, value in values.items():
            out[f"{section}.{key}"] = value
    return out


def expand(sweep: SweepConfig, source: str) -> list[SweepRun]:
    """All runs of the sweep, each config fully checked; errors name the run and key."""
    if not sweep.seeds:
        raise ConfigError(f"{source}: seeds is empty")
    empty = [k for k, values in sweep.grid.items() if not values]
    if empty:
        raise ConfigError(f"{source}: grid.{empty[0]} has no values")
    if "train.seed" in sweep.grid:
        raise ConfigError(f"{source}: grid.train.seed: list seeds under 'seeds' instead")
    base = load_config(sweep.base) if sweep.base else RunConfig()
    base_dict = apply_overrides(config_to_dict(base), [f"{k}={json.dumps(v)}"
                                                       for k, v in sweep.set.items()])
    config_from_dict(base_dict, source=f"{source}: set")
    keys = list(sweep.grid)
    runs = []
    for combo in itertools.product(*(sweep.grid[k] for k in keys)):
        for seed in sweep.seeds:
            values = {**dict(zip(keys, combo, strict=True)), "train.seed": seed}
            run_id = ",".join(f"{k}={v}" for k, v in values.items())
            data = apply_overrides(base_dict, [f"{k}={json.dumps(v)}" for k, v in values.items()])
            config = config_from_dict(data, source=f"{source}: run {run_id}")
            runs.append(SweepRun(run_id, values, config, _flat(config)))
    return runs


def _rows_class(config: RunConfig) -> tuple:
    """What decides how many samples D sees per step (members are padded to the largest)."""
    loss = config.loss
    return (loss.alpha == 0, loss.pairing, loss.erm_weight > 0, loss.mix_prob < 1)


def populations(runs: list[SweepRun], max_members: int) -> list[list[SweepRun]]:
    """Group runs that can share stacked networks, in chunks of at most `max_members`."""
    groups: dict[tuple, list[SweepRun]] = {}
    for run in runs:
        shared = tuple(sorted((k, json.dumps(v)) for k, v in run.flat.items()
                              if not k.startswith(MEMBER_PREFIXES)))
        groups.setdefault((shared, _rows_class(run.config)), []).append(run)
    return [members[i:i + max_members] for members in groups.values()
            for i in range(0, len(members), max_members)]


def _group_name(members: list[SweepRun]) -> str:
    digest = hashlib.sha1("|".join(r.id for r in members).encode()).hexdigest()[:10]
    return f"pop-{digest}"


def train_population(members: list[SweepRun], folder: RunFolder, bar: tqdm) -> None:
    """Train one population to its last step, resuming from its checkpoint."""
    shared = members[0].config
    device = resolve_device(shared.train.device)
    dists = [make_distribution(r.config.data.name, scale=r.config.data.scale,
                               path=r.config.data.path) for r in members]
    references = [reference_points(r.config, d) for r, d in zip(members, dists, strict=True)]
    seeds = [r.config.train.seed for r in members]
    trainer = build_toy_trainer(shared.model, shared.train, [r.config.loss for r in members],
                                dists, seeds, device)
    population_config = {r.id: config_to_dict(r.config) for r in members}
    state = folder.start(population_config)
    if state is not None:
        trainer.load_state_dict(state)
    bar.update(trainer.step * len(members))
    noise = torch.stack([eval_noise(shared.eval.n_samples, shared.model.latent_dim, s)
                         for s in seeds]).to(device)

    def log_metrics(t) -> None:
        with torch.no_grad():
            samples = t.G(noise).float().cpu()
        for k, (run, losses) in enumerate(zip(members, t.pop_mean_losses(), strict=True)):
            diverged = t.diverged.get(k)
            metrics = evaluate(samples[k], dists[k], references[k]) if diverged is None else {}
            folder.log({"run": run.id, "step": t.step, **losses, **metrics,
                        "diverged_at": diverged})
        if t.step == shared.train.steps:
            torch.save({"ids": [r.id for r in members], "fake": samples[:, :1000]},
                       folder.path / "final_samples.pt")

    hooks = [
        Hook(lambda t: bar.update(len(members)), every=1, final=False),
        Hook(log_metrics, every=shared.eval.every),
        Hook(lambda t: folder.save(t.state_dict(), population_config),
             every=shared.output.checkpoint_every),
    ]
    trainer.fit(shared.train.steps, hooks, progress=False)


def run_sweep(path: str | Path, overrides: list[str] = (), *, progress: bool = True,
              report: bool = False) -> Path:
    """Run (or continue) a sweep file; returns the sweep's folder.

    `report=True` trains nothing: it writes the results and figures of what has been trained
    so far (unfinished runs appear with the last step they logged).
    """
    path = Path(path)
    sweep = load_config(path, SweepConfig, overrides)
    source = str(path)
    runs = expand(sweep, source)
    groups = populations(runs, sweep.population)
    root = Path(sweep.output) / (sweep.name or path.stem)
    root.mkdir(parents=True, exist_ok=True)
    if report:
        write_results(root, runs, groups)
        return root
    (root / "sweep.json").write_text(json.dumps(
        {"sweep": config_to_dict(sweep), "runs": [r.id for r in runs],
         "populations": [[r.id for r in g] for g in groups]}, indent=1))
    total = sum(len(g) * g[0].config.train.steps for g in groups)
    with tqdm(total=total, desc=f"sweep ({len(runs)} runs, {len(groups)} populations)",
              unit="it", unit_scale=True, disable=not progress, dynamic_ncols=True) as bar:
        for members in groups:
            train_population(members, RunFolder(root / "populations", _group_name(members)), bar)
    write_results(root, runs, groups)
    return root


def write_results(root: Path, runs: list[SweepRun], groups: list[list[SweepRun]]) -> None:
    """Collect every population's rows into results.jsonl / results.csv, then draw figures."""
    from .toy.sweep_plots import save_sweep_figures

    by_id = {r.id: r for r in runs}
    rows = []
    for members in groups:
        for row in RunFolder(root / "populations", _group_name(members)).read_metrics():
            rows.append({**by_id[row["run"]].values, **row})
    (root / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with (root / "results.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    final = final_rows(rows)
    (root / "summary.md").write_text(summary_table(runs, final))
    save_sweep_figures(root, runs, final)


SUMMARY_METRICS = ("modes", "hq_share", "reverse_kl", "frechet")


def mean_spread(values: list) -> str:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return "n/a"
    text = f"{statistics.mean(finite):.3g} ± {statistics.pstdev(finite):.2g}"
    missing = len(values) - len(finite)
    return text + (f" ({missing} n/a)" if missing else "")


def final_rows(rows: list[dict]) -> dict[str, dict]:
    """Each run's last logged row, by run id."""
    final: dict[str, dict] = {}
    for row in rows:
        if row["step"] >= final.get(row["run"], {"step": -1})["step"]:
            final[row["run"]] = row
    return final


def summary_table(runs: list[SweepRun], final: dict[str, dict]) -> str:
    """Markdown: one line per setting, last-step metrics as mean ± std over seeds.

    A run with no high-quality sample has no reverse KL; it is counted as "n/a".
    """
    keys = [k for k in runs[0].values if k != "train.seed"]
    settings: dict[tuple, list[SweepRun]] = {}
    for run in runs:
        settings.setdefault(tuple(run.values[k] for k in keys), []).append(run)
    lines = ["| " + " | ".join(keys + ["seeds", "step", *SUMMARY_METRICS]) + " |",
             "|" + "---|" * (len(keys) + 2 + len(SUMMARY_METRICS))]
    for setting, members in settings.items():
        done = [final[r.id] for r in members if r.id in final]
        if not done:
            continue
        cells = [mean_spread([d.get(m) for d in done]) for m in SUMMARY_METRICS]
        step = max(d["step"] for d in done)
        lines.append("| " + " | ".join([*map(str, setting), str(len(done)), str(step), *cells])
                     + " |")
    return "\n".join(lines) + "\n"
