import pytest

from mixup_gan.config import RunConfig, load_config


@pytest.fixture
def tiny_config(tmp_path):
    """A toy config small enough to train in well under a second per few steps."""

    def make(*overrides: str) -> RunConfig:
        base = [
            "model.hidden=32", "model.depth=2", "train.steps=20", "train.batch_size=32",
            "train.n_dis=2", "eval.every=5", "eval.n_samples=200", "eval.snapshots=[10]",
            f"output.dir={tmp_path / 'runs'}", "output.checkpoint_every=5",
            "output.progress=false",
        ]
        return load_config(None, RunConfig, base + list(overrides))

    return make
