"""The one stats channel and the one loop: what a step reports reaches one merged row per
logged step (losses, D's mean outputs on real, fake and mixed rows, FID), the summary and
TensorBoard read the same rows, and the classifier runs through the same loop.

D's diagnostics are checked against D's outputs as recorded by forward hooks on the nets
(test_pinned's `Recorder`), not against the package's own numbers."""

import copy
import json
import sys

import pytest
import torch
from test_pinned import blocks, one_point_file, run_recorded, stacked

from mixup_gan.config import load_config
from mixup_gan.gan_config import LossConfig
from mixup_gan.runtime import TrainingDiverged
from mixup_gan.stats import Stats
from mixup_gan.toy.config import ToyConfig, ToyModelConfig, ToyTrainConfig
from mixup_gan.toy.data import point_file
from mixup_gan.toy.runner import build_toy_trainer, run_toy

N, N_DIS = 8, 2


def toy_config(tmp_path, *overrides, steps=8, every=1):
    return load_config(None, ToyConfig, [
        "data.name=points", f"data.path={one_point_file(tmp_path)}", "data.reference=null",
        "model.hidden=16", "model.depth=2", f"train.steps={steps}", f"train.batch_size={N}",
        f"train.n_dis={N_DIS}", f"eval.every={every}", "eval.n_samples=50",
        "eval.snapshots=[]", f"output.dir={tmp_path / 'runs'}", "output.checkpoint_every=100",
        "output.progress=false", "train.device=cpu", *overrides])


def recorded_run(tmp_path, monkeypatch, cfg):
    """Run `cfg`; return its rows and, per generator step, D's last D step (fake, x, out)."""
    rows, recorder = run_recorded(monkeypatch, cfg, tmp_path / "runs", "stats")
    return rows, recorder.steps[N_DIS - 1::N_DIS]


def d_means(step, pool: bool) -> dict[str, float]:
    """D's mean raw output on each part of one D step, from its recorded input and output."""
    fake, x, out = step
    fake, x, o = stacked(fake)[0], stacked(x)[0], out.reshape(-1)
    return {f"d_{kind}_mean": float(o[a:b].mean())
            for kind, a, b in blocks(x, fake, N, 2 * N if pool else N)}


@pytest.mark.parametrize(("overrides", "keys"), [
    (["loss.alpha=0.3", "loss.erm_weight=0.5"], {"real", "fake", "mixed"}),
    (["loss.alpha=0.0"], {"real", "fake"}),
    (["loss.alpha=0.4", "loss.pairing=pool"], {"mixed"}),
], ids=["mixup+erm", "erm", "pool"])
def test_each_row_carries_ds_mean_outputs_on_what_it_scored(tmp_path, monkeypatch, overrides,
                                                             keys):
    cfg = toy_config(tmp_path, *overrides)
    rows, steps = recorded_run(tmp_path, monkeypatch, cfg)
    assert [r["step"] for r in rows] == list(range(1, 9)) and len(steps) == 8
    expected_keys = {f"d_{k}_mean" for k in keys}
    for row, step in zip(rows, steps, strict=True):
        assert {"d_loss", "g_loss"} <= set(row)
        assert {k for k in row if k.endswith("_mean")} == expected_keys, row
        for key, value in d_means(step, cfg.loss.pairing == "pool").items():
            assert row[key] == pytest.approx(value, rel=1e-5, abs=1e-6), (row["step"], key)


def test_a_row_holds_the_mean_since_the_last_row(tmp_path, monkeypatch):
    cfg = toy_config(tmp_path, "loss.alpha=0.3", "loss.erm_weight=0.5", every=4)
    rows, steps = recorded_run(tmp_path, monkeypatch, cfg)
    assert [r["step"] for r in rows] == [4, 8]
    for row, group in zip(rows, (steps[:4], steps[4:]), strict=True):
        per_step = [d_means(s, pool=False) for s in group]
        for key in ("d_real_mean", "d_fake_mean", "d_mixed_mean"):
            mean = sum(m[key] for m in per_step) / 4
            assert row[key] == pytest.approx(mean, rel=1e-5, abs=1e-6), key


def test_with_a_coin_a_row_has_the_rows_d_was_scored_on(tmp_path, monkeypatch):
    """mix_prob 0.5: D is scored on the mixed rows or on the plain ones, by the step's coin;
    each row reports D's outputs on those only."""
    rows, steps = recorded_run(tmp_path, monkeypatch,
                               toy_config(tmp_path, "loss.alpha=0.2", "loss.mix_prob=0.5"))
    kinds = set()
    for row, step in zip(rows, steps, strict=True):
        reported = {k for k in row if k.endswith("_mean")}
        assert reported in ({"d_mixed_mean"}, {"d_real_mean", "d_fake_mean"}), row
        kinds.add(frozenset(reported))
        means = d_means(step, pool=False)
        for key in reported:
            assert row[key] == pytest.approx(means[key], rel=1e-5, abs=1e-6)
    assert len(kinds) == 2  # the coin chose each in some steps


