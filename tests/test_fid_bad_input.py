"""`mixup-gan fid` under hostile use (issue 24): outputs that would replace their own inputs,
16-bit and float images, truncated files, `--resize` <= 0 and tampered statistics files.
Each case runs the real CLI in-process and must exit 2 with one line naming the culprit, and
leave every input byte-identical. Offline: the `pixel-pool` extractor (no weights)."""

import hashlib
import os

import numpy as np
import pytest
import torch
from PIL import Image

from mixup_gan.checkpoint import atomic_write, load_checkpoint, save_checkpoint
from mixup_gan.cli import main
from mixup_gan.config import config_to_dict, load_config
from mixup_gan.fid import evaluate
from mixup_gan.fid.files import read_rgb8
from mixup_gan.image.config import ImageConfig
from mixup_gan.image.generator import build_image_nets, load_generator

FID = ["fid", "--no-progress", "--feature-extractor", "pixel-pool", "--device", "cpu",
       "--cache-dir", "{ws}/cache"]
OUT = ["--out", "{ws}/fid.json"]


def images(n, seed, size=16):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(20, 230, (n, size, size, 3), generator=g, dtype=torch.uint8).numpy()


def tamper(ws, name, change):
    """A copy of the good statistics file with `change(state)` applied."""
    state = load_checkpoint(ws / "stats.pt")
    change(state)
    save_checkpoint(state, ws / name)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("fid-hostile")
    for folder, seed in (("imgs", 0), ("other", 1)):
        (root / folder).mkdir()
        for i, pixels in enumerate(images(6, seed)):
            Image.fromarray(pixels).save(root / folder / f"{i}.png")
    truncated = root / "truncated"
    truncated.mkdir()
    for i, pixels in enumerate(images(4, 2, size=64)):
        Image.fromarray(pixels).save(truncated / f"{i}.png")
    whole = (truncated / "3.png").read_bytes()
    (truncated / "3.png").write_bytes(whole[: len(whole) // 2])  # not the first file
    first = root / "truncated-first"
    first.mkdir()
    (first / "a.png").write_bytes(whole[: len(whole) // 2])
    for mode, dtype in (("I", np.int32), ("F", np.float32)):
        (root / f"mode{mode}").mkdir()
        for i in range(3):
            Image.fromarray(np.full((8, 8), 30000 + i, dtype)).save(root / f"mode{mode}/{i}.tif")
    config = load_config(None, ImageConfig, ["data.name=digits", "data.channels=1",
                                             "model.latent_dim=8", "model.g_width=8",
                                             "model.d_width=8"])
    G, _ = build_image_nets(config)
    save_checkpoint({"step": 0, "nets": {"generator": G.state_dict()}, "optimizers": {},
                     "rng": None, "progress": {}, "config": config_to_dict(config)},
                    root / "g.pt")
    os.symlink(root / "g.pt", root / "link-to-g.pt")
    assert main([a.format(ws=root) for a in [*FID, *OUT, "{ws}/imgs", "{ws}/other",
                                               "--save-stats", "{ws}/stats.pt"]]) == 0
    stats = load_checkpoint(root / "stats.pt")["fid_statistics"]
    tamper(root, "sigma-shape.pt", lambda s: s["fid_statistics"].update(sigma=torch.ones(48)))
    tamper(root, "nan.pt", lambda s: s["fid_statistics"]["mu"].__setitem__(3, float("nan")))
    tamper(root, "inf.pt", lambda s: s["fid_statistics"]["sigma"].__setitem__((0, 0),
                                                                              float("inf")))
    tamper(root, "no-sigma.pt", lambda s: s["fid_statistics"].pop("sigma"))
    tamper(root, "mu-list.pt", lambda s: s["fid_statistics"].update(mu=[0.0] * 48))
    tamper(root, "mu-int.pt", lambda s: s["fid_statistics"].update(
        mu=torch.zeros(48, dtype=torch.int64)))
    tamper(root, "mismatch.pt", lambda s: s["fid_statistics"].update(
        sigma=stats["sigma"][:40, :40].clone()))
    tamper(root, "not-dict.pt", lambda s: s.update(fid_statistics=[1.0, 2.0]))
    tamper(root, "no-extractor.pt", lambda s: s.pop("extractor_id"))
    tamper(root, "asymmetric.pt", lambda s: s["fid_statistics"]["sigma"].__setitem__(
        (0, 1), stats["sigma"][0, 1] + 10.0))
    tamper(root, "ten-features.pt", lambda s: s.update(fid_statistics={
        "mu": torch.zeros(10, dtype=torch.float64), "sigma": torch.eye(10).double()}))
    return root


CASES = [
    ("--out is the generator checkpoint", [*FID, "{ws}/g.pt", "{ws}/imgs", "--out", "{ws}/g.pt"],
     "--out"),
    ("--out is a link to the checkpoint", [*FID, "{ws}/g.pt", "{ws}/imgs",
                                           "--out", "{ws}/link-to-g.pt"], "--out"),
    ("--save-stats is the checkpoint", [*FID, *OUT, "{ws}/g.pt", "{ws}/imgs",
                                        "--save-stats", "{ws}/g.pt"], "--save-stats"),
    ("--out is the statistics input", [*FID, "{ws}/imgs", "{ws}/stats.pt",
                                       "--out", "{ws}/stats.pt"], "--out"),
    ("--save-stats into the reference folder", [*FID, *OUT, "{ws}/imgs", "{ws}/other",
                                                "--save-stats", "{ws}/other/s.png"],
     "--save-stats"),
    ("--out equals --save-stats", [*FID, "{ws}/imgs", "{ws}/other", "--out", "{ws}/both",
                                   "--save-stats", "{ws}/both"], "--out {ws}/both: is also"),
    ("--out equals --save-stats spelled apart", [*FID, "{ws}/imgs", "{ws}/other", "--out",
                                                 "{ws}/both", "--save-stats",
                                                 "{ws}/cache/../both"], "is also --save-stats"),
    ("--resize 0", [*FID, *OUT, "{ws}/imgs", "{ws}/other", "--resize", "0"], "--resize"),
    ("--resize negative", [*FID, *OUT, "{ws}/imgs", "{ws}/other", "--resize", "-8"], "--resize"),
    ("truncated PNG in a folder", [*FID, *OUT, "{ws}/truncated", "{ws}/imgs", "--resize", "16"],
     "3.png"),
    ("truncated first PNG", [*FID, *OUT, "{ws}/truncated-first", "{ws}/imgs"], "a.png"),
    ("32-bit integer TIFFs", [*FID, *OUT, "{ws}/modeI", "{ws}/imgs"], "mode I"),
    ("float TIFFs", [*FID, *OUT, "{ws}/imgs", "{ws}/modeF"], "mode F"),
    ("statistics: sigma of the wrong shape", [*FID, *OUT, "{ws}/imgs", "{ws}/sigma-shape.pt"],
     "sigma-shape.pt: statistics 'sigma' has shape (48,)"),
    ("statistics: NaN in mu", [*FID, *OUT, "{ws}/imgs", "{ws}/nan.pt"], "nan.pt: statistics 'mu'"
     " holds NaN"),
    ("statistics: inf in sigma", [*FID, *OUT, "{ws}/imgs", "{ws}/inf.pt"], "inf.pt"),
    ("statistics: sigma missing", [*FID, *OUT, "{ws}/imgs", "{ws}/no-sigma.pt"],
     "no-sigma.pt: statistics lack sigma"),
    ("statistics: mu a list", [*FID, *OUT, "{ws}/mu-list.pt", "{ws}/imgs"], "mu-list.pt: "
     "statistics 'mu' is a list"),
    ("statistics: mu of integers", [*FID, *OUT, "{ws}/imgs", "{ws}/mu-int.pt"], "torch.int64"),
    ("statistics: mu and sigma disagree", [*FID, *OUT, "{ws}/imgs", "{ws}/mismatch.pt"],
     "mismatch.pt: statistics 'mu' has 48 features but 'sigma' is (40, 40)"),
    ("statistics: not a dict", [*FID, *OUT, "{ws}/imgs", "{ws}/not-dict.pt"], "not-dict.pt"),
    ("statistics: no extractor_id", [*FID, *OUT, "{ws}/imgs", "{ws}/no-extractor.pt"],
     "extractor_id"),
    ("statistics: sigma not symmetric", [*FID, *OUT, "{ws}/imgs", "{ws}/asymmetric.pt"],
     "not symmetric"),
    ("statistics of another feature size", [*FID, *OUT, "{ws}/imgs", "{ws}/ten-features.pt"],
     "ten-features.pt"),
    ("--seed negative", [*FID, *OUT, "{ws}/imgs", "{ws}/other", "--seed", "-1"], "--seed"),
    ("--seed past 2**63", [*FID, *OUT, "{ws}/imgs", "{ws}/other", "--seed", str(2**63)],
     "--seed"),
]


def digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "cache" not in p.parts}


@pytest.mark.parametrize(("argv", "culprit"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_fid_bad_input_exits_2_naming_the_culprit(ws, capsys, argv, culprit):
    before = digest(ws)
    code = main([a.format(ws=ws) for a in argv])
    out = capsys.readouterr()
    assert code == 2, out.err
    assert "Traceback" not in out.out + out.err
    assert culprit.format(ws=ws) in out.err, out.err
    assert len(out.err.strip().splitlines()) == 1, out.err
    after = digest(ws)
    assert {k: v for k, v in after.items() if k in before} == before  # no input was touched
    assert not [p for p in ws.rglob("*.tmp")]


def test_there_are_enough_fid_cases():
    assert len(CASES) >= 15


def test_sixteen_bit_images_read_as_their_8_bit_values(tmp_path):
    """A 16-bit gray PNG of value 257 v is the 8-bit image of value v (torch-fidelity's own
    reader gives 255 for any value >= 255: mean 253 for 8-bit mean 128), and the FID of such
    a folder equals the FID of the same pixels saved as 8-bit."""
    eight = images(12, 5)[..., 0]  # (12, 16, 16) uint8 gray
    for name in ("png8", "png16", "tif16b"):
        (tmp_path / name).mkdir()
    for i, pixels in enumerate(eight):
        Image.fromarray(pixels).save(tmp_path / "png8" / f"{i}.png")
        Image.fromarray(pixels.astype(np.uint16) * 257).save(tmp_path / "png16" / f"{i}.png")
        Image.fromarray((pixels.astype(np.uint16) * 257).astype(">u2")).save(
            tmp_path / "tif16b" / f"{i}.tif")
    assert Image.open(tmp_path / "png16" / "0.png").mode == "I;16"
    assert Image.open(tmp_path / "tif16b" / "0.tif").mode == "I;16B"
    for name in ("png16", "tif16b"):
        read = np.asarray(read_rgb8(tmp_path / name / "0.png" if name == "png16"
                                    else tmp_path / name / "0.tif"))
        assert read.dtype == np.uint8 and (read == eight[0][..., None]).all()
    # halfway values round: 128 * 257 - 128 is 127.5 in 8-bit units -> 128
    Image.fromarray(np.full((4, 4), 128 * 257 - 128, np.uint16)).save(tmp_path / "half.png")
    assert np.asarray(read_rgb8(tmp_path / "half.png")).mean() == 128
    other = tmp_path / "other"
    other.mkdir()
    for i, pixels in enumerate(images(12, 6)):
        Image.fromarray(pixels).save(other / f"{i}.png")
    options = {"feature_extractor": "pixel-pool", "verbose": False, "use_cache": False}
    fid_8 = evaluate(str(tmp_path / "png8"), str(other), **options)["metrics"]["fid"]
    for name in ("png16", "tif16b"):
        assert evaluate(str(tmp_path / name), str(other), **options)["metrics"]["fid"] == \
            pytest.approx(fid_8, rel=1e-9)


def test_a_good_run_writes_both_outputs_and_reads_its_statistics_back(ws, capsys):
    """The refusals above leave the normal paths working: --out and --save-stats side by
    side, the statistics read back as the reference give the same FID."""
    argv = [*FID, "{ws}/imgs", "{ws}/other", "--out", "{ws}/ok/report.json", "--save-stats",
            "{ws}/ok/stats.pt"]
    assert main([a.format(ws=ws) for a in argv]) == 0
    first = (ws / "ok" / "report.json").read_text()
    argv = [*FID, "{ws}/imgs", "{ws}/ok/stats.pt", "--out", "{ws}/ok/again.json"]
    assert main([a.format(ws=ws) for a in argv]) == 0
    import json

    assert json.loads((ws / "ok" / "again.json").read_text())["metrics"]["fid"] == \
        json.loads(first)["metrics"]["fid"]
    capsys.readouterr()


def test_the_report_is_written_atomically(ws, monkeypatch, capsys):
    """A crash while --out is written (here: the rename fails) leaves the previous report
    whole and no temp file, through the real CLI (a plain write_text would truncate it)."""
    report = ws / "atomic.json"
    atomic_write(report, '{"old": 1}\n')

    def crash(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    argv = [*FID, "--no-cache", "{ws}/imgs", "{ws}/other", "--out", str(report)]
    assert main([a.format(ws=ws) for a in argv]) == 2
    assert "atomic.json" in capsys.readouterr().err
    assert report.read_text() == '{"old": 1}\n'
    assert not list(ws.glob("*.tmp"))


def test_generator_checkpoint_survives_a_refused_out(ws):
    """After every case, the generator checkpoint still loads as a generator."""
    G, latent = load_generator(ws / "g.pt")
    assert latent == 8
