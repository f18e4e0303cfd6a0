"""An image GAN run: the shared GAN loop with image data and nets, generator EMA, sample
grids from fixed noise, checkpoints with exact resume, and `sample` from a checkpoint."""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path

import torch
from torch import nn
from torchvision.utils import save_image

from .. import distributed
from ..checkpoint import CheckpointError, load_checkpoint
from ..config import ConfigError, ImageConfig, config_from_dict
from ..runs import RunFolder
from ..runtime import bf16_autocast, eval_noise, resolve_device, stream_seed
from ..train import GANTrainer, Hook
from .data import load_images
from .nets import build_nets


class ImageGANTrainer(GANTrainer):
    """`GANTrainer` plus an exponential moving average of the generator's weights."""

    def __init__(self, *args, ema_decay: float = 0.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.ema_decay = ema_decay
        live = getattr(self.G, "module", self.G)  # inside a DistributedDataParallel wrapper
        self.ema = copy.deepcopy(live).eval().requires_grad_(False) if ema_decay else None

    def train_step(self):
        losses = super().train_step()
        if self.ema is not None:
            with torch.no_grad():
                for avg, live in zip(self.ema.parameters(), self.G.parameters(), strict=True):
                    avg.lerp_(live, 1.0 - self.ema_decay)
                for avg, live in zip(self.ema.buffers(), self.G.buffers(), strict=True):
                    avg.copy_(live)  # BatchNorm statistics follow the live generator
        return losses

    def state_dict(self) -> dict:
        state = super().state_dict()
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])


def tensorboard_writer(path: Path):
    """A TensorBoard SummaryWriter when the tensorboard package is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(path))


def build_image_nets(config: ImageConfig) -> tuple[nn.Module, nn.Module]:
    m = config.model
    return build_nets(m.arch, m.latent_dim, config.data.channels, config.data.size, m.g_width,
                      m.d_width, m.d_norm)


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
    torch.manual_seed(stream_seed(config.train.seed, "init"))  # network initialisation
    G, D = build_image_nets(config)
    bank = load_images(d.name, root=d.root, size=d.size, channels=d.channels,
                       download=d.download).to(device)
    if config.train.compile:
        G.compile()
        D.compile()
    seed = config.train.seed
    if ranks is not None:
        G, D = distributed.wrap(G.to(device), device), distributed.wrap(D.to(device), device)
        seed += ranks.rank * distributed.RANK_SEED_STRIDE
    trainer = ImageGANTrainer(
        G, D, bank.draw, latent_dim=m.latent_dim, loss=config.loss, train=config.train,
        seeds=[seed], device=device, ema_decay=config.train.ema,
        autocast=bf16_autocast(device, config.train.amp),
    )
    folder = RunFolder(config.output.dir, name)
    state = folder.start(config, overwrite=overwrite) if main else None
    distributed.barrier()  # rank 0 has prepared the folder; the others read its checkpoint
    if not main and folder.checkpoint.exists():
        state = load_checkpoint(folder.checkpoint)
    world = ranks.world if ranks is not None else 1
    if state is not None:
        # each process draws from its own stream (seed by rank): the count must match
        if state.get("processes", 1) != world:
            raise ConfigError(f"{folder.checkpoint} was written by {state.get('processes', 1)} "
                              f"process(es); resume it with the same number, not {world}")
        trainer.load_state_dict(state)
    grids = folder.path / "samples"
    grids.mkdir(exist_ok=True)
    board = tensorboard_writer(folder.path / "tensorboard") if main else None
    noise = eval_noise(config.eval.n_samples, m.latent_dim, config.train.seed).to(device)

    def log_and_draw(t: GANTrainer) -> None:
        losses = t.pop_mean_losses()[0]
        folder.log({"step": t.step, **losses})
        net = t.ema if t.ema is not None else t.G
        with torch.no_grad():
            images = net.eval()(noise).float()
        t.G.train()
        save_image(images, grids / f"step_{t.step:07d}.png", nrow=8, normalize=True,
                   value_range=(-1, 1))
        if board is not None:
            for key, value in losses.items():
                board.add_scalar(f"loss/{key}", value, t.step)
            board.add_images("samples", (images[:16] + 1) / 2, t.step)
            board.flush()

    def checkpoint(t: GANTrainer) -> None:
        if main:  # every rank's stream is its seed's at the same counter: rank 0 saves all
            folder.save({**t.state_dict(), "processes": world}, config)

    hooks = [Hook(checkpoint, every=config.output.checkpoint_every)]
    if main:
        hooks.insert(0, Hook(log_and_draw, every=config.eval.every))
        if config.eval.fid_every:
            hooks.insert(1, fid_hook(config, folder, bank, device))
    started, first = time.perf_counter(), trainer.step
    folder.fit(trainer, config.train.steps, hooks, progress=config.output.progress and main)
    elapsed = time.perf_counter() - started
    if not main:
        return {}
    summary = {"name": name, "steps": trainer.step, "device": str(device),
               "images_per_second": ((trainer.step - first) * config.train.batch_size
                                     * (config.train.n_dis + 1) / elapsed if elapsed else None),
               **{k: v for k, v in (folder.read_metrics() or [{}])[-1].items() if k != "step"}}
    folder.write_summary(summary)
    return summary


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
                               datasets_root=config.data.root, download=config.data.download))
    reference_stats = evaluator.fid_statistics(reference)  # once: it does not change

    best = min((row["fid"] for row in folder.read_metrics() if "fid" in row), default=math.inf)

    def measure(t: GANTrainer) -> None:
        nonlocal best
        net = t.ema if t.ema is not None else getattr(t.G, "module", t.G)
        model = generator_model(net, config.model.latent_dim)
        stats = evaluator.fid_statistics(GeneratorInput(model, "generator", e.fid_samples))
        t.G.train()
        fid = frechet_distance(stats, reference_stats)
        folder.log({"step": t.step, "fid": fid})
        if fid < best:
            best = fid
            folder.save({**t.state_dict(), "fid": fid}, config, name="best.pt")

    return Hook(measure, every=e.fid_every)


def load_generator(checkpoint: str | Path, *, use_ema: bool = True,
                   state: dict | None = None) -> tuple[nn.Module, ImageConfig]:
    """The generator of an image GAN checkpoint (EMA weights when present and wanted), in
    eval mode on the CPU, with the run's config. Anything else is a `CheckpointError`."""
    state = load_checkpoint(checkpoint) if state is None else state
    try:
        config = config_from_dict(state.get("config"), ImageConfig, source=str(checkpoint))
        weights = state["ema"] if use_ema and "ema" in state else state["generator"]
        G = build_image_nets(config)[0]
        G.load_state_dict(weights)
    except (ConfigError, KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{checkpoint}: not an image GAN generator checkpoint "
                              f"({str(exc).splitlines()[0]})") from None
    return G.eval(), config


def sample_images(checkpoint: str | Path, n: int, out: str | Path, *, use_ema: bool = True,
                  batch_size: int = 256, seed: int = 0, device: str = "auto") -> Path:
    """Write `n` PNG images from a trained generator (EMA weights when present)."""
    G, config = load_generator(checkpoint, use_ema=use_ema)
    if n < 1:
        raise ValueError(f"--n must be >= 1, got {n}")
    dev = resolve_device(device, key="--device")
    G = G.to(dev)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for start in range(0, n, batch_size):
            z = torch.randn(min(batch_size, n - start), config.model.latent_dim, generator=g)
            for i, image in enumerate(G(z.to(dev)).float(), start=start):
                save_image(image, out / f"{i:06d}.png", normalize=True, value_range=(-1, 1))
    return out
