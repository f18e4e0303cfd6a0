"""Populations and sweeps: member k equals a run of one; sweeps are checked, grouped, resumable."""

import json
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest
import torch

from mixup_gan.config import ConfigError, load_config
from mixup_gan.gan_config import LossConfig
from mixup_gan.runs import interleave
from mixup_gan.toy.config import ToyConfig, ToyModelConfig, ToyTrainConfig
from mixup_gan.toy.data import grid, read_points, ring
from mixup_gan.toy.runner import build_toy_trainer
from mixup_gan.toy.sweep import SweepConfig, expand, populations, run_sweep
from mixup_gan.toy.sweep.grid import checked
from mixup_gan.train import SYNC_EVERY, GANTrainer

MODEL = ToyModelConfig(latent_dim=2, hidden=32, depth=2)
TRAIN = ToyTrainConfig(batch_size=16, n_dis=2, capture=False)  # train_step called directly
SETTINGS = [  # one population holding every kind of member the loss offers
    LossConfig(alpha=0.2),
    LossConfig(alpha=0.0),
    LossConfig(alpha=0.3, pairing="pool", distribution="uniform", per_sample=False),
    LossConfig(alpha=0.5, name="hinge", erm_weight=0.5, mix_prob=0.5),
    LossConfig(alpha=1.0, name="least_squares", generator_loss="saturating"),
]


def trained(losses, dists, seeds, steps=8, device="cpu"):
    trainer = build_toy_trainer(MODEL, TRAIN, losses, dists, seeds, torch.device(device))
    for _ in range(steps):
        trainer.train_step()
    return trainer


def member_state(trainer, k):
    return {f"{net}.{name}": value[k] for net in ("G", "D")
            for name, value in getattr(trainer, net).state_dict().items()}


def first_d_step(train, losses, dists, seeds, device):
    """One D step from the initial weights: the members' losses and D's gradients."""
    trainer = build_toy_trainer(MODEL, train, losses, dists, seeds, torch.device(device))
    loss = trainer.gan_step.d_step(0, 0)["d_loss"]  # counter block 0, generator step 0
    return loss, {name: p.grad for name, p in trainer.D.named_parameters()}


def assert_members_step_like_runs_of_one(train, losses, dists, seeds, device):
    """Member k's first D step is that of a run of one, to float tolerance, on any device."""
    loss, grads = first_d_step(train, losses, dists, seeds, device)
    for k in range(len(losses)):
        single_loss, single_grads = first_d_step(train, [losses[k]], [dists[k]], [seeds[k]],
                                                 device)
        torch.testing.assert_close(loss[k], single_loss[0], rtol=1e-5, atol=1e-6)
        for name, grad in single_grads.items():
            torch.testing.assert_close(grads[name][k], grad[0], rtol=1e-4, atol=1e-7,
                                       msg=lambda m, k=k, name=name: f"member {k} {name}: {m}")


def test_member_k_steps_like_a_run_of_one(device):
    assert_members_step_like_runs_of_one(TRAIN, SETTINGS, [ring(), grid(), ring(), grid(),
                                                           ring()], [3, 1, 4, 1, 5], device)


def test_member_k_equals_a_run_of_one():
    # On the CPU only: on CUDA the batched and single matmuls sum in different orders, and
    # Adam's normalised update enlarges that noise where a gradient nearly cancels (an H200
    # gave differences over 1e-5 after 8 steps for the hinge member), so on CUDA the first
    # step above is compared instead.
    dists = [ring(), grid(), ring(), grid(), ring()]
    seeds = [3, 1, 4, 1, 5]
    population = trained(SETTINGS, dists, seeds)
    for k in range(len(SETTINGS)):
        single = trained([SETTINGS[k]], [dists[k]], [seeds[k]])
        # Not bit-for-bit: a batched matmul over P members blocks its sums differently.
        for name, value in member_state(single, 0).items():
            torch.testing.assert_close(member_state(population, k)[name], value, rtol=0,
                                       atol=1e-5, msg=f"member {k}: {name}")


def test_population_is_reproducible_bit_for_bit():
    a = trained(SETTINGS, [ring()] * 5, range(5))
    b = trained(SETTINGS, [ring()] * 5, range(5))
    for name, value in a.G.state_dict().items():
        assert torch.equal(value, b.G.state_dict()[name])


