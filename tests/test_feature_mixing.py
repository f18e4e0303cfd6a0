"""Mixing in D's feature space (`loss.mix_layer: k`): real and fake are mixed after D's k-th
hidden layer instead of at its inputs, against the same soft target lam, and the penalty is
paid at those features. Checked against a recomputation written here from D's layers.

Broken variants these tests catch (each tried by hand): the option ignored (inputs mixed);
the fake features detached (D's first layers learn from real rows only); the penalty of the
plain rows reached through the mixed rows too (no node of their own); members of a
population mixed at different layers; a layer past D's depth, or on an image run, accepted;
D's last hidden layer (model.depth) refused; the split one layer off (features after k + 1).
"""

import copy

import pytest
import torch
import torch.nn.functional as F
import yaml

from mixup_gan.gan_config import LossConfig
from mixup_gan.member_losses import DATA
from mixup_gan.toy.config import ToyModelConfig, ToyTrainConfig
from mixup_gan.toy.data import grid, ring
from mixup_gan.toy.nets import ToyDiscriminator
from mixup_gan.toy.runner import build_toy_trainer
from mixup_gan.toy.sweep import SweepConfig, expand, populations

MODEL = ToyModelConfig(latent_dim=2, hidden=16, depth=3)


def by_hand(D, x, start, stop):
    """D's layers `start` to `stop` - 1 from their weights: x @ W + b, ReLU after every
    hidden layer, the logit squeezed; written apart from StackedMLP.run."""
    layers = list(D.layers)
    for i in range(start, stop):
        x = x @ layers[i].weight + layers[i].bias
        if i < len(layers) - 1:
            x = torch.relu(x)
    return x.squeeze(-1) if stop == len(layers) else x


def build(losses, device, seeds=None, dists=None):
    train = ToyTrainConfig(steps=10, batch_size=12, n_dis=1, capture=False)
    seeds = list(range(len(losses))) if seeds is None else seeds
    dists = dists or [ring(), grid()][:len(losses)]
    return build_toy_trainer(MODEL, train, losses, dists, seeds, torch.device(device))


@pytest.mark.parametrize("members", [1, 3])
def test_the_toy_d_splits_after_its_kth_hidden_layer(members, device):
    D = ToyDiscriminator(8, 3, members=members, seeds=range(members)).to(device)
    x = torch.randn(members, 5, 2, device=device)
    for k in range(4):
        h = D.features(x, k)
        assert h.shape == ((members, 5, 2) if k == 0 else (members, 5, 8)), k
        torch.testing.assert_close(h, by_hand(D, x, 0, k), msg=f"features after {k}")
        torch.testing.assert_close(D.head(h, k), by_hand(D, h, k, 4), msg=f"head after {k}")
        torch.testing.assert_close(D.head(h, k), D(x))
    if members == 1:
        torch.testing.assert_close(D.features(x[0], 1), by_hand(D, x, 0, 1)[0])


