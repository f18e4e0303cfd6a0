"""What a user may change between a run and its resume, what a rerun leaves alone, and the
notation and file kinds every reader accepts."""

import json

import numpy as np
import pytest
import yaml
from PIL import Image

from mixup_gan.config import load_config
from mixup_gan.toy.config import ToyConfig
from mixup_gan.toy.runner import run_toy
from mixup_gan.toy.sweep import run_sweep


@pytest.mark.parametrize("text", ["1e-4", "2E-4", "+1.5e-3", ".5", "3"])
def test_floats_in_the_notation_people_write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(f"train:\n  lr: {text}\n")
    assert load_config(path, ToyConfig).train.lr == float(text)
    assert load_config(None, ToyConfig, [f"train.lr={text}"]).train.lr == float(text)


def test_keys_that_do_not_change_training_may_change_on_resume(tiny_config, tmp_path):
    run_toy(tiny_config("train.steps=10"), "r")
    summary = run_toy(tiny_config("train.steps=20", "data.reference=toy_data/ring_paper.csv",
                                  "train.device=cpu", "eval.every=10"), "r")
    assert summary["steps"] == 20
    saved = yaml.safe_load((tmp_path / "runs" / "r" / "config.yaml").read_text())
    assert saved["data"]["reference"] == "toy_data/ring_paper.csv"


def test_rerunning_a_finished_run_changes_nothing(tiny_config, tmp_path):
    folder = tmp_path / "runs" / "done"
    first = run_toy(tiny_config(), "done")
    files = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert run_toy(tiny_config(), "done") == first
    assert run_toy(tiny_config("train.steps=10"), "done") == first  # fewer steps: no rewrite
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == files
    assert first["iterations_per_second"] > 0


SWEEP = """
set:
  data.reference: null
  model.hidden: 8
  model.depth: 1
  train.batch_size: 8
  train.n_dis: 1
  train.steps: {steps}
  eval.every: {every}
  eval.n_samples: 50
  output.checkpoint_every: 2
grid:
  loss.alpha: [0, 0.2]
seeds: [0]
output: {out}
"""


def test_a_sweep_resumes_after_more_steps_and_other_eval_settings(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(SWEEP.format(steps=4, every=2, out=tmp_path / "out"))
    run_sweep(path, progress=False)
    path.write_text(SWEEP.format(steps=8, every=4, out=tmp_path / "out"))
    root = run_sweep(path, progress=False)
    rows = [json.loads(line) for line in (root / "results.jsonl").read_text().splitlines()]
    assert sorted({r["step"] for r in rows}) == [2, 4, 8]
    path.write_text(SWEEP.format(steps=8, every=4, out=tmp_path / "whole"))
    whole = run_sweep(path, progress=False)
    final = [r for r in rows if r["step"] == 8]
    again = [json.loads(line) for line in (whole / "results.jsonl").read_text().splitlines()]
    assert final == [r for r in again if r["step"] == 8]  # extended == trained in one go


def test_the_smoke_sweep_runs_as_shipped(tmp_path, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    root = run_sweep("configs/sweeps/smoke.yaml", [f"output={tmp_path}"], progress=False)
    assert "| grid | 0.2 | 2 | 40 |" in (root / "summary.md").read_text()


def test_every_image_reader_takes_the_same_files(tmp_path):
    from mixup_gan.fid import evaluate
    from mixup_gan.image.data import image_folder

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i, suffix in enumerate((".webp", ".png", ".bmp")):
            pixels = np.random.default_rng(i + len(name)).integers(0, 256, (8, 8, 3),
                                                                     dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / name / f"{i}{suffix}")
    assert image_folder(tmp_path / "a", size=8).images.shape == (3, 3, 8, 8)
    report = evaluate(str(tmp_path / "a"), str(tmp_path / "a"), feature_extractor="pixel-pool",
                      verbose=False, device="cpu", cache_dir=tmp_path / "cache")
    assert report["metrics"]["fid"] >= 0.0  # a set against itself: never a tiny negative
    assert "3 images" in report["generated"]


def test_a_sweep_with_another_training_key_is_refused_then_overwritten(tmp_path):
    from mixup_gan.config import ConfigError

    path = tmp_path / "s.yaml"
    path.write_text(SWEEP.format(steps=2, every=2, out=tmp_path / "out"))
    run_sweep(path, progress=False)
    path.write_text(SWEEP.format(steps=2, every=2, out=tmp_path / "out")
                    .replace("train.n_dis: 1", "train.n_dis: 2"))
    with pytest.raises(ConfigError, match="train.n_dis: 1 -> 2"):
        run_sweep(path, progress=False)
    root = run_sweep(path, progress=False, overwrite=True)
    assert (root / "results.jsonl").read_text().count('"step": 2') == 2
