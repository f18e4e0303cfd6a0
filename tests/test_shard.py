"""A sweep sharded over processes (--shard K/N, torchrun, SLURM arrays) trains what one
process trains: the same populations, bit for bit, one report; a killed shard resumes."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mixup_gan import cli
from mixup_gan.config import ConfigError, load_config
from mixup_gan.run_folder import FolderLock
from mixup_gan.toy.sweep import SweepConfig, expand, populations, run_sweep
from mixup_gan.toy.sweep.grid import group_name
from mixup_gan.toy.sweep.shard import (
    Shard,
    cost,
    parse_shard,
    place,
    resolve_shard,
    shard_from_env,
    share,
    split,
    write_once,
)
from mixup_gan.train import GANTrainer

REPO = Path(__file__).resolve().parent.parent
LAUNCHER_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_ARRAY_TASK_ID",
                 "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX", "SLURM_ARRAY_TASK_STEP",
                 "SLURM_ARRAY_TASK_COUNT")
# 8 runs in 4 populations: alpha 0 | 0.2 (apart: D scores other parts) x chunks of 3 + 1;
# costs 18, 6, 18, 6 run-iterations, so 2 shards get pops {0, 1} and {2, 3}
TINY = """
set:
  model.hidden: 16
  model.depth: 1
  train.steps: 6
  train.batch_size: 16
  train.n_dis: 1
  eval.every: 3
  eval.n_samples: 50
  output.checkpoint_every: 2
  train.device: cpu
grid:
  data.name: [ring, grid]
  loss.alpha: [0, 0.2]