def test_a_diverged_member_does_not_touch_the_others():
    losses, dists = [LossConfig(alpha=0.2)] * 2, [ring(), grid()]
    population = build_toy_trainer(MODEL, TRAIN, losses, dists, [0, 1], torch.device("cpu"))
    with torch.no_grad():
        population.D.layers[0].weight[0].fill_(float("nan"))
    population.fit(4, progress=False)
    assert population.diverged == {0: 1}
    single = trained([losses[1]], [dists[1]], [1], steps=4)
    for name, value in member_state(single, 0).items():
        torch.testing.assert_close(member_state(population, 1)[name], value, rtol=0, atol=1e-5)


def write_sweep(tmp_path, text: str):
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    return path


RING = str(Path(__file__).resolve().parent.parent / "toy_data" / "ring_paper.csv")
TINY = """
set:
  model.hidden: 16
  model.depth: 1
  train.steps: 6
  train.batch_size: 16
  train.n_dis: 1
  eval.every: 3
  eval.n_samples: 50
  output.checkpoint_every: 2
  train.device: cpu  # the crash below is planted in train_step, which a CUDA graph skips
grid:
  data.name: [ring, grid]
  loss.alpha: [0, 0.2]
seeds: [0, 1]
population: 3
output: {out}
"""


def test_grouping_into_populations():
    sweep = SweepConfig(grid={"model.latent_dim": [2, 5], "loss.alpha": [0, 0.2, 1]},
                        seeds=[0, 1], population=3)
    runs = expand(sweep, "test")
    groups = populations(runs, sweep.population)
    assert len(runs) == 12
    # latent 2 / 5 x (ERM | mixup) -> 4 groups; mixup groups hold 4 runs -> chunks of 3 + 1
    assert sorted(len(g) for g in groups) == [1, 1, 2, 2, 3, 3]
    for members in groups:
        assert len({r.config.model.latent_dim for r in members}) == 1
        assert len({r.config.loss.alpha == 0 for r in members}) == 1


def test_targets_read_as_the_config_reads_numbers_and_outlive_a_narrowed_grid(tmp_path):
    """YAML 1.1's string '2e-2' is a number here as everywhere in a config; a dataset the
    sweep no longer runs (its grid narrowed by --set) keeps its target without a row."""
    path = write_sweep(tmp_path, "grid:\n  data.name: [ring, grid]\ntargets:\n"
                                 "  ring: {reverse_kl: 2e-2, modes: 8}\n  grid: {hq_share: 1}\n")
    sweep = load_config(path, SweepConfig, ["grid.data.name=[ring]",
                                            "targets.ring.hq_share=9.77e-1"])
    assert sweep.targets == {"ring": {"reverse_kl": 0.02, "modes": 8.0, "hq_share": 0.977},
                             "grid": {"hq_share": 1.0}}
    assert {r.config.data.name for r in expand(sweep, str(path))} == {"ring"}


def test_cases_are_settings_crossed_with_the_grid():
    sweep = SweepConfig(cases=[{}, {"loss.alpha": 0.5, "train.lr_schedule.kind": "linear"},
                               {"loss.alpha": 1}],
                        grid={"data.name": ["ring", "grid"]}, seeds=[0, 1])
    runs = expand(sweep, "test")
    assert len(runs) == 12 and len({r.id for r in runs}) == 12
    # every run shows every case key, the resolved (checked, converted) value where its case
    # leaves one out, then the grid keys and the seed
    assert {tuple(r.values) for r in runs} == {
        ("loss.alpha", "train.lr_schedule.kind", "data.name", "train.seed")}
    first, second, third = runs[0], runs[4], runs[8]
    assert first.values["loss.alpha"] == ToyConfig().loss.alpha == first.config.loss.alpha
    assert first.values["train.lr_schedule.kind"] == "constant"
    assert (second.values["loss.alpha"], second.config.train.lr_schedule.kind) == (0.5, "linear")
    assert third.values["loss.alpha"] == 1.0 and isinstance(third.values["loss.alpha"], float)
    assert [r.values["data.name"] for r in runs[:4]] == ["ring", "ring", "grid", "grid"]


