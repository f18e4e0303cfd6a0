"""The command line: subcommands, exit codes, errors without tracebacks."""

import json
import subprocess
import sys

import pytest

from mixup_gan.cli import main


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in ("toy", "sweep", "image", "sample", "classify", "toy-data"):
        assert f"    {command} " in out, command


def test_usage_error_exit_code_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["toy", "--bogus"])
    assert info.value.code == 2


def test_bad_config_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("loss:\n  alpha: -1\n")
    proc = subprocess.run([sys.executable, "-m", "mixup_gan.cli", "toy", "--config", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"{bad}" in proc.stderr and "loss.alpha: -1.0 must be >= 0" in proc.stderr


def test_bad_point_file_exit_2(tmp_path, capsys):
    pts = tmp_path / "pts.csv"
    pts.write_text("x,y\n1,2\n3,oops\n")
    code = main(["toy", "--set", "data.name=points", "--set", f"data.path={pts}"])
    assert code == 2
    assert "line 3" in capsys.readouterr().err


def test_toy_run_from_the_cli(tmp_path, capsys):
    code = main([
        "toy", "--no-progress", "--set", "train.steps=4", "--set", "model.hidden=16",
        "--set", "eval.every=2", "--set", "eval.n_samples=100", "--set", f"output.dir={tmp_path}",
        "--set", "output.name=cli",
    ])
    assert code == 0
    assert "modes" in capsys.readouterr().out
    summary = json.loads((tmp_path / "cli" / "summary.json").read_text())
    assert summary["steps"] == 4


def test_a_warning_under_the_cli_is_one_line_naming_the_command(tmp_path):
    """The package's warnings (an EMA that never starts) print as one line, like its errors;
    the process's own format is back after main returns."""
    import warnings

    proc = subprocess.run([sys.executable, "-m", "mixup_gan.cli", "toy", "--no-progress",
                           "--set", "train.steps=2", "--set", "model.hidden=8", "--set",
                           "eval.every=2", "--set", "eval.n_samples=50", "--set",
                           "train.ema=0.9", "--set", "train.ema_start=5", "--set",
                           f"output.dir={tmp_path}", "--set", "output.name=w"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        "mixup-gan toy: warning: train.ema_start 5 >= train.steps 2: the EMA never starts, so "
        "what is evaluated and drawn is G itself"]
    from mixup_gan import cli

    one_line = cli._one_line_warnings("toy")
    assert one_line("m", UserWarning, cli.__file__, 1) == "mixup-gan toy: warning: m\n"
    assert one_line("m", UserWarning, "/u/mixup_gan/.venv/torch/x.py", 3) == \
        warnings.formatwarning("m", UserWarning, "/u/mixup_gan/.venv/torch/x.py", 3)
    before = warnings.formatwarning
    assert main(["toy", "--set", "loss.alpha=-1"]) == 2
    assert warnings.formatwarning is before
