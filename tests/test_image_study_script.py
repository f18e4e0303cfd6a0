"""The image study's driver (scripts/image_study.sh): each arm trains the config and levers it
names, under a run name the report (scripts/image_study_report.py) reads back."""

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "image_study.sh"
DECAY = "{kind: linear, final: 0}"  # the lr schedule of the decayed arms


def study(**env):
    """The commands the script would run, one argument list per run (MIXUP_GAN prints them)."""
    settings = ("DATASET", "ARCH", "LOSS", "SEEDS", "ARMS", "STEPS", "DATA_ROOT", "RUNS", "EXTRA")
    base = {k: v for k, v in os.environ.items() if k not in settings}  # the script's defaults
    done = subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, capture_output=True, text=True,
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
        assert path == f"configs/image/fashion_mnist_dcgan_{config}.yaml"
        assert (ROOT / path).is_file()
        assert setting(args, "train.lr_schedule") == schedule
        assert setting(args, "loss.gradient_penalty") == penalty
        assert (setting(args, "train.seed"), setting(args, "loss.name")) == ("3", "hinge")
        levers = {k for k, v in (("train.lr_schedule", schedule),
                                 ("loss.gradient_penalty", penalty)) if v}
        run = {"data.root", "data.download", "output.dir", "output.name", "train.seed",
               "loss.name"}
        assert {k for k, _ in sets(args)} == run | levers  # nothing else changed


def test_an_unknown_arm_exits_2_naming_it():
    done, runs = study(ARMS="erm decay", SEEDS="0")
    assert done.returncode == 2
    assert [setting(r, "output.name") for r in runs] == ["dcgan_bce_erm_seed0"]  # then stops
    assert "unknown arm 'decay'" in done.stderr and len(done.stderr.strip().splitlines()) == 1


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
