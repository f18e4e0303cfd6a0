"""The image study's driver (scripts/image_study.sh): each arm trains the config and levers it
names, under a run name the report (scripts/image_study_report.py) reads back."""

import gzip
import importlib.util
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "image_study.sh"
DECAY = "{kind: linear, final: 0}"  # the lr schedule of the decayed arms


def study(*args, script=SCRIPT, **env):
    """The commands the script would run, one argument list per run (MIXUP_GAN prints them)."""
    settings = ("DATASET", "ARCH", "LOSS", "SEEDS", "ARMS", "STEPS", "DATA_ROOT", "RUNS", "EXTRA",
                "BUDGET", "OUT", "PYTHON")  # the last three: the GPU driver's
    base = {k: v for k, v in os.environ.items() if k not in settings}  # the script's defaults
    done = subprocess.run(["bash", str(script), *args], cwd=ROOT, capture_output=True, text=True,
                          env={**base, "LC_ALL": "C", "MIXUP_GAN": "printf %s\\x1f", **env})
    runs = [line.split("\x1f")[:-1] for line in done.stdout.split("\n") if "\x1f" in line]
    return done, runs


def sets(args):
    """The (key, value) pairs an argument list sets with --set, in order."""
    return [tuple(v.split("=", 1)) for flag, v in zip(args[:-1], args[1:], strict=True)
            if flag == "--set"]


def setting(args, key):
    """The value the last --set of `key` gives, or None."""
    values = [v for k, v in sets(args) if k == key]
    return values[-1] if values else None


def test_each_arm_trains_its_config_with_its_levers():
    done, runs = study(ARMS="erm mixup levers erm_decay mixup_decay", SEEDS="3", LOSS="hinge")
    assert done.returncode == 0, done.stderr
    by_name = {setting(r, "output.name"): r for r in runs}
    assert list(by_name) == [f"dcgan_hinge_{arm}_seed3" for arm in
                             ("erm", "mixup", "levers", "erm_decay", "mixup_decay")]
    expected = {  # arm: (config, lr schedule, gradient penalty)
        "erm": ("erm", None, None), "mixup": ("mixup", None, None),
        "levers": ("mixup", DECAY, "1"), "erm_decay": ("erm", DECAY, None),
        "mixup_decay": ("mixup", DECAY, None)}
    for arm, (config, schedule, penalty) in expected.items():
        args = by_name[f"dcgan_hinge_{arm}_seed3"]
        path = args[args.index("--config") + 1]
        assert path == str(ROOT / f"configs/image/fashion_mnist_dcgan_{config}.yaml")
        assert Path(path).is_file()
        assert setting(args, "train.lr_schedule") == schedule
        assert setting(args, "loss.gradient_penalty") == penalty
        assert (setting(args, "train.seed"), setting(args, "loss.name")) == ("3", "hinge")
        levers = {k for k, v in (("train.lr_schedule", schedule),
                                 ("loss.gradient_penalty", penalty)) if v}
        run = {"data.root", "data.download", "output.dir", "output.name", "train.seed",
               "loss.name"}
        assert {k for k, _ in sets(args)} == run | levers  # nothing else changed


@pytest.mark.parametrize("arms, culprit", [
    ("erm decay", "decay"), ("mixup levers Mixup", "Mixup"), ("erm_", "erm_"),
    ("erm mixup*", "mixup*"),
])
def test_an_unknown_arm_exits_2_naming_it_before_any_run(arms, culprit):
    done, runs = study(ARMS=arms, SEEDS="0 1")
    assert done.returncode == 2
    assert runs == []  # nothing trained before the typo is found
    assert done.stderr == (f"image_study.sh: unknown arm '{culprit}' "
                           "(erm, mixup, levers, erm_decay, mixup_decay)\n")


