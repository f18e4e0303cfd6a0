"""A classification run: ERM, mixup or CutMix (optionally with label smoothing), optional
label corruption, SGD with step decay; the same config, run folder, checkpoints and exact
resume as the GAN runs."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..config import ClassifyConfig
from ..mixup import mixup_batch
from ..runs import RunFolder
from ..runtime import TrainingDiverged, bf16_autocast, resolve_device, stream_seed
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


def batches(split: Split, batch_size: int, *, generator: torch.Generator | None,
            workers: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
    """Mini-batches, shuffled by `generator` (None: in order)."""
    if isinstance(split.inputs, Tensor):
        order = (torch.randperm(len(split), generator=generator) if generator is not None
                 else torch.arange(len(split)))
        for start in range(0, len(split), batch_size):
            idx = order[start:start + batch_size]
            yield split.inputs[idx], split.labels[idx]
        return
    yield from torch.utils.data.DataLoader(
        _Relabelled(split), batch_size=batch_size, shuffle=generator is not None,
        generator=generator, num_workers=workers, drop_last=generator is not None,
    )


@torch.no_grad()
def accuracy(model: nn.Module, split: Split, device, batch_size: int = 512,
             subset: Tensor | None = None) -> float:
    """Share of `split` (or of its `subset` mask) classified as its labels say."""
    model.eval()
    hits = []
    for x, y in batches(split, batch_size, generator=None):
        hits.append(model(x.to(device)).argmax(1).cpu() == y)
    model.train()
    correct = torch.cat(hits)
    if subset is not None:
        correct = correct[subset]
    return float(correct.float().mean()) if len(correct) else math.nan


def train_loss(model: nn.Module, x: Tensor, y: Tensor, cfg: ClassifyConfig, num_classes: int,
               generator: torch.Generator) -> Tensor:
    """The step's loss: cross-entropy on mixed inputs and soft targets (or plain for ERM)."""
    loss = cfg.loss
    if loss.mode == "erm":
        return F.cross_entropy(model(x), y, label_smoothing=loss.label_smoothing)
    x_mixed, y_soft = mixup_batch(
        x, y, alpha=loss.alpha, num_classes=num_classes, mode=loss.mode,
        distribution=loss.distribution, per_sample=loss.per_sample,
        label_smoothing=loss.label_smoothing, generator=generator, check_finite=False,
    )
    return F.cross_entropy(model(x_mixed), y_soft)


def run_classify(config: ClassifyConfig, name: str, *, overwrite: bool = False,
                 data: ClassificationData | None = None) -> dict:
    """Train (or resume) one classifier and return its summary."""
    device = resolve_device(config.train.device)
    data = data or load_data(config.data)
    torch.manual_seed(stream_seed(config.train.seed, "init"))  # model init
    model = CLASSIFIERS[config.model.name](data.input_shape, data.num_classes,
                                           config.model.hidden).to(device)
    train = config.train
    opt = torch.optim.SGD(model.parameters(), lr=train.lr, momentum=train.momentum,
                          weight_decay=train.weight_decay)
    schedule = torch.optim.lr_scheduler.MultiStepLR(opt, train.milestones, train.gamma)
    rng = torch.Generator().manual_seed(stream_seed(train.seed, "train"))
    folder = RunFolder(config.output.dir, name)
    state = folder.start(config, overwrite=overwrite)
    epoch, best = 0, math.inf
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        rng.set_state(state["rng"])
        epoch, best = int(state["step"]), float(state["best_test_error"])
    autocast = bf16_autocast(device, train.amp)
    memorize = config.eval.memorization and bool(data.corrupted.any())
    row: dict = {}
    bar = tqdm(total=train.epochs, initial=epoch, desc=f"classify {name}",
               disable=not config.output.progress, dynamic_ncols=True)
    with bar:
        while epoch < train.epochs:
            total, count = 0.0, 0
            for step, (x, y) in enumerate(batches(data.train, train.batch_size, generator=rng,
                                                  workers=config.data.workers)):
                with autocast():
                    loss = train_loss(model, x.to(device), y.to(device), config,
                                      data.num_classes, rng)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise TrainingDiverged(f"training diverged at epoch {epoch + 1}, step "
                                           f"{step + 1}: loss {value}")
                total, count = total + value * len(x), count + len(x)
            schedule.step()
            epoch += 1
            last = epoch == train.epochs
            if epoch % config.eval.every == 0 or last:
                test_error = 1.0 - accuracy(model, data.test, device)
                best = min(best, test_error)
                row = {"step": epoch, "lr": opt.param_groups[0]["lr"],
                       "train_loss": total / count, "test_error": test_error,
                       "best_test_error": best}
                if config.eval.memorization:
                    row["train_accuracy"] = accuracy(model, data.train, device)
                if memorize:  # fitted the random labels it was given?
                    row["memorized"] = accuracy(model, data.train, device,
                                                subset=data.corrupted)
                folder.log(row)
                bar.set_postfix(loss=f"{row['train_loss']:.3f}", test_err=f"{test_error:.3f}")
            if epoch % config.output.checkpoint_every == 0 or last:
                folder.save({"step": epoch, "best_test_error": best,  # step: epochs done
                             "model": model.state_dict(), "optimizer": opt.state_dict(),
                             "schedule": schedule.state_dict(), "rng": rng.get_state()},
                            config)
            bar.update(1)
    rows = folder.read_metrics()
    final = rows[-1] if rows else {}
    summary = {
        "name": name, "epochs": epoch, "device": str(device),
        "last_test_error": final.get("test_error"),
        "best_test_error": final.get("best_test_error"),
        "train_accuracy": final.get("train_accuracy"), "memorized": final.get("memorized"),
        "corrupt": config.data.corrupt, "corrupted_labels": int(data.corrupted.sum()),
        "train_labels_sha1": data.labels_sha1,
    }
    folder.write_summary(summary)
    return summary
