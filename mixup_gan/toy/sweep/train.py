"""Training a sweep: each population through the one run skeleton, resumable, one progress bar
for the whole sweep."""

from __future__ import annotations

import json
from collections.abc import Generator
from functools import partial
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ...checkpoint import atomic_write
from ...config import ConfigError, config_to_dict, load_config
from ...hooks import Hook
from ...run_folder import SWEEP_MARKER, FolderLock, RunFolder, claim_folder, make_folder
from ...runs import Run, execute_iter, interleave
from ...runtime import eval_noise, resolve_device
from ...train import SYNC_EVERY
from ..runner import PICTURE_POINTS, build_toy_trainer, evaluate
from .grid import SweepConfig, SweepRun, checked, expand, group_name, populations, sweep_root
from .report import write_results


def train_population(members: list[SweepRun], folder: RunFolder, bar: tqdm,
                     device: torch.device, *, overwrite: bool = False
                     ) -> Generator[None, None, dict]:
    """Train one population on `device` to its last step, a step per `next`, resuming from
    its checkpoint (or starting again with `overwrite`)."""
    shared = members[0].config
    dists, references = [r.dist for r in members], [r.reference for r in members]
    seeds = [r.config.train.seed for r in members]
    trainer = build_toy_trainer(shared.model, shared.train, [r.config.loss for r in members],
                                dists, seeds, device)
    noise = torch.stack([eval_noise(shared.eval.n_samples, shared.model.latent_dim, s)
                         for s in seeds]).to(device)

    def log_metrics(t) -> None:
        with torch.no_grad():
            samples = t.sampler()(noise).float().cpu()
        diverged = t.diverged
        for k, (run, losses) in enumerate(zip(members, t.pop_mean_losses(), strict=True)):
            metrics = (evaluate(samples[k], dists[k], references[k]) if k not in diverged
                       else {})
            folder.log({"run": run.id, "step": t.step, **losses, **metrics,
                        "diverged_at": diverged.get(k)})
        if t.step == shared.train.steps:  # what the sweep's snapshot figure draws
            torch.save({"ids": [r.id for r in members], "fake": samples[:, :PICTURE_POINTS],
                        "real": [r[:PICTURE_POINTS] for r in references],
                        "limits": [d.limit for d in dists]},
                       folder.path / "final_samples.pt")

    def hooks() -> list[Hook]:
        shown = [trainer.step]  # steps the sweep's bar holds for this population
        bar.update(trainer.step * len(members))

        def advance(t) -> None:  # at the loop's own sync points: a hook syncs the host
            bar.update((t.step - shown[0]) * len(members))
            shown[0] = t.step

        return [Hook(advance, every=SYNC_EVERY), Hook(log_metrics, every=shared.eval.every)]

    record = {r.id: config_to_dict(r.config) for r in members}
    return (yield from execute_iter(Run(folder, record, trainer, shared.train.steps, device,
                                        shared.output.checkpoint_every, overwrite=overwrite,
                                        progress=False, members=True, hooks=hooks)))


SIDE_BY_SIDE = 8  # populations trained at once on CUDA unless `concurrent` says otherwise


def side_by_side(sweep: SweepConfig, devices: list[torch.device]) -> int:
    """How many populations (on `devices`, one each) train at once: `concurrent`, else up to
    `SIDE_BY_SIDE` when they train on CUDA (a small population leaves a GPU mostly idle),
    one on a CPU."""
    if sweep.concurrent is not None:
        return sweep.concurrent
    cuda = any(device.type == "cuda" for device in devices)
    return min(len(devices), SIDE_BY_SIDE) if cuda else 1


def _sweep_folder(root: Path) -> bool:
    """A sweep folder of a version before the marker: its sweep.json lists runs."""
    try:
        return "runs" in json.loads((root / "sweep.json").read_text())
    except (OSError, ValueError, TypeError):
        return False


def run_sweep(path: str | Path, overrides: list[str] = (), *, progress: bool = True,
              report: bool = False, overwrite: bool = False) -> Path:
    """Run (or continue) a sweep file; returns the sweep's folder.

    Every run is checked before anything trains. `overwrite` trains every population again
    from scratch (deleting only population folders this package made). `report=True` trains
    nothing: it writes the results and figures of what has been trained so far (unfinished
    runs appear with the last step they logged).
    """
    path = Path(path)
    sweep = checked(load_config(path, SweepConfig, overrides), str(path))  # as sweep.json shows it
    runs = expand(sweep, str(path))
    groups = populations(runs, sweep.population)
    root = sweep_root(sweep, path)
    if report and not (root / "populations").is_dir():  # a typo in output or name, most likely
        raise ConfigError(f"--report: nothing was trained in {root} (check output and name)")
    make_folder(root.parent, "output")
    lock = FolderLock(root)
    lock.acquire(f"sweep folder {root}")
    try:  # never into a folder that is not a sweep's (a user's results.csv stays theirs)
        claim_folder(root, "name", marker=SWEEP_MARKER, legacy=_sweep_folder,
                     where=f"{path}: ")
        if not report:
            atomic_write(root / "sweep.json", json.dumps(
                {"sweep": config_to_dict(sweep), "runs": [r.id for r in runs],
                 "populations": [[r.id for r in g] for g in groups]}, indent=1),
                fsync=False)
            total = sum(len(g) * g[0].config.train.steps for g in groups)
            with tqdm(total=total, desc=f"sweep ({len(runs)} runs, {len(groups)} populations)",
                      unit="it", unit_scale=True, disable=not progress,
                      dynamic_ncols=True) as bar:
                devices = [resolve_device(g[0].config.train.device) for g in groups]
                interleave([(device, partial(train_population, g,
                                             RunFolder(root / "populations", group_name(g)),
                                             bar, device, overwrite=overwrite))
                            for g, device in zip(groups, devices, strict=True)],
                           at_once=side_by_side(sweep, devices))
        write_results(root, runs, groups)
    finally:
        lock.release()
    return root
