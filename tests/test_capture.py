"""The captured step (`train.capture`): counters and learning rate on the device, the same
numbers as the plain step, exact resume, no host sync; recorded as a CUDA graph on CUDA.

On the CPU these run the capture-ready step eagerly; on a CUDA machine the same tests check
the graph replays."""

import pytest
import torch

from mixup_gan.captured_step import WARMUP, resolve_capture
from mixup_gan.gan_config import LossConfig
from mixup_gan.rng import CounterRNG
from mixup_gan.schedule import Schedule
from mixup_gan.toy.config import ToyModelConfig, ToyTrainConfig
from mixup_gan.toy.data import grid, ring
from mixup_gan.toy.runner import build_toy_trainer, run_toy

MODEL = ToyModelConfig(latent_dim=2, hidden=32, depth=2)
POPULATION = [  # every lever that changes a step from one step to the next
    LossConfig(alpha=0.2, alpha_schedule=Schedule("linear", final=0.0, start=2, end=6)),
    LossConfig(alpha=0.5, mix_prob=0.8, mix_prob_schedule=Schedule("cosine", final=0.2)),
    LossConfig(alpha=0.3, gradient_penalty=1.0, pairing="pool"),
    LossConfig(alpha=0.0, name="hinge", erm_weight=0.5),
]
# Alpha annealed to 0 by step 6 makes D score the plain rows from then on: a second structure
# (the population above scores them from the start: its hinge member mixes with ERM).
ANNEALED = [LossConfig(alpha=0.2, alpha_schedule=Schedule("linear", final=0.0, start=2, end=6)),
            LossConfig(alpha=0.3, gradient_penalty=1.0, pairing="pool")]
STEPS = 2 * WARMUP + 6  # warm-up, recording and replays on each side of step 6


def trainer(capture: bool, device: str, losses=None, **train):
    losses = losses or POPULATION
    config = ToyTrainConfig(steps=STEPS, batch_size=16, n_dis=2, ema=0.9, capture=capture,
                            lr_schedule=Schedule("cosine", final=0.1), **train)
    dists = [ring(), grid()] * (len(losses) // 2) + [ring()] * (len(losses) % 2)
    return build_toy_trainer(MODEL, config, losses, dists, list(range(len(losses))),
                             torch.device(device))


def weights(t) -> dict[str, torch.Tensor]:
    nets = {"G": t.G, "D": t.D, "ema": t.ema.module}
    return {f"{k}.{n}": v for k, net in nets.items() for n, v in net.state_dict().items()}


def test_tensor_counters_draw_the_same_numbers(device):
    rng = CounterRNG([3, 8], device, stride=16, ahead=1)
    alpha = torch.tensor([0.2, 1.5], device=device)
    high = torch.tensor([8, 25], device=device)
    for counter in (0, 16, 2**40 + 5):
        at = torch.tensor(counter, device=device)
        assert torch.equal(rng.bits(counter, 5), rng.bits(at, 5))
        assert torch.equal(rng.uniform(counter, 3, 2), rng.uniform(at, 3, 2))
        assert torch.equal(rng.normal(counter, 7), rng.normal(at, 7))
        assert torch.equal(rng.randint(counter, high, 9), rng.randint(at, high, 9))
        assert torch.equal(rng.beta(counter, alpha, 6), rng.beta(at, alpha, 6))
        assert torch.equal(rng.permutations(counter, 10, 2), rng.permutations(at, 10, 2))


@pytest.mark.parametrize("losses", [POPULATION, ANNEALED], ids=["levers", "annealed"])
def test_the_captured_step_equals_the_plain_step(device, losses):
    plain, captured = trainer(False, device, losses), trainer(True, device, losses)
    plain.fit(STEPS, progress=False)
    captured.fit(STEPS, progress=False)
    assert captured.draws == plain.draws and int(captured.clock.draws) == plain.draws
    assert int(captured.clock.step) == STEPS
    structures = {captured.losses.structure(step) for step in range(STEPS)}
    assert len(structures) == (2 if losses is ANNEALED else 1)
    if device == "cuda":  # each structure was recorded once
        assert len(captured.clock.graphs) == len(structures)
    # Not bit for bit: the captured step's learning rate is a float32 tensor.
    for name, value in weights(plain).items():
        torch.testing.assert_close(weights(captured)[name], value, rtol=0, atol=1e-5,
                                   msg=name)
    for a, b in zip(plain.pop_mean_losses(), captured.pop_mean_losses(), strict=True):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-5)
    assert float(captured.opt_d.param_groups[0]["lr"]) == pytest.approx(
        1e-3 * Schedule("cosine", final=0.1).multiplier(STEPS - 1, STEPS), rel=1e-6)


def test_a_captured_run_resumes_exactly(device):
    whole = trainer(True, device)
    whole.fit(STEPS, progress=False)
    first = trainer(True, device)
    first.fit(5, progress=False)
    state = first.state_dict()
    second = trainer(True, device)
    second.load_state_dict(state)
    second.fit(STEPS, progress=False)
    for name, value in weights(whole).items():
        assert torch.equal(weights(second)[name], value), name
    assert second.pop_mean_losses() == whole.pop_mean_losses()


def test_checkpoints_move_between_captured_and_plain_runs(device):
    plain = trainer(False, device)
    plain.fit(STEPS, progress=False)
    for first_capture in (True, False):
        first = trainer(first_capture, device)
        first.fit(5, progress=False)
        second = trainer(not first_capture, device)
        second.load_state_dict(first.state_dict())
        second.fit(STEPS, progress=False)
        for name, value in weights(plain).items():
            torch.testing.assert_close(weights(second)[name], value, rtol=0, atol=1e-5)


def test_a_captured_step_never_waits_for_the_host(device):
    t = trainer(True, device)
    for _ in range(WARMUP + 1):  # warm up and record
        t.run_step()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            for _ in range(4):
                t.run_step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    else:
        from test_engine import OpCounter
        with OpCounter() as counter:
            for _ in range(4):
                t.run_step()
        assert counter.host_reads == []


def test_a_diverged_member_is_named_with_its_step(device):
    t = trainer(True, device, losses=[LossConfig(alpha=0.2)] * 2)
    t.fit(WARMUP + 2, progress=False)
    with torch.no_grad():
        t.D.layers[0].weight[0].fill_(float("nan"))
    t.fit(WARMUP + 6, progress=False)
    assert t.diverged == {0: WARMUP + 3}


def test_capture_defaults_to_cuda_only(tiny_config, tmp_path):
    assert resolve_capture(None, torch.device("cuda")) is True
    assert resolve_capture(None, torch.device("cpu")) is False
    assert resolve_capture(True, torch.device("cpu")) is True
    assert tiny_config().train.capture is None
    captured = run_toy(tiny_config("train.capture=true"), "captured")
    plain = run_toy(tiny_config("train.capture=false"), "plain")
    assert captured["steps"] == plain["steps"] == 20
    assert captured["modes"] == plain["modes"]
    assert captured["frechet"] == pytest.approx(plain["frechet"], rel=1e-3)


def test_a_run_resumes_with_capture_switched(tiny_config):
    plain = run_toy(tiny_config("train.capture=false", "train.steps=10"), "switched")
    resumed = run_toy(tiny_config("train.capture=true", "train.steps=20"), "switched")
    whole = run_toy(tiny_config("train.capture=false"), "whole")
    assert plain["steps"] == 10 and resumed["steps"] == 20
    assert resumed["frechet"] == pytest.approx(whole["frechet"], rel=1e-3)