def report_module():
    spec = importlib.util.spec_from_file_location("image_study_report",
                                                  ROOT / "scripts" / "image_study_report.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    return report


@pytest.mark.parametrize("name, arch, arm, seed", [
    ("dcgan_hinge_erm_decay_seed2", "dcgan", "erm_decay", 2),
    ("sn_resnet_bce_mixup_decay_seed10", "sn_resnet", "mixup_decay", 10),
    ("sn_resnet_hinge_levers_seed0", "sn_resnet", "levers", 0)])
def test_the_report_reads_every_arm_name_back(name, arch, arm, seed):
    report = report_module()
    match = report.RUN_NAME.match(name)
    assert (match["arch"], match["arm"], int(match["seed"])) == (arch, arm, seed)


def test_the_report_orders_the_script_arms_as_listed_and_others_after_by_name():
    report = report_module()
    done, _ = study(ARMS="nothing", SEEDS="0")  # the script lists its arms when refusing one
    listed = done.stderr.split("(")[1].split(")")[0].split(", ")
    assert tuple(listed) == report.ARMS  # the script's message names the report's arms
    arms = ["zeta", "mixup_decay", "alpha", "erm_decay", "mixup", "levers", "erm"]
    assert sorted(arms, key=report.arm_order) == [
        "erm", "mixup", "levers", "erm_decay", "mixup_decay", "alpha", "zeta"]


def test_check_only_checks_the_settings_and_other_arguments_are_refused():
    done, runs = study("--check", ARMS="erm levers mixup_decay")
    assert (done.returncode, runs, done.stderr) == (0, [], "")  # nothing trains
    done, runs = study("--check", ARMS="erm levels")
    assert (done.returncode, runs) == (2, [])
    assert "unknown arm 'levels'" in done.stderr
    for args, culprit in ((["--seeds", "1"], "--seeds"), (["--check", "x"], "x"),
                          (["check"], "check"), (["--check", "--check"], "--check")):
        done, runs = study(*args, ARMS="erm")
        assert (done.returncode, runs) == (2, []), args
        assert done.stderr == (f"image_study.sh: unknown argument '{culprit}' "
                               "(settings come from the environment; --check)\n")


@pytest.mark.parametrize("env, config", [
    ({"DATASET": "svhn"}, "svhn_dcgan_erm"), ({"DATASET": "fashion"}, "fashion_dcgan_erm"),
    ({"DATASET": "digits", "ARCH": "sn_resnet"}, "digits_sn_resnet_erm"),
])
def test_a_dataset_or_architecture_without_configs_exits_2_before_any_run(env, config):
    done, runs = study(ARMS="erm mixup", SEEDS="0", **env)
    assert (done.returncode, runs) == (2, [])
    dataset, arch = env.get("DATASET", "fashion-mnist"), env.get("ARCH", "dcgan")
    assert done.stderr == (f"image_study.sh: no config {ROOT}/configs/image/{config}.yaml "
                           f"(DATASET={dataset}, ARCH={arch})\n")


@pytest.mark.parametrize("env, message", [
    ({"ARMS": " \t "}, "ARMS names no arm (erm, mixup, levers, erm_decay, mixup_decay)"),
    ({"SEEDS": "  "}, "SEEDS names no seed"),
    ({"SEEDS": "0,1"}, "SEEDS: '0,1' is not a seed (whole numbers without leading zeros, "
                       "space-separated)"),
    ({"SEEDS": "0 -1"}, "SEEDS: '-1' is not a seed (whole numbers without leading zeros, "
                        "space-separated)"),
    ({"DATASET": "fashion_mnist"}, "DATASET 'fashion_mnist': write it with dashes (fashion-mnist)"),
    ({"SEEDS": "010"}, "SEEDS: '010' is not a seed (whole numbers without leading zeros, "
                       "space-separated)"),  # YAML would read seed 8
    ({"SEEDS": "0 08"}, "SEEDS: '08' is not a seed (whole numbers without leading zeros, "
                        "space-separated)"),
    ({"SEEDS": str(2**63)}, f"SEEDS: '{2**63}' is not a seed (whole numbers without leading "
                            "zeros, space-separated)"),  # past the config's int64
    ({"SEEDS": "1" * 20}, f"SEEDS: '{'1' * 20}' is not a seed (whole numbers without leading "
                          "zeros, space-separated)"),
    ({"SEEDS": "3 0 3"}, "SEEDS: '3' twice"),
    ({"ARMS": "erm levers erm"}, "ARMS: 'erm' twice"),
    ({"LOSS": "least_squares"}, "LOSS 'least_squares': the study's losses are bce and hinge"),
    ({"ARCH": "mnist_dcgan", "DATASET": "fashion"}, "ARCH 'mnist_dcgan': dcgan or sn_resnet"),
    ({"ARCH": "resnet"}, "ARCH 'resnet': dcgan or sn_resnet"),
    ({"STEPS": "abc"}, "STEPS 'abc': a whole number of steps"),
    ({"STEPS": "0"}, "STEPS '0': a whole number of steps"),
])
def test_settings_that_would_train_nothing_or_elsewhere_exit_2_naming_them(env, message):
    done, runs = study(**{"ARMS": "erm", "SEEDS": "0", **env})
    assert (done.returncode, runs) == (2, [])
    assert done.stderr == f"image_study.sh: {message}\n"


@pytest.mark.parametrize("seeds", ["0", str(2**63 - 1), "1" * 19, "7 " + "9" * 18])
def test_every_seed_the_config_takes_is_taken(seeds):
    done, runs = study(ARMS="erm", SEEDS=seeds)
    assert done.returncode == 0, done.stderr
    assert [setting(r, "train.seed") for r in runs] == seeds.split()


def test_the_study_finds_its_configs_from_any_folder(tmp_path):
    for script in ("image_study.sh", "image_study_gpu.sh"):  # a cd through CDPATH prints
        done = subprocess.run(["bash", f"scripts/{script}"], cwd=ROOT, capture_output=True,
                              text=True, env={**os.environ, "MIXUP_GAN": "printf %s\x1f",
                                              "ARMS": "levers erm_", "CDPATH": "."})
        assert (done.returncode, done.stderr) == (
            2, "image_study.sh: unknown arm 'erm_' (erm, mixup, levers, erm_decay, mixup_decay)\n")
    done = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "MIXUP_GAN": "printf %s\x1f", "ARMS": "levers",
                               "SEEDS": "1"})
    assert done.returncode == 0, done.stderr
    args = done.stdout.split("\x1f")
    config = ROOT / "configs" / "image" / "fashion_mnist_dcgan_mixup.yaml"
    assert args[args.index("--config") + 1] == str(config)


