"""A classification run: ERM, mixup or CutMix (optionally with label smoothing), optional
label corruption, SGD with step decay; the same config, run folder, checkpoints and exact
resume as the GAN runs."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import loop
from ..checkpoint import check_layout, training_state
from ..config import ConfigError
from ..hooks import Hook
from ..mixup import mixup_batch
from ..run_folder import RunFolder
from ..runs import Run, execute
from ..runtime import TrainingDiverged, bf16_autocast, resolve_device, stream_seed
from ..stats import Stats
from .config import ClassifyConfig
from .data import ClassificationData, Split, load_data
from .nets import CLASSIFIERS


class _Relabelled(torch.utils.data.Dataset):
    """A torchvision dataset served with our (possibly corrupted) labels."""

    def __init__(self, split: Split) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int):
        return self.split.inputs[i][0], self.split.labels[i]


def batches(split: Split, batch_size: int, *, rng: torch.Generator | None,
            workers: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
    """Mini-batches, shuffled by `rng` (None: in order)."""
    if isinstance(split.inputs, Tensor):
        order = (torch.randperm(len(split), generator=rng) if rng is not None
                 else torch.arange(len(split)))
        for start in range(0, len(split), batch_size):
            idx = order[start:start + batch_size]
            yield split.inputs[idx], split.labels[idx]
        return
    yield from torch.utils.data.DataLoader(
        _Relabelled(split), batch_size=batch_size, shuffle=rng is not None,
        generator=rng, num_workers=workers, drop_last=rng is not None,
    )


@torch.no_grad()
def accuracy(model: nn.Module, split: Split, device, batch_size: int = 512,
             subset: Tensor | None = None) -> float:
    """Share of `split` (or of its `subset` mask) classified as its labels say."""
    model.eval()
    hits = []
    for x, y in batches(split, batch_size, rng=None):
        hits.append(model(x.to(device)).argmax(1).cpu() == y)
    model.train()
    correct = torch.cat(hits)
    if subset is not None:
        correct = correct[subset]
    return float(correct.float().mean()) if len(correct) else math.nan


def train_loss(model: nn.Module, x: Tensor, y: Tensor, cfg: ClassifyConfig, num_classes: int,
               rng: torch.Generator) -> Tensor:
    """The step's loss: cross-entropy on mixed inputs and soft targets (or plain for ERM)."""
    loss = cfg.loss
    if loss.mode == "erm":
        return F.cross_entropy(model(x), y, label_smoothing=loss.label_smoothing)
    x_mixed, y_soft = mixup_batch(
        x, y, alpha=loss.alpha, num_classes=num_classes, mode=loss.mode,
        distribution=loss.distribution, per_sample=loss.per_sample,
        label_smoothing=loss.label_smoothing, rng=rng, check_finite=False,
    )
    return F.cross_entropy(model(x_mixed), y_soft)


