"""Classification runs pinned against the mixup definition and a stored outcome.

The first test trains on inputs that are one-hot images (input j = the j-th pixel lit), so
the batch a training step feeds the model (captured with a forward hook) shows exactly which
examples it mixed and with what weights: `x~ = lam * e_i + (1 - lam) * e_perm(i)`. Each
epoch's logged training loss must be the cross-entropy of the captured logits against the
soft targets `lam * onehot(y_i) + (1 - lam) * onehot(y_perm(i))`, written out here.

Broken variants caught (each tried by hand): the mixup branch falling back to ERM
(unmixed inputs); hard targets of the first example with mixed inputs; `lam` constant 0.5;
alpha ignored (lam drawn with alpha 1); label smoothing applied twice or not at all.
"""

import json

import pytest
import torch

from mixup_gan.classify.config import ClassifyConfig
from mixup_gan.classify.data import ClassificationData, Split, load_data
from mixup_gan.classify.nets import CLASSIFIERS
from mixup_gan.classify.runner import run_classify
from mixup_gan.config import load_config

N_TRAIN, CLASSES = 64, 10


def one_hot_images() -> ClassificationData:
    """64 training images of 8x8 pixels, image j lighting pixel j only; label j % 10."""
    x = torch.eye(N_TRAIN).reshape(N_TRAIN, 1, 8, 8)
    y = torch.arange(N_TRAIN) % CLASSES
    return ClassificationData(Split(x, y), Split(x[:20], y[:20]), CLASSES, (1, 8, 8),
                              torch.zeros(N_TRAIN, dtype=torch.bool), "one-hot")


def train(tmp_path, *overrides: str, epochs: int = 25):
    """Run a classifier on the one-hot images; returns its metrics rows and, per training
    step, (model input (B, 64), logits (B, 10))."""
    cfg = load_config(None, ClassifyConfig, [
        f"train.epochs={epochs}", f"train.milestones=[{epochs}]", "train.batch_size=16",
        "model.name=mlp", "model.hidden=16", f"output.dir={tmp_path}",
        "output.checkpoint_every=1000", "output.progress=false", "train.device=cpu",
        "eval.memorization=false", *overrides])
    seen = []

    def hook(module, args, out):
        if type(module) is CLASSIFIERS["mlp"] and module.training:
            seen.append((args[0].detach().flatten(1).double().clone(),
                         out.detach().double().clone()))

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        run_classify(cfg, "run", data=one_hot_images())
    finally:
        handle.remove()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text()
            .splitlines()]
    return cfg, rows, seen


def expected_epoch_losses(seen, smoothing: float, epochs: int) -> list[float]:
    """Cross-entropy against the soft targets the inputs imply, mean per epoch."""
    onehot = torch.nn.functional.one_hot(torch.arange(N_TRAIN) % CLASSES, CLASSES).double()
    per_epoch = len(seen) // epochs
    out = []
    for e in range(epochs):
        total, count = 0.0, 0
        for x, logits in seen[e * per_epoch:(e + 1) * per_epoch]:
            target = x @ onehot  # sum_j coefficient_j * onehot(y_j)
            target = (1 - smoothing) * target + smoothing / CLASSES
            loss = -(target * torch.log_softmax(logits, 1)).sum(1).mean()
            total, count = total + float(loss) * len(x), count + len(x)
        out.append(total / count)
    return out


def lam_of(x) -> torch.Tensor:
    """The smaller mixing weight of each row, min(lam, 1 - lam) (0: unmixed)."""
    top = x.topk(2, dim=1).values
    return torch.where(top[:, 0] >= 1 - 1e-6, 0.0, top[:, 1])


@pytest.mark.parametrize("overrides", [["loss.mode=mixup", "loss.alpha=0.4"],
                                       ["loss.mode=mixup", "loss.alpha=1.0",
                                        "loss.label_smoothing=0.1", "loss.per_sample=true"],
                                       ["loss.mode=erm"]], ids=["mixup", "per-sample", "erm"])
def test_a_classifier_step_mixes_inputs_and_targets_as_mixup_defines(tmp_path, overrides):
    epochs = 25
    cfg, rows, seen = train(tmp_path, *overrides, epochs=epochs)
    assert len(seen) == epochs * N_TRAIN // 16
    for x, _ in seen:  # every row is a convex blend of (at most) two training images
        assert torch.allclose(x.sum(1), torch.ones(len(x), dtype=x.dtype), atol=1e-6)
        assert bool((x >= -1e-7).all()) and bool(((x > 1e-7).sum(1) <= 2).all())
    expected = expected_epoch_losses(seen, cfg.loss.label_smoothing, epochs)
    got = [row["train_loss"] for row in rows]
    assert got == pytest.approx(expected, rel=1e-5)
    weights = torch.cat([lam_of(x) if cfg.loss.per_sample else lam_of(x)[:1] for x, _ in seen])
    if cfg.loss.mode == "erm":
        assert float(weights.max()) == 0.0
        return
    # min(lam, 1 - lam) for lam ~ Beta(a, a): its cdf is 2 * F(t) for t <= 1/2
    with torch.random.fork_rng():
        torch.manual_seed(0)
        a = torch.tensor(cfg.loss.alpha, dtype=torch.float64)
        ref = torch.distributions.Beta(a, a).sample((200_000,))
    ref = torch.minimum(ref, 1 - ref).sort().values
    grid = torch.linspace(0.005, 0.495, 99, dtype=torch.float64)
    s = weights.sort().values
    # a row paired with itself (perm(i) = i) is unmixed: about 1 in 16; count it as lam ~ 0
    distance = (torch.searchsorted(s, grid, right=True) / len(s)
                - torch.searchsorted(ref, grid, right=True) / len(ref)).abs().max()
    assert float(distance) < (0.12 if cfg.loss.per_sample else 0.2), float(distance)


def test_mixup_memorizes_corrupted_labels_less_than_erm():
    """Digits with half the training labels replaced by random ones, 40 epochs, seed 0: the
    share of corrupted examples fitted to their random label (stored outcomes, CPU)."""
    pytest.importorskip("sklearn")
    base = ["train.epochs=40", "train.milestones=[40]", "model.hidden=128", "data.corrupt=0.5",
            "output.progress=false", "output.checkpoint_every=1000", "train.device=cpu",
            "train.lr=0.05", "eval.every=40"]
    stored = {"erm": 0.059727, "mixup": 0.010239}  # 35 and 6 of 586 corrupted examples
    data = None
    for mode, memorized in stored.items():
        import tempfile

        with tempfile.TemporaryDirectory() as out:
            cfg = load_config(None, ClassifyConfig, [*base, f"loss.mode={mode}",
                                                     f"output.dir={out}"])
            data = data or load_data(cfg.data)
            summary = run_classify(cfg, mode, data=data)
        assert summary["memorized"] == pytest.approx(memorized, abs=2.5 / 586), mode
