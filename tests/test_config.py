"""Strict config loading: every bad value names the file, the key and the value."""

from dataclasses import replace
from pathlib import Path

import pytest

from mixup_gan.classify.config import ClassifyConfig
from mixup_gan.config import ConfigError, config_to_dict, load_config, section_paths
from mixup_gan.image.config import ImageConfig
from mixup_gan.toy.config import ToyConfig

CONFIGS = sorted((Path(__file__).resolve().parent.parent / "configs").rglob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_config_loads(path, monkeypatch):
    from mixup_gan.toy.sweep import SweepConfig, expand

    schema = {"toy": ToyConfig, "classify": ClassifyConfig, "sweeps": SweepConfig,
              "image": ImageConfig}
    config = load_config(path, schema[path.parent.name])
    if path.parent.name == "sweeps":  # every run of the grid must be a valid run config
        monkeypatch.chdir(path.parent.parent.parent)  # base paths are repository-relative
        assert len(expand(config, str(path))) > 0


def test_paper_configs_have_the_paper_setup():
    cfg = load_config(Path(__file__).resolve().parent.parent / "configs/toy/ring_mixup.yaml",
                      ToyConfig)
    assert (cfg.train.steps, cfg.train.batch_size, cfg.train.n_dis, cfg.train.lr) == (
        20000, 128, 5, 1e-3)
    assert (cfg.model.hidden, cfg.model.depth, cfg.model.latent_dim) == (512, 3, 2)
    assert cfg.loss.alpha == 0.2 and cfg.eval.snapshots == [10, 100, 1000, 10000, 20000]


def test_the_three_best_configs_are_one_recipe():
    """ring_best, grid_best and swissroll_best differ only in their data (and which steps
    they draw): the same model, loss and training keys, Adam's beta1 0.5 and the late EMA of
    G included, on top of the paper's setup with the lr and the penalty's weight decayed to 0."""
    root = Path(__file__).resolve().parent.parent / "configs/toy"
    ring, grid, swiss = (load_config(root / f"{name}_best.yaml", ToyConfig)
                         for name in ("ring", "grid", "swissroll"))
    assert [c.data.name for c in (ring, grid, swiss)] == ["ring", "grid", "swissroll"]
    for other in (grid, swiss):
        assert (other.model, other.loss, other.train) == (ring.model, ring.loss, ring.train)
        assert replace(other.eval, snapshots=[]) == replace(ring.eval, snapshots=[])
    paper = load_config(root / "ring_mixup.yaml", ToyConfig)
    assert ring.model == paper.model and ring.train.steps == paper.train.steps == 20000
    assert (ring.train.betas, paper.train.betas) == ((0.5, 0.999), (0.9, 0.999))
    assert (ring.train.lr_schedule.kind, ring.train.lr_schedule.final) == ("linear", 0.0)
    assert (ring.loss.gradient_penalty, ring.loss.gradient_penalty_schedule.kind,
            ring.loss.gradient_penalty_schedule.final) == (0.1, "linear", 0.0)
    assert (ring.train.ema, ring.train.ema_start, paper.train.ema) == (0.999, 15000, 0.0)


def sweep_members(name: str):
    """The member runs of configs/sweeps/NAME (run from the repository root: base paths are
    repository-relative)."""
    from mixup_gan.toy.sweep import SweepConfig, expand

    path = Path(__file__).resolve().parent.parent / "configs/sweeps" / name
    return expand(load_config(path, SweepConfig), str(path))


def test_the_best_sweeps_train_the_ablation_recipes_members(monkeypatch):
    """ring_best_20k.yaml and grid_best_20k.yaml record numbers measured as the recipe case of
    ablation_20k.yaml, in the populations they were measured in (seeds 0, 1, 4 and 2, 3):
    each of their members is that case's member of the same data and seed, key for key; the
    ablation's case before it is the recipe without the EMA, and the one before that the
    recipe with PyTorch's betas and no EMA."""
    from mixup_gan.toy.sweep import SweepConfig, populations

    root = Path(__file__).resolve().parent.parent
    monkeypatch.chdir(root)
    ablation = sweep_members("ablation_20k.yaml")
    recipe = {(r.config.data.name, r.config.train.seed): r.config for r in ablation
              if r.config.train.ema and r.config.loss.generator_loss == "saturating"}
    assert len(recipe) == 15
    for name, data in (("ring_best_20k.yaml", "ring"), ("grid_best_20k.yaml", "grid")):
        runs = sweep_members(name)
        assert [r.config.train.seed for r in runs] == [0, 1, 4, 2, 3]
        for run in runs:
            assert run.config == recipe[(data, run.config.train.seed)]
        size = load_config(root / "configs/sweeps" / name, SweepConfig).population
        assert [[r.config.train.seed for r in pop] for pop in populations(runs, size)] == [
            [0, 1, 4], [2, 3]]

    def without(c, **train):
        return replace(c, train=replace(c.train, **train))

    no_ema = [r.config for r in ablation if r.config.train.betas == (0.5, 0.999)
              and not r.config.train.ema]
    assert len(no_ema) == 15
    assert all(without(c, ema=0.999, ema_start=15000) == recipe[(c.data.name, c.train.seed)]
               for c in no_ema)
    before = [r.config for r in ablation if r.config.train.betas == (0.9, 0.999)
              and r.config.loss.gradient_penalty_schedule.kind == "linear"]
    assert len(before) == 15
    assert all(without(c, betas=(0.5, 0.999), ema=0.999, ema_start=15000)
               == recipe[(c.data.name, c.train.seed)] for c in before)
    assert load_config(root / "configs/sweeps/ablation_20k.yaml", SweepConfig).population == 5
    ns = [r.config for r in ablation if r.config.loss.generator_loss == "non_saturating"]
    assert len(ns) == 15  # the last case: the recipe with the other G loss, nothing else
    assert all(replace(c, loss=replace(c.loss, generator_loss="saturating"))
               == recipe[(c.data.name, c.train.seed)] for c in ns)


@pytest.mark.parametrize(("name", "penalty"), [
    ("grid_best_10k.yaml", 0.1), ("ring_best_10k.yaml", 1.0), ("levers_probe.yaml", None)])
def test_sweeps_measured_before_beta1_05_still_train_what_they_measured(monkeypatch, name,
                                                                         penalty):
    """Sweeps whose numbers were measured with PyTorch's betas, a constant penalty and G
    itself evaluated pin all three, so shipping beta1 0.5, the decayed penalty and the late
    EMA in *_best.yaml left them alone."""
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    runs = sweep_members(name)
    assert runs and all(r.config.train.betas == (0.9, 0.999) for r in runs)
    assert {(r.config.train.ema, r.config.train.ema_start) for r in runs} == {(0.0, 0)}
    assert {r.config.loss.gradient_penalty_schedule.kind for r in runs} == {"constant"}
    if penalty is not None:  # (the probe varies the weight)
        assert {r.config.loss.gradient_penalty for r in runs} == {penalty}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("train:\n  stepz: 5\n", r"unknown key 'train.stepz'"),
        ("trian:\n  steps: 5\n", r"unknown key 'trian'"),
        ("train:\n  steps: 0\n", r"train.steps: 0 must be > 0"),
        ("train:\n  steps: five\n", r"train.steps: expected int, got 'five'"),
        ("train:\n  steps: 2.5\n", r"train.steps: expected int, got 2.5"),
        ("loss:\n  alpha: -0.1\n", r"loss.alpha: -0.1 must be >= 0"),
        ("loss:\n  name: wgan\n", r"loss.name: 'wgan' is not one of"),
        ("loss:\n  per_sample: 1\n", r"loss.per_sample: expected bool, got 1"),
        ("loss:\n  distribution: uniform\n  alpha: 2\n", r"loss.alpha: 2.0 must be <= 1"),
        ("train: 5\n", r"train: expected a section"),
        ("- 1\n", r"top level must be a mapping"),
        ("train: [\n", r"not valid YAML"),
    ],
)
def test_bad_config_file(tmp_path, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match) as info:
        load_config(path, ToyConfig)
    assert str(path) in str(info.value)


