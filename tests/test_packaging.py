"""A package that works where it is installed: the path rule for configs, the shipped configs
(listed, copied, named by --config), and (slow) a built wheel run from another folder."""

import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import venv
from pathlib import Path

import pytest

from mixup_gan.cli import main
from mixup_gan.config import ConfigError, load_config
from mixup_gan.shipped import QUICKSTART, copy_config, list_configs, shipped_config
from mixup_gan.toy.config import ToyConfig
from mixup_gan.toy.data import make_distribution
from mixup_gan.toy.runner import reference_points
from mixup_gan.toy.sweep import SweepConfig, expand

ROOT = Path(__file__).resolve().parent.parent


def test_a_relative_path_in_a_config_file_is_relative_to_its_folder(tmp_path, monkeypatch):
    """Paths written in the file follow the file; `--set` paths and absolute ones stay as they
    are (catches resolving against the current folder, and resolving `--set` values too)."""
    folder = tmp_path / "a" / "b"
    folder.mkdir(parents=True)
    (folder / "run.yaml").write_text("data:\n  name: points\n  path: pts.csv\n"
                                     "  reference: ../ref.csv\n")
    monkeypatch.chdir(tmp_path)
    config = load_config("a/b/run.yaml", ToyConfig)
    assert (config.data.path, config.data.reference) == ("a/b/pts.csv", "a/ref.csv")
    config = load_config(folder / "run.yaml", ToyConfig, ["data.reference=mine.csv"])
    assert (config.data.path, config.data.reference) == (str(folder / "pts.csv"), "mine.csv")
    (folder / "abs.yaml").write_text(f"data:\n  reference: {tmp_path}/x.csv\n  path: null\n")
    config = load_config("a/b/abs.yaml", ToyConfig)
    assert (config.data.reference, config.data.path) == (f"{tmp_path}/x.csv", None)


def test_a_sweep_file_resolves_its_base_and_the_paths_it_sets(tmp_path, monkeypatch):
    """`base`, and data paths in `set`, `grid` and `cases` (as key paths or inside a section),
    are relative to the sweep file; `--set` ones to the current folder."""
    folder = tmp_path / "sweeps"
    folder.mkdir()
    (folder / "s.yaml").write_text(
        "base: ../toy/run.yaml\nset:\n  data: {reference: r.csv, name: points}\n"
        "grid:\n  data.path: [p1.csv, /abs/p2.csv]\ncases:\n  - {data.reference: c.csv}\n"
        "  - {loss.alpha: 0}\n")
    monkeypatch.chdir(tmp_path)
    sweep = load_config("sweeps/s.yaml", SweepConfig)
    assert sweep.base == "toy/run.yaml"
    assert sweep.set == {"data": {"reference": "sweeps/r.csv", "name": "points"}}
    assert sweep.grid == {"data.path": ["sweeps/p1.csv", "/abs/p2.csv"]}
    assert sweep.cases == [{"data.reference": "sweeps/c.csv"}, {"loss.alpha": 0}]
    sweep = load_config("sweeps/s.yaml", SweepConfig, ["base=here.yaml",
                                                       "set.data.reference=mine.csv"])
    assert (sweep.base, sweep.set["data"]["reference"]) == ("here.yaml", "mine.csv")


@pytest.mark.parametrize("name", [n for n, _ in list_configs() if n.startswith(("toy/",
                                                                                "sweeps/"))])
def test_every_shipped_toy_config_runs_from_another_folder(name, tmp_path, monkeypatch):
    """Its point files are found wherever the command runs (they were cwd-relative once)."""
    monkeypatch.chdir(tmp_path)
    path = shipped_config(name)
    if name.startswith("sweeps/"):
        runs = expand(load_config(path, SweepConfig), str(path))
        assert runs and all(r.reference is not None for r in runs)
        return
    config = load_config(path, ToyConfig)
    dist = make_distribution(config.data.name, scale=config.data.scale, path=config.data.path)
    assert len(reference_points(config, dist)) > 0
    if config.data.reference:
        assert Path(config.data.reference).is_absolute() and Path(config.data.reference).is_file()


@pytest.mark.parametrize("name", [n for n, _ in list_configs()])
def test_a_copied_config_loads_as_the_shipped_one(name, tmp_path, monkeypatch):
    """`configs copy` rewrites the relative paths so the copy reads the same files (catches a
    path key the rewrite misses: the copy would point next to itself)."""
    from mixup_gan.classify.config import ClassifyConfig
    from mixup_gan.image.config import ImageConfig

    schema = {"toy": ToyConfig, "sweeps": SweepConfig, "image": ImageConfig,
              "classify": ClassifyConfig}[name.split("/")[0]]
    monkeypatch.chdir(tmp_path)
    copy = copy_config(name, tmp_path)
    assert copy == tmp_path / Path(name).name
    assert load_config(copy, schema) == load_config(shipped_config(name), schema)
    assert copy.read_text().splitlines()[0] == shipped_config(name).read_text().splitlines()[0]