@pytest.mark.parametrize("layer", [1, 2])
def test_a_d_step_pays_the_mixup_loss_and_penalty_at_d_features(layer, device):
    # By hand: h = D's first `layer` layers on the real and the fake batch; the mixed rows
    # lam * h_real + (1 - lam) * h_fake scored by the rest of D against target lam, the
    # plain rows at weight erm_weight; the penalty g/2 * |gradient of the rest of D at each
    # row|^2, each part's rows differentiated through their own scoring only.
    g, erm = 0.7, 0.5
    t = build([LossConfig(alpha=0.4, mix_layer=layer, gradient_penalty=g, erm_weight=erm)],
              device)
    step = t.gan_step
    D0 = copy.deepcopy(step.D)
    real = step.real_data(step.rng, DATA, 12)
    with torch.no_grad():
        fake = step.G(step.latents(0))
    lam = step.losses.parts(step.rng, 0, real, fake)[0].lam  # the draws do not see features
    h_real, h_fake = by_hand(D0, real, 0, layer), by_hand(D0, fake, 0, layer)
    mixed = lam[..., None] * h_real + (1 - lam[..., None]) * h_fake
    loss = penalty = 0
    for h, target, weight in ((mixed, lam, 1.0), (h_real, torch.ones_like(lam), erm),
                              (h_fake, torch.zeros_like(lam), erm)):
        o = by_hand(D0, h, layer, len(D0.layers))
        (grad,) = torch.autograd.grad(o.sum(), h, create_graph=True)
        loss = loss + weight * (target * F.softplus(-o) + (1 - target) * F.softplus(o)).mean(1)
        penalty = penalty + weight * grad.square().sum(-1).mean(1)
    penalty = g / 2 * penalty
    expected = torch.autograd.grad((loss + penalty).sum(), list(D0.parameters()))

    stats = step.d_step(0, 0)
    torch.testing.assert_close(stats["d_loss"], loss.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(stats["penalty"][0], penalty.detach(), rtol=1e-5, atol=1e-6)
    for (name, p), want in zip(step.D.named_parameters(), expected, strict=True):
        torch.testing.assert_close(p.grad, want, rtol=1e-4, atol=1e-6, msg=name)


def test_a_population_member_mixing_features_is_its_run_of_one(device):
    settings = [LossConfig(alpha=0.2, mix_layer=2, gradient_penalty=0.1),
                LossConfig(alpha=1.0, mix_layer=2, name="hinge")]
    population = build(settings, device, seeds=[3, 4])
    for _ in range(3):
        population.train_step()
        population.step += 1
    for k, (loss, seed, dist) in enumerate(zip(settings, [3, 4], [ring(), grid()],
                                               strict=True)):
        alone = build([loss], device, seeds=[seed], dists=[dist])
        for _ in range(3):
            alone.train_step()
            alone.step += 1
        for (name, p), q in zip(alone.D.named_parameters(), population.D.parameters(),
                                strict=True):
            torch.testing.assert_close(p[0], q[k], rtol=1e-5, atol=1e-6, msg=name)


def test_members_mixing_at_different_layers_cannot_share_a_population(device):
    with pytest.raises(ValueError, match=r"share loss.mix_layer, got \[0, 1\]"):
        build([LossConfig(alpha=0.2), LossConfig(alpha=0.2, mix_layer=1)], device)


def test_mix_layer_0_is_input_space_mixup_and_the_last_hidden_layer_trains(device):
    # Layer 0 by hand: the points mixed, D on the mixed and plain rows, softplus BCE
    # against lam, the penalty at the points.
    g = 0.3
    t = build([LossConfig(alpha=0.2, gradient_penalty=g, mix_layer=0)], device)
    step = t.gan_step
    D0 = copy.deepcopy(step.D)
    real = step.real_data(step.rng, DATA, 12)
    with torch.no_grad():
        fake = step.G(step.latents(0))
    lam = step.losses.parts(step.rng, 0, real, fake)[0].lam
    mixed = (lam[..., None] * real + (1 - lam[..., None]) * fake).requires_grad_(True)
    o = by_hand(D0, mixed, 0, len(D0.layers))
    (grad,) = torch.autograd.grad(o.sum(), mixed)
    loss = (lam * F.softplus(-o) + (1 - lam) * F.softplus(o)).mean(1)
    stats = step.d_step(0, 0)
    torch.testing.assert_close(stats["d_loss"], loss.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(stats["penalty"][0], g / 2 * grad.square().sum(-1).mean(1),
                               rtol=1e-5, atol=1e-6)
    # the deepest allowed layer, model.depth, trains and moves D
    last = build([LossConfig(alpha=0.2, mix_layer=MODEL.depth)], device)
    before = [p.detach().clone() for p in last.D.parameters()]
    for _ in range(2):
        last.train_step()
        last.step += 1
    assert all(torch.isfinite(p).all() for p in last.D.parameters())
    assert not any(torch.equal(a, b) for a, b in zip(before, last.D.parameters(), strict=True))


@pytest.mark.parametrize("kind, setting, message", [
    ("toy", "loss.mix_layer=4", "loss.mix_layer: 4 is past D's last hidden layer (model.depth 3)"),
    ("toy", "loss.mix_layer=-1", "loss.mix_layer: -1 must be >="),
    ("toy", "loss.mix_layer=one", "loss.mix_layer: expected int, got 'one'"),
    ("image", "loss.mix_layer=1", "loss.mix_layer: 1: mixing D's hidden features needs the toy"),
])
def test_a_bad_mix_layer_exits_2_naming_the_key(kind, setting, message, tmp_path, capsys):
    from mixup_gan.cli import main
    config = {"toy": {"train": {"steps": 2}},
              "image": {"data": {"name": "digits"}, "train": {"steps": 2}}}[kind]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main([kind, "-c", str(path), "--set", setting, "--set",
                 f"output.dir={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not any(tmp_path.glob("*/checkpoint.pt"))


@pytest.mark.parametrize("depth", [1, 3])
def test_mixing_after_d_s_last_hidden_layer_runs_from_the_cli(depth, tmp_path):
    from mixup_gan.cli import main
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"train": {"steps": 2, "batch_size": 8},
                                    "model": {"hidden": 8, "depth": depth},
                                    "eval": {"every": 2, "n_samples": 64}}))
    assert main(["toy", "-c", str(path), "--set", f"loss.mix_layer={depth}", "--set",
                 f"output.dir={tmp_path}", "--no-progress"]) == 0
    assert len(list(tmp_path.glob("*/checkpoint.pt"))) == 1


def test_a_sweep_puts_each_mix_layer_in_its_own_population():
    sweep = SweepConfig(grid={"loss.mix_layer": [0, 1, 2], "loss.alpha": [0.2, 1.0]},
                        seeds=[0, 1], population=10)
    groups = populations(expand(sweep, "test"), sweep.population)
    assert sorted(len(g) for g in groups) == [4, 4, 4]
    assert all(len({r.config.loss.mix_layer for r in g}) == 1 for g in groups)
