"""The training loop: seeded reproducibility, exact resume after a crash, the NaN guard."""

import json

import pytest
import torch

from mixup_gan.checkpoint import CheckpointError, load_checkpoint
from mixup_gan.config import ConfigError
from mixup_gan.gan_step import GANStep
from mixup_gan.hooks import Hook
from mixup_gan.runtime import TrainingDiverged
from mixup_gan.toy.runner import run_toy
from mixup_gan.train import GANTrainer


def final_weights(run_dir):
    return load_checkpoint(run_dir / "checkpoint.pt")["nets"]["generator"]


def metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_same_seed_same_run_and_other_seed_differs(tiny_config, tmp_path):
    run_toy(tiny_config(), "a")
    run_toy(tiny_config(), "b")
    run_toy(tiny_config("train.seed=1"), "c")
    runs = tmp_path / "runs"
    assert metrics(runs / "a") == metrics(runs / "b")
    assert_same_weights(final_weights(runs / "a"), final_weights(runs / "b"))
    assert metrics(runs / "a") != metrics(runs / "c")


def test_run_folder_contents(tiny_config, tmp_path):
    summary = run_toy(tiny_config(), "folder")
    run = tmp_path / "runs" / "folder"
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "checkpoint.pt",
                 "snapshots.png", "metrics.png", "snapshots/step_000010.png",
                 "snapshots/step_000020.png"):
        assert (run / name).is_file(), name
    rows = metrics(run)
    assert [r["step"] for r in rows] == [5, 10, 15, 20]
    assert {"d_loss", "g_loss", "modes", "hq_share", "reverse_kl", "frechet"} <= set(rows[0])
    assert json.loads((run / "summary.json").read_text())["modes"] == rows[-1]["modes"]
    assert summary["steps"] == 20
    assert "hidden: 32" in (run / "config.yaml").read_text()


@pytest.mark.parametrize("pairing", ["real-fake", "pool"])
def test_killed_run_resumes_exactly(tiny_config, tmp_path, monkeypatch, pairing):
    cfg = tiny_config(f"loss.pairing={pairing}")
    run_toy(cfg, "whole")

    original = GANTrainer.train_step

    def crash_at_13(self):
        if self.step == 12:
            raise KeyboardInterrupt  # killed during step 13; last checkpoint is step 10
        return original(self)

    monkeypatch.setattr(GANTrainer, "train_step", crash_at_13)
    with pytest.raises(KeyboardInterrupt):
        run_toy(cfg, "killed")
    killed = tmp_path / "runs" / "killed"
    assert load_checkpoint(killed / "checkpoint.pt")["step"] == 10
    monkeypatch.setattr(GANTrainer, "train_step", original)
    run_toy(cfg, "killed")  # the same command resumes
    whole = tmp_path / "runs" / "whole"
    assert metrics(killed) == metrics(whole)
    assert_same_weights(final_weights(killed), final_weights(whole))
    assert sorted(p.name for p in (killed / "snapshots").glob("*.pt")) == [
        "step_000010.pt", "step_000020.pt"]


def test_extending_a_finished_run_equals_a_longer_run(tiny_config, tmp_path):
    run_toy(tiny_config("train.steps=10"), "extended")
    run_toy(tiny_config("train.steps=20"), "extended")
    run_toy(tiny_config("train.steps=20"), "long")
    runs = tmp_path / "runs"
    assert metrics(runs / "extended") == metrics(runs / "long")
    assert_same_weights(final_weights(runs / "extended"), final_weights(runs / "long"))


def test_resume_with_a_different_config_names_the_keys(tiny_config):
    run_toy(tiny_config("train.steps=5"), "mismatch")
    with pytest.raises(ConfigError, match=r"loss.alpha: 0.2 -> 0.5"):
        run_toy(tiny_config("loss.alpha=0.5"), "mismatch")
    run_toy(tiny_config("loss.alpha=0.5", "train.steps=5"), "mismatch", overwrite=True)


