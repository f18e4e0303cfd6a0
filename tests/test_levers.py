"""Training levers as data of the one loop: schedules (alpha, mix_prob, learning rate), the
zero-centred gradient penalty and generator EMA; each exact, and member-wise in populations."""

import math

import pytest
import torch
from test_sweep import assert_members_step_like_runs_of_one

from mixup_gan.gan_config import LossConfig
from mixup_gan.member_losses import MemberLosses
from mixup_gan.rng import CounterRNG
from mixup_gan.schedule import MemberSchedules, Schedule
from mixup_gan.toy.config import ToyModelConfig, ToyTrainConfig
from mixup_gan.toy.data import grid, ring
from mixup_gan.toy.runner import build_toy_trainer, run_toy

MODEL = ToyModelConfig(latent_dim=2, hidden=32, depth=2)


def test_schedules_move_the_multiplier_from_1_to_final():
    linear = Schedule("linear", final=0.0, start=10, end=30)
    assert [linear.multiplier(s, 100) for s in (0, 10, 20, 30, 90)] == [1, 1, 0.5, 0, 0]
    cosine = Schedule("cosine", final=0.5)  # ends at the run's last step
    assert cosine.multiplier(50, 100) == pytest.approx(0.75)
    assert cosine.multiplier(100, 100) == pytest.approx(0.5)
    assert Schedule().multiplier(7, 10) == 1.0
    schedules = [linear, cosine, Schedule()]
    members = MemberSchedules(schedules, 100, "cpu")
    for step in (0, 15, 25, 29, 30, 50, 99, 100):
        expected = [s.multiplier(step, 100) for s in schedules]
        torch.testing.assert_close(members.at(step), torch.tensor(expected))
        assert members.any_zero(step) == any(m == 0 for m in expected)


def test_alpha_annealed_to_zero_becomes_the_plain_loss():
    loss = LossConfig(alpha=0.4, alpha_schedule=Schedule("linear", final=0.0, end=10))
    losses = MemberLosses([loss], torch.device("cpu"), last_step=20)
    rng = CounterRNG([0])
    real, fake = torch.randn(1, 6, 2), torch.randn(1, 6, 2)
    early = {p.target if isinstance(p.target, str) else "mixed": float(p.weight)
             for p in losses.parts(rng, 0, real, fake, step=0)}
    late = {p.target if isinstance(p.target, str) else "mixed": float(p.weight)
            for p in losses.parts(rng, 16, real, fake, step=10)}
    assert early == {"mixed": 1.0}  # the plain rows are scored only once alpha reaches 0
    assert late == {"mixed": 0.0, "real": 1.0, "fake": 1.0}


def test_the_learning_rate_follows_its_schedule():
    train = ToyTrainConfig(steps=10, batch_size=8, n_dis=1, lr=0.01, capture=False,
                           lr_schedule=Schedule("linear", final=0.0))
    trainer = build_toy_trainer(MODEL, train, [LossConfig()], [ring()], [0],
                                torch.device("cpu"))
    for step in range(4):
        trainer.train_step()
        trainer.step += 1
        assert trainer.opt_d.param_groups[0]["lr"] == pytest.approx(0.01 * (1 - step / 10))
        assert trainer.opt_g.param_groups[0]["lr"] == trainer.opt_d.param_groups[0]["lr"]


def test_the_gradient_penalty_equals_its_closed_form():
    # For D(x) = w.x the input gradient is w everywhere: penalty = g/2 * |w|^2 per part.
    settings = [LossConfig(alpha=0.2, gradient_penalty=4.0), LossConfig(alpha=0.0,
                                                                        gradient_penalty=1.0)]
    losses = MemberLosses(settings, torch.device("cpu"))
    parts = losses.parts(CounterRNG([0, 1]), 0, torch.randn(2, 5, 2), torch.randn(2, 5, 2))
    losses.requires_inputs_grad(parts)
    w = torch.tensor([0.3, -2.0])
    penalty = losses.penalty(parts, [p.inputs @ w for p in parts])
    square = float(w.square().sum())
    torch.testing.assert_close(penalty, torch.tensor([2.0 * square, 0.5 * square * 2]))


LEVERS = [
    LossConfig(alpha=0.2, alpha_schedule=Schedule("linear", final=0.0, start=2, end=6)),
    LossConfig(alpha=0.5, mix_prob=0.8, mix_prob_schedule=Schedule("cosine", final=0.2)),
    LossConfig(alpha=0.3, gradient_penalty=1.0, pairing="pool"),
    LossConfig(alpha=0.0, gradient_penalty=0.5, name="hinge"),
]


LEVERS_TRAIN = ToyTrainConfig(steps=8, batch_size=16, n_dis=2, ema=0.9, capture=False,
                              lr_schedule=Schedule("cosine", final=0.1))
LEVERS_DISTS, LEVERS_SEEDS = [ring(), grid(), ring(), grid()], [3, 1, 4, 1]


def test_member_k_with_levers_steps_like_a_run_of_one(device):
    assert_members_step_like_runs_of_one(LEVERS_TRAIN, LEVERS, LEVERS_DISTS, LEVERS_SEEDS,
                                         device)


def test_member_k_with_levers_equals_a_run_of_one():
    # On the CPU only, as in test_sweep.test_member_k_equals_a_run_of_one.
    train, dists, seeds, device = LEVERS_TRAIN, LEVERS_DISTS, LEVERS_SEEDS, "cpu"

    def trained(losses, dists, seeds):
        trainer = build_toy_trainer(MODEL, train, losses, dists, seeds, torch.device(device))
        for _ in range(8):
            trainer.train_step()
            trainer.step += 1
        return trainer

    population = trained(LEVERS, dists, seeds)
    for k in range(len(LEVERS)):
        single = trained([LEVERS[k]], [dists[k]], [seeds[k]])
        for net in ("G", "D"):
            for name, value in getattr(single, net).state_dict().items():
                torch.testing.assert_close(getattr(population, net).state_dict()[name][k],
                                           value[0], rtol=0, atol=1e-5, msg=f"{k} {net}.{name}")
        for name, value in single.ema.state_dict().items():
            torch.testing.assert_close(population.ema.state_dict()[name][k], value[0], rtol=0,
                                       atol=1e-5)


def test_toy_runs_evaluate_the_ema_and_resume_it_exactly(tiny_config, tmp_path):
    import json

    # schedules with an explicit end: a run extended from 10 to 20 steps equals one of 20
    # (an open-ended schedule ends at train.steps, so it would change with them)
    levers = ["train.ema=0.9", "loss.alpha_schedule={kind: linear, final: 0, end: 15}",
              "train.lr_schedule={kind: cosine, final: 0.1, end: 15}",
              "loss.gradient_penalty=1"]
    run_toy(tiny_config(*levers, "train.steps=10"), "part")
    run_toy(tiny_config(*levers), "part")
    whole = run_toy(tiny_config(*levers), "whole")
    rows = {n: [json.loads(line) for line in (tmp_path / "runs" / n / "metrics.jsonl").open()]
            for n in ("part", "whole")}
    assert rows["part"] == rows["whole"]
    assert math.isfinite(whole["frechet"])
    saved = torch.load(tmp_path / "runs" / "whole" / "checkpoint.pt", weights_only=True)
    assert "ema" in saved["nets"]