def test_overrides():
    cfg = load_config(None, ToyConfig,
                      overrides=["train.steps=200", "loss.alpha=1", "train.betas=[0.5, 0.9]"])
    assert cfg.train.steps == 200 and cfg.loss.alpha == 1.0 and cfg.train.betas == (0.5, 0.9)
    assert cfg.model == ToyConfig().model


def test_a_section_override_keeps_the_keys_it_does_not_name():
    """`--set 'train={steps: 5}'` sets train.steps and keeps the file's other train keys (it
    replaced the section once, silently resetting them); a sweep's `grid={...}`, a mapping
    field rather than a section, is still replaced whole."""
    from mixup_gan.toy.sweep import SweepConfig

    ring = load_config("configs/toy/ring_best.yaml", ToyConfig)
    cfg = load_config("configs/toy/ring_best.yaml", ToyConfig,
                      ["train={steps: 5, n_dis: 2}", "loss.alpha=1"])
    assert cfg.train == replace(ring.train, steps=5, n_dis=2) != replace(ToyConfig().train,
                                                                           steps=5, n_dis=2)
    assert cfg.loss == replace(ring.loss, alpha=1.0)
    with pytest.raises(ConfigError, match=r"unknown key 'train.stpes'"):
        load_config("configs/toy/ring_best.yaml", ToyConfig, ["train={stpes: 5}"])
    sweep = load_config("configs/sweeps/figure5_20k.yaml", SweepConfig,
                        ["grid={loss.alpha: [0]}"])
    assert sweep.grid == {"loss.alpha": [0]}


