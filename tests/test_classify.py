"""Classification runs: data, label corruption, config errors, exact resume, CIFAR offline."""

import json

import pytest
import torch
import torch.nn.functional as F

from mixup_gan.classify.config import ClassifyConfig
from mixup_gan.classify.data import corrupt_labels, load_data, load_digits_split
from mixup_gan.classify.nets import CLASSIFIERS
from mixup_gan.classify.runner import run_classify, train_loss
from mixup_gan.config import ConfigError, load_config

pytest.importorskip("sklearn")


@pytest.fixture
def config(tmp_path):
    def make(*overrides):
        base = ["train.epochs=4", "train.milestones=[3]", "model.hidden=32",
                f"output.dir={tmp_path}", "output.checkpoint_every=1", "output.progress=false",
                "train.device=cpu"]
        return load_config(None, ClassifyConfig, base + list(overrides))

    return make


def metrics(path):
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]


def test_digits_split_is_fixed_and_stratified():
    train, test = load_digits_split()
    assert (len(train), len(test)) == (1300, 497)
    assert train.inputs.shape[1:] == (1, 8, 8) and float(train.inputs.max()) == 1.0
    counts = torch.bincount(test.labels, minlength=10)
    assert int(counts.min()) >= 45 and int(counts.max()) <= 56
    again, _ = load_digits_split()
    assert torch.equal(train.labels, again.labels)


def test_corrupt_labels_share_and_seed():
    labels = torch.arange(1000) % 10
    noisy = corrupt_labels(labels, 0.5, 10, seed=3)
    assert torch.equal(noisy, corrupt_labels(labels, 0.5, 10, seed=3))
    changed = int((noisy != labels).sum())
    assert 400 < changed <= 500  # 500 redrawn, about a tenth land on their true class
    assert torch.equal(corrupt_labels(labels, 0.0, 10, seed=3), labels)


def test_mixup_with_alpha_zero_is_erm_with_the_same_smoothing(config):
    torch.manual_seed(0)
    model = CLASSIFIERS["mlp"]((1, 8, 8), 10, 16)
    x, y = torch.rand(12, 1, 8, 8), torch.randint(0, 10, (12,))
    g = torch.Generator()
    erm = train_loss(model, x, y, config("loss.mode=erm", "loss.label_smoothing=0.1"), 10, g)
    mix = train_loss(model, x, y, config("loss.alpha=0", "loss.label_smoothing=0.1"), 10, g)
    torch.testing.assert_close(mix, erm)
    manual = F.cross_entropy(model(x), F.one_hot(y, 10) * 0.9 + 0.01)
    torch.testing.assert_close(erm, manual)


def test_preact_resnet18_matches_the_reference_size():
    model = CLASSIFIERS["preact_resnet18"]((3, 32, 32), 10)
    assert sum(p.numel() for p in model.parameters()) == 11_171_146
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_lenet_is_the_study_reports_feature_net_and_small_at_width_8():
    classic = CLASSIFIERS["lenet"]((1, 32, 32), 10)  # scripts/image_study_report.py's
    assert [tuple(p.shape) for p in classic.parameters()] == [
        (32, 1, 5, 5), (32,), (64, 32, 5, 5), (64,), (128, 1600), (128,), (10, 128), (10,)]
    small = CLASSIFIERS["lenet"]((1, 28, 28), 10, 8)
    assert sum(p.numel() for p in small.parameters()) == 37_610
    x = torch.randn(5, 1, 28, 28)
    features = small.features(x, batch=2)
    assert features.dtype == torch.float64 and features.shape == (5, 128)
    torch.testing.assert_close(small.head(features.float()), small(x))
    assert CLASSIFIERS["lenet"]((1, 16, 16), 10, 4)(torch.randn(2, 1, 16, 16)).shape == (2, 10)
    assert CLASSIFIERS["lenet"].min_side == 16  # the smallest side that leaves a pixel