GPU_DRIVER = ROOT / "scripts" / "image_study_gpu.sh"
FASHION_FILES = {f"{split}-{kind}-idx{3 if kind == 'images' else 1}-ubyte": f"{split} {kind}"
                 for split in ("train", "t10k") for kind in ("images", "labels")}


def script(path, body):
    path.write_text(f"#!/usr/bin/env bash\n{body}\n")
    path.chmod(0o755)
    return str(path)


def gpu_study(tmp_path, *args, report_rc=0, files=FASHION_FILES, **env):
    """The GPU driver on stand-ins: a trainer that prints its arguments (or `MIXUP_GAN`), and
    the real Python but for the report (it needs finished runs), which writes down its
    arguments and exits with `report_rc`."""
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (raw / f"{name}.gz").write_bytes(gzip.compress(text.encode()))
    python = script(tmp_path / "python", f"case $1 in *image_study_report.py) shift; "
                    f"printf '%s\\n' \"$@\" > {tmp_path}/report_args; exit {report_rc} ;; esac\n"
                    f"exec {sys.executable} \"$@\"")
    settings = {"RUNS": str(tmp_path / "runs"), "OUT": str(tmp_path / "out"), "SEEDS": "0",
                "DATA_ROOT": str(tmp_path / "data"), "PYTHON": python,
                "MIXUP_GAN": "printf %s\\n"}
    return study(*args, script=GPU_DRIVER, **{**settings, **env})[0]


