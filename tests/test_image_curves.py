"""FID over training: an image run keeps its generator every `eval.generator_every` steps,
and the image study's report scores each kept generator (scripts/image_study_report.py)."""

import argparse
import dataclasses
import importlib.util
import json
from pathlib import Path

import pytest
import torch

from mixup_gan.checkpoint import load_checkpoint
from mixup_gan.cli import main
from mixup_gan.config import ConfigError, load_config
from mixup_gan.image.config import ImageConfig
from mixup_gan.image.generator import load_generator
from mixup_gan.image.runner import run_image

REPORT = Path(__file__).resolve().parents[1] / "scripts" / "image_study_report.py"


def tiny(tmp_path, *overrides):
    pytest.importorskip("sklearn")
    return load_config(None, ImageConfig, [
        "data.name=digits", "data.channels=1", "model.latent_dim=8", "model.g_width=8",
        "model.d_width=8", "train.steps=6", "train.batch_size=8", "train.n_dis=1",
        "train.lr=0.0002", "train.ema=0.9", "eval.every=3", "eval.n_samples=16",
        f"output.dir={tmp_path}", "output.checkpoint_every=2", "output.progress=false",
        "train.device=cpu", *overrides])


def weights(path, use_ema=True):
    return load_generator(path, use_ema=use_ema)[0].state_dict()


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_kept_generators_are_the_generators_of_shorter_runs(tmp_path):
    """generators/step_3.pt of a 7-step run is, bit for bit, the generator (and EMA) a 3-step
    run ends with; the last step (7, not a multiple of 3) is kept too and is the final
    checkpoint's. Neither D nor the optimizers are kept."""
    run_image(tiny(tmp_path, "eval.generator_every=3", "train.steps=7"), "long")
    run_image(tiny(tmp_path, "train.steps=3"), "short")
    kept = tmp_path / "long" / "generators"
    assert sorted(p.name for p in kept.iterdir()) == [
        "step_0000003.pt", "step_0000006.pt", "step_0000007.pt"]
    for use_ema in (True, False):
        short = weights(tmp_path / "short" / "checkpoint.pt", use_ema)
        assert same(weights(kept / "step_0000003.pt", use_ema), short)
        assert same(weights(kept / "step_0000007.pt", use_ema),
                    weights(tmp_path / "long" / "checkpoint.pt", use_ema))
        assert not same(weights(kept / "step_0000006.pt", use_ema), short)
    state = load_checkpoint(kept / "step_0000006.pt")  # weights_only
    assert state["step"] == 6 and set(state["nets"]) == {"generator", "ema"}
    assert state["optimizers"] == {}


def test_kept_generators_survive_a_resume_and_off_keeps_none(tmp_path):
    run_image(tiny(tmp_path, "eval.generator_every=3", "train.steps=3"), "resumed")
    run_image(tiny(tmp_path, "eval.generator_every=3"), "resumed")  # extended to 6
    kept = tmp_path / "resumed" / "generators"
    assert sorted(p.name for p in kept.iterdir()) == ["step_0000003.pt", "step_0000006.pt"]
    run_image(tiny(tmp_path), "off")
    assert not (tmp_path / "off" / "generators").exists()


def test_overwrite_deletes_a_run_with_kept_generators(tmp_path):
    config = tiny(tmp_path, "eval.generator_every=3")
    run_image(config, "again")
    before = (tmp_path / "again" / "generators" / "step_0000003.pt").stat().st_mtime_ns
    run_image(config, "again", overwrite=True)
    assert (tmp_path / "again" / "generators" / "step_0000003.pt").stat().st_mtime_ns != before


@pytest.mark.parametrize("value", ["0", "-2", "1.5", "often"])
def test_a_bad_generator_every_exits_2_naming_the_key(tmp_path, capsys, value):
    assert main(["image", "--set", f"eval.generator_every={value}",
                 "--set", f"output.dir={tmp_path}"]) == 2
    assert "eval.generator_every" in capsys.readouterr().err


