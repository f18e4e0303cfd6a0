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

OUTPUT = {"output.dir", "output.name", "output.checkpoint_every", "output.progress",
          "output.tensorboard"}
# The README's "What happens when": more steps (epochs), eval.*, output.*, train.device,
# data.reference / data.root (and what only says where data is or how it is read) continue
# a run; every other key refuses the resume, naming itself.
RESUMABLE = {
    ToyConfig: {"train.steps", "train.device", "train.capture", "data.reference", "eval.every",
                "eval.n_samples", "eval.snapshots", "eval.contour", *OUTPUT},
    ImageConfig: {"train.steps", "train.device", "data.root", "data.download", "eval.every",
                  "eval.n_samples", "eval.fid_every", "eval.fid_samples", "eval.fid_reference",
                  "eval.fid_extractor", "eval.fid_inception_weights", "eval.fid_batch_size",
                  "eval.generator_every",
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
    record = {"a": one, "b": two}
    folder.save(training_state(0, {}, {}, None, {}), record)
    moved = {"a": changed(one, "train.steps", 9), "b": two}
    try:
        assert folder.start(moved, members=True) is not None
    finally:
        folder.close()
    bad = {"a": one, "b": changed(two, "loss.alpha", 0.5)}
    with pytest.raises(ConfigError, match=r"b: loss\.alpha"):
        folder.start(bad, members=True)
    folder.close()
    saved = torch.load(folder.checkpoint, weights_only=True)["config"]
    assert saved == {"a": config_to_dict(one), "b": config_to_dict(two)}


class RowsOfTwoShapes:
    """A trainer logging a loss row every step and, every second step, an FID row after it
    (what an image run with `eval.fid_every` writes)."""

    def __init__(self, folder: RunFolder) -> None:
        self.folder, self.step = folder, 0

    def fit_iter(self, steps, hooks, *, progress):
        while self.step < steps:
            self.step += 1
            self.folder.log({"step": self.step, "d_loss": float(self.step),
                             "g_loss": -float(self.step)})
            if self.step % 2 == 0:
                self.folder.log({"step": self.step, "fid": 10.0 / self.step})
            yield

    def state_dict(self) -> dict:
        return training_state(self.step, {}, {}, None, {})

    def load_state_dict(self, state: dict) -> None:
        self.step = state["step"]


def test_the_summary_holds_each_keys_last_value_over_rows_of_any_shape(tmp_path):
    """With the FID row last, the summary still has the last losses (a summary built from
    the last row alone loses d_loss and g_loss) and the last FID (one from the last loss
    row alone loses the FID)."""
    import json

    from mixup_gan.runs import Run, execute

    folder = RunFolder(tmp_path, "run")
    summary = execute(Run(folder, ToyConfig(), RowsOfTwoShapes(folder), 4,
                          torch.device("cpu"), checkpoint_every=100, progress=False))
    assert folder.read_metrics()[-1] == {"step": 4, "fid": 2.5}
    assert (summary["d_loss"], summary["g_loss"], summary["fid"]) == (4.0, -4.0, 2.5)
    assert "step" not in summary and summary["steps"] == 4
    assert json.loads(folder.summary.read_text())["d_loss"] == 4.0


SWEEP = """
set:
  model.hidden: 8
  model.depth: 1
  train.steps: 2
  train.batch_size: 8
  train.n_dis: 1
  eval.every: 2
  eval.n_samples: 20
  train.device: cpu
grid:
  data.name: [ring, swissroll]
seeds: [0]
output: {out}
"""


def test_a_registered_metric_reaches_every_table_and_the_printed_summary(tmp_path, request,
                                                                         capsys):
    """One `register` call: the new metric is in a run's metrics rows and summary, the
    printed summary (with its format), a sweep's results.csv and summary.md (with its
    direction). Catches a list of names kept anywhere but the registry."""
    from mixup_gan.cli import main
    from mixup_gan.toy import metrics
    from mixup_gan.toy.sweep import run_sweep

    spread = metrics.Metric("spread", "spread of the points", "lower",
                            lambda j: float(j.samples.std()) + 1000.0, fmt=".2f")
    metrics.register(spread)
    request.addfinalizer(lambda: metrics.METRICS.pop("spread"))
    with pytest.raises(ValueError, match="registered already"):
        metrics.register(spread)

    assert main(["toy", "--set", "model.hidden=8", "--set", "model.depth=1",
                 "--set", "train.steps=2", "--set", "train.n_dis=1", "--set", "eval.every=1",
                 "--set", "eval.n_samples=20", "--set", "eval.snapshots=[]",
                 "--set", "train.device=cpu", "--set", f"output.dir={tmp_path / 'runs'}",
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    row = RunFolder(tmp_path / "runs", "default").read_metrics()[-1]  # no --config: the quickstart
    assert row["spread"] > 1000.0 and f"  {'spread':<22} {row['spread']:.2f}\n" in printed
    assert printed.index("frechet") < printed.index("spread")  # in registry order

    (tmp_path / "sweep.yaml").write_text(SWEEP.format(out=tmp_path / "sweeps"))
    root = run_sweep(tmp_path / "sweep.yaml", progress=False)
    header = (root / "results.csv").read_text().splitlines()[0].split(",")
    assert header.index("spread") == header.index("frechet") + 1
    table = (root / "summary.md").read_text().splitlines()
    assert table[0].endswith("| modes ↑ | hq_share ↑ | reverse_kl ↓ | frechet ↓ | near_curve ↑ "
                             "| curve_covered ↑ | spread ↓ |")
    assert all(line.split(" | ")[-1].startswith("1e+03") for line in table[2:])
    assert "n/a" in table[3]  # the swiss roll has no modes: its mode metrics are n/a


def test_the_metrics_registry_describes_the_four_toy_metrics():
    from mixup_gan.toy.metrics import METRICS, drawn

    assert {m.name: (m.better, m.needs) for m in METRICS.values()} == {
        "modes": ("higher", "modes"), "hq_share": ("higher", "modes"),
        "reverse_kl": ("lower", "modes"), "frechet": ("lower", ""),
        "near_curve": ("higher", "curve"), "curve_covered": ("higher", "curve")}
    assert [m.name for m in drawn(True)] == ["modes", "hq_share"]
    assert [m.name for m in drawn(False)] == ["frechet", "near_curve", "curve_covered"]


def test_per_member_keys_are_the_toy_data_loss_and_seed():
    """The sweep groups runs on every key but these (and the D parts rule): pinned."""
    from mixup_gan.config import key_marks

    keys = leaves(ToyConfig())
    member = {k for k in keys if key_marks(ToyConfig, k).get("per_member")}
    assert member == {k for k in keys if k.startswith(("data.", "loss."))} | {"train.seed"}
    assert not any(key_marks(ImageConfig, k).get("per_member") for k in leaves(ImageConfig())
                   if k != "train.seed")


def test_runs_differing_in_a_shared_key_train_apart(tmp_path):
    from mixup_gan.toy.sweep import SweepConfig, expand, populations

    sweep = SweepConfig(grid={"data.name": ["ring", "grid"], "loss.alpha": [0.2, 0.5],
                              "train.lr": [1e-3, 2e-3]}, seeds=[0, 1])
    groups = populations(expand(sweep, "sweep"), 100)
    assert len(groups) == 2  # by lr alone: data, alpha and the seed differ within one
    assert [{r.config.train.lr for r in g} for g in groups] == [{1e-3}, {2e-3}]


def test_choices_come_from_the_registries():
    from mixup_gan.classify.nets import CLASSIFIERS
    from mixup_gan.image.nets import ARCHS, D_NORMS
    from mixup_gan.toy.data import DATASETS

    def choices(schema, path):
        section, key = path.split(".")
        cls = type(getattr(schema(), section))
        return {f.name: f for f in dataclasses.fields(cls)}[key].metadata["choices"]

    assert choices(ImageConfig, "model.arch") == tuple(ARCHS)
    assert choices(ImageConfig, "model.d_norm") == D_NORMS
    assert choices(ClassifyConfig, "model.name") == tuple(CLASSIFIERS)
    assert choices(ToyConfig, "data.name") == (*DATASETS, "points")


def test_a_key_the_schema_no_longer_has_keeps_its_sections_mark():
    """A checkpoint of an older version may hold a key the schema dropped: under a resumable
    section it resumes (as `eval.*` always did), elsewhere it refuses, named."""
    from mixup_gan.run_folder import config_differences

    new = config_to_dict(ToyConfig())
    old = {**new, "eval": {**new["eval"], "gone": 1}, "train": {**new["train"], "old": 2}}
    assert config_differences(old, new, ToyConfig) == ["train.old: 2 -> None"]


@pytest.mark.parametrize("schema", [ToyConfig, ImageConfig, ClassifyConfig])
def test_a_key_an_older_version_did_not_write_resumes_at_its_default(schema):
    """A checkpoint written before an option existed (`train.ema_start`, a loss schedule)
    resumes when the new config leaves the option at its default, and refuses, naming the
    key, when it sets another value; a written key that differs still refuses."""
    from mixup_gan.run_folder import config_differences

    new = config_to_dict(schema())
    old = {**new, "train": {k: v for k, v in new["train"].items() if k != "batch_size"}}
    assert config_differences(old, new, schema) == []
    changed = {**new, "train": {**new["train"], "batch_size": 3}}
    assert config_differences(old, changed, schema) == [
        f"train.batch_size: {new['train']['batch_size']!r} -> 3"]
    assert config_differences(changed, new, schema) == [
        f"train.batch_size: 3 -> {new['train']['batch_size']!r}"]
    if schema is ToyConfig:
        late = {**new, "train": {**new["train"], "ema": 0.99, "ema_start": 500}}
        old_toy = {**new, "train": {k: v for k, v in new["train"].items() if k != "ema_start"}}
        assert config_differences(old_toy, late, schema) == [
            "train.ema: 0.0 -> 0.99", "train.ema_start: 0 -> 500"]


def test_a_sweep_draws_and_tabulates_the_metrics_its_data_takes():
    """Modes and the high-quality share for data with modes, the Frechet distance and the
    curve's shares for the swiss roll; a table holds no column for a metric none of its
    data takes (a ring sweep has no curve columns, a swiss roll sweep no mode columns)."""
    from mixup_gan.toy.sweep.figures import figure_metrics
    from mixup_gan.toy.sweep.report import summary_table

    def names(datasets):
        return [m.name for m in figure_metrics(datasets)]

    assert names(["ring", "grid"]) == ["modes", "hq_share"]
    assert names(["swissroll"]) == ["frechet", "near_curve", "curve_covered"]
    assert names(["points"]) == ["frechet"]
    assert names(["swissroll", "ring"]) == [
        "modes", "hq_share", "frechet", "near_curve", "curve_covered"]

    ring = {"a": {"data.name": "ring", "step": 5, "modes": 8, "hq_share": 0.9,
                  "reverse_kl": 0.01, "frechet": 0.1}}
    assert summary_table(["data.name"], ["a"], ring).splitlines()[0] == (
        "| data.name | seeds | step | modes ↑ | hq_share ↑ | reverse_kl ↓ | frechet ↓ |")
    roll = {"b": {"data.name": "swissroll", "step": 5, "frechet": 0.1, "near_curve": 0.9,
                  "curve_covered": 0.8}}
    lines = summary_table(["data.name"], ["b"], roll).splitlines()
    assert lines[0] == ("| data.name | seeds | step | frechet ↓ | near_curve ↑ "
                        "| curve_covered ↑ |")
    assert lines[2] == "| swissroll | 1 | 5 | 0.1 ± 0 | 0.9 ± 0 | 0.8 ± 0 |"


def test_the_table_counts_the_seeds_that_reach_each_target_by_its_direction():
    from mixup_gan.toy.sweep.report import summary_table

    def run(hq, rkl, modes=8):
        return {"data.name": "ring", "step": 9, "modes": modes, "hq_share": hq,
                "reverse_kl": rkl, "frechet": 0.1}

    final = {"a": run(0.98, 0.01), "b": run(0.977, 0.03), "c": run(0.99, None),
             "d": run(0.5, 0.001, 7)}
    targets = {"ring": {"modes": 8, "hq_share": 0.977, "reverse_kl": 0.02}}
    lines = summary_table(["data.name"], list(final), final, targets).splitlines()
    assert lines[0].endswith("| frechet ↓ | every target |")
    cells = lines[2].split(" | ")
    assert cells[3:6] == ["7.75 ± 0.43 [3/4 ≥ 8]", "0.862 ± 0.21 [3/4 ≥ 0.977]",
                          "0.0137 ± 0.012 (1 n/a) [2/4 ≤ 0.02]"]  # n/a reaches nothing
    assert cells[6:] == ["0.1 ± 0", "1/4 |"]  # only a reaches all three (c's KL is n/a)
    assert summary_table(["data.name"], list(final), final).splitlines()[0].endswith(
        "| frechet ↓ |")  # no targets, no column
    grid = {"e": {**run(0.9, 0.01), "data.name": "grid", "modes": 25}}
    line = summary_table(["data.name"], ["e"], grid, targets).splitlines()[2]
    assert "[" not in line and line.endswith("| n/a |")  # data without targets: no counts
