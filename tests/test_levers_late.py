"""Levers for the end of training, as config options of the one loop: an EMA of G that starts
late (`train.ema_start`), the gradient penalty's weight over training
(`loss.gradient_penalty_schedule`) and D's learning rate as a ratio of G's
(`train.d_lr_ratio`). Each is checked against a recomputation written here, member-wise in a
population, on the captured step, and across a resume.

Broken variants these tests catch (each tried by hand): the EMA averaging from step 0 (start
ignored) or one step late; the penalty schedule ignored, read at a fixed step, or member 0's
used for every member; D's optimizer given G's lr, or the ratio lost when the schedule sets
the lr (a step, a resume, a captured step).
"""

import json
import math
import warnings

import pytest
import torch
from test_engine import OpCounter

from mixup_gan.gan_config import LossConfig
from mixup_gan.member_losses import BLOCK, MemberLosses
from mixup_gan.rng import CounterRNG
from mixup_gan.schedule import Schedule
from mixup_gan.toy.config import ToyModelConfig, ToyTrainConfig
from mixup_gan.toy.data import grid, ring
from mixup_gan.toy.runner import build_toy_trainer, run_toy

MODEL = ToyModelConfig(latent_dim=2, hidden=32, depth=2)
CPU = torch.device("cpu")


def build(losses, capture=False, seeds=None, dists=None, **train):
    config = ToyTrainConfig(**{"steps": 10, "batch_size": 16, "n_dis": 2, "capture": capture,
                               **train})
    seeds = list(range(len(losses))) if seeds is None else seeds
    dists = dists or [ring(), grid()] * (len(losses) // 2) + [ring()] * (len(losses) % 2)
    return build_toy_trainer(MODEL, config, losses, dists, seeds, CPU)


def step(trainer, n=1):
    for _ in range(n):
        trainer.train_step()
        trainer.step += 1


def weights(t) -> dict[str, torch.Tensor]:
    nets = {"G": t.G, "D": t.D, **({"ema": t.ema.module} if t.ema is not None else {})}
    return {f"{k}.{n}": v.detach().clone() for k, net in nets.items()
            for n, v in net.state_dict().items()}


# --- train.ema_start ---------------------------------------------------------------------

@pytest.mark.parametrize("start", [0, 3])
def test_the_ema_is_g_until_its_start_then_follows_the_decay(start):
    """By hand: until `start` the EMA is G exactly; after it, decay * average + (1 - decay) *
    live, from G as it was at `start` (at 0: the initial G)."""
    decay = 0.8
    t = build([LossConfig(alpha=0.2)], ema=decay, ema_start=start)
    expected = {n: p.detach().double().clone() for n, p in t.G.named_parameters()}
    for s in range(1, 9):
        step(t)
        live = {n: p.detach().double() for n, p in t.G.named_parameters()}
        ema = dict(t.ema.module.named_parameters())
        if s <= start:  # G itself, exactly
            expected = live
            for name, value in live.items():
                assert torch.equal(ema[name].double(), value), (s, name)
        else:  # average = decay * average + (1 - decay) * live, from the copy at `start`
            expected = {n: decay * expected[n] + (1 - decay) * live[n] for n in live}
            for name, value in expected.items():
                torch.testing.assert_close(ema[name].double(), value, rtol=0, atol=1e-6,
                                           msg=f"step {s} {name}")
            assert not torch.equal(ema["layers.0.weight"].double(), live["layers.0.weight"])


def test_an_ema_that_never_starts_is_warned_about():
    with pytest.warns(UserWarning, match=r"train.ema_start 10 >= train.steps 10"):
        build([LossConfig(alpha=0.2)], ema=0.9, ema_start=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build([LossConfig(alpha=0.2)], ema=0.9, ema_start=9)


# --- loss.gradient_penalty_schedule -------------------------------------------------------

def test_the_penalty_is_g_times_its_schedule_at_the_step():
    # For D(x) = w.x the input gradient is w everywhere: penalty = g m(step) / 2 * |w|^2.
    schedules = [Schedule("linear", final=0.0), Schedule("cosine", final=0.5, start=2, end=6)]
    settings = [LossConfig(alpha=0.2, gradient_penalty=4.0, gradient_penalty_schedule=s)
                for s in schedules]
    losses = MemberLosses(settings, CPU, last_step=10)
    parts = losses.parts(CounterRNG([0, 1]), 0, torch.randn(2, 5, 2), torch.randn(2, 5, 2))
    losses.requires_inputs_grad(parts)
    w = torch.tensor([0.3, -2.0])
    square = float(w.square().sum())
    # The multipliers by hand: linear 1 -> 0 over steps 0..10; cosine 1 -> 0.5 over steps 2..6,
    # final + (1 - final) * (1 + cos(pi * t)) / 2 with t the share of the way.
    by_hand = {0: (1.0, 1.0), 3: (0.7, 0.5 + 0.25 * (1 + math.cos(math.pi / 4))),
               5: (0.5, 0.5 + 0.25 * (1 + math.cos(3 * math.pi / 4))), 6: (0.4, 0.5),
               10: (0.0, 0.5)}
    for s, multipliers in by_hand.items():
        assert [sch.multiplier(s, 10) for sch in schedules] == pytest.approx(multipliers)
        expected = torch.tensor([2.0 * square * m for m in multipliers])
        at_step = losses.penalty(parts, [p.inputs @ w for p in parts], s)
        at_clock = losses.penalty(parts, [p.inputs @ w for p in parts], 99, torch.tensor(s))
        torch.testing.assert_close(at_step, expected)
        torch.testing.assert_close(at_clock, expected)
    last = losses.penalty(parts, [p.inputs @ w for p in parts], 10)
    assert float(last[0]) == 0.0  # final 0 at the last step: no penalty at all


@pytest.mark.parametrize("final", [0.25, 0.0])
def test_a_scheduled_penalty_trains_like_the_constant_weight_it_reaches(final):
    # Multiplier 1 at step 0, `final` from step 1: a run with the schedule equals one step at
    # g = 4, then (from that checkpoint) a run at the constant weight 4 * final, bit for bit;
    # final 0 is then the penalty-free loss.
    def loss(g, schedule=None):
        schedule = schedule or Schedule()
        return [LossConfig(alpha=0.3, gradient_penalty=g, gradient_penalty_schedule=schedule)]

    scheduled = build(loss(4.0, Schedule("linear", final=final, start=0, end=1)))
    step(scheduled, 4)
    first = build(loss(4.0))
    step(first)
    rest = build(loss(4.0 * final))
    rest.load_state_dict(first.state_dict())
    step(rest, 3)
    for name, value in weights(rest).items():
        assert torch.equal(weights(scheduled)[name], value), name


def test_members_with_different_penalty_schedules_equal_their_runs_of_one():
    losses = [LossConfig(alpha=0.2, gradient_penalty=2.0,
                         gradient_penalty_schedule=Schedule("linear", final=0.0, end=4)),
              LossConfig(alpha=0.2, gradient_penalty=2.0, pairing="pool",
                         gradient_penalty_schedule=Schedule("cosine", final=3.0, start=1))]
    seeds = [5, 5]  # the same draws: only the schedules tell the members apart
    population = build(losses, seeds=seeds, dists=[ring(), ring()], ema=0.9)
    step(population, 8)
    for k in range(2):
        single = build([losses[k]], seeds=[seeds[k]], dists=[ring()], ema=0.9)
        step(single, 8)
        for name, value in weights(single).items():
            torch.testing.assert_close(weights(population)[name][k], value[0], rtol=0,
                                       atol=1e-5, msg=f"member {k} {name}")


# --- train.d_lr_ratio ---------------------------------------------------------------------

@pytest.mark.parametrize("capture", [False, True], ids=["plain", "captured"])
def test_d_learns_at_lr_times_the_ratio(capture):
    lr, ratio, schedule = 0.01, 0.25, Schedule("linear", final=0.0)
    t = build([LossConfig(alpha=0.2)], capture, lr=lr, d_lr_ratio=ratio, lr_schedule=schedule)
    for s in range(4):
        t.fit(s + 1, progress=False)  # the lr of step s was set as it began
        m = schedule.multiplier(s, 10)
        assert float(t.opt_g.param_groups[0]["lr"]) == pytest.approx(lr * m, rel=1e-6)
        assert float(t.opt_d.param_groups[0]["lr"]) == pytest.approx(lr * ratio * m, rel=1e-6)
    resumed = build([LossConfig(alpha=0.2)], capture, lr=lr, d_lr_ratio=ratio,
                    lr_schedule=schedule)
    resumed.load_state_dict(t.state_dict())
    resumed.fit(5, progress=False)
    assert float(resumed.opt_g.param_groups[0]["lr"]) == pytest.approx(
        lr * schedule.multiplier(4, 10), rel=1e-6)
    assert float(resumed.opt_d.param_groups[0]["lr"]) == pytest.approx(
        lr * ratio * schedule.multiplier(4, 10), rel=1e-6)


def test_the_ratio_reaches_adams_step():
    # Adam's first update moves each weight by lr * g / (|g| + eps): about lr, at most lr.
    lr, ratio = 0.01, 0.25
    t = build([LossConfig(alpha=0.2)], lr=lr, d_lr_ratio=ratio, n_dis=1)
    before = weights(t)
    t.gan_step.d_step(0, 0)  # counter block 0, generator step 0
    moved = max(float((v - before[f"D.{n}"]).abs().max()) for n, v in t.D.state_dict().items())
    assert moved == pytest.approx(lr * ratio, rel=1e-3)
    t.gan_step.g_step(BLOCK)
    moved = max(float((v - before[f"G.{n}"]).abs().max()) for n, v in t.G.state_dict().items())
    assert moved == pytest.approx(lr, rel=1e-3)


# --- all three: captured step, resume, ops per step --------------------------------------

LATE = dict(ema=0.9, ema_start=4, d_lr_ratio=0.5, lr_schedule=Schedule("cosine", final=0.1))
LATE_LOSSES = [LossConfig(alpha=0.2, gradient_penalty=1.0,
                          gradient_penalty_schedule=Schedule("linear", final=0.0, end=7)),
               LossConfig(alpha=0.3, gradient_penalty=0.5, pairing="pool",
                          gradient_penalty_schedule=Schedule("cosine", final=2.0, start=3))]


def test_the_captured_step_with_late_levers_equals_the_plain_step():
    plain, captured = build(LATE_LOSSES, **LATE), build(LATE_LOSSES, True, **LATE)
    plain.fit(10, progress=False)
    captured.fit(10, progress=False)
    # Not bit for bit: the captured step's lr and EMA weight are float32 tensors.
    for name, value in weights(plain).items():
        torch.testing.assert_close(weights(captured)[name], value, rtol=0, atol=1e-5,
                                   msg=name)


@pytest.mark.parametrize("capture", [False, True], ids=["plain", "captured"])
@pytest.mark.parametrize("at", [2, 6], ids=["before_ema_start", "after_ema_start"])
def test_a_run_with_late_levers_resumes_exactly(capture, at):
    whole = build(LATE_LOSSES, capture, **LATE)
    whole.fit(10, progress=False)
    first = build(LATE_LOSSES, capture, **LATE)
    first.fit(at, progress=False)
    second = build(LATE_LOSSES, capture, **LATE)
    second.load_state_dict(first.state_dict())
    second.fit(10, progress=False)
    for name, value in weights(whole).items():
        assert torch.equal(weights(second)[name], value), name


def test_toy_runs_with_late_levers_resume_exactly(tiny_config, tmp_path):
    # explicit ends: a run extended from 10 to 20 steps equals one of 20
    levers = ["train.ema=0.9", "train.ema_start=12", "train.d_lr_ratio=0.5",
              "train.lr_schedule={kind: linear, final: 0.2, end: 20}", "loss.gradient_penalty=1",
              "loss.gradient_penalty_schedule={kind: linear, final: 0, end: 15}"]
    with pytest.warns(UserWarning, match="never starts"):  # it will, once extended
        run_toy(tiny_config(*levers, "train.steps=10"), "part")
    run_toy(tiny_config(*levers), "part")
    run_toy(tiny_config(*levers), "whole")
    rows = {n: [json.loads(line) for line in (tmp_path / "runs" / n / "metrics.jsonl").open()]
            for n in ("part", "whole")}
    assert rows["part"] == rows["whole"]
    saved = {n: torch.load(tmp_path / "runs" / n / "checkpoint.pt", weights_only=True)["nets"]
             for n in ("part", "whole")}
    for net, state in saved["whole"].items():
        for name, value in state.items():
            assert torch.equal(saved["part"][net][name], value), f"{net}.{name}"


@pytest.mark.parametrize("capture", [False, True], ids=["plain", "captured"])
def test_ops_per_step_with_late_levers_do_not_grow_with_members(capture):
    def ops(members):
        t = build(LATE_LOSSES * (members // 2), capture, steps=100, **LATE)
        one = t.run_step if capture else (lambda: step(t))
        one()
        with OpCounter() as counter:
            for _ in range(6):  # across ema_start (4)
                one()
        return counter

    two, sixteen = ops(2), ops(16)
    assert two.ops == sixteen.ops, (two.ops, sixteen.ops)
    assert two.host_reads == [] and sixteen.host_reads == []
