"""A toy 2D GAN run: config -> data + nets + loss -> the training loop -> hooks -> run folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from ..captured_step import resolve_capture
from ..config import ConfigError
from ..gan_config import LossConfig
from ..hooks import Hook
from ..run_folder import RunFolder
from ..runs import Run, execute
from ..runtime import bf16_autocast, eval_noise, resolve_device, stream_seed, unwrapped
from ..train import GANTrainer
from .config import ToyConfig, ToyModelConfig, ToyTrainConfig
from .data import MemberSampler, ToyDistribution, make_distribution, read_points
from .metrics import LIVE, curve_metrics, evaluate, mode_metrics
from .nets import ToyDiscriminator, ToyGenerator
from .plots import Snapshot, d_grid, save_metrics_plot, save_snapshot, save_strip

REFERENCE_SEED = 2017  # fresh reference points when no reference file is configured
PICTURE_POINTS = 1000  # points drawn per snapshot (metrics use eval.n_samples)


def evaluated(trainer: GANTrainer) -> list[tuple[str, torch.nn.Module]]:
    """The generators a toy run evaluates, each with the prefix of its metrics' names: the
    sampler (the EMA when G is averaged) under the metrics' own names and, when averaged,
    the live G under `live_` ones. The EMA never feeds back into training, so one run
    measures both: `live_hq_share` is what the same run scores without an EMA."""
    live = [(LIVE, unwrapped(trainer.G))] if trainer.ema is not None else []
    return [("", trainer.sampler()), *live]


def reference_points(config: ToyConfig, dist: ToyDistribution) -> torch.Tensor:
    """The points a run is evaluated against: `data.reference`, else a seeded sample.

    A reference file that does not look like the distribution is an error: say, a ring
    reference left in a config switched to the grid. True samples lie within 3 std of a mode
    98.9% of the time (1 - e^-4.5), within 3 std of the swiss roll's curve 99.7%; a file
    with fewer than 90% there is refused.
    """
    if not config.data.reference:
        return dist.sample(config.eval.n_samples, torch.Generator().manual_seed(REFERENCE_SEED))
    points = read_points(config.data.reference)
    near, where = None, ""
    if dist.has_modes:
        near, where = mode_metrics(points, dist.centers, dist.std)["hq_share"], "its modes"
    elif dist.has_curve:
        near, where = curve_metrics(points, dist.curve, dist.std)["near_curve"], "its curve"
    if near is not None and near < 0.9:
        raise ConfigError(
            f"data.reference {config.data.reference!r} does not look like data.name "
            f"{config.data.name!r} (scale {config.data.scale!r}): only {near:.0%} of its "
            f"points lie near {where}; point it at the matching set or set it to null"
        )
    return points


def build_toy_trainer(model: ToyModelConfig, train: ToyTrainConfig, losses: Sequence[LossConfig],
                      dists: Sequence[ToyDistribution], seeds: Sequence[int],
                      device: torch.device) -> GANTrainer:
    """A trainer for a population of toy GANs (one member per seed; a run is P = 1)."""
    members, capture = len(seeds), resolve_capture(train.capture, device)
    return GANTrainer(
        ToyGenerator(model.latent_dim, model.hidden, model.depth, members=members,
                     seeds=[stream_seed(s, "init") for s in seeds]),
        ToyDiscriminator(model.hidden, model.depth, members=members,
                         seeds=[stream_seed(s, "discriminator_init") for s in seeds]),
        MemberSampler(dists, device), latent_dim=model.latent_dim, loss=list(losses),
        train=train, seeds=seeds, device=device, capture=capture,
        autocast=bf16_autocast(device, train.amp, cache=not capture),
    )


def load_snapshot(path: Path) -> Snapshot:
    state = torch.load(path, weights_only=True)
    return Snapshot(int(state["step"]), state["fake"], state.get("d_grid"))


def load_snapshots(run_dir: Path, max_step: int | None = None) -> list[Snapshot]:
    """A run's saved snapshots in step order (up to `max_step`)."""
    snaps = [load_snapshot(p) for p in sorted((run_dir / "snapshots").glob("step_*.pt"))]
    return [s for s in snaps if max_step is None or s.step <= max_step]


def run_toy(config: ToyConfig, name: str, *, overwrite: bool = False) -> dict:
    """Train (or resume) one toy run and return its summary."""
    device = resolve_device(config.train.device)
    dist = make_distribution(config.data.name, scale=config.data.scale, path=config.data.path)
    reference = reference_points(config, dist)
    folder = RunFolder(config.output.dir, name)
    trainer = build_toy_trainer(config.model, config.train, [config.loss], [dist],
                                [config.train.seed], device)
    # Fixed noise: every evaluation and picture looks at the same latent points.
    fixed_noise = eval_noise(config.eval.n_samples, config.model.latent_dim, config.train.seed)
    snap_dir = folder.path / "snapshots"

    def generate(net: torch.nn.Module | None = None) -> torch.Tensor:  # default: the sampler
        net = trainer.sampler() if net is None else net
        with torch.no_grad():
            return net(fixed_noise.to(device)).float().cpu()

    def log_metrics(t: GANTrainer) -> None:  # one row: the step's stats and the metrics
        t.stats.drain()
        t.stats.log({prefix + k: v for prefix, net in evaluated(t)
                     for k, v in evaluate(generate(net), dist, reference).items()})

    def snapshot(t: GANTrainer) -> None:
        grid = d_grid(t.D, dist.limit, device=device) if config.eval.contour else None
        snap = Snapshot(t.step, generate()[:PICTURE_POINTS], grid)
        torch.save({"step": snap.step, "fake": snap.fake, "d_grid": snap.d_grid},
                   snap_dir / f"step_{t.step:06d}.pt")
        save_snapshot(snap_dir / f"step_{t.step:06d}.png", reference[:PICTURE_POINTS], snap,
                      dist.limit)

    def hooks() -> list[Hook]:
        snap_dir.mkdir(exist_ok=True)
        for stale in snap_dir.glob("step_*"):  # pictures of work lost since the checkpoint
            if int(stale.stem.split("_")[1]) > trainer.step:
                stale.unlink()
        return [Hook(log_metrics, every=config.eval.every),
                Hook(snapshot, at=config.eval.snapshots)]

    def pictures(rows: list[dict]) -> dict:
        label = f"{name}: {config.data.name}, loss {config.loss.name}, alpha {config.loss.alpha}"
        save_strip(folder.path / "snapshots.png", reference[:PICTURE_POINTS],
                   load_snapshots(folder.path, config.train.steps), dist.limit, label)
        save_metrics_plot(folder.path / "metrics.png", rows,
                          len(dist.centers) if dist.has_modes else None, config.train.ema_start)
        return {}

    return execute(Run(folder, config, trainer, config.train.steps, device,
                       config.output.checkpoint_every, overwrite=overwrite,
                       progress=config.output.progress, hooks=hooks, summarize=pictures,
                       tensorboard=config.output.tensorboard))