def test_the_penalty_stat_is_the_gradient_penalty_on_what_d_saw(tmp_path):
    g = 2.0
    trainer = build_toy_trainer(ToyModelConfig(latent_dim=2, hidden=16, depth=2),
                                ToyTrainConfig(batch_size=N, n_dis=1),
                                [LossConfig(alpha=0.3, gradient_penalty=g)],
                                [point_file(one_point_file(tmp_path))], [0],
                                torch.device("cpu"))
    before = copy.deepcopy(trainer.D)
    seen = []
    handle = trainer.D.register_forward_hook(lambda m, args, out: seen.append(args[0].detach()))
    stats = trainer.gan_step.d_step(0, 0)
    handle.remove()
    x = seen[-1].clone().requires_grad_(True)  # the mixed rows D scored
    grad, = torch.autograd.grad(before(x).sum(), x)
    expected = 0.5 * g * grad.square().sum(-1).mean()
    value, counted = stats["penalty"]
    assert bool(counted[0]) and float(value[0]) == pytest.approx(float(expected), rel=1e-5)


def test_stats_count_each_member_only_where_it_reported_and_resume():
    stats = Stats(members=2)
    for step in range(3):
        mixed = torch.tensor([step != 1, True])
        stats.add({"d_loss": torch.tensor([1.0, 2.0]) * step,
                   "d_mixed_mean": (torch.tensor([10.0, 20.0]) + step, mixed)})
    again = Stats(members=2)
    again.load_state_dict(stats.state_dict())
    for s in (stats, again):
        assert s.pop_means() == [{"d_loss": 1.0, "d_mixed_mean": 11.0},
                                 {"d_loss": 2.0, "d_mixed_mean": 21.0}]
        assert s.pop_means() == [{}, {}]  # drained
    old = Stats(members=2)  # a checkpoint of the version before: {name: sum, "count": n}
    old.load_state_dict({"d_loss": torch.tensor([3.0, 6.0], dtype=torch.float64), "count": 3})
    assert old.pop_means() == [{"d_loss": 1.0}, {"d_loss": 2.0}]


def test_rows_of_several_hooks_at_one_step_are_one_row():
    stats, written = Stats(members=2), []
    stats.labels = [{"run": "a"}, {"run": "b"}]
    stats.writers.append(written.append)
    stats.add({"g_loss": torch.tensor([1.0, 3.0])})
    stats.drain()
    stats.log({"fid": 7.0})
    stats.log({"modes": 2}, member=1)
    stats.flush(5)
    stats.flush(5)  # nothing more was logged: nothing written
    assert written == [[{"run": "a", "step": 5, "g_loss": 1.0, "fid": 7.0},
                        {"run": "b", "step": 5, "g_loss": 3.0, "fid": 7.0, "modes": 2}]]


# --- image runs: the FID in the step's row; the summary keeps the losses -----------------

def test_an_image_row_merges_losses_diagnostics_and_fid(tmp_path):
    pytest.importorskip("sklearn")
    from mixup_gan.image.config import ImageConfig
    from mixup_gan.image.runner import run_image

    config = load_config(None, ImageConfig, [
        "data.name=digits", "data.channels=1", "model.latent_dim=8", "model.g_width=8",
        "model.d_width=8", "train.steps=6", "train.batch_size=8", "train.n_dis=1",
        "eval.every=3", "eval.n_samples=16", "eval.fid_every=2", "eval.fid_samples=16",
        "eval.fid_extractor=pixel-pool", f"output.dir={tmp_path}", "output.progress=false",
        "train.device=cpu"])
    summary = run_image(config, "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert [r["step"] for r in rows] == [2, 3, 4, 6]  # one row per logged step
    assert set(rows[-1]) >= {"d_loss", "g_loss", "d_mixed_mean", "fid"}
    assert "fid" in rows[0] and "d_loss" not in rows[0]  # FID only: no loss logged there
    assert "fid" not in rows[1] and "d_loss" in rows[1]
    for key in ("d_loss", "g_loss", "d_mixed_mean", "fid"):
        assert summary[key] == rows[-1][key], key


# --- TensorBoard: optional, the same rows ------------------------------------------------

class FakeWriter:
    made: list = []

    def __init__(self, path):
        self.path, self.scalars, self.closed = path, [], False
        FakeWriter.made.append(self)

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))

    def flush(self):
        pass

    def close(self):
        self.closed = True


def test_tensorboard_gets_the_rows_of_metrics_jsonl(tiny_config, tmp_path, monkeypatch):
    import torch.utils.tensorboard

    monkeypatch.setattr(torch.utils.tensorboard, "SummaryWriter", FakeWriter)
    FakeWriter.made = []
    run_toy(tiny_config("output.tensorboard=true", "train.steps=10"), "board")
    board, = FakeWriter.made
    assert board.path == str(tmp_path / "runs" / "board" / "tensorboard") and board.closed
    rows = [json.loads(line) for line in
            (tmp_path / "runs" / "board" / "metrics.jsonl").read_text().splitlines()]
    expected = [(f"{'loss' if k.endswith('_loss') else 'stats'}/{k}", v, row["step"])
                for row in rows for k, v in row.items()
                if k != "step" and v is not None]  # null: not finite, not drawn
    assert board.scalars == expected
    assert {"loss/d_loss", "loss/g_loss", "stats/d_mixed_mean", "stats/modes"} <= {
        tag for tag, _, _ in board.scalars}
    FakeWriter.made = []
    run_toy(tiny_config("train.steps=10"), "off")
    assert FakeWriter.made == []  # off by default