seeds: [0, 1]
population: 3
"""
REPORT = ("results.jsonl", "results.csv", "summary.md", "summary.png", "snapshots.png",
          "sweep.json")


@pytest.fixture(autouse=True)
def one_plain_process(monkeypatch):
    """Tests run as one plain process, even inside a SLURM job or torchrun, on one thread
    (as the shard processes below run: the same sums, so the same bits)."""
    for name in LAUNCHER_VARS:
        monkeypatch.delenv(name, raising=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def sweep_file(tmp_path: Path, out: Path) -> Path:
    path = tmp_path / f"{out.name}.yaml"
    path.write_text(TINY + f"output: {out}\nname: tiny\n")
    return path


def groups_of(path: Path):
    sweep = load_config(path, SweepConfig)
    return populations(expand(sweep, str(path)), sweep.population)


def whole_sweep(tmp_path: Path) -> Path:
    """The sweep trained in this one process."""
    return run_sweep(sweep_file(tmp_path, tmp_path / "one"), progress=False)


def assert_same_sweep(root: Path, whole: Path) -> None:
    """The same tables, figures and final samples, to the bit (output folder aside)."""
    for name in REPORT:
        text = (root / name).read_bytes()
        if name == "sweep.json":
            text = text.replace(str(root.parent).encode(), str(whole.parent).encode())
        assert text == (whole / name).read_bytes(), name
    names = sorted(p.name for p in (whole / "populations").iterdir() if p.is_dir())
    assert sorted(p.name for p in (root / "populations").iterdir() if p.is_dir()) == names
    for name in names:
        a, b = (torch.load(r / "populations" / name / "final_samples.pt", weights_only=True)
                for r in (root, whole))
        assert a["ids"] == b["ids"] and torch.equal(a["fake"], b["fake"]), name
    assert not list(root.glob(".*.tmp")) and not list(root.glob("*.tmp"))


def test_the_split_is_balanced_and_every_process_computes_the_same(tmp_path):
    # the costliest first, each to the least loaded shard (round robin would give 20 vs 2)
    assert split([10, 1, 10, 1], 2) == [0, 0, 1, 1]
    assert split([5, 5, 5], 5) == [0, 1, 2]  # more shards than populations: some train none
    costs = [18, 6, 18, 6, 30, 2, 7]
    for count in (1, 2, 3, 4):
        owner = split(costs, count)
        assert owner == split(list(costs), count)
        loads = [sum(c for c, s in zip(costs, owner, strict=True) if s == k)
                 for k in range(count)]
        assert max(loads) - min(loads) <= max(costs)
    groups = groups_of(sweep_file(tmp_path, tmp_path / "x"))
    assert [cost(g) for g in groups] == [18, 6, 18, 6]
    shares = [[group_name(g) for g in share(groups, Shard(k, 3))] for k in range(3)]
    names = [group_name(g) for g in groups]
    assert sorted(sum(shares, [])) == sorted(names)  # each population in exactly one share
    assert [len(s) for s in shares] == [1, 1, 2]  # 18 | 18 | 6 + 6


def test_the_shard_comes_from_the_launchers_environment():
    assert shard_from_env({}) == Shard(0, 1)
    torchrun = {"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1"}
    assert (shard_from_env(torchrun).index, shard_from_env(torchrun).count) == (3, 8)
    assert shard_from_env(torchrun).local_rank == 1
    # SLURM array ids need not start at 0 (--array=4-5), and may step (--array=2-6:2)
    slurm = {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "4",
             "SLURM_ARRAY_TASK_COUNT": "2"}
    assert str(shard_from_env(slurm)) == "1/2"
    stepped = {"SLURM_ARRAY_TASK_ID": "6", "SLURM_ARRAY_TASK_MIN": "2",
               "SLURM_ARRAY_TASK_STEP": "2", "SLURM_ARRAY_TASK_MAX": "6"}
    assert str(shard_from_env(stepped)) == "2/3"
    # an array of torchrun jobs: task 1 of 2, rank 1 of 4 -> 5 of 8
    assert str(shard_from_env({**slurm, "RANK": "1", "WORLD_SIZE": "4"})) == "5/8"
    assert str(resolve_shard("1/2", {"RANK": "0", "WORLD_SIZE": "1"})) == "1/2"
    assert resolve_shard("3/8", torchrun).local_rank == 1  # the flag agrees: its GPU stays
    assert parse_shard(" 2 / 3 ") == Shard(2, 3, source="--shard 2 / 3")


def test_each_process_uses_the_gpu_of_its_local_rank(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    cuda, local = torch.device("cuda"), Shard(1, 2, local_rank=1)
    assert place(cuda, local) == torch.device("cuda", 1)
    assert place(torch.device("cuda", 0), local) == torch.device("cuda", 0)  # named: kept
    assert place(torch.device("cpu"), local) == torch.device("cpu")
    assert place(cuda, Shard(1, 2)) == cuda  # not torchrun: the device as configured
    with pytest.raises(ConfigError, match=r"LOCAL_RANK=2 but this machine has 2 GPU"):
        place(cuda, Shard(2, 4, local_rank=2))


def umask_now() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize(("flag", "env", "match"), [
    ("0/0", {}, r"--shard '0/0': N must be 1 to 65536"),
    ("0/9999999999999999999", {}, r"N must be 1 to 65536"),  # was an OverflowError
    ("0/100000000", {}, r"N must be 1 to 65536"),  # was minutes and GBs of split
    ("\u0660/\u0662", {}, r"expected K/N"),  # Arabic-Indic digits: int() took them as 0/2
    (None, {"RANK": "0", "WORLD_SIZE": "100000000"}, r"expected 0 <= RANK"),
    ("3/2", {}, r"--shard '3/2': K must be 0 to 1"),
    ("-1/2", {}, r"--shard '-1/2': K must be 0 to 1"),
    ("a/b", {}, r"--shard 'a/b': expected K/N"),
    ("1", {}, r"--shard '1': expected K/N"),
    ("1/2/3", {}, r"--shard '1/2/3': expected K/N"),
    ("", {}, r"--shard '': expected K/N"),
    ("1/2", {"RANK": "0", "WORLD_SIZE": "2"}, r"--shard 1/2: the launcher says this is "
                                              r"shard 0/2 \(RANK=0, WORLD_SIZE=2\)"),
    ("0/4", {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2"},
     r"--shard 0/4: the launcher says this is shard 1/2"),
    (None, {"RANK": "2", "WORLD_SIZE": "2"}, r"RANK=2, WORLD_SIZE=2: expected 0 <= RANK"),
    (None, {"RANK": "x", "WORLD_SIZE": "2"}, r"RANK='x' is not an integer"),
    (None, {"RANK": "0"}, r"WORLD_SIZE is not set"),
    (None, {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "1",
            "SLURM_ARRAY_TASK_COUNT": "2"}, r"SLURM array task 3 .*one range"),
    (None, {"SLURM_ARRAY_TASK_ID": "0"}, r"SLURM_ARRAY_TASK_ID is set without"),
])
def test_an_inconsistent_shard_exits_2_naming_the_flag(tmp_path, monkeypatch, capsys, flag,
                                                       env, match):
    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(GANTrainer, "fit_iter", no_training)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    argv = ["sweep", "-c", str(sweep_file(tmp_path, tmp_path / "x")), "--no-progress"]
    assert cli.main(argv + ([f"--shard={flag}"] if flag is not None else [])) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("mixup-gan sweep: error: ")
    assert re.search(match, err), err


def test_report_with_a_shard_exits_2_and_a_launched_report_is_written_once(
        tmp_path, monkeypatch, capsys):
    path = str(sweep_file(tmp_path, tmp_path / "x"))
    assert cli.main(["sweep", "-c", path, "--report", "--shard", "0/2"]) == 2
    assert "--shard 0/2: --report merges every shard's populations" in capsys.readouterr().err
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert cli.main(["sweep", "-c", path, "--report"]) == 0  # rank 0 writes it
    assert "written by shard 0" in capsys.readouterr().out and not (tmp_path / "x").exists()


def test_two_processes_train_what_one_process_trains(tmp_path):
    """Shard 0/2 from the flag and shard 1/2 from torchrun's variables, at the same time in
    one sweep folder: the same results, tables, figures, sweep.json and final samples as one
    process, to the bit; the last to finish wrote the report."""
    whole = whole_sweep(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    command = [sys.executable, "-m", "mixup_gan.cli", "sweep", "--no-progress", "-c",
               str(sweep_file(tmp_path, tmp_path / "two"))]
    jobs = [subprocess.Popen(command + extra, env={**env, **launcher}, cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for extra, launcher in ((["--shard", "0/2"], {}),
                                    ([], {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}))]
    outputs = [job.communicate(timeout=900)[0] for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0], outputs
    for k, out in enumerate(outputs):
        assert f"(shard {k}/2 done)" in out
    assert sum("| data.name | loss.alpha |" in out for out in outputs) >= 1  # a report
    assert_same_sweep(tmp_path / "two" / "tiny", whole)


def test_a_killed_shard_resumes_and_the_others_are_untouched(tmp_path, monkeypatch):
    whole = whole_sweep(tmp_path)
    path = sweep_file(tmp_path, tmp_path / "two")
    groups = groups_of(path)
    original, calls = GANTrainer.train_step, {"n": 0}

    def counted(self, crash_at=None):
        calls["n"] += 1
        if calls["n"] == crash_at:
            raise KeyboardInterrupt  # the shard is killed at its 5th step (pop 0, step 5)
        return original(self)

    monkeypatch.setattr(GANTrainer, "train_step", lambda self: counted(self, crash_at=5))
    with pytest.raises(KeyboardInterrupt):
        run_sweep(path, progress=False, shard=Shard(0, 2))
    monkeypatch.setattr(GANTrainer, "train_step", counted)
    notes, calls["n"] = [], 0
    root = run_sweep(path, progress=False, shard=Shard(1, 2), note=notes.append)
    assert calls["n"] == 12  # its own 2 populations x 6 steps, not the killed shard's
    mine = [group_name(g) for g in share(groups, Shard(0, 2))]
    theirs = [group_name(g) for g in share(groups, Shard(1, 2))]
    assert mine == [group_name(groups[0]), group_name(groups[1])]
    assert not (root / "results.jsonl").exists()  # not the last shard: no report yet
    assert notes[0].startswith("not done: 2 of 4 populations; the last shard")
    assert f"{mine[0]}: 3 runs, at step 3 of 6" in notes[0]
    assert f"{mine[1]}: 1 runs, not started" in notes[0] and theirs[0] not in notes[0]
    notes.clear()
    run_sweep(path, progress=False, report=True, note=notes.append)
    assert notes[0].startswith("not done: 2 of 4 populations:")  # and the partial tables
    assert {json.loads(line)["step"] for line in (root / "results.jsonl").open()} == {3, 6}
    kept = {p: p.read_bytes() for name in theirs
            for p in sorted((root / "populations" / name).iterdir())}
    calls["n"] = 0
    notes.clear()
    run_sweep(path, progress=False, shard=Shard(0, 2), note=notes.append)
    # resumed from the checkpoint at step 4: 2 steps of pop 0 and 6 of pop 1, not 12
    assert calls["n"] == 8 and notes == []
    assert {p: p.read_bytes() for p in kept} == kept  # the other shard's folders untouched
    assert_same_sweep(root, whole)


def test_shards_share_the_sweep_folder_but_not_a_population(tmp_path):
    path = sweep_file(tmp_path, tmp_path / "x")
    groups = groups_of(path)
    busy = share(groups, Shard(0, 2))[0]
    lock = FolderLock(tmp_path / "x" / "tiny" / "populations" / group_name(busy))
    run_sweep(path, progress=False, shard=Shard(1, 2))  # makes the sweep folder
    lock.acquire("test")  # another process trains this population
    try:
        with pytest.raises(ConfigError, match=rf"{group_name(busy)} is in use by another"
                                              r".* or choose another name$"):
            run_sweep(path, progress=False, shard=Shard(0, 2))
        run_sweep(path, progress=False, shard=Shard(1, 2))  # its folders are free
    finally:
        lock.release()
    root = run_sweep(path, progress=False, shard=Shard(0, 2))
    assert (root / "summary.md").is_file()


@pytest.mark.parametrize("change", ["set.train.n_dis=2", "set.train.lr=0.002"])
def test_a_changed_member_config_under_the_same_name_exits_2_naming_name(
        tmp_path, capsys, change):
    """Rerunning a trained sweep with one member setting changed would train different
    members into the same populations: refused, naming the sweep's `name` (the setting
    that gives those folders their names), not a run's `output.name`; nothing deleted."""
    path = sweep_file(tmp_path, tmp_path / "x")
    root = run_sweep(path, progress=False)
    kept = {p: p.read_bytes() for p in sorted(root.rglob("*.pt"))}
    capsys.readouterr()
    assert cli.main(["sweep", "-c", str(path), "--no-progress", "--set", change]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "holds a run with a different config" in err, err
    assert err.endswith("pass --overwrite to start again or choose another name"), err
    assert "output.name" not in err
    assert {p: p.read_bytes() for p in sorted(root.rglob("*.pt"))} == kept


def test_sweep_json_is_written_whole_and_once(tmp_path):
    target = tmp_path / "sweep.json"
    write_once(target, "a")
    assert target.stat().st_mode & 0o044 == 0o044 & ~umask_now()  # readable like any file
    inode = target.stat().st_ino
    write_once(target, "a")  # the same text: left as it is (no process rewrites it)
    assert target.stat().st_ino == inode
    write_once(target, "b")  # changed: replaced by a rename, never truncated in place
    assert target.read_text() == "b" and target.stat().st_ino != inode
    assert [p.name for p in tmp_path.iterdir()] == ["sweep.json"]