def test_a_section_in_a_sweep_changes_only_the_keys_it_names(tmp_path):
    """`set: {train: {steps: 7}}`, a case `{loss: {alpha: 1}}` and `--set set.train.steps=7`
    change those keys and keep the base config's other keys in the section (they replaced
    the whole section once, silently resetting batch size, D steps and learning rate)."""
    base = str(Path("configs/toy/ring_mixup.yaml").resolve())  # a sweep file's base is
    ring = load_config(base, ToyConfig)  # relative to the sweep file, here in tmp_path
    assert ring.train != ToyConfig().train and ring.loss != ToyConfig().loss
    sectioned = SweepConfig(base=base, set={"train": {"steps": 7}},
                            cases=[{"loss": {"alpha": 1}}], grid={"model": {"latent_dim": [5]}},
                            seeds=[0])
    dotted = SweepConfig(base=base, set={"train.steps": 7}, cases=[{"loss.alpha": 1}],
                         grid={"model.latent_dim": [5]}, seeds=[0])
    (run,), (same,) = expand(sectioned, "test"), expand(dotted, "test")
    assert run.id == same.id == "loss.alpha=1.0,model.latent_dim=5,train.seed=0"
    assert run.config == same.config
    assert run.config.train == replace(ring.train, steps=7)
    assert run.config.loss == replace(ring.loss, alpha=1.0)
    path = write_sweep(tmp_path, f"base: {base}\nset:\n  train.steps: 20\n"
                                 "grid:\n  loss.alpha: [0, 0.2]\nseeds: [0]\n")
    sweep = load_config(path, SweepConfig, ["set.train.steps=7", "set.eval.every=7",
                                            "grid.loss.alpha=[1]", "grid.model.latent_dim=[5]"])
    # a key path the file names is replaced where it is; a new one is a section, read as above
    assert sweep.set == {"train.steps": 7, "eval": {"every": 7}}
    assert sweep.grid == {"loss.alpha": [1], "model": {"latent_dim": [5]}}
    assert checked(sweep, "test").set == {"train.steps": 7, "eval.every": 7}  # sweep.json's
    assert checked(sweep, "test").grid == {"loss.alpha": [1], "model.latent_dim": [5]}
    (run,) = expand(sweep, str(path))
    assert run.config.train == replace(ring.train, steps=7)
    assert (run.config.eval.every, run.config.loss.alpha) == (7, 1.0)



def test_a_schedule_in_a_sweep_changes_only_the_keys_it_names(tmp_path):
    """A section inside a section (`train.lr_schedule`) is written out the same way: setting
    its kind keeps the base's `final` and `start` (it replaced the schedule once, silently
    resetting them), and `--set` reaches a schedule the file sets, or a grid over its kind."""
    base = tmp_path / "base.yaml"
    base.write_text(Path("configs/toy/ring_best.yaml").read_text().replace(
        "lr_schedule: {kind: linear, final: 0}", "lr_schedule: {kind: linear, final: 0.1, "
                                                 "start: 5}").replace(
        "../../toy_data/", f"{Path('toy_data').resolve()}/"))  # its paths follow the copy
    kept = load_config(base, ToyConfig).train.lr_schedule
    cosine = replace(kept, kind="cosine")
    assert cosine != replace(ToyConfig().train.lr_schedule, kind="cosine")
    for given in ({"train": {"lr_schedule": {"kind": "cosine"}}},
                  {"train.lr_schedule": {"kind": "cosine"}}, {"train.lr_schedule.kind": "cosine"}):
        sweep = SweepConfig(base=str(base), set=given, grid={"loss.alpha": [0.2]}, seeds=[0])
        assert checked(sweep, "test").set == {"train.lr_schedule.kind": "cosine"}
        (run,) = expand(sweep, "test")
        assert run.config.train.lr_schedule == cosine
    path = write_sweep(tmp_path, f"base: {base}\nset:\n  train.lr_schedule: {{final: 0}}\n"
                                 "grid:\n  loss.alpha: [0.2]\nseeds: [0]\n")
    sweep = load_config(path, SweepConfig, ["set.train.lr_schedule.kind=cosine",
                                            "grid.train.lr_schedule.kind=[linear, cosine]"])
    assert checked(sweep, "test").set == {"train.lr_schedule.final": 0,
                                          "train.lr_schedule.kind": "cosine"}
    assert [run.config.train.lr_schedule for run in expand(sweep, str(path))] == [
        replace(kept, final=0.0), replace(cosine, final=0.0)]


