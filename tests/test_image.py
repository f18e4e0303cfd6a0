"""Image GANs: nets, data, EMA, exact resume, sampling, bad input."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from mixup_gan.checkpoint import CheckpointError
from mixup_gan.config import ConfigError, load_config
from mixup_gan.image.config import ImageConfig
from mixup_gan.image.data import digits, image_folder
from mixup_gan.image.generator import sample_images
from mixup_gan.image.nets import build_nets
from mixup_gan.image.runner import run_image
from mixup_gan.train import GANTrainer


@pytest.mark.parametrize(("arch", "size", "channels"),
                         [("dcgan", 32, 3), ("dcgan", 32, 1), ("dcgan", 64, 3),
                          ("sn_resnet", 32, 3)])
def test_nets_shapes(arch, size, channels):
    G, D = build_nets(arch, 16, channels, size, 16, 16)
    with torch.no_grad():
        images = G(torch.randn(3, 16))
    assert images.shape == (3, channels, size, size)
    assert float(images.abs().max()) <= 1.0
    assert D(images).shape == (3,)


def test_sn_resnet_discriminator_is_spectrally_normalised():
    from torch.nn.utils import parametrize

    _, D = build_nets("sn_resnet", 16, 3, 32, 16, 16)
    layers = [m for m in D.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert len(layers) == 11  # 3 + 3 + 2 + 2 convs and the output layer
    assert all(parametrize.is_parametrized(m, "weight") for m in layers)


def test_unsupported_size_names_the_key():
    with pytest.raises(ConfigError, match=r"data.size: 48 is not supported by model.arch "
                                          r"'dcgan' \(supported: 32, 64\)"):
        build_nets("dcgan", 16, 3, 48, 16, 16)


def write_pngs(folder, count=5, size=(20, 12)):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i}.png")


def test_image_folder_resizes_and_scales(tmp_path):
    write_pngs(tmp_path / "imgs" / "nested")
    bank = image_folder(tmp_path / "imgs", size=8, channels=3)
    assert bank.images.shape == (5, 3, 8, 8) and bank.images.dtype == torch.uint8
    batch = bank.sample(7, torch.Generator().manual_seed(0))
    assert batch.shape == (7, 3, 8, 8) and -1 <= float(batch.min()) <= float(batch.max()) <= 1
    assert image_folder(tmp_path / "imgs", size=8, channels=1).shape == (1, 8, 8)


def test_bad_image_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no images"):
        image_folder(tmp_path / "empty", size=8)
    with pytest.raises(ConfigError, match="image folder not found"):
        image_folder(tmp_path / "missing", size=8)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "x.png").write_bytes(b"not a png")
    with pytest.raises(ConfigError, match=r"cannot read image .*x.png"):
        image_folder(tmp_path / "broken", size=8)


def test_cifar10_bank_offline(tmp_path, fake_cifar10):
    from mixup_gan.image.data import load_images

    fake_cifar10(tmp_path)
    bank = load_images("cifar10", root=str(tmp_path), size=32, channels=3, download=False)
    assert bank.images.shape == (20, 3, 32, 32)
    with pytest.raises(ConfigError, match="data.root"):
        load_images("cifar10", root=str(tmp_path / "none"), size=32, channels=3, download=False)


def test_digits_bank():
    pytest.importorskip("sklearn")
    bank = digits(32, channels=1)
    assert bank.images.shape == (1797, 1, 32, 32)
    assert int(bank.images.max()) == 255 and int(bank.images.min()) == 0


def test_ema_follows_the_formula():
    G, D = build_nets("dcgan", 8, 1, 32, 8, 8)
    cfg = load_config(None, ImageConfig, ["train.batch_size=4", "train.n_dis=1"])
    trainer = GANTrainer(G, D, lambda rng, c, n: rng.uniform(c, n, 1, 32, 32) * 2 - 1,
                              latent_dim=8, loss=cfg.loss, train=cfg.train, ema_decay=0.75)
    before = {k: v.clone() for k, v in trainer.G.state_dict().items()}
    trainer.train_step()
    after, ema = trainer.G.state_dict(), trainer.ema.state_dict()
    for name, _ in trainer.G.named_parameters():
        torch.testing.assert_close(ema[name], 0.75 * before[name] + 0.25 * after[name])
    assert torch.equal(ema["project.1.running_mean"], after["project.1.running_mean"])


@pytest.fixture
def image_config(tmp_path):
    pytest.importorskip("sklearn")

    def make(*overrides):
        return load_config(None, ImageConfig, [
            "data.name=digits", "data.channels=1", "model.latent_dim=8", "model.g_width=8",
            "model.d_width=8", "train.steps=6", "train.batch_size=8", "train.n_dis=1",
            "train.lr=0.0002", "eval.every=3", "eval.n_samples=16", f"output.dir={tmp_path}",
            "output.checkpoint_every=2", "output.progress=false", "train.device=cpu",
            *overrides])

    return make


def test_image_run_resumes_exactly_and_samples(image_config, tmp_path, monkeypatch):
    run_image(image_config(), "whole")
    whole = tmp_path / "whole"
    assert (whole / "samples" / "step_0000006.png").is_file()
    original, calls = GANTrainer.train_step, {"n": 0}

    def crash_at_5(self):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(GANTrainer, "train_step", crash_at_5)
    with pytest.raises(KeyboardInterrupt):
        run_image(image_config(), "killed")
    monkeypatch.setattr(GANTrainer, "train_step", original)
    run_image(image_config(), "killed")
    read = lambda run: (tmp_path / run / "metrics.jsonl").read_text()  # noqa: E731
    assert read("killed") == read("whole")
    a = torch.load(whole / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)
    for key in ("generator", "discriminator", "ema"):
        for name, value in a["nets"][key].items():
            assert torch.equal(value, b["nets"][key][name]), f"{key}.{name}"

    out = sample_images(whole / "checkpoint.pt", 5, tmp_path / "samples", batch_size=2)
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 5 and Image.open(pngs[0]).size == (32, 32)


def test_resume_with_another_architecture_names_the_keys(image_config):
    run_image(image_config("train.steps=2"), "arch")
    with pytest.raises(ConfigError, match=r"model.g_width: 8 -> 16"):
        run_image(image_config("model.g_width=16"), "arch")


def test_sampling_refuses_what_is_not_an_image_generator(tmp_path, tiny_config):
    from mixup_gan.toy.runner import run_toy

    run_toy(tiny_config("train.steps=2"), "toy")
    with pytest.raises(CheckpointError, match="not an image GAN generator checkpoint"):
        sample_images(tmp_path / "runs" / "toy" / "checkpoint.pt", 2, tmp_path / "out")
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        sample_images(broken, 2, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_image_cli_summary(image_config, tmp_path, capsys):
    from mixup_gan.cli import main

    code = main(["image", "--set", "data.name=digits", "--set", "data.channels=1",
                 "--set", "model.g_width=8", "--set", "model.d_width=8",
                 "--set", "train.steps=2", "--set", "train.batch_size=4",
                 "--set", f"output.dir={tmp_path}", "--set", "output.name=cli", "--no-progress"])
    assert code == 0 and "images_per_second" in capsys.readouterr().out
    assert json.loads((tmp_path / "cli" / "summary.json").read_text())["steps"] == 2


DDP_SCRIPT = """
import sys
import torch
import torch.distributed as dist
from mixup_gan.config import load_config
from mixup_gan.image.config import ImageConfig
from mixup_gan.image import runner

