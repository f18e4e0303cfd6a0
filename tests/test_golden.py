"""Seeded golden runs: a short toy run, a tiny sweep and a tiny image run on the offline
digits, through the command line; their final metrics are stored numbers (CPU, float32).

Any change to what a training step computes (the lam drawn, the targets, the loss terms,
the draws' counters, the optimizer, the evaluation) moves these numbers; a refactor that
keeps the engine's arithmetic keeps them. Tolerances allow float reassociation only.
"""

import csv
from pathlib import Path

import pytest

from mixup_gan.cli import main

ROOT = Path(__file__).resolve().parents[1]
TIGHT = {"rel": 2e-4, "abs": 1e-6}

TOY = {"d_loss": 0.5591441373, "g_loss": -0.5248452708, "modes": 2, "hq_share": 0.008,
       "reverse_kl": 1.517106397, "frechet": 0.7317964432}
SWEEP = {  # (data, alpha, seed): (modes, hq_share, d_loss, frechet) at step 20
    ('ring', 0.0, 0): (0, 0.0, 1.197740233, 0.7405315076),
    ('ring', 0.0, 1): (0, 0.0, 1.161776462, 0.4757318943),
    ('grid', 0.0, 0): (1, 0.005, 1.208882767, 0.7468686991),
    ('grid', 0.0, 1): (1, 0.015, 1.189130402, 0.4477774068),
    ('ring', 0.2, 0): (0, 0.0, 0.6331715345, 0.7125061413),
    ('ring', 0.2, 1): (0, 0.0, 0.6227503002, 0.4667170114),
    ('grid', 0.2, 0): (1, 0.005, 0.6363684535, 0.730417751),
    ('grid', 0.2, 1): (1, 0.025, 0.6333483517, 0.4490049802),
}
IMAGE = {"d_loss": 0.6747641563, "g_loss": 0.7364461944}  # the mean over the last 8 steps


def toy_run(tmp_path) -> dict:
    import json

    assert main(["toy", "--config", str(ROOT / "configs/toy/ring_mixup.yaml"), "--no-progress",
                 "--set", "model.hidden=32", "--set", "model.depth=2", "--set",
                 "train.steps=60", "--set", "train.batch_size=64", "--set", "eval.every=60",
                 "--set", "eval.n_samples=500", "--set", "eval.snapshots=[]", "--set",
                 "data.reference=null", "--set", f"output.dir={tmp_path}", "--set",
                 "train.device=cpu"]) == 0
    summary = json.loads((tmp_path / "ring_mixup" / "summary.json").read_text())
    return {k: summary[k] for k in TOY}


def sweep_run(tmp_path) -> dict:
    assert main(["sweep", "--config", str(ROOT / "configs/sweeps/smoke.yaml"), "--no-progress",
                 "--set", "set.train.steps=20", "--set", "set.eval.every=20", "--set",
                 f"output={tmp_path}", "--set", "set.train.device=cpu"]) == 0
    results = next(tmp_path.rglob("results.csv"))
    out = {}
    with results.open() as f:
        for row in csv.DictReader(f):
            key = (row["data.name"], float(row["loss.alpha"]), int(row["train.seed"]))
            out[key] = (int(float(row["modes"])), float(row["hq_share"]), float(row["d_loss"]),
                        float(row["frechet"]))
    return out


def image_run(tmp_path) -> dict:
    import json

    assert main(["image", "--config", str(ROOT / "configs/image/digits_dcgan_mixup.yaml"),
                 "--no-progress", "--set", "model.latent_dim=8", "--set", "model.g_width=8",
                 "--set", "model.d_width=8", "--set", "train.steps=8", "--set",
                 "train.batch_size=16", "--set", "eval.every=8", "--set", "eval.n_samples=8",
                 "--set", f"output.dir={tmp_path}", "--set", "train.device=cpu"]) == 0
    summary = json.loads((tmp_path / "digits_dcgan_mixup" / "summary.json").read_text())
    return {k: summary[k] for k in IMAGE}


def test_golden_toy_run(tmp_path):
    got = toy_run(tmp_path)
    assert got["modes"] == TOY["modes"]
    assert got == pytest.approx(TOY, **TIGHT)


def test_golden_sweep(tmp_path):
    got = sweep_run(tmp_path)
    assert sorted(got) == sorted(SWEEP)
    for key, (modes, *numbers) in SWEEP.items():
        assert got[key][0] == modes, key
        assert got[key][1:] == pytest.approx(tuple(numbers), **TIGHT), key


def test_golden_image_run(tmp_path):
    pytest.importorskip("sklearn")
    assert image_run(tmp_path) == pytest.approx(IMAGE, **TIGHT)