def test_penalized_runs_train_apart():
    """A population pays for the penalty's double backward if any member has one, so runs
    with and without it are grouped apart."""
    sweep = SweepConfig(grid={"loss.gradient_penalty": [0, 0.5, 1]}, seeds=[0, 1])
    groups = populations(expand(sweep, "test"), sweep.population)
    assert sorted(sorted(r.config.loss.gradient_penalty for r in g) for g in groups) == [
        [0, 0], [0.5, 0.5, 1, 1]]


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("grid:\n  loss.alfa: [0.1]\n", r"unknown key 'loss.alfa'"),
        ("grid:\n  loss.alpha: []\n", r"grid.loss.alpha has no values"),
        ("grid:\n  loss.alpha: [0.1, fast]\n", r"run .*loss.alpha=fast.*expected float"),
        ("grid:\n  loss.alpha: [-1]\n", r"loss.alpha: -1.0 must be >= 0"),
        ("grid:\n  train.seed: [1, 2]\n", r"list seeds under 'seeds'"),
        ("grid:\n  loss.alpha: [0.1]\nseeds: []\n", r"seeds is empty"),
        ("grid: {}\n", r"grid is empty"),
        ("gird:\n  loss.alpha: [1]\n", r"unknown key 'gird'"),
        ("grid:\n  loss.alpha: [0.1]\nset:\n  train.steps: 0\n",
         r"set: train.steps: 0 must be > 0"),
        ("population: 0\n", r"population: 0 must be > 0"),
        ("concurrent: 0\n", r"concurrent: 0 must be > 0"),
        ("concurrent: two\n", r"concurrent: expected int, got .two."),
        ("cases:\n  - {train.seed: 1}\n", r"cases\[0\].train.seed: list seeds under"),
        ("cases:\n  - {}\n  - {loss.alpha: 1}\ngrid:\n  loss.alpha: [0]\n",
         r"cases\[1\].loss.alpha is also a grid key"),
        ("cases:\n  - {loss.alfa: 1}\n", r"run loss.alfa=1.*unknown key 'loss.alfa'"),
        ("cases:\n  - {loss.alpha: -1}\n", r"loss.alpha: -1.0 must be >= 0"),
        ("cases: {loss.alpha: 1}\n", r"cases: expected a list"),
        ("cases:\n  - {}\n  - {loss.alpha: 0.2}\n", r"alpha=0.2.* listed twice"),
        ("grid:\n  loss.alpha: [0.5, 0.5]\n", r"listed twice"),
        ("grid:\n  loss.alpha: 0.2\n", r"grid.loss.alpha: expected a list of values"),
        ("grid:\n  loss: [{alpha: 0}, {alpha: 1}]\n", r"grid.loss: name a key of the section"),
        ("grid:\n  loss.alpha: [1]\nset:\n  train.steps: 5\n  train: {steps: 6}\n",
         r"set.train.steps is given twice"),
        ("cases:\n  - {loss: {alfa: 1}}\n", r"run loss.alfa=1.*unknown key 'loss.alfa'"),
        ("grid:\n  loss.alpha: [1]\nset:\n  train.lr_schedule: cosine\n",
         r"set.train.lr_schedule: name a key of the section"),
        ("grid:\n  loss.alpha: [1]\nset:\n  train: {lr_schedule: {kind: linear}}\n"
         "  train.lr_schedule.kind: cosine\n", r"set.train.lr_schedule.kind is given twice"),
        ("grid:\n  data.name: [ring]\ntargets:\n  rign: {hq_share: 0.9}\n",
         r"targets.rign: not a data.name \(one of \['ring', 'grid', 'swissroll', 'points'\]"),
        ("grid:\n  data.name: [ring]\ntargets:\n  ring: {hq: 0.9}\n",
         r"targets.ring.hq: not a metric \(one of \['modes', 'hq_share'"),
        ("grid:\n  data.name: [ring]\ntargets:\n  ring: {near_curve: 0.9}\n",
         r"targets.ring.near_curve: near_curve does not apply to ring \(it needs data with "
         r"curve\)"),
        ("grid:\n  data.name: [swissroll]\ntargets:\n  swissroll: {modes: 1}\n",
         r"targets.swissroll.modes: modes does not apply to swissroll \(it needs data with "
         r"modes\)"),
        ("grid:\n  data.name: [ring]\ntargets:\n  ring: {hq_share: high}\n",
         r"targets.ring.hq_share: expected float, got 'high'"),
        ("grid:\n  data.name: [ring]\ntargets:\n  ring: {modes: true}\n",
         r"targets.ring.modes: expected float, got True"),
        ("grid:\n  data.name: [ring]\ntargets:\n  ring: {reverse_kl: .nan}\n",
         r"targets.ring.reverse_kl: expected a finite number, got nan"),
        ("grid:\n  data.name: [ring]\ntargets:\n  ring: {frechet: .inf}\n",
         r"targets.ring.frechet: expected a finite number, got inf"),
        ("grid:\n  data.name: [ring]\ntargets:\n  ring: {hq_share: 97.7}\n",
         r"targets.ring.hq_share: 97.7 can never be reached \(hq_share lies between 0 and 1\)"),
        ("grid:\n  data.name: [ring]\ntargets:\n  ring: {modes: 9}\n",
         r"targets.ring.modes: 9.0 can never be reached \(modes lies between 0 and 8\)"),
        ("grid:\n  data.name: [grid]\ntargets:\n  grid: {modes: 26}\n",
         r"between 0 and 25\)"),
        ("grid:\n  data.name: [ring]\ntargets:\n  ring: {reverse_kl: -0.5}\n",
         r"targets.ring.reverse_kl: -0.5 can never be reached \(reverse_kl lies between 0 "
         r"and inf\)"),
        ("grid:\n  data.name: [ring]\ntargets:\n  ring: 0.9\n",
         r"targets.ring: expected a mapping, got 0.9"),
        ("grid:\n  data.name: [ring]\ntargets:\n  ring: {}\n",
         r"targets.ring: name at least one metric and the value a seed must reach"),
        ("grid:\n  data.name: [ring]\ntargets:\n  ring: null\n",
         r"targets.ring: expected a mapping, got None"),
        ("grid:\n  data.name: [ring]\ntargets: [ring]\n",
         r"targets: expected a mapping, got \[.ring.\]"),
    ],
)
def test_bad_sweeps_fail_before_training(tmp_path, monkeypatch, body, match):
    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(GANTrainer, "fit_iter", no_training)
    with pytest.raises(ConfigError, match=match):
        run_sweep(write_sweep(tmp_path, body + f"output: {tmp_path}\n"), progress=False)