def test_divergence_stops_naming_the_step_and_keeps_the_checkpoint(tiny_config, tmp_path,
                                                                    monkeypatch):
    original = GANStep.d_step

    def nan_from_step_7(self, counter, step, *args, **kwargs):
        stats = original(self, counter, step, *args, **kwargs)
        if step >= 6:
            stats["d_loss"] = stats["d_loss"] * float("nan")
        return stats

    monkeypatch.setattr(GANStep, "d_step", nan_from_step_7)
    with pytest.raises(TrainingDiverged, match=r"generator step 7.*last good checkpoint"):
        run_toy(tiny_config(), "diverged")
    state = load_checkpoint(tmp_path / "runs" / "diverged" / "checkpoint.pt")
    assert state["step"] == 5


def test_corrupt_checkpoint_is_a_clear_error(tiny_config, tmp_path):
    run_toy(tiny_config("train.steps=5"), "corrupt")
    ckpt = tmp_path / "runs" / "corrupt" / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        run_toy(tiny_config(), "corrupt")


def test_generator_step_leaves_discriminator_untouched(tiny_config):
    cfg = tiny_config()
    trainer = GANTrainer(
        torch.nn.Linear(2, 2), torch.nn.Linear(2, 1),
        lambda rng, counter, n: rng.normal(counter, n, 2),
        latent_dim=2, loss=cfg.loss, train=cfg.train,
    )
    before = {k: v.clone() for k, v in trainer.D.state_dict().items()}
    trainer.gan_step.g_step(0)
    assert_same_weights(before, trainer.D.state_dict())
    assert all(p.grad is None for p in trainer.D.parameters())
    assert all(p.requires_grad for p in trainer.D.parameters())


def test_hook_schedule():
    hook = Hook(lambda t: None, every=5, at=[3, 7])
    assert [s for s in range(1, 13) if hook.due(s, last=12)] == [3, 5, 7, 10, 12]


def test_contour_option_stores_d_on_a_grid(tiny_config, tmp_path):
    run_toy(tiny_config("eval.contour=true", "train.steps=10"), "contour")
    snap = torch.load(tmp_path / "runs" / "contour" / "snapshots" / "step_000010.pt",
                      weights_only=True)
    grid = snap["d_grid"]
    assert grid.shape == (100, 100) and torch.isfinite(grid).all() and float(grid.std()) > 0
    assert snap["fake"].shape == (200, 2)


def test_a_checkpoint_of_another_layout_is_refused_by_every_trainer(tiny_config):
    from mixup_gan.classify.config import ClassifyConfig
    from mixup_gan.classify.runner import ClassifierTrainer
    from mixup_gan.config import load_config

    cfg = tiny_config()
    trainer = GANTrainer(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1),
                         lambda rng, counter, n: rng.normal(counter, n, 2),
                         latent_dim=2, loss=cfg.loss, train=cfg.train)
    old = {"step": 3, "generator": {}, "rngs": []}  # the layout before the one layout
    with pytest.raises(CheckpointError, match="not written by this version"):
        trainer.load_state_dict(old)
    state = trainer.state_dict()
    assert set(state) == {"step", "nets", "optimizers", "rng", "progress"}
    pytest.importorskip("sklearn")
    from mixup_gan.classify.data import load_data

    config = load_config(None, ClassifyConfig, ["train.device=cpu"])
    classifier = ClassifierTrainer(config, load_data(config.data), torch.device("cpu"))
    assert set(classifier.state_dict()) == set(state)  # one layout for every trainer
    with pytest.raises(CheckpointError, match="not written by this version"):
        classifier.load_state_dict(old)


@pytest.mark.parametrize("reason, shown", [
    ("short reason", "short reason"),
    ("word " * 30, ("word " * 20).rstrip() + " ..."),
    ("abcdef " * 20, ("abcdef " * 14).rstrip() + " ..."),  # at the last word break, not at 100
    ("x" * 150, "x" * 100 + " ..."),  # no word break: cut at 100
    ("a" * 40 + " " + "b" * 80, "a" * 40 + " " + "b" * 59 + " ..."),  # none in the last half
    ("y" * 100, "y" * 100),  # 100 characters: whole
    ("y" * 101, "y" * 100 + " ..."),
    ("", "RuntimeError"),
])
def test_an_unreadable_checkpoint_names_its_reason_cut_at_a_word(tmp_path, monkeypatch, reason,
                                                                shown):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"not read")

    def failing_load(*args, **kwargs):
        raise RuntimeError(reason)

    monkeypatch.setattr(torch, "load", failing_load)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    assert str(caught.value) == f"{path}: corrupt or truncated checkpoint, or not one ({shown})"