def test_a_schedule_override_keeps_the_keys_it_does_not_name(tmp_path):
    """A section inside a section merges the same way: `train.lr_schedule={kind: cosine}` and
    `train={lr_schedule: {kind: cosine}}` keep the file's `final` and `start`."""
    path = tmp_path / "ring.yaml"
    path.write_text(Path("configs/toy/ring_best.yaml").read_text().replace(
        "lr_schedule: {kind: linear, final: 0}", "lr_schedule: {kind: linear, final: 0.1, "
                                                 "start: 5}"))
    kept = load_config(path, ToyConfig).train.lr_schedule
    assert (kept.final, kept.start) == (0.1, 5)
    for override in ("train.lr_schedule={kind: cosine}", "train={lr_schedule: {kind: cosine}}",
                     "train.lr_schedule.kind=cosine"):
        assert load_config(path, ToyConfig, [override]).train.lr_schedule == replace(
            kept, kind="cosine")
    assert section_paths(ToyConfig) == {"data", "model", "loss", "loss.alpha_schedule",
                                        "loss.mix_prob_schedule",
                                        "loss.gradient_penalty_schedule", "train",
                                        "train.lr_schedule", "eval", "output"}


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("train.nope=1", r"--set train.nope=1: unknown key 'train.nope'"),
        ("train.steps", r"expected section.key=value"),
        ("train.steps=-3", r"train.steps: -3 must be > 0"),
    ],
)
def test_bad_overrides(override, match):
    with pytest.raises(ConfigError, match=match):
        load_config(None, ToyConfig, overrides=[override])


def test_round_trip_through_dict(tmp_path):
    import yaml

    cfg = load_config(None, ToyConfig, overrides=["loss.pairing=pool"])
    path = tmp_path / "resolved.yaml"
    path.write_text(yaml.safe_dump(config_to_dict(cfg)))
    assert load_config(path, ToyConfig) == cfg


def test_missing_file():
    with pytest.raises(ConfigError, match="config file not found: nowhere.yaml"):
        load_config("nowhere.yaml", ToyConfig)