def sweep_counting_reads(tmp_path, monkeypatch, module, set_lines: str):
    """The tiny sweep on one data set (`set_lines` added to its `set`), run with `module`'s
    `read_points` counted: (its folder, the paths read)."""
    reads = []
    monkeypatch.setattr(module, "read_points", lambda path: reads.append(path) or
                        read_points(path))
    body = (TINY.format(out=tmp_path).replace("  data.name: [ring, grid]\n", "")
            .replace("set:\n", "set:\n" + set_lines))
    return run_sweep(write_sweep(tmp_path, body), progress=False), reads


def test_a_reference_file_is_read_once_per_sweep(tmp_path, monkeypatch):
    """Every member is judged against the points the sweep checked, read from disk once."""
    import mixup_gan.toy.runner as runner

    root, reads = sweep_counting_reads(tmp_path, monkeypatch, runner,
                                       f"  data.reference: {RING}\n")
    assert reads == [RING]
    expected = read_points(RING)
    real = [points for final in sorted(root.glob("populations/*/final_samples.pt"))
            for points in torch.load(final, weights_only=True)["real"]]
    assert len(real) == 4  # 2 seeds x alpha 0 and 0.2, as two populations
    for points in real:
        torch.testing.assert_close(points, expected[:len(points)], rtol=0, atol=0)


def test_a_point_file_is_read_once_per_sweep(tmp_path, monkeypatch):
    """Every member trains on the distribution the sweep checked, its file read once."""
    import mixup_gan.toy.data as data

    _, reads = sweep_counting_reads(tmp_path, monkeypatch, data, "  data.name: points\n"
                                    f"  data.path: {RING.replace('ring_paper', 'swissroll')}\n")
    assert reads == [RING.replace("ring_paper", "swissroll")]