class ClassifierTrainer:
    """SGD with step decay on ERM, mixup or CutMix batches; `step` counts epochs.

    The one loop (`loop.fit_iter`, a sync point after every epoch) and the one run skeleton
    drive it, as they drive the GAN trainer. An epoch reads nothing back to the host: its
    mean loss goes to the stats channel as `train_loss`, and the first non-finite batch loss
    is kept on the device for the divergence check.
    """

    def __init__(self, config: ClassifyConfig, data: ClassificationData,
                 device: torch.device) -> None:
        self.cfg, self.data, self.device = config, data, device
        train = config.train
        net = CLASSIFIERS[config.model.name]
        side = min(data.input_shape[1:], default=1)
        if side < getattr(net, "min_side", 1):
            raise ConfigError(f"model.name: {config.model.name!r} needs images of at least "
                              f"{net.min_side}x{net.min_side}; data.name {config.data.name!r} "
                              f"has {'x'.join(map(str, data.input_shape[1:]))}")
        torch.manual_seed(stream_seed(train.seed, "init"))  # model init
        self.model = net(data.input_shape, data.num_classes, config.model.hidden).to(device)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=train.lr,
                                   momentum=train.momentum, weight_decay=train.weight_decay)
        self.schedule = torch.optim.lr_scheduler.MultiStepLR(self.opt, train.milestones,
                                                             train.gamma)
        self.rng = torch.Generator().manual_seed(stream_seed(train.seed, "train"))
        self.autocast = bf16_autocast(device, train.amp)
        self.step, self.best = 0, math.inf
        self.stats = Stats(1, device)
        self.last_loss = torch.full((), math.nan, dtype=torch.float64, device=device)
        # the batch (1-based) and loss of the first non-finite batch loss (-1: none)
        self.bad_batch = torch.full((), -1, dtype=torch.int64, device=device)
        self.bad_loss = torch.full((), math.nan, device=device)

    def train_epoch(self) -> Tensor:
        """One pass over the training set; returns the mean loss (a device tensor)."""
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        count = 0
        for step, (x, y) in enumerate(batches(self.data.train, self.cfg.train.batch_size,
                                              rng=self.rng, workers=self.cfg.data.workers)):
            with self.autocast():
                loss = train_loss(self.model, x.to(self.device), y.to(self.device), self.cfg,
                                  self.data.num_classes, self.rng)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            value = loss.detach()
            bad = ~torch.isfinite(value) & (self.bad_batch < 0)
            self.bad_batch.copy_(torch.where(bad, step + 1, self.bad_batch))
            self.bad_loss.copy_(torch.where(bad, value.float(), self.bad_loss))
            total += value.double() * len(x)
            count += len(x)
        self.schedule.step()
        return total / count

    def run_step(self) -> None:
        """One epoch (the loop's step)."""
        self.last_loss = self.train_epoch()
        self.stats.add({"train_loss": self.last_loss.reshape(1)})

    def check_finite(self) -> None:
        """After each epoch: raise `TrainingDiverged` if a batch loss was not finite."""
        if (batch := int(self.bad_batch)) >= 0:
            raise TrainingDiverged(f"training diverged at epoch {self.step}, step {batch}: "
                                   f"loss {float(self.bad_loss)}")

    def postfix(self) -> dict[str, str]:
        return {"loss": f"{float(self.last_loss):.3f}"}

    def fit_iter(self, steps: int, hooks=(), *, progress: bool = True) -> Iterator[None]:
        """Train to `steps` epochs, calling hooks when due; yields after each epoch."""
        return loop.fit_iter(self, steps, hooks, progress=progress, desc="classify")

    def state_dict(self) -> dict:
        progress: dict = {"best_test_error": self.best}
        if self.stats.sums:  # the epochs' losses since the last row
            progress["stats"] = self.stats.state_dict()
        return training_state(
            self.step, {"model": self.model.state_dict()},
            {"model": self.opt.state_dict(), "lr_schedule": self.schedule.state_dict()},
            self.rng.get_state(), progress)

    def load_state_dict(self, state: dict) -> None:
        check_layout(state)
        self.model.load_state_dict(state["nets"]["model"])
        self.opt.load_state_dict(state["optimizers"]["model"])
        self.schedule.load_state_dict(state["optimizers"]["lr_schedule"])
        self.rng.set_state(state["rng"])
        self.step = int(state["step"])
        self.best = float(state["progress"]["best_test_error"])
        self.stats.load_state_dict(state["progress"].get("stats", {}))


def run_classify(config: ClassifyConfig, name: str, *, overwrite: bool = False,
                 data: ClassificationData | None = None) -> dict:
    """Train (or resume) one classifier and return its summary."""
    device = resolve_device(config.train.device)
    data = data or load_data(config.data)
    folder = RunFolder(config.output.dir, name)
    trainer = ClassifierTrainer(config, data, device)
    memorize = config.eval.memorization and bool(data.corrupted.any())

    def evaluate(t: ClassifierTrainer) -> None:
        test_error = 1.0 - accuracy(t.model, data.test, device)
        t.best = min(t.best, test_error)
        t.stats.log({"lr": t.opt.param_groups[0]["lr"]})
        t.stats.drain()  # train_loss: the mean over the epochs since the last row
        row = {"test_error": test_error, "best_test_error": t.best}
        if config.eval.memorization:
            row["train_accuracy"] = accuracy(t.model, data.train, device)
        if memorize:  # fitted the random labels it was given?
            row["memorized"] = accuracy(t.model, data.train, device, subset=data.corrupted)
        t.stats.log(row)

    def summarize(rows: list[dict]) -> dict:
        final = rows[-1] if rows else {}
        return {"epochs": trainer.step, "last_test_error": final.get("test_error"),
                "best_test_error": final.get("best_test_error"),
                "train_accuracy": final.get("train_accuracy"),
                "memorized": final.get("memorized"), "corrupt": config.data.corrupt,
                "corrupted_labels": int(data.corrupted.sum()),
                "train_labels_sha1": data.labels_sha1}

    return execute(Run(folder, config, trainer, config.train.epochs, device,
                       config.output.checkpoint_every, overwrite=overwrite,
                       progress=config.output.progress,
                       hooks=lambda: [Hook(evaluate, every=config.eval.every)],
                       summarize=summarize, rate=("epochs_per_second", 1.0),
                       tensorboard=config.output.tensorboard))