def test_tensorboard_without_the_package_exits_2_naming_the_key(exits_2_naming, tmp_path,
                                                               monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    out = exits_2_naming(["toy", "--no-progress", "--set", "output.tensorboard=true", "--set",
                          "train.steps=2", "--set", "train.device=cpu", "--set",
                          f"output.dir={tmp_path}"], tmp_path, "output.tensorboard")
    assert "pip install tensorboard" in out.err
    assert not any(tmp_path.iterdir())  # nothing written


# --- the classifier through the one loop -------------------------------------------------

def classify_config(tmp_path, *overrides):
    from mixup_gan.classify.config import ClassifyConfig
    return load_config(None, ClassifyConfig, [
        "train.epochs=3", "model.hidden=16", f"output.dir={tmp_path}",
        "output.checkpoint_every=1", "output.progress=false", "train.device=cpu", *overrides])


def test_a_classifier_epoch_reads_nothing_back_to_the_host():
    pytest.importorskip("sklearn")
    from test_engine import OpCounter

    from mixup_gan.classify.data import load_data
    from mixup_gan.classify.runner import ClassifierTrainer

    cfg = classify_config("unused", "loss.mode=erm")
    trainer = ClassifierTrainer(cfg, load_data(cfg.data), torch.device("cpu"))
    with OpCounter() as counter:
        trainer.run_step()
    assert counter.host_reads == []


def test_a_diverged_classifier_stops_at_the_epochs_sync_point(tmp_path, monkeypatch):
    pytest.importorskip("sklearn")
    import mixup_gan.classify.runner as runner

    original, calls = runner.train_loss, {"n": 0}

    def nan_in_epoch_2(*args, **kwargs):
        calls["n"] += 1
        loss = original(*args, **kwargs)
        return loss * float("nan") if calls["n"] == 10 + 3 else loss  # 10 batches an epoch

    monkeypatch.setattr(runner, "train_loss", nan_in_epoch_2)
    cfg = classify_config(tmp_path, "train.batch_size=130")  # 1300 digits: 10 batches
    with pytest.raises(TrainingDiverged, match=r"epoch 2, step 3: loss nan.*last good check"):
        runner.run_classify(cfg, "nan")
    assert calls["n"] == 20  # the epoch ran to its end: its sync point
    state = torch.load(tmp_path / "nan" / "checkpoint.pt", weights_only=True)
    assert state["step"] == 1
    rows = [json.loads(line) for line in (tmp_path / "nan" / "metrics.jsonl").open()]
    assert [r["step"] for r in rows] == [1]


def test_gan_and_classifier_trainers_run_the_one_loop(tmp_path, tiny_config, monkeypatch,
                                                     capsys):
    pytest.importorskip("sklearn")
    import mixup_gan.loop as loop
    from mixup_gan.classify.runner import run_classify

    driven, original = [], loop.fit_iter

    def spy(trainer, *args, **kwargs):
        driven.append((type(trainer).__name__, kwargs.get("sync_every", 1)))
        return original(trainer, *args, **kwargs)

    monkeypatch.setattr(loop, "fit_iter", spy)
    run_classify(classify_config(tmp_path, "output.progress=true"), "bar")
    err = capsys.readouterr().err
    assert "classify" in err and "loss=" in err  # the loop's progress bar, with the loss
    run_toy(tiny_config("train.steps=5"), "toy")
    assert driven == [("ClassifierTrainer", 1), ("GANTrainer", 50)]


def test_a_members_stats_are_those_of_a_run_of_one():
    """Member k's means and keys (which parts it was scored on) equal a run of one's."""
    from test_sweep import MODEL

    from mixup_gan.toy.data import grid, ring

    losses = [LossConfig(alpha=0.2, pairing="pool"), LossConfig(alpha=0.0),
              LossConfig(alpha=0.3, erm_weight=0.5, gradient_penalty=1.0)]
    dists, train = [ring(), grid(), ring()], ToyTrainConfig(batch_size=16, n_dis=2)

    def means(members):
        t = build_toy_trainer(MODEL, train, [losses[k] for k in members],
                              [dists[k] for k in members], members, torch.device("cpu"))
        t.fit(3, progress=False)
        return t.pop_mean_losses()

    population = means([0, 1, 2])
    for k in range(3):
        alone = means([k])[0]
        assert population[k].keys() == alone.keys(), k
        assert population[k] == pytest.approx(alone, rel=1e-4, abs=1e-6), k
    assert "d_mixed_mean" not in population[1] and "d_real_mean" not in population[0]
    assert "penalty" in population[2] and "penalty" not in population[0]