def load_report():
    spec = importlib.util.spec_from_file_location("image_study_report", REPORT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_report_scores_every_kept_generator(tmp_path, monkeypatch):
    """Each run's curve holds one point per kept generator; its last point, drawn from the
    final generator with the table's noise and count, is the table's FID exactly; a run
    without kept generators has no curve; the curve figure is written."""
    report = load_report()
    g = torch.Generator().manual_seed(0)
    fake_split = (torch.rand(1200, 1, 32, 32, generator=g) * 2 - 1,
                  torch.randint(0, 10, (1200,), generator=g))
    monkeypatch.setattr(report, "pixels", lambda dataset, root, train: fake_split)
    monkeypatch.setattr(report, "KID_SUBSETS", 3)  # 100 cost a minute here
    runs = tmp_path / "study"
    run_image(tiny(runs, "eval.generator_every=3"), "dcgan_bce_levers_seed0")
    run_image(tiny(runs, "train.seed=1"), "dcgan_bce_erm_seed1")
    (runs / "dcgan_bce_levers_seed0" / "generators" / "step_final.pt").write_bytes(b"stray")
    drawn = []
    original_draw = report.draw
    monkeypatch.setattr(report, "draw", lambda path, n, seed=0: drawn.append(
        (path.parent.name, n)) or original_draw(path, n, seed))
    args = argparse.Namespace(runs=runs, dataset="fashion-mnist", data_root="unused",
                              n=1000, curve_n=1100, out=None, inception=0,
                              inception_weights=None)
    report.report(args)
    study = json.loads((runs / "study.json").read_text())
    by_run = {r["run"]: r for r in study["runs"]}
    levers = by_run["dcgan_bce_levers_seed0"]
    assert [p["step"] for p in levers["curve"]] == [3, 6]  # the stray file is left out
    assert by_run["dcgan_bce_erm_seed1"]["curve"] == []
    assert sorted(set(drawn)) == [  # the table's --n, the curve's --curve-n, the figure's 64
        ("dcgan_bce_erm_seed1", 64), ("dcgan_bce_erm_seed1", 1000),
        ("dcgan_bce_levers_seed0", 64), ("dcgan_bce_levers_seed0", 1000), ("generators", 1100)]
    # the curve's last point: the final generator, --curve-n images, the table's noise
    net = report.feature_net(runs / "feature_net_fashion-mnist.pt", fake_split, fake_split)
    reference = net.features(fake_split[0])
    expected = report.distances(
        net.features(original_draw(runs / "dcgan_bce_levers_seed0" / "checkpoint.pt", 1100)),
        reference, report.fid_features_to_statistics(reference))
    assert levers["curve"][-1] == {"step": 6, **expected}
    assert levers["curve"][0]["fid"] != expected["fid"]
    assert (runs / "fid_curves.png").stat().st_size > 0
    assert study["curve_n"] == 1100


def cli_scores(checkpoint, root, n, out):
    """`mixup-gan fid CHECKPOINT fashion-mnist-test -n N --metrics fid,kid`, pixel-pool."""
    assert main(["fid", str(checkpoint), "fashion-mnist-test", "-n", str(n), "--metrics",
                 "fid,kid", "--feature-extractor", "pixel-pool", "--datasets-root", str(root),
                 "--no-download", "--no-progress", "--out", str(out)]) == 0
    metrics = json.loads(out.read_text())["metrics"]
    return {"inception_fid": metrics["fid"], "inception_kid": metrics["kid_mean"]}


def test_the_reports_inception_column_is_mixup_gan_fid_and_kept(tmp_path, monkeypatch):
    """--inception N: each run's score is exactly what `mixup-gan fid RUN/checkpoint.pt
    fashion-mnist-test -n N --metrics fid,kid` gives (the tiny pixel-pool extractor stands in
    for Inception, offline), in its own columns, kept in the run so a second report evaluates
    nothing, and scored again once the run has a new checkpoint; a kept file that is not
    such a record stops the report, named."""
    from test_datasets import fetched, idx_bytes

    from mixup_gan import datasets

    report = load_report()
    monkeypatch.setattr(report, "INCEPTION", "pixel-pool")
    monkeypatch.setattr(report, "KID_SUBSETS", 3)
    monkeypatch.setenv("MIXUP_GAN_CACHE", str(tmp_path / "cache"))
    g = torch.Generator().manual_seed(0)
    fake_split = (torch.rand(1200, 1, 32, 32, generator=g) * 2 - 1,
                  torch.randint(0, 10, (1200,), generator=g))
    monkeypatch.setattr(report, "pixels", lambda dataset, root, train: fake_split)
    root, counts = tmp_path / "data", {"train": 12, "t10k": 1000}  # KID needs 1,000
    fetched(root, {f"{split}-{kind}-idx{dims}-ubyte": idx_bytes(kind, values)
                   for split, n in counts.items()
                   for kind, dims, values in (
                       ("images", 3, torch.randint(0, 256, (n, 28, 28), generator=g)),
                       ("labels", 1, torch.arange(n) % 10))}, "fashion-mnist")
    monkeypatch.setitem(datasets.IDX_SETS, "fashion-mnist", dataclasses.replace(
        datasets.IDX_SETS["fashion-mnist"], counts=counts, sha256={}))
    runs = tmp_path / "study"
    names = [f"dcgan_hinge_{arm}_seed0" for arm in ("erm_decay", "mixup_decay")]
    for seed, name in enumerate(names):
        run_image(tiny(runs, f"train.seed={seed}"), name)
    args = argparse.Namespace(runs=runs, dataset="fashion-mnist", data_root=str(root), n=1000,
                              curve_n=1100, out=None, inception=1200,
                              inception_weights=None)
    report.report(args)
    study = json.loads((runs / "study.json").read_text())
    rows = {r["run"]: r for r in study["runs"]}
    assert study["inception_n"] == 1200
    expected = {name: cli_scores(runs / name / "checkpoint.pt", root, 1200, tmp_path / "c.json")
                for name in names}
    for name in names:
        assert {k: rows[name][k] for k in expected[name]} == expected[name]
        assert json.loads((runs / name / "inception_fid_n1200.json").read_text())["n"] == 1200
    assert expected[names[0]] != expected[names[1]]
    table = [[cell.strip() for cell in line.strip().strip("|").split("|")]
             for line in (runs / "study_table.md").read_text().splitlines()
             if line.startswith("| ")]  # the header, the rows, the floor
    assert table[0][-2:] == ["FID (Inception, 1200)", "KID (Inception)"]
    assert {len(row) for row in table} == {len(table[0])}  # the floor row too
    assert [row[2] for row in table[1:-1]] == ["erm_decay", "mixup_decay"]
    for row in table[1:-1]:
        name = f"dcgan_hinge_{row[2]}_seed0"
        assert row[-2:] == [f"{expected[name]['inception_fid']:.2f}",
                            f"{expected[name]['inception_kid']:.4f}"]
    scored = []
    original = report.evaluate
    monkeypatch.setattr(report, "evaluate", lambda generated, *a, **k: scored.append(
        Path(generated).parent.name) or original(generated, *a, **k))
    report.report(args)  # both kept: nothing evaluated again
    assert scored == []
    run_image(tiny(runs, "train.seed=1", "train.steps=8"), names[1])  # trained on
    report.report(args)
    assert scored == [names[1]]
    rows = {r["run"]: r for r in json.loads((runs / "study.json").read_text())["runs"]}
    again = cli_scores(runs / names[1] / "checkpoint.pt", root, 1200, tmp_path / "c.json")
    assert {k: rows[names[1]][k] for k in again} == again != expected[names[1]]
    kept = runs / names[0] / "inception_fid_n1200.json"
    for damage in ("{", json.dumps({"metrics": {"fid": 1.0}}),
                   kept.read_text().replace('"pixel-pool"', '"vgg16"')):
        kept.write_text(damage)
        with pytest.raises(ConfigError, match=str(kept)):
            report.report(args)


@pytest.mark.parametrize("flags", [["--inception", "500"], ["--inception", "-5"],
                                   ["--inception-weights", "w.pt"]])
def test_the_reports_bad_inception_flags_exit_2(tmp_path, flags):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, str(REPORT), "--runs", str(tmp_path), *flags],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert flags[0] in done.stderr.splitlines()[-1]
