"""Rules as field data: which keys a resume may change and which may differ between members
of a population, pinned per schema by behaviour (a run folder refusing or resuming)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mixup_gan.checkpoint import training_state
from mixup_gan.classify.config import ClassifyConfig
from mixup_gan.config import ConfigError, config_to_dict
from mixup_gan.image.config import ImageConfig
from mixup_gan.run_folder import RunFolder, claim_folder
from mixup_gan.toy.config import ToyConfig

OUTPUT = {"output.dir", "output.name", "output.checkpoint_every", "output.progress"}
# The README's "What happens when": more steps (epochs), eval.*, output.*, train.device,
# data.reference / data.root (and what only says where data is or how it is read) continue
# a run; every other key refuses the resume, naming itself.
RESUMABLE = {
    ToyConfig: {"train.steps", "train.device", "train.capture", "data.reference", "eval.every",
                "eval.n_samples", "eval.snapshots", "eval.contour", *OUTPUT},
    ImageConfig: {"train.steps", "train.device", "data.root", "data.download", "eval.every",
                  "eval.n_samples", "eval.fid_every", "eval.fid_samples", "eval.fid_reference",
                  "eval.fid_extractor", "eval.fid_inception_weights", "eval.fid_batch_size",
                  *OUTPUT},
    ClassifyConfig: {"train.epochs", "train.device", "data.root", "data.download",
                     "data.workers", "eval.every", "eval.memorization", *OUTPUT},
}


def leaves(config, prefix: str = "") -> list[str]:
    """Every leaf key path of a config dataclass (nested sections such as schedules too)."""
    out = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            out += leaves(value, f"{prefix}{f.name}.")
        else:
            out.append(prefix + f.name)
    return out


def changed(config, path: str, value=None):
    """`config` with the leaf at `path` replaced (unchecked: any other value will do)."""
    head, _, rest = path.partition(".")
    old = getattr(config, head)
    if rest:
        return dataclasses.replace(config, **{head: changed(old, rest, value)})
    if value is None:
        value = (not old if isinstance(old, bool) else "x" if old is None else
                 old + 1 if isinstance(old, (int, float)) else [*old, 7]
                 if isinstance(old, (list, tuple)) else f"{old}-other")
    return dataclasses.replace(config, **{head: value})


def resumes(tmp_path, old, new) -> bool:
    """Whether a run folder holding a checkpoint of `old` resumes under `new` (else it
    refuses, naming the keys)."""
    folder = RunFolder(tmp_path, "run")
    claim_folder(folder.path, "output.name")
    folder.save(training_state(0, {}, {}, None, {}), old)
    try:
        folder.start(new)
        return True
    except ConfigError as exc:
        assert "different config" in str(exc)
        return False
    finally:
        folder.close()


@pytest.mark.parametrize("schema", list(RESUMABLE), ids=lambda s: s.__name__)
def test_the_resumable_keys_of_each_schema_are_exactly_the_documented_ones(schema, tmp_path):
    """Every leaf key of the schema changed alone: exactly the RESUMABLE set resumes. Catches
    a mark dropped or added (say, `eval.` marks lost, or `train.seed` made resumable)."""
    base = schema()
    keys = leaves(base)
    assert RESUMABLE[schema] <= set(keys)
    got = {key for key in keys if resumes(tmp_path, base, changed(base, key))}
    assert got == RESUMABLE[schema]


def test_the_refusal_names_the_training_key(tmp_path):
    folder = RunFolder(tmp_path, "run")
    claim_folder(folder.path, "output.name")
    folder.save(training_state(0, {}, {}, None, {}), ToyConfig())
    with pytest.raises(ConfigError, match=r"loss\.alpha: 0\.2 -> 0\.5\)"):
        folder.start(changed(ToyConfig(), "loss.alpha", 0.5))


def test_an_image_folders_root_is_its_data(tmp_path):
    """`data.root` of `data.name: folder` is the dataset: another folder refuses, the same
    folder under another name (a symlink) resumes."""
    (tmp_path / "images").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "images")
    base = changed(changed(ImageConfig(), "data.name", "folder"), "data.root",
                   str(tmp_path / "images"))
    runs = tmp_path / "runs"
    assert not resumes(runs, base, changed(base, "data.root", str(tmp_path / "other")))
    assert resumes(runs, base, changed(base, "data.root", str(tmp_path / "link")))
    assert resumes(runs, base, changed(base, "data.download"))


def test_a_population_resumes_with_the_same_rule_per_member(tmp_path):
    """A population's record maps member ids to configs: each member is compared alone."""
    one, two = ToyConfig(), changed(ToyConfig(), "train.seed", 1)
    folder = RunFolder(tmp_path, "pop")
    claim_folder(folder.path, "output.name")
    record = {"a": config_to_dict(one), "b": config_to_dict(two)}
    folder.save(training_state(0, {}, {}, None, {}), record)
    moved = {"a": config_to_dict(changed(one, "train.steps", 9)), "b": record["b"]}
    try:
        assert folder.start(moved, members=True) is not None
    finally:
        folder.close()
    bad = {"a": record["a"], "b": config_to_dict(changed(two, "loss.alpha", 0.5))}
    with pytest.raises(ConfigError, match=r"b: loss\.alpha"):
        folder.start(bad, members=True)
    folder.close()
    assert torch.load(folder.checkpoint, weights_only=True)["config"] == record