@pytest.mark.parametrize(("concurrent", "crash_at", "logged"), [
    (1, 6, [3, 3, 3]),  # the first population (3 runs) logged step 3, then died
    (2, 7, [3, 3, 3, 3]),  # two populations take turns: both logged step 3, then died
])
def test_sweep_end_to_end_and_resume(tmp_path, monkeypatch, concurrent, crash_at, logged):
    whole = run_sweep(write_sweep(tmp_path, TINY.format(out=tmp_path / "a")), progress=False)
    rows = [json.loads(line) for line in (whole / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 8 * 2  # 8 runs x eval at steps 3 and 6
    assert {"data.name", "loss.alpha", "train.seed", "run", "step", "modes", "hq_share",
            "reverse_kl", "frechet"} <= set(rows[0])
    header = (whole / "results.csv").read_text().splitlines()[0]
    assert header.startswith("data.name,loss.alpha,train.seed,run,step")
    assert (whole / "summary.png").is_file() and (whole / "snapshots.png").is_file()
    table = (whole / "summary.md").read_text().splitlines()
    assert table[0].startswith("| data.name | loss.alpha | seeds | step | modes")
    assert len(table) == 2 + 4 and all("| 2 | 6 |" in line for line in table[2:])

    original, calls = GANTrainer.train_step, {"n": 0}

    def crash(self):
        calls["n"] += 1
        if calls["n"] == crash_at:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(GANTrainer, "train_step", crash)
    path = write_sweep(tmp_path, TINY.format(out=tmp_path / "b")
                       + f"concurrent: {concurrent}\n")
    with pytest.raises(KeyboardInterrupt):
        run_sweep(path, progress=False)
    monkeypatch.setattr(GANTrainer, "train_step", original)
    partial = run_sweep(path, progress=False, report=True)  # trains nothing
    steps = [json.loads(line)["step"]
             for line in (partial / "results.jsonl").read_text().splitlines()]
    assert steps == logged
    resumed = run_sweep(path, progress=False)  # side by side, as trained one by one
    assert (resumed / "results.jsonl").read_text() == (whole / "results.jsonl").read_text()


def test_populations_side_by_side_train_as_one_by_one(tmp_path, device):
    """On CUDA each population has a stream of its own (and its step is a CUDA graph)."""
    tiny = TINY.replace("train.device: cpu", f"train.device: {device}")
    final = {}
    for concurrent in (1, 4):
        root = run_sweep(write_sweep(tmp_path, tiny.format(out=tmp_path / str(concurrent))
                                     + f"concurrent: {concurrent}\n"), progress=False)
        final[concurrent] = {p.parent.name: torch.load(p, weights_only=True)["fake"]
                             for p in (root / "populations").glob("*/final_samples.pt")}
    assert len(final[1]) == 4 and final[1].keys() == final[4].keys()
    for name, fake in final[1].items():
        torch.testing.assert_close(final[4][name], fake, rtol=1e-5, atol=1e-5)


def test_a_population_syncs_with_the_host_only_at_its_sync_points(tmp_path, monkeypatch):
    """A host sync each step would serialize populations trained side by side."""
    syncs, original = [], GANTrainer.check_finite

    def counted(self):
        syncs.append(self.step)
        return original(self)

    monkeypatch.setattr(GANTrainer, "check_finite", counted)
    body = (TINY.replace("train.steps: 6", "train.steps: 120")
            .replace("eval.every: 3", "eval.every: 60\n  eval.snapshots: [30]")
            .replace("output.checkpoint_every: 2", "output.checkpoint_every: 60"))
    run_sweep(write_sweep(tmp_path, body.format(out=tmp_path)), progress=False)
    # 4 populations; a snapshot step (30) is one more sync point
    assert SYNC_EVERY == 50 and sorted(syncs) == sorted([30, 50, 60, 100, 120] * 4)


def test_interleave_takes_turns_and_stops_everything_at_the_first_error():
    trace, closed = [], []

    def job(name, steps, fail_at=None):
        try:
            for k in range(steps):
                if k == fail_at:
                    raise ValueError(name)
                trace.append(f"{name}{k}")
                yield
            return name
        finally:
            closed.append(name)

    cpu = torch.device("cpu")
    jobs = [(cpu, partial(job, n, s)) for n, s in (("a", 2), ("b", 3), ("c", 1))]
    assert interleave(jobs, at_once=2) == ["a", "b", "c"]
    # a and b take turns; c starts in the round after a's slot freed
    assert trace == ["a0", "b0", "a1", "b1", "b2", "c0"]
    trace.clear(), closed.clear()
    jobs = [(cpu, partial(job, "a", 5)), (cpu, partial(job, "b", 5, fail_at=2)),
            (cpu, partial(job, "c", 5))]
    with pytest.raises(ValueError, match="b"):
        interleave(jobs, at_once=2)
    assert trace == ["a0", "b0", "a1", "b1", "a2"]  # c never started
    assert sorted(closed) == ["a", "b"]  # a was closed: its finally ran


def test_an_ablation_of_cases_end_to_end(tmp_path):
    """One lever added at a time: the tables show each case's values for every run, the
    figures are per setting (no alpha axis), and the same members train as a sweep of the
    same settings written as a grid."""
    cases = TINY.format(out=tmp_path / "a").replace("  loss.alpha: [0, 0.2]\n", "").replace(
        "grid:", "cases:\n  - {}\n  - {train.lr_schedule.kind: linear}\n"
        "  - {train.lr_schedule.kind: linear, loss.gradient_penalty: 1}\ngrid:")
    cases += "targets:\n  ring: {modes: 0, frechet: 1.0e+9}\n"  # every seed reaches these
    root = run_sweep(write_sweep(tmp_path, cases), progress=False)
    table = (root / "summary.md").read_text().splitlines()
    assert table[0].startswith("| train.lr_schedule.kind | loss.gradient_penalty | data.name "
                               "| seeds |") and table[0].endswith("| every target |")
    assert [line.split(" | ")[:3] for line in table[2:]] == [
        ["| constant", "0.0", "ring"], ["| constant", "0.0", "grid"],
        ["| linear", "0.0", "ring"], ["| linear", "0.0", "grid"],
        ["| linear", "1.0", "ring"], ["| linear", "1.0", "grid"]]
    assert [line.split(" | ")[-1] for line in table[2:]] == ["2/2 |", "n/a |"] * 3
    assert all("[2/2 ≥ 0]" in line and "[2/2 ≤ 1e+09]" in line for line in table[2::2])
    assert (root / "summary.png").is_file() and (root / "snapshots.png").is_file()
    grid = TINY.replace("  loss.alpha: [0, 0.2]\n", "  train.lr_schedule.kind: [linear]\n"
                        "  loss.gradient_penalty: [1]\n")
    alone = run_sweep(write_sweep(tmp_path, grid.format(out=tmp_path / "b")), progress=False)
    final = {}
    for folder in (root, alone):
        rows = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
        final[folder] = [(r["data.name"], r["train.seed"], r["step"], r["frechet"])
                         for r in rows if r["loss.gradient_penalty"] == 1]
    assert final[root] == final[alone] and len(final[alone]) == 8


def test_a_reference_that_does_not_match_the_data_is_refused(tmp_path, monkeypatch):
    """From any folder: the base and its reference are read relative to their files."""
    root = Path(__file__).resolve().parent.parent
    body = (f"base: {root}/configs/toy/ring_mixup.yaml\nset:\n  train.steps: 1\ngrid:\n"
            "  data.name: [grid]\nseeds: [0]\n" + f"output: {tmp_path}\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"data.reference '\S*toy_data/ring_paper.csv' does "
                                          r"not look like data.name 'grid'"):
        run_sweep(write_sweep(tmp_path, body), progress=False)


def kept_samples(root):
    """Each run's kept samples by step, from its population's snapshots.pt."""
    out = {}
    for path in (root / "populations").glob("*/snapshots.pt"):
        state = torch.load(path, weights_only=True)
        for k, run_id in enumerate(state["ids"]):
            out[run_id] = {step: fake[k] for step, fake in state["steps"].items()}
    return out


def test_a_sweep_keeps_samples_at_its_snapshot_steps_across_a_crash(tmp_path, monkeypatch):
    """eval.snapshots: each population keeps its runs' samples at those steps (the last one
    is the final samples exactly) and strips.png draws them; a population killed after a
    snapshot and resumed from an earlier checkpoint keeps the same points; no snapshot step
    within the run: neither file."""
    text = TINY.replace("  eval.every: 3\n", "  eval.every: 3\n  eval.snapshots: [2, 5, 6]\n")
    whole = run_sweep(write_sweep(tmp_path, text.format(out=tmp_path / "a")), progress=False)
    kept = kept_samples(whole)
    assert len(kept) == 8 and all(sorted(steps) == [2, 5, 6] for steps in kept.values())
    for path in (whole / "populations").glob("*/final_samples.pt"):
        final = torch.load(path, weights_only=True)
        for k, run_id in enumerate(final["ids"]):
            assert torch.equal(kept[run_id][6], final["fake"][k])
            assert not torch.equal(kept[run_id][2], kept[run_id][6])
    assert (whole / "strips.png").is_file()

    original, calls = GANTrainer.train_step, {"n": 0}

    def crash(self):  # the first population dies in step 6: after step 5's snapshot,
        calls["n"] += 1  # two steps past its last checkpoint (step 4)
        if calls["n"] == 6:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(GANTrainer, "train_step", crash)
    path = write_sweep(tmp_path, text.format(out=tmp_path / "b"))
    with pytest.raises(KeyboardInterrupt):
        run_sweep(path, progress=False)
    monkeypatch.setattr(GANTrainer, "train_step", original)
    resumed = kept_samples(run_sweep(path, progress=False))
    assert resumed.keys() == kept.keys()
    for run_id, steps in kept.items():
        assert all(torch.equal(resumed[run_id][s], steps[s]) for s in steps), run_id

    plain = run_sweep(write_sweep(tmp_path, TINY.format(out=tmp_path / "c")), progress=False)
    assert not list(plain.glob("populations/*/snapshots.pt"))
    assert not (plain / "strips.png").exists()


def test_overwrite_deletes_populations_that_kept_snapshots(tmp_path):
    text = TINY.replace("  eval.every: 3\n", "  eval.every: 3\n  eval.snapshots: [2]\n")
    path = write_sweep(tmp_path, text.format(out=tmp_path / "a"))
    first = kept_samples(run_sweep(path, progress=False))
    again = kept_samples(run_sweep(path, progress=False, overwrite=True))
    assert first.keys() == again.keys()
    assert all(torch.equal(first[r][2], again[r][2]) for r in first)  # trained again, same


@pytest.mark.parametrize(("name", "reference"), [("swissroll", "ring_paper"),
                                                 ("ring", "swissroll")])
def test_a_reference_off_the_swiss_roll_is_refused_too(tmp_path, name, reference):
    root = Path(__file__).resolve().parent.parent
    body = (f"base: {root}/configs/toy/swissroll_mixup.yaml\nset:\n  train.steps: 1\n"
            f"  data.reference: {root}/toy_data/{reference}.csv\ngrid:\n"
            f"  data.name: [{name}]\nseeds: [0]\n" + f"output: {tmp_path}\n")
    where = "its curve" if name == "swissroll" else "its modes"
    with pytest.raises(ConfigError, match=rf"does not look like data.name '{name}' .* lie "
                                          rf"near {where}"):
        run_sweep(write_sweep(tmp_path, body), progress=False)


@pytest.mark.parametrize("where", ["grid", "cases"])
@pytest.mark.parametrize("alpha_axis", [False, True])
def test_a_list_valued_setting_is_grouped_and_shown_as_written(tmp_path, where, alpha_axis):
    """Adam's betas are a list: a sweep over them (a grid key, or a case's key; with the
    alpha axis and without) groups each setting's seeds, writes the table as written and
    draws its figures instead of failing after training."""
    text = TINY.format(out=tmp_path / "out")
    if not alpha_axis:
        text = text.replace("  loss.alpha: [0, 0.2]\n", "")
    if where == "grid":
        text = text.replace("grid:\n", "grid:\n  train.betas: [[0.5, 0.999], [0.9, 0.999]]\n")
    else:
        text = text.replace("grid:", "cases:\n  - {train.betas: [0.5, 0.999]}\n"
                            "  - {train.betas: [0.9, 0.999]}\ngrid:")
    root = run_sweep(write_sweep(tmp_path, text), progress=False)
    table = (root / "summary.md").read_text().splitlines()
    assert table[0].startswith("| train.betas | ")
    first = [line.split(" | ")[0] for line in table[2:]]
    assert first.count("| [0.5, 0.999]") == first.count("| [0.9, 0.999]") == len(first) // 2
    assert len(first) == (8 if alpha_axis else 4)
    assert all(" | 2 | 6 | " in line for line in table[2:])  # both seeds, the last step
    assert (root / "summary.png").is_file() and (root / "snapshots.png").is_file()
    from mixup_gan.toy.sweep.figures import _label
    assert _label(["train.betas", "data.name"], ((0.5, 0.999), "ring")) == "betas [0.5,0.999], ring"



def test_figure_labels_tell_the_two_schedules_kinds_apart(tmp_path, monkeypatch):
    from mixup_gan.toy.sweep import figures
    keys = ["train.lr_schedule.kind", "loss.gradient_penalty_schedule.kind",
            "loss.gradient_penalty", "train.betas", "data.name"]
    assert figures._label(keys, ("linear", "constant", 0.1, (0.5, 0.999), "grid")) == (
        "lr_schedule.kind linear, gradient_penalty_schedule.kind constant, "
        "gradient_penalty 0.1, betas [0.5,0.999], grid")
    assert figures._label(["loss.alpha", "train.lr_schedule.kind"], (0.2, "cosine")) == (
        "alpha 0.2, kind cosine")  # short where nothing else ends the same
    shown = []
    monkeypatch.setattr(figures.plt, "close", lambda fig: shown.append(fig))
    rows = [{"run": f"r{k}", "step": 5, "data.name": "grid", "train.seed": 0, "modes": 25,
             "hq_share": 0.5, keys[0]: kind, keys[1]: "linear"}
            for k, kind in enumerate(["constant", "linear"])]
    figures.save_settings_figure(tmp_path / "s.png", rows, keys[:2] + ["data.name"])
    assert shown[0].axes[0].get_xlabel() == "lr_schedule.kind / gradient_penalty_schedule.kind"
