import pickle

import numpy as np
import pytest
import torch

from mixup_gan.config import load_config
from mixup_gan.toy.config import ToyConfig

# Tests that touch device code run on each of these, never on whatever "auto" picks.
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    """Every available device in turn: CPU always, CUDA when present."""
    return request.param


@pytest.fixture
def tiny_config(tmp_path):
    """A toy config small enough to train in well under a second per few steps."""

    def make(*overrides: str) -> ToyConfig:
        base = [
            "model.hidden=32", "model.depth=2", "train.steps=20", "train.batch_size=32",
            "train.n_dis=2", "eval.every=5", "eval.n_samples=200", "eval.snapshots=[10]",
            f"output.dir={tmp_path / 'runs'}", "output.checkpoint_every=5",
            "output.progress=false", "train.device=cpu",
        ]
        return load_config(None, ToyConfig, base + list(overrides))

    return make


@pytest.fixture
def fake_cifar10(monkeypatch):
    """Write a tiny CIFAR-10 folder in torchvision's pickle format (no download)."""
    import torchvision.datasets.cifar

    # torchvision checks the real files' md5 sums; our stand-in files have their own.
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)

    def make(root, n_train=20, n_test=10):
        folder = root / "cifar-10-batches-py"
        folder.mkdir(parents=True)
        rng = np.random.default_rng(0)
        names = [(f"data_batch_{i}", n_train // 5) for i in range(1, 6)] + [("test_batch",
                                                                             n_test)]
        for name, n in names:
            batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                     "labels": rng.integers(0, 10, n).tolist()}
            (folder / name).write_bytes(pickle.dumps(batch))
        meta = {"label_names": [str(i) for i in range(10)]}
        (folder / "batches.meta").write_bytes(pickle.dumps(meta))

    return make


@pytest.fixture
def exits_2_naming(capsys):
    """`check(argv, ws, culprit)`: run the CLI in-process with `{ws}` filled in and assert
    what every bad input gets: exit 2, no traceback, one error line that names `culprit`."""
    from mixup_gan.cli import main

    def check(argv, ws, culprit: str):
        try:
            code = main([a.format(ws=ws) for a in argv])
        except SystemExit as exc:  # argparse's own usage errors
            code = exc.code
        out = capsys.readouterr()
        assert code == 2, out.err
        assert "Traceback" not in out.out + out.err
        assert culprit.format(ws=ws) in out.err, out.err
        lines = out.err.strip().splitlines()
        message = [i for i, line in enumerate(lines) if " error: " in line]
        assert message == [len(lines) - 1], out.err  # one line (after argparse's usage lines)
        return out

    return check