def test_configs_command_lists_copies_and_refuses(tmp_path, capsys):
    assert main(["configs", "list"]) == 0
    out = capsys.readouterr().out
    assert "toy/default.yaml" in out and "sweeps/quickstart.yaml" in out
    assert main(["configs", "copy", "toy/ring_best", str(tmp_path / "mine.yaml")]) == 0
    assert (tmp_path / "mine.yaml").is_file()
    assert main(["configs", "copy", "toy/ring_best", str(tmp_path / "mine.yaml")]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["configs", "copy", "toy/nothing", str(tmp_path)]) == 2
    assert "no shipped config named 'toy/nothing'" in capsys.readouterr().err


def test_toy_without_config_runs_the_quickstart_and_names_work(tmp_path, monkeypatch):
    """`mixup-gan toy` alone trains configs/toy/default.yaml (it was a built-in 2,000-step run),
    and `--config` takes a shipped config's name."""
    import mixup_gan.toy.runner as runner

    seen = []
    monkeypatch.setattr(runner, "run_toy", lambda config, name, overwrite: seen.append(
        (config, name)) or {})
    monkeypatch.chdir(tmp_path)
    assert main(["toy"]) == 0
    assert seen[-1] == (load_config(ROOT / "configs" / QUICKSTART, ToyConfig), "default")
    assert main(["toy", "--config", "toy/ring_best"]) == 0
    assert seen[-1] == (load_config(ROOT / "configs/toy/ring_best.yaml", ToyConfig), "ring_best")
    assert main(["toy", "--config", "toy/ring_bets"]) == 2
    with pytest.raises(ConfigError, match="config file not found: nowhere.yaml"):
        load_config("nowhere.yaml", ToyConfig)


def test_pyproject_ships_every_package_folder():
    """The explicit package list (needed to map configs/ and toy_data/ into the wheel) names
    every folder of Python files: a new subpackage left out would be missing from the wheel."""
    tomllib = pytest.importorskip("tomllib")
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {".".join(p.parent.relative_to(ROOT).parts)
               for p in (ROOT / "mixup_gan").rglob("*.py")}
    assert folders <= set(setuptools["packages"])
    assert setuptools["package-dir"] == {"mixup_gan.configs": "configs",
                                         "mixup_gan.toy_data": "toy_data"}


def _env() -> dict:
    """The environment without this checkout on the import path."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


@pytest.mark.slow
def test_the_wheel_runs_a_shipped_config_from_another_folder(tmp_path):
    """Build the wheel, install it into a fresh venv (torch and the other dependencies come
    from this interpreter's site-packages through a .pth file), run from a folder that is not
    the clone: `configs list`, a shipped config by path and by name, the quickstart."""
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(wheels)], check=True, env=_env())
    (wheel,) = wheels.glob("mixup_gan-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig."
                              "get_paths()['purelib'])"], capture_output=True, text=True,
                             check=True).stdout.strip()
    Path(purelib, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, env=_env())
    work = tmp_path / "elsewhere"
    work.mkdir()

    def cli(*args: str) -> str:
        proc = subprocess.run([str(env_dir / "bin" / "mixup-gan"), *args], cwd=work, env=_env(),
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    installed = Path(purelib) / "mixup_gan"
    assert str(installed / "configs") in cli("configs", "list")
    assert (installed / "py.typed").is_file() and (installed / "toy_data" / "ring_paper.csv"
                                                   ).is_file()
    tiny = ["--no-progress", "--set", "train.steps=3", "--set", "model.hidden=16",
            "--set", "eval.every=3", "--set", "eval.n_samples=200", "--set", "train.device=cpu"]
    for config in (str(installed / "configs/toy/ring_best.yaml"), "toy/points_example"):
        out = cli("toy", "--config", config, *tiny)
        assert "modes" in out or "frechet" in out
    summary = json.loads((work / "runs" / "ring_best" / "summary.json").read_text())
    assert summary["steps"] == 3
    saved = (work / "runs" / "ring_best" / "config.yaml").read_text()
    assert f"reference: {installed / 'toy_data' / 'ring_paper.csv'}" in saved
    cli("toy", *tiny)  # the quickstart's config, cut short
    assert (work / "runs" / "default" / "summary.json").is_file()


@pytest.mark.slow
def test_the_sdist_holds_its_tests_and_they_pass(tmp_path):
    """The sdist unpacked elsewhere: its config tests pass on its own files."""
    code = ("import sys, setuptools.build_meta as b; print(b.build_sdist(sys.argv[1]))")
    name = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, check=True).stdout.split()[-1]
    with tarfile.open(tmp_path / name) as sdist:
        sdist.extractall(tmp_path, filter="data")
    root = tmp_path / name.removesuffix(".tar.gz")
    for part in ("tests/conftest.py", "configs/toy/default.yaml", "toy_data/ring_paper.csv",
                 "LICENSE", "mixup_gan/py.typed", "scripts/sweep_curves.py"):
        assert (root / part).is_file(), part
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                           "tests/test_config.py", "tests/test_packaging.py",
                           "tests/test_toy_data.py"], cwd=root,
                          env={**_env(), "PYTHONPATH": str(root)}, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
