"""Mixing in D's feature space (`loss.mix_layer: k`): real and fake are mixed after D's k-th
hidden layer instead of at its inputs, against the same soft target lam, and the penalty is
paid at those features. Checked against a recomputation written here from D's layers.

Broken variants these tests catch (each tried by hand): the option ignored (inputs mixed);
the fake features detached (D's first layers learn from real rows only); the penalty of the
plain rows reached through the mixed rows too (no node of their own); members of a
population mixed at different layers; a layer past D's depth, or on an image run, accepted.
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


def build(losses, device, seeds=None, dists=None):
    train = ToyTrainConfig(steps=10, batch_size=12, n_dis=1, capture=False)
    seeds = list(range(len(losses))) if seeds is None else seeds
    dists = dists or [ring(), grid()][:len(losses)]
    return build_toy_trainer(MODEL, train, losses, dists, seeds, torch.device(device))


@pytest.mark.parametrize("members", [1, 3])
def test_the_toy_d_is_its_head_after_its_features_at_every_layer(members, device):
    D = ToyDiscriminator(8, 3, members=members, seeds=range(members)).to(device)
    x = torch.randn(members, 5, 2, device=device)
    for k in range(4):
        assert torch.equal(D.head(D.features(x, k), k), D(x)), k
    assert D.features(x, 2).shape == (members, 5, 8)
    if members == 1:
        assert torch.equal(D.head(D.features(x[0], 1), 1), D(x[0]))


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
    h_real, h_fake = D0.features(real, layer), D0.features(fake, layer)
    mixed = lam[..., None] * h_real + (1 - lam[..., None]) * h_fake
    loss = penalty = 0
    for h, target, weight in ((mixed, lam, 1.0), (h_real, torch.ones_like(lam), erm),
                              (h_fake, torch.zeros_like(lam), erm)):
        o = D0.head(h, layer)
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


def test_mixing_inputs_is_layer_zero_exactly(device):
    a = build([LossConfig(alpha=0.2, gradient_penalty=0.1)], device)
    b = build([LossConfig(alpha=0.2, gradient_penalty=0.1, mix_layer=0)], device)
    c = build([LossConfig(alpha=0.2, gradient_penalty=0.1, mix_layer=1)], device)
    stats = [t.gan_step.d_step(0, 0)["d_loss"] for t in (a, b, c)]
    assert torch.equal(stats[0], stats[1])
    assert not torch.equal(stats[0], stats[2])


@pytest.mark.parametrize("kind, setting, message", [
    ("toy", "loss.mix_layer=4", "loss.mix_layer: 4 is past D's last hidden layer (model.depth 3)"),
    ("toy", "loss.mix_layer=-1", "loss.mix_layer: -1 must be >="),
    ("toy", "loss.mix_layer=one", "loss.mix_layer"),
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


def test_a_sweep_puts_each_mix_layer_in_its_own_population():
    sweep = SweepConfig(grid={"loss.mix_layer": [0, 1, 2], "loss.alpha": [0.2, 1.0]},
                        seeds=[0, 1], population=10)
    groups = populations(expand(sweep, "test"), sweep.population)
    assert sorted(len(g) for g in groups) == [4, 4, 4]
    assert all(len({r.config.loss.mix_layer for r in g}) == 1 for g in groups)
