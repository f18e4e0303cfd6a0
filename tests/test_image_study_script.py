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
    settings = ("DATASET", "ARCH", "LOSS", "SEEDS", "ARMS", "STEPS", "DATA_ROOT", "RUNS", "EXTRA")
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
    ({"DATASET": "svhn"}, "svhn_dcgan_erm"), ({"ARCH": "resnet"}, "fashion_mnist_resnet_erm"),
    ({"DATASET": "mnist", "ARCH": "sn-resnet"}, "mnist_sn-resnet_erm"),
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
    ({"SEEDS": "0,1"}, "SEEDS: '0,1' is not a seed (whole numbers, space-separated)"),
    ({"SEEDS": "0 -1"}, "SEEDS: '-1' is not a seed (whole numbers, space-separated)"),
    ({"DATASET": "fashion_mnist"}, "DATASET 'fashion_mnist': write it with dashes (fashion-mnist)"),
])
def test_settings_that_would_train_nothing_or_elsewhere_exit_2_naming_them(env, message):
    done, runs = study(**{"ARMS": "erm", "SEEDS": "0", **env})
    assert (done.returncode, runs) == (2, [])
    assert done.stderr == f"image_study.sh: {message}\n"


def test_the_study_finds_its_configs_from_any_folder(tmp_path):
    done = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "MIXUP_GAN": "printf %s\x1f", "ARMS": "levers",
                               "SEEDS": "1"})
    assert done.returncode == 0, done.stderr
    args = done.stdout.split("\x1f")
    config = ROOT / "configs" / "image" / "fashion_mnist_dcgan_mixup.yaml"
    assert args[args.index("--config") + 1] == str(config)


def fake_python(tmp_path, report_rc=0):
    """A PYTHON for the GPU driver: the real one, but the report (which needs finished runs)
    only exits with `report_rc`."""
    path = tmp_path / "python"
    path.write_text(f"#!/usr/bin/env bash\ncase $1 in *image_study_report.py) exit {report_rc} ;; "
                    f"esac\nexec {sys.executable} \"$@\"\n")
    path.chmod(0o755)
    return str(path)


def gpu_study(tmp_path, report_rc=0, **env):
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"labels"))
    settings = {"RUNS": str(tmp_path / "runs"), "OUT": str(tmp_path / "out"), "SEEDS": "0",
                "DATA_ROOT": str(tmp_path / "data"), "PYTHON": fake_python(tmp_path, report_rc)}
    return study(script=ROOT / "scripts" / "image_study_gpu.sh", **{**settings, **env})[0]


def test_the_gpu_driver_unzips_the_data_trains_every_arm_and_packs_the_runs(tmp_path):
    done = gpu_study(tmp_path, ARMS="erm levers", SEEDS="0 2")
    assert done.returncode == 0, done.stderr
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    assert (raw / "t10k-labels-idx1-ubyte").read_bytes() == b"labels"
    logs = sorted(p.name for p in (tmp_path / "runs").glob("log_*.txt"))
    assert logs == ["log_erm_seed0.txt", "log_erm_seed2.txt", "log_levers_seed0.txt",
                    "log_levers_seed2.txt"]
    assert "dcgan_bce_levers_seed2" in (tmp_path / "runs" / "log_levers_seed2.txt").read_text()
    parts = sorted((tmp_path / "out").glob("image_study.tar.gz.part*"))
    with tarfile.open(fileobj=io.BytesIO(b"".join(p.read_bytes() for p in parts))) as packed:
        assert sum(name.endswith("log_erm_seed2.txt") for name in packed.getnames()) == 1


@pytest.mark.parametrize("command, budget, report_rc, rc", [
    ("false", 60, 0, 1),  # a failed run is the driver's status
    ("false", 60, 2, 1),  # the run's failure comes first, not the report's after it
    ("slow", 1, 0, 0),  # out of budget: resumable, not a failure
    ("printf %s\\n", 60, 2, 2),  # a failed report
])
def test_the_gpu_driver_exits_with_a_failed_run_or_report(tmp_path, command, budget, report_rc, rc):
    if command == "slow":  # a run that outlasts the budget
        (tmp_path / "slow").write_text("#!/usr/bin/env bash\nsleep 30\n")
        (tmp_path / "slow").chmod(0o755)
        command = str(tmp_path / "slow")
    done = gpu_study(tmp_path, report_rc, ARMS="erm", MIXUP_GAN=command, BUDGET=str(budget))
    assert done.returncode == rc, done.stdout + done.stderr


@pytest.mark.parametrize("env, message", [
    ({"DATASET": "cifar10"}, "image_study_gpu.sh: DATASET 'cifar10': only the sets whose .gz "
                             "files travel to the GPU machine (mnist, fashion-mnist)"),
    ({"DATASET": "mnist"}, "image_study_gpu.sh: no .gz files in {data}/MNIST/raw (carry them in, "
                           "as above)"),
])
def test_the_gpu_driver_needs_a_set_whose_files_travel(tmp_path, env, message):
    done = gpu_study(tmp_path, ARMS="erm", **env)
    assert done.returncode == 2
    assert done.stderr == message.format(data=tmp_path / "data") + "\n"
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("env, culprit", [
    ({"ARMS": "erm mixpu"}, "unknown arm 'mixpu'"), ({"DATASET": "svhn"}, "no config"),
])
def test_the_gpu_driver_refuses_bad_settings_before_it_starts_anything(tmp_path, env, culprit):
    runs, out = tmp_path / "runs", tmp_path / "out"
    done, _ = study(script=ROOT / "scripts" / "image_study_gpu.sh", RUNS=str(runs), OUT=str(out),
                    DATA_ROOT=str(tmp_path / "data"), **env)
    assert done.returncode == 2
    assert done.stderr.startswith(f"image_study.sh: {culprit}") and done.stderr.count("\n") == 1
    assert not runs.exists() and not out.exists()


def test_extra_arguments_pass_as_written_never_as_file_patterns():
    done, runs = study(ARMS="erm", SEEDS="0", EXTRA="--set x=[*] --note mixup*")
    assert done.returncode == 0, done.stderr
    assert runs[0][-4:] == ["--set", "x=[*]", "--note", "mixup*"]  # ROOT has mixup_gan/