out = sys.argv[1]
original = runner.ProcessCountTrainer.fit_iter


def fit_and_dump(self, *args, **kwargs):
    yield from original(self, *args, **kwargs)
    torch.save(self.state_dict(), f"{out}/rank{dist.get_rank()}.pt")


runner.ProcessCountTrainer.fit_iter = fit_and_dump
cfg = load_config(None, ImageConfig, sys.argv[2:])
runner.run_image(cfg, "ddp")
"""


def test_two_process_ddp_keeps_ranks_identical(image_config, tmp_path):
    import os
    import subprocess
    import sys

    overrides = ["data.name=digits", "data.channels=1", "model.latent_dim=8", "model.g_width=8",
                 "model.d_width=8", "train.steps=3", "train.batch_size=8", "train.n_dis=1",
                 "loss.erm_weight=0.5", "eval.every=3", "output.checkpoint_every=3",
                 "output.progress=false", "train.device=cpu", f"output.dir={tmp_path}"]
    script = tmp_path / "ddp_run.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(script), str(tmp_path), *overrides],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    # Weights match exactly. BatchNorm running statistics are not weights: DDP broadcasts
    # them from rank 0 at each forward, then each rank's own batch updates them.
    for key in ("generator", "discriminator", "ema"):
        nets = [rank["nets"][key] for rank in ranks]
        weights = [n for n in nets[0] if "running_" not in n and "num_batches" not in n]
        assert len(weights) > 10
        for name in weights:
            assert torch.equal(nets[0][name], nets[1][name]), f"{key}.{name}"
    assert ranks[0]["rng"]["seeds"] != ranks[1]["rng"]["seeds"]  # own data streams
    single = image_config(*[o for o in overrides if not o.startswith("output.dir")])
    run_image(single, "single")
    alone = torch.load(tmp_path / "single" / "checkpoint.pt",
                       weights_only=True)["nets"]["generator"]
    assert any(not torch.equal(v, ranks[0]["nets"]["generator"][k]) for k, v in alone.items())
    saved = torch.load(tmp_path / "ddp" / "checkpoint.pt", weights_only=True)
    assert saved["progress"]["processes"] == 2
    with pytest.raises(ConfigError, match="written by 2 process"):  # one process can't resume
        run_image(load_config(None, ImageConfig, overrides), "ddp")


def test_tensorboard_logging_when_installed(image_config, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_image(image_config("train.steps=3", "output.tensorboard=true"), "board")
    events = EventAccumulator(str(tmp_path / "board" / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("loss/d_loss")] == [3]
    assert "samples" in events.Tags()["images"]
    row = json.loads((tmp_path / "board" / "metrics.jsonl").read_text().splitlines()[-1])
    for key in ("g_loss", "d_mixed_mean"):  # the same rows as metrics.jsonl
        tag = "loss/g_loss" if key == "g_loss" else f"stats/{key}"
        assert [(e.step, e.value) for e in events.Scalars(tag)] == [
            (3, pytest.approx(row[key], rel=1e-6))]
    run_image(image_config("train.steps=3"), "off")  # output.tensorboard: false by default
    assert not (tmp_path / "off" / "tensorboard").exists()


@pytest.mark.parametrize("arch", ["dcgan", "sn_resnet"])
def test_default_discriminators_judge_each_sample_alone(arch):
    # mixup's soft targets are per sample: D(x_i) must not depend on the rest of the batch
    # (BatchNorm in D breaks this, and with it mixup training; see DCGANDiscriminator).
    from torch.nn.utils import parametrize

    def together_and_alone(net, x):
        # cached(): one spectral-norm power iteration for all calls, so weights stay fixed
        with torch.no_grad(), parametrize.cached():
            return net(x), torch.cat([net(x[i:i + 1]) for i in range(len(x))])

    x = torch.randn(6, 3, 32, 32)
    _, D = build_nets(arch, 8, 3, 32, 8, 8)  # train mode
    torch.testing.assert_close(*together_and_alone(D, x), rtol=1e-4, atol=1e-5)
    _, bn = build_nets("dcgan", 8, 3, 32, 8, 8, d_norm="batch")
    together, alone = together_and_alone(bn, torch.cat([x[:1], x[1:] * 3]))
    assert not torch.allclose(together, alone, atol=1e-3)  # BatchNorm: depends on the batch
    with pytest.raises(ConfigError, match="model.d_norm"):
        build_nets("dcgan", 8, 3, 32, 8, 8, d_norm="layer")


def test_image_run_under_bfloat16_autocast(image_config, device):
    # The crash of the default config on a GPU (bfloat16 targets against float32 loss
    # terms), reproduced and fixed on every device: autocast runs the same code on the CPU.
    summary = run_image(image_config(f"train.device={device}", "train.amp=true",
                                     "loss.erm_weight=0.5", "train.steps=3"), "amp")
    assert summary["device"].startswith(device)
    assert all(map(lambda v: v == v and abs(v) < 1e6, (summary["d_loss"], summary["g_loss"])))
