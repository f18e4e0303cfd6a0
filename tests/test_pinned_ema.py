"""The averaged generator (EMA) is the one evaluated and drawn: toy evaluation and snapshots,
`mixup-gan sample`, and generator checkpoints read for FID. Beside the EMA's metrics, a toy
run or sweep with an EMA scores its live generator too (`live_*`), which must be what the same
run scores without an EMA.

The EMA and the live generator are made to differ decisively (an EMA that barely moves from
the initial weights; a checkpoint whose EMA entry is the live weights negated), then the
outputs are traced to one of them. Broken variant caught (tried by hand): `sampler()` or
`load_generator` returning the live generator.
"""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from mixup_gan.checkpoint import load_checkpoint, save_checkpoint
from mixup_gan.cli import main
from mixup_gan.run_folder import read_jsonl
from mixup_gan.runtime import eval_noise
from mixup_gan.toy.metrics import LIVE
from mixup_gan.toy.nets import ToyGenerator
from mixup_gan.toy.runner import run_toy
from mixup_gan.toy.sweep import run_sweep


def test_toy_evaluation_and_snapshots_use_the_ema_generator(tiny_config, tmp_path):
    cfg = tiny_config("train.ema=0.99999", "train.steps=10", "eval.every=10")
    run_toy(cfg, "ema")
    run = tmp_path / "runs" / "ema"
    nets = load_checkpoint(run / "checkpoint.pt")["nets"]
    snapshot = torch.load(run / "snapshots" / "step_000010.pt", weights_only=True)["fake"]
    z = eval_noise(cfg.eval.n_samples, cfg.model.latent_dim, cfg.train.seed)
    outputs = {}
    for key in ("ema", "generator"):
        G = ToyGenerator(cfg.model.latent_dim, cfg.model.hidden, cfg.model.depth)
        G.load_state_dict(nets[key])
        with torch.no_grad():
            outputs[key] = G(z)[:len(snapshot)]
    assert float((outputs["ema"] - outputs["generator"]).abs().max()) > 0.01  # they differ
    torch.testing.assert_close(snapshot, outputs["ema"], rtol=1e-5, atol=1e-6)


SCORED = ("modes", "hq_share", "reverse_kl", "frechet")  # a ring's metrics


def scores(row: dict, prefix: str = "") -> str:
    return json.dumps([row[prefix + name] for name in SCORED])  # NaN equals NaN here


def assert_live_is_the_run_without_ema(plain: list[dict], averaged: list[dict], start: int):
    """`averaged` (rows of a run with an EMA from step `start`) scores its live G as `plain`
    (the same run without one) scores G, bit for bit; the EMA's own scores are those until
    `start`, then they differ."""
    assert [r["step"] for r in averaged] == [r["step"] for r in plain]
    assert not any(k.startswith(LIVE) for r in plain for k in r)
    for p, a in zip(plain, averaged, strict=True):
        assert scores(a, LIVE) == scores(p), a["step"]
        assert (scores(a) == scores(a, LIVE)) == (a["step"] <= start), a["step"]


def test_a_toy_run_with_an_ema_scores_its_live_generator_as_the_run_without(tiny_config,
                                                                            tmp_path, device,
                                                                            monkeypatch):
    from mixup_gan.toy import runner

    rows, marked, plot = {}, [], runner.save_metrics_plot
    monkeypatch.setattr(runner, "save_metrics_plot", lambda *a: marked.append(a[3]) or plot(*a))
    for name, extra in (("plain", []), ("ema", ["train.ema=0.5", "train.ema_start=10"])):
        run_toy(tiny_config(f"train.device={device}", *extra), name)
        rows[name] = read_jsonl(tmp_path / "runs" / name / "metrics.jsonl")
    assert [r["step"] for r in rows["ema"]] == [5, 10, 15, 20]
    assert_live_is_the_run_without_ema(rows["plain"], rows["ema"], start=10)
    assert marked == [0, 10]  # metrics.png marks where the EMA starts


def test_the_toy_command_prints_the_live_generators_scores_after_the_emas(tmp_path, capsys):
    base = ["toy", "--no-progress", "--set", "model.hidden=16", "--set", "train.steps=4",
            "--set", "train.batch_size=16", "--set", "eval.every=4", "--set",
            "eval.n_samples=50", "--set", "eval.snapshots=[4]", "--set",
            f"output.dir={tmp_path}", "--set", "train.device=cpu"]
    assert main([*base, "--set", "train.ema=0.5"]) == 0
    printed = [line.split()[0] for line in capsys.readouterr().out.splitlines()[2:]]
    assert printed.index("frechet") < printed.index("live_modes") < printed.index("live_frechet")
    assert main([*base, "--set", "output.name=plain"]) == 0
    assert "live_" not in capsys.readouterr().out