def test_a_net_too_big_for_the_images_exits_2_naming_both_keys(tmp_path, capsys):
    from mixup_gan.cli import main

    for _ in range(2):  # the refused run leaves nothing that changes the second answer
        code = main(["classify", "--set", "model.name=lenet", "--set", f"output.dir={tmp_path}",
                     "--set", "output.name=small", "--set", "train.device=cpu"])
        assert code == 2
        err = capsys.readouterr().err.strip()
        assert "model.name: 'lenet' needs images of at least 16x16; data.name 'digits' has 8x8" \
            in err and len(err.splitlines()) == 1
        assert not any(tmp_path.iterdir())  # refused before the run folder is made


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("data.corrupt=1.5", r"data.corrupt: 1.5 must be <= 1"),
        ("loss.alpha=-1", r"loss.alpha: -1.0 must be >= 0"),
        ("loss.mode=cutmix", None),
        ("loss.per_sample=true", None),
    ],
)
def test_config_errors_name_the_key(override, match):
    if match is None:  # valid on their own (cutmix refuses per_sample only together)
        cfg = load_config(None, ClassifyConfig, [override])
        key, value = override.split("=")
        section, name = key.split(".")
        expected = {"cutmix": "cutmix", "true": True}[value]
        assert getattr(getattr(cfg, section), name) == expected
        defaults = ClassifyConfig()
        other = "per_sample" if name == "mode" else "mode"
        assert getattr(cfg.loss, other) == getattr(defaults.loss, other)  # the rest untouched
        assert cfg.loss.check() is None
        return
    with pytest.raises(ConfigError, match=match):
        load_config(None, ClassifyConfig, [override])


def test_cutmix_per_sample_is_refused():
    with pytest.raises(ConfigError, match="loss.per_sample: cutmix draws one box"):
        load_config(None, ClassifyConfig, ["loss.mode=cutmix", "loss.per_sample=true"])


def test_num_classes_inconsistent_with_labels(config):
    with pytest.raises(ConfigError, match="data.num_classes: 5 but the digits labels go up to 9"):
        load_data(config("data.num_classes=5").data)


@pytest.mark.parametrize("mode", ["erm", "mixup", "cutmix"])
def test_run_learns_and_records_corruption(config, tmp_path, mode):
    summary = run_classify(config(f"loss.mode={mode}", "data.corrupt=0.2",
                                  "model.name=cnn"), mode)
    assert summary["epochs"] == 4 and summary["corrupted_labels"] > 200
    assert summary["last_test_error"] < 0.5  # far below chance (0.9) after 4 epochs
    assert 0 <= summary["memorized"] <= 1
    rows = metrics(tmp_path / mode)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert rows[-1]["lr"] == pytest.approx(0.01)  # divided by 10 at epoch 3


def test_killed_run_resumes_exactly(config, tmp_path, monkeypatch):
    run_classify(config(), "whole")
    import mixup_gan.classify.runner as runner

    original, calls = runner.train_loss, {"n": 0}

    def crash_in_epoch_3(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2 * 11 + 5:  # 11 batches of 128 per epoch
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(runner, "train_loss", crash_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        run_classify(config(), "killed")
    monkeypatch.setattr(runner, "train_loss", original)
    run_classify(config(), "killed")
    assert metrics(tmp_path / "killed") == metrics(tmp_path / "whole")


def test_cifar10_loads_offline_from_a_cifar_format_folder(tmp_path, fake_cifar10):
    fake_cifar10(tmp_path)
    cfg = load_config(None, ClassifyConfig, ["data.name=cifar10", f"data.root={tmp_path}",
                                             "data.download=false", "data.corrupt=0.5"])
    data = load_data(cfg.data)
    assert (len(data.train), len(data.test), data.num_classes) == (20, 10, 10)
    assert data.input_shape == (3, 32, 32)
    x, y = data.train.inputs[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32


def test_missing_cifar_is_a_clear_error(tmp_path):
    cfg = load_config(None, ClassifyConfig, ["data.name=cifar10", f"data.root={tmp_path}",
                                             "data.download=false"])
    with pytest.raises(ConfigError, match="data.root"):
        load_data(cfg.data)


@pytest.mark.parametrize("mode", ["mixup", "cutmix"])
def test_classify_under_bfloat16_autocast(config, tmp_path, device, mode):
    summary = run_classify(config(f"train.device={device}", "train.amp=true",
                                  f"loss.mode={mode}", "train.epochs=2"), f"amp-{mode}")
    assert summary["device"].startswith(device) and summary["last_test_error"] < 0.9
