"""scripts/classify_results.py, the corrupted-label table: it refuses what it cannot run before
anything trains, and trains and tabulates what it is asked for."""

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "classify_results.py"


def table(tmp_path, *args):
    return subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "out"), *args],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)


@pytest.mark.parametrize(("args", "culprit"), [
    (["--net", "lenet"], "--net lenet: the digits are 8x8"),
    (["--corrupt", "0.2", "2"], "--corrupt 2: give shares in [0, 1] in whole percents"),
    (["--corrupt", "0.201"], "--corrupt 0.201: give shares"),
    (["--corrupt", "-0.5"], "--corrupt -0.5: give shares"),
    (["--set", "train.epochs=0"], "train.epochs: 0 must be > 0"),
])
def test_what_cannot_run_is_refused_before_anything_trains(tmp_path, args, culprit):
    done = table(tmp_path, *args)
    assert done.returncode == 2 and culprit in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert done.stdout == "" and not (tmp_path / "out").exists()


def test_it_trains_the_rows_asked_for_from_any_folder(tmp_path):
    pytest.importorskip("sklearn")
    done = table(tmp_path, "--corrupt", "0.5", "--set", "train.epochs=1", "--set",
                 "train.milestones=[]", "--set", "model.hidden=16", "--set", "train.device=cpu")
    assert done.returncode == 0, done.stderr
    rows = done.stdout.splitlines()[2:]
    assert [r.split(" | ")[:3] for r in rows] == [["| 50%", "ERM", "3"],
                                                   ["| 50%", "mixup (alpha 1)", "3"]]
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_dir()) == [
        f"c50_{mode}_s{seed}" for mode in ("erm", "mixup") for seed in range(3)]