def test_a_sweep_with_an_ema_scores_and_summarizes_the_live_generators(tmp_path, device):
    text = """
set:
  model.hidden: 16
  model.depth: 1
  train.steps: 8
  train.batch_size: 16
  train.n_dis: 1
  train.device: {device}
  eval.every: 2
  eval.n_samples: 60
grid:
  data.name: [ring]
{cases}
seeds: [0, 1]
population: 2
output: {out}
"""
    path = tmp_path / "sweep.yaml"
    path.write_text(text.format(device=device, out=tmp_path / "mixed", cases=(
        "cases: [{train.ema: 0}, {train.ema: 0.5, train.ema_start: 4}]")))
    root = run_sweep(path, progress=False)
    rows = read_jsonl(root / "results.jsonl")
    for seed in (0, 1):
        assert_live_is_the_run_without_ema(
            *[[r for r in rows if r["train.seed"] == seed and r["train.ema"] == ema]
              for ema in (0, 0.5)], start=4)
    table = (root / "summary.md").read_text().splitlines()
    columns = [c.strip() for c in table[0].strip("|").split("|")]
    plain, averaged = ([c.strip() for c in line.strip("|").split("|")] for line in table[2:4])
    assert columns.index("frechet ↓") < columns.index("live_frechet ↓")
    assert averaged[columns.index("live_frechet ↓")] == plain[columns.index("frechet ↓")]
    assert averaged[columns.index("live_frechet ↓")] != averaged[columns.index("frechet ↓")]
    assert plain[columns.index("live_frechet ↓")] == "no EMA"
    path.write_text(text.format(device=device, out=tmp_path / "plain", cases=""))
    assert "live_" not in (run_sweep(path, progress=False) / "summary.md").read_text()


@pytest.fixture
def two_generators(tmp_path):
    """An image run's checkpoint whose EMA is the live generator negated (far apart), and
    the same checkpoint with only the EMA's weights (as its generator) or only the live."""
    pytest.importorskip("sklearn")
    out = tmp_path / "runs"
    assert main(["image", "--no-progress", "--set", "data.name=digits", "--set",
                 "data.channels=1", "--set", "model.latent_dim=8", "--set", "model.g_width=8",
                 "--set", "model.d_width=8", "--set", "train.steps=2", "--set",
                 "train.batch_size=8", "--set", "train.ema=0.9", "--set", "eval.every=2",
                 "--set", "eval.n_samples=8", "--set", f"output.dir={out}", "--set",
                 "train.device=cpu"]) == 0
    state = load_checkpoint(out / "image" / "checkpoint.pt")
    nets = state["nets"]
    nets["ema"] = {k: -v if v.is_floating_point() and "running_var" not in k else v
                   for k, v in nets["generator"].items()}  # a variance stays positive
    paths = {}
    for name, kept in (("both", nets), ("ema_only", {"generator": nets["ema"]}),
                       ("live_only", {"generator": nets["generator"]})):
        paths[name] = tmp_path / f"{name}.pt"
        save_checkpoint({**state, "nets": kept}, paths[name])
    return paths


def pixels(folder):
    return torch.stack([torch.from_numpy(np.asarray(Image.open(p), dtype=np.float32))
                        for p in sorted(folder.glob("*.png"))])


def test_sample_draws_the_ema_generator(two_generators, tmp_path):
    drawn = {}
    for name, flags in (("both", []), ("ema_only", []), ("live_only", []),
                        ("no_ema", ["--no-ema"])):
        path = two_generators["both" if name == "no_ema" else name]
        folder = tmp_path / f"samples_{name}"
        assert main(["sample", "--checkpoint", str(path), "--n", "6", "--out", str(folder),
                     "--device", "cpu", *flags]) == 0
        drawn[name] = pixels(folder)
    assert float((drawn["ema_only"] - drawn["live_only"]).abs().mean()) > 5  # of 255
    assert torch.equal(drawn["both"], drawn["ema_only"])
    assert torch.equal(drawn["no_ema"], drawn["live_only"])


def test_fid_of_a_checkpoint_measures_the_ema_generator(two_generators, tmp_path):
    from mixup_gan.fid import evaluate
    from mixup_gan.image.generator import load_generator

    reference = tmp_path / "reference"
    assert main(["sample", "--checkpoint", str(two_generators["live_only"]), "--n", "20",
                 "--out", str(reference), "--device", "cpu", "--seed", "7"]) == 0
    fid = {name: evaluate(str(path), str(reference), n=20, batch_size=8, seed=3,
                          feature_extractor="pixel-pool", verbose=False,
                          load_generator=load_generator)["metrics"]["fid"]
           for name, path in two_generators.items()}
    assert abs(fid["ema_only"] - fid["live_only"]) > 1e-3 * max(fid.values())
    assert fid["both"] == pytest.approx(fid["ema_only"], rel=1e-9)