def test_the_gpu_driver_unzips_the_data_trains_every_arm_and_packs_the_runs(tmp_path):
    (tmp_path / "runs" / "fashion-mnist" / "x" / "tensorboard").mkdir(parents=True)
    (tmp_path / "runs" / "fashion-mnist" / "x" / "tensorboard" / "events").write_text("big")
    done = gpu_study(tmp_path, ARMS="erm levers", SEEDS="0 2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "every run finished"
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    assert {name: (raw / name).read_text() for name in FASHION_FILES} == FASHION_FILES
    runs = tmp_path / "runs"
    logs = {p.name: p.read_text().splitlines() for p in runs.glob("log_*.txt")}
    assert sorted(logs) == ["log_erm_seed0.txt", "log_erm_seed2.txt", "log_levers_seed0.txt",
                            "log_levers_seed2.txt"]
    for name, lines in logs.items():  # each process trains its own arm and seed, and only it
        arm, seed = name[4:-4].rsplit("_seed", 1)
        assert [line.split()[-3:] for line in lines if line.startswith("== ")] == [
            [arm, "seed", seed]]
        assert f"output.name=dcgan_bce_{arm}_seed{seed}" in lines
        assert "train.steps=5000" in lines  # the driver's default STEPS
    report = (tmp_path / "report_args").read_text().splitlines()
    assert report == ["--runs", f"{runs}/fashion-mnist", "--dataset", "fashion-mnist",
                      "--data-root", str(tmp_path / "data"), "--out", str(tmp_path / "out")]
    parts = sorted((tmp_path / "out").glob("image_study.tar.gz.part*"))
    with tarfile.open(fileobj=io.BytesIO(b"".join(p.read_bytes() for p in parts))) as packed:
        names = packed.getnames()
    assert sum(name.endswith("log_erm_seed2.txt") for name in names) == 1
    assert not any("tensorboard" in name for name in names)


@pytest.mark.parametrize("trainer, budget, report_rc, rc, last", [
    ("exit 1", 60, 0, 1, "a run or the report failed (status 1): its log is above"),
    ("exit 1", 60, 2, 1, "a run or the report failed (status 1): its log is above"),
    ("sleep 30", 1, 0, 0, "the budget ran out before every run finished: rerun with {runs} "
                          "carried in to go on"),
    ("true", 60, 2, 2, "a run or the report failed (status 2): its log is above"),
    # one arm fails, one runs out of time: the failure is the status
    ('case "$*" in *_mixup.yaml*) exit 3 ;; esac; sleep 30', 2, 0, 3,
     "a run or the report failed (status 3): its log is above"),
])
def test_the_gpu_driver_exits_with_a_failed_run_or_report(tmp_path, trainer, budget, report_rc,
                                                          rc, last):
    done = gpu_study(tmp_path, report_rc=report_rc, ARMS="erm mixup", BUDGET=str(budget),
                     MIXUP_GAN=script(tmp_path / "trainer", trainer))
    assert done.returncode == rc, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == last.format(runs=tmp_path / "runs")


def test_the_gpu_driver_refuses_bad_settings_before_it_starts_anything(tmp_path):
    cases = [  # (arguments, settings, files of the set, the one line it prints)
        ((), {"ARMS": "erm mixpu"}, FASHION_FILES, "image_study.sh: unknown arm 'mixpu' "
         "(erm, mixup, levers, erm_decay, mixup_decay)"),
        ((), {"DATASET": "svhn"}, FASHION_FILES, "image_study.sh: no config "
         f"{ROOT}/configs/image/svhn_dcgan_erm.yaml (DATASET=svhn, ARCH=dcgan)"),
        ((), {"DATASET": "cifar10"}, FASHION_FILES, "image_study_gpu.sh: DATASET 'cifar10': only "
         "the sets whose .gz files travel to the GPU machine (mnist, fashion-mnist)"),
        ((), {"DATASET": "mnist"}, FASHION_FILES, "image_study_gpu.sh: no "
         "{data}/MNIST/raw/train-images-idx3-ubyte.gz (carry the set's 4 .gz files in, as above)"),
        ((), {}, dict(list(FASHION_FILES.items())[:3]), "image_study_gpu.sh: no "
         "{data}/FashionMNIST/raw/t10k-labels-idx1-ubyte.gz (carry the set's 4 .gz files in, "
         "as above)"),
        (("--check",), {}, FASHION_FILES,
         "image_study_gpu.sh: unknown argument '--check' (settings come from the environment)"),
        ((), {"BUDGET": "abc"}, FASHION_FILES, "image_study_gpu.sh: BUDGET 'abc': whole "
         "seconds, at least 1"),
        ((), {"BUDGET": "0"}, FASHION_FILES, "image_study_gpu.sh: BUDGET '0': whole seconds, at "
         "least 1"),  # for timeout, 0 is no limit
    ]
    for i, (args, env, files, line) in enumerate(cases):
        where = tmp_path / str(i)
        done = gpu_study(where, *args, files=files, **env)
        assert done.returncode == 2, (env, done.stderr)
        assert done.stderr == line.format(data=where / "data") + "\n", env
        assert not (where / "runs").exists() and not (where / "out").exists()


def test_the_gpu_driver_refuses_a_broken_gz_and_parts_of_an_earlier_call(tmp_path):
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    done = gpu_study(tmp_path, files={k: v for k, v in FASHION_FILES.items() if "train-l" not in k})
    assert done.returncode == 2
    assert done.stderr == (f"image_study_gpu.sh: {raw}/train-labels-idx1-ubyte.gz: not a gzip "
                           "file (copy it again)\n")
    assert not (raw / "train-labels-idx1-ubyte").exists()  # no half-written file is left
    assert not (raw / "train-labels-idx1-ubyte.part").exists()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "image_study.tar.gz.part01").write_bytes(b"old")
    done = gpu_study(tmp_path)
    assert done.returncode == 2
    assert done.stderr == (f"image_study_gpu.sh: {tmp_path}/out already holds "
                           "image_study.tar.gz.part* of an earlier call: move them away\n")
    assert (tmp_path / "out" / "image_study.tar.gz.part01").read_bytes() == b"old"


