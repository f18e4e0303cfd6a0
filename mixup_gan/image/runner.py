"""An image GAN run: the one GAN loop with image data and nets, generator EMA, sample grids
from fixed noise, optional in-training FID with the best generator kept, DDP under torchrun."""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

import torch
from torchvision.utils import save_image

from .. import distributed
from ..checkpoint import check_layout
from ..config import ConfigError
from ..d_checks import warn_batch_statistics
from ..hooks import Hook
from ..run_folder import RunFolder
from ..runs import Run, execute
from ..runtime import bf16_autocast, eval_noise, stream_seed
from ..train import GANTrainer
from .config import ImageConfig
from .data import load_images
from .generator import build_image_nets, load_generator


def run_image(config: ImageConfig, name: str, *, overwrite: bool = False) -> dict:
    """Train (or resume) one image GAN and return its summary (empty on ranks > 0)."""
    ranks, device = distributed.setup(config.train.device)
    try:
        return _run_image(config, name, overwrite, ranks, device)
    finally:
        distributed.teardown()


def _run_image(config: ImageConfig, name: str, overwrite: bool, ranks, device) -> dict:
    main = ranks is None or ranks.main
    m, d = config.model, config.data
    folder = RunFolder(config.output.dir, name)
    torch.manual_seed(stream_seed(config.train.seed, "init"))  # network initialisation
    G, D = build_image_nets(config)
    if config.loss.alpha > 0:  # the same check the public loss makes on a user's D
        warn_batch_statistics(D, "Set model.d_norm: spectral (or none) for mixup.")
    bank = load_images(d.name, root=d.root, size=d.size, channels=d.channels,
                       download=d.download, progress=config.output.progress).to(device)
    if config.train.compile:
        G.compile()
        D.compile()
    seed, world = config.train.seed, 1
    if ranks is not None:  # each process draws its own batches: seed by rank
        G, D = distributed.wrap(G.to(device), device), distributed.wrap(D.to(device), device)
        seed, world = seed + ranks.rank * distributed.RANK_SEED_STRIDE, ranks.world
    trainer = ProcessCountTrainer(
        G, D, bank.draw, latent_dim=m.latent_dim, loss=config.loss, train=config.train,
        seeds=[seed], device=device, processes=world,
        checkpoint=folder.checkpoint, autocast=bf16_autocast(device, config.train.amp))
    noise = eval_noise(config.eval.n_samples, m.latent_dim, config.train.seed).to(device)
    grids = folder.path / "samples"

    def hooks() -> list[Hook]:
        if not main:
            return []
        grids.mkdir(exist_ok=True)
        out = [Hook(log_and_draw, every=config.eval.every)]
        if config.eval.fid_every:
            out.append(fid_hook(config, folder, bank, device))
        if config.eval.generator_every:
            out.append(Hook(partial(keep_generator, folder, config),
                            every=config.eval.generator_every))
        return out

    def log_and_draw(t: GANTrainer) -> None:  # the step's stats into its row, and a grid
        t.stats.drain()
        with torch.no_grad():
            images = t.sampler().eval()(noise).float()
        t.G.train()
        save_image(images, grids / f"step_{t.step:07d}.png", nrow=8, normalize=True,
                   value_range=(-1, 1))
        if t.stats.board is not None:  # output.tensorboard: the rows go there, too
            t.stats.board.add_images("samples", (images[:16] + 1) / 2, t.step)

    images_per_step = config.train.batch_size * (config.train.n_dis + 1)
    return execute(Run(folder, config, trainer, config.train.steps, device,
                       config.output.checkpoint_every, overwrite=overwrite,
                       progress=config.output.progress, hooks=hooks, main=main,
                       barrier=distributed.barrier, tensorboard=config.output.tensorboard,
                       rate=("images_per_second", images_per_step)))


class ProcessCountTrainer(GANTrainer):
    """Records how many processes trained: each draws from its own stream (seed by rank), so
    a checkpoint resumes exactly only with the same count."""

    def __init__(self, *args, processes: int, checkpoint: Path, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.processes, self.checkpoint = processes, checkpoint

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["progress"]["processes"] = self.processes
        return state

    def load_state_dict(self, state: dict) -> None:
        written = check_layout(state, str(self.checkpoint))["progress"].get("processes", 1)
        if written != self.processes:
            raise ConfigError(f"{self.checkpoint} was written by {written} process(es); "
                              f"resume it with the same number, not {self.processes}")
        super().load_state_dict(state)


def keep_generator(folder: RunFolder, config: ImageConfig, t: GANTrainer) -> None:
    """The step's generator (and EMA) as generators/step_<step>.pt: a checkpoint that
    `load_generator` reads (so `mixup-gan fid` and `sample` take it), without D, the
    optimizers or the random state: it is a picture of training, not a point to resume from."""
    state = t.state_dict()
    nets = {k: v for k, v in state["nets"].items() if k in ("generator", "ema")}
    (folder.path / "generators").mkdir(exist_ok=True)
    folder.save({**state, "nets": nets, "optimizers": {}, "rng": {}},
                config, name=f"generators/step_{t.step:07d}.pt")


def fid_hook(config: ImageConfig, folder: RunFolder, bank, device: torch.device) -> Hook:
    """Every `eval.fid_every` steps: FID of the EMA (else live) generator on
    `eval.fid_samples` images (the same noise each time) against `eval.fid_reference` (default:
    the training images, features cached by content). The best so far is kept as best.pt."""
    from ..fid import FIDEvaluator, frechet_distance, resolve_input, tensor_input
    from ..fid.inputs import GeneratorInput, generator_model

    e = config.eval
    evaluator = FIDEvaluator(("fid",), feature_extractor=e.fid_extractor,
                             inception_weights=e.fid_inception_weights, device=str(device),
                             batch_size=e.fid_batch_size, seed=config.train.seed)
    reference = (tensor_input(bank.images, f"training images of {folder.path.name}")
                 if e.fid_reference is None else
                 resolve_input(e.fid_reference, n=e.fid_samples, device=device,
                               datasets_root=config.data.root, download=config.data.download,
                               load_generator=load_generator))
    reference_stats = evaluator.fid_statistics(reference)  # once: it does not change

    best = min((row["fid"] for row in folder.read_metrics() if "fid" in row), default=math.inf)

    def measure(t: GANTrainer) -> None:
        nonlocal best
        model = generator_model(t.sampler(), config.model.latent_dim)
        stats = evaluator.fid_statistics(GeneratorInput(model, "generator", e.fid_samples))
        t.G.train()
        fid = frechet_distance(stats, reference_stats)
        t.stats.log({"fid": fid})  # into the step's one row, beside its losses
        if fid < best:
            best = fid
            folder.save({**t.state_dict(), "fid": fid}, config, name="best.pt")

    return Hook(measure, every=e.fid_every)
