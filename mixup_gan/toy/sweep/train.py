"""Training a sweep (or one shard of it): each population through the one run skeleton, in
its own folder under its own lock, resumable, one progress bar for the process; the report
once every population is done."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ...checkpoint import load_checkpoint, save_checkpoint
from ...config import ConfigError, config_to_dict, load_config
from ...hooks import Hook
from ...run_folder import SWEEP_MARKER, FolderLock, RunFolder, claim_folder, make_folder
from ...runs import Run, execute_iter, interleave
from ...runtime import eval_noise, resolve_device
from ...train import SYNC_EVERY
from ..runner import PICTURE_POINTS, build_toy_trainer, evaluate, evaluated
from .grid import SweepConfig, SweepRun, checked, expand, group_name, populations, sweep_root
from .report import write_results
from .shard import WHOLE, Shard, cost, not_done, place, record, share, write_once


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
    trainer.stats.labels = [{"run": r.id} for r in members]  # first in each member's rows

    def log_metrics(t) -> None:
        with torch.no_grad():
            drawn = [(prefix, net(noise).float().cpu()) for prefix, net in evaluated(t)]
        samples = drawn[0][1]
        diverged = t.diverged
        t.stats.drain()
        for k in range(len(members)):
            metrics = ({prefix + name: value for prefix, points in drawn
                        for name, value in evaluate(points[k], dists[k], references[k]).items()}
                       if k not in diverged else {})
            t.stats.log({**metrics, "diverged_at": diverged.get(k)}, member=k)
        if t.step == shared.train.steps:  # what the sweep's snapshot figure draws
            save_checkpoint({**pictured(), "fake": samples[:, :PICTURE_POINTS]},
                            folder.path / "final_samples.pt")

    def pictured() -> dict:
        return {"ids": [r.id for r in members], "real": [r[:PICTURE_POINTS] for r in references],
                "limits": [d.limit for d in dists]}

    def keep_snapshot(t) -> None:  # eval.snapshots: the samples over training (strips.png)
        path = folder.path / "snapshots.pt"
        with torch.no_grad():
            fake = t.sampler()(noise[:, :PICTURE_POINTS]).float().cpu()
        kept = load_checkpoint(path) if path.is_file() else {**pictured(), "steps": {}}
        kept["steps"][t.step] = fake  # a resumed run redraws a step: the same points
        save_checkpoint(kept, path)

    def hooks() -> list[Hook]:
        shown = [trainer.step]  # steps the sweep's bar holds for this population
        bar.update(trainer.step * len(members))

        def advance(t) -> None:  # at the loop's own sync points: a hook syncs the host
            bar.update((t.step - shown[0]) * len(members))
            shown[0] = t.step

        return [Hook(advance, every=SYNC_EVERY), Hook(log_metrics, every=shared.eval.every),
                Hook(keep_snapshot, at=shared.eval.snapshots, final=False)]

    return (yield from execute_iter(Run(folder, record(members), trainer, shared.train.steps,
                                        device, shared.output.checkpoint_every, overwrite=overwrite,
                                        progress=False, members=True, hooks=hooks,
                                        tensorboard=shared.output.tensorboard)))


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



SWEEP_WAIT_S = 600  # the most a process waits for another one to finish with the sweep folder


@contextmanager
def sweep_lock(root: Path) -> Iterator[None]:
    """The sweep folder's lock, held while one process claims the folder or writes the
    report (shards that start or finish together wait their turn; each writes what is done
    when it holds the lock). Training holds only its populations' locks."""
    lock, deadline = FolderLock(root, "name"), time.monotonic() + SWEEP_WAIT_S
    while True:
        try:
            lock.acquire(f"sweep folder {root}")
            break
        except ConfigError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    try:
        yield
    finally:
        lock.release()


def train_share(root: Path, sweep: SweepConfig, groups: list[list[SweepRun]], shard: Shard,
                *, progress: bool, overwrite: bool) -> None:
    """Train `groups`, this shard's populations, each in its own folder under its own lock."""
    runs = sum(len(g) for g in groups)
    total = sum(cost(g) for g in groups)
    which = f"shard {shard}: " if shard.count > 1 else ""
    with tqdm(total=total, desc=f"sweep {which}({runs} runs, {len(groups)} populations)",
              unit="it", unit_scale=True, disable=not progress, dynamic_ncols=True) as bar:
        devices = [place(resolve_device(g[0].config.train.device), shard) for g in groups]
        if shard.local_rank is not None and devices and devices[0].type == "cuda":
            torch.cuda.set_device(devices[0])  # streams and graphs on this process's GPU
        interleave([(device, partial(train_population, g,
                                     RunFolder(root / "populations", group_name(g), "name"),
                                     bar, device, overwrite=overwrite))
                    for g, device in zip(groups, devices, strict=True)],
                   at_once=side_by_side(sweep, devices))


def run_sweep(path: str | Path, overrides: list[str] = (), *, progress: bool = True,
              report: bool = False, overwrite: bool = False, shard: Shard = WHOLE,
              note: Callable[[str], None] | None = None) -> Path:
    """Run (or continue) a sweep file, or shard `shard` of it; returns the sweep's folder.

    Every run is checked before anything trains. A shard trains only its share of the
    populations (`shard.py`: `share`); each population has its own folder and lock, so shards of
    one sweep run at the same time. Whoever finds every population done writes the results
    and figures (the last shard to finish); otherwise `note` gets the populations not done.
    `overwrite` trains this shard's populations again from scratch (deleting only
    population folders this package made). `report=True` trains nothing: it writes the
    results and figures of what has been trained so far (unfinished runs appear with the
    last step they logged).
    """
    path = Path(path)
    sweep = checked(load_config(path, SweepConfig, overrides), str(path))  # as sweep.json shows it
    runs = expand(sweep, str(path))
    groups = populations(runs, sweep.population)
    root = sweep_root(sweep, path)
    if report and not (root / "populations").is_dir():  # a typo in output or name, most likely
        raise ConfigError(f"--report: nothing was trained in {root} (check output and name)")
    make_folder(root.parent, "output")
    with sweep_lock(root):  # never into a folder that is not a sweep's (a user's results.csv
        root = claim_folder(root, "name", marker=SWEEP_MARKER, legacy=_sweep_folder,
                            where=f"{path}: ")  # stays theirs); shards claim it in turn
        if not report:
            write_once(root / "sweep.json", json.dumps(  # the same text from every shard
                {"sweep": config_to_dict(sweep), "runs": [r.id for r in runs],
                 "populations": [[r.id for r in g] for g in groups]}, indent=1))
    if not report:
        train_share(root, sweep, share(groups, shard), shard, progress=progress,
                    overwrite=overwrite)
    missing = not_done(root, groups)
    if report or not missing:
        with sweep_lock(root):
            write_results(root, runs, groups, sweep.targets)
    if missing and note is not None:
        then = ("" if report else
                "; the last shard to finish writes the results (or run again with --report)")
        note(f"not done: {len(missing)} of {len(groups)} populations{then}:\n  "
             + "\n  ".join(missing))
    return root