def test_the_gpu_driver_reads_paths_from_the_callers_folder(tmp_path):
    here = tmp_path / "here"
    here.mkdir()
    gpu_study(tmp_path, ARMS="nothing")  # makes the data and the stand-in python, trains nothing
    done = subprocess.run(["bash", str(GPU_DRIVER)], cwd=here, capture_output=True, text=True,
                          env={**os.environ, "RUNS": "rel_runs", "OUT": "rel_out", "SEEDS": "0",
                               "ARMS": "erm", "MIXUP_GAN": "true",
                               "DATA_ROOT": str(tmp_path / "data"),
                               "PYTHON": str(tmp_path / "python")})
    assert done.returncode == 0, done.stderr
    assert (here / "rel_runs" / "log_erm_seed0.txt").is_file()
    assert list((here / "rel_out").glob("image_study.tar.gz.part*"))


def test_extra_arguments_pass_as_written_never_as_file_patterns():
    done, runs = study(ARMS="erm", SEEDS="0", EXTRA="--set x=[*] --note mixup*")
    assert done.returncode == 0, done.stderr
    assert runs[0][-4:] == ["--set", "x=[*]", "--note", "mixup*"]  # ROOT has mixup_gan/


def test_runs_go_seed_major_to_the_folders_and_steps_given():
    done, runs = study(ARMS="mixup erm", SEEDS="4 1", STEPS="300", DATA_ROOT="/d", RUNS="/r",
                       DATASET="mnist")
    assert done.returncode == 0, done.stderr
    assert [setting(r, "output.name") for r in runs] == [  # every arm's first seed first
        "dcgan_bce_mixup_seed4", "dcgan_bce_erm_seed4", "dcgan_bce_mixup_seed1",
        "dcgan_bce_erm_seed1"]
    for args in runs:
        assert (setting(args, "data.root"), setting(args, "data.download"),
                setting(args, "output.dir"), setting(args, "train.steps")) == (
            "/d", "false", "/r/mnist", "300")
        assert args[args.index("--config") + 1].startswith(f"{ROOT}/configs/image/mnist_dcgan_")
