"""The mixup discriminator loss: pinned against hand-written math for every term pair."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mixup_gan import (
    ADVERSARIAL_LOSSES,
    MixupDiscriminatorLoss,
    TermPair,
    erm_discriminator_loss,
    generator_loss,
    mixup_discriminator_loss,
    sample_lam,
)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def mlp_d(in_dim=2, out_shape="n1"):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(in_dim, 16), nn.ReLU(), nn.Linear(16, 1))
    return net if out_shape == "n1" else (lambda x: net(x).squeeze(1))


def batch(n=6, dim=2, seed=0):
    return torch.randn(n, dim, generator=gen(seed)), torch.randn(n, dim, generator=gen(seed + 1))


def test_bce_equals_bce_with_logits_on_soft_label():
    D = mlp_d()
    real, fake = batch()
    loss = mixup_discriminator_loss(D, real, fake, alpha=0.2, rng=gen(5))
    lam = sample_lam(0.2, 6, rng=gen(5))
    x_mixed = lam[:, None] * real + (1 - lam[:, None]) * fake
    expected = F.binary_cross_entropy_with_logits(D(x_mixed).squeeze(1), lam)
    torch.testing.assert_close(loss, expected)


@pytest.mark.parametrize("name", sorted(ADVERSARIAL_LOSSES))
def test_every_loss_matches_the_formula(name):
    terms = ADVERSARIAL_LOSSES[name]
    D = mlp_d()
    real, fake = batch()
    loss = mixup_discriminator_loss(D, real, fake, alpha=1.0, loss=name, rng=gen(7))
    lam = sample_lam(1.0, 6, rng=gen(7))
    out = D(lam[:, None] * real + (1 - lam[:, None]) * fake).squeeze(1)
    expected = (lam * terms.real_term(out) + (1 - lam) * terms.fake_term(out)).mean()
    torch.testing.assert_close(loss, expected)


def test_term_table_values():
    o = torch.tensor([-1.0, 0.0, 2.0])
    t = ADVERSARIAL_LOSSES
    torch.testing.assert_close(t["hinge"].real_term(o), torch.tensor([2.0, 1.0, 0.0]))
    torch.testing.assert_close(t["hinge"].fake_term(o), torch.tensor([0.0, 1.0, 3.0]))
    torch.testing.assert_close(t["least_squares"].real_term(o), torch.tensor([2.0, 0.5, 0.5]))
    torch.testing.assert_close(t["least_squares"].fake_term(o), torch.tensor([0.5, 0.0, 2.0]))
    torch.testing.assert_close(t["wasserstein"].real_term(o), -o)
    torch.testing.assert_close(t["bce"].real_term(o), -F.logsigmoid(o))


@pytest.mark.parametrize("name", sorted(ADVERSARIAL_LOSSES))
def test_alpha_zero_is_exactly_erm(name):
    D = mlp_d()
    real, fake = batch()
    terms = ADVERSARIAL_LOSSES[name]
    by_hand = terms.real_term(D(real)).mean() + terms.fake_term(D(fake)).mean()
    ours = mixup_discriminator_loss(D, real, fake, alpha=0.0, loss=name)
    assert torch.equal(ours, by_hand)
    assert torch.equal(erm_discriminator_loss(D, real, fake, loss=name), by_hand)


def test_lam_one_everywhere_is_the_real_term_on_reals():
    D = mlp_d()
    real, fake = batch()
    ones = lambda *a, **k: torch.ones(6)  # noqa: E731
    import mixup_gan.losses as losses

    original = losses.sample_lam
    losses.sample_lam = ones
    try:
        for name, terms in ADVERSARIAL_LOSSES.items():
            ours = mixup_discriminator_loss(D, real, fake, alpha=0.5, loss=name)
            assert torch.equal(ours, terms.real_term(D(real).squeeze(1)).mean())
    finally:
        losses.sample_lam = original


def test_no_gradient_reaches_the_generator():
    D = mlp_d()
    G = nn.Linear(3, 2)
    real = torch.randn(6, 2)
    fake = G(torch.randn(6, 3))
    for pairing in ("real-fake", "pool"):
        for erm_weight in (0.0, 1.0):
            G.zero_grad()
            loss = mixup_discriminator_loss(D, real, fake, alpha=0.2, pairing=pairing,
                                            erm_weight=erm_weight)
            loss.backward()
            assert G.weight.grad is None
            assert D[0].weight.grad is not None


@pytest.mark.parametrize("shape", ["n", "n1", "image"])
def test_output_and_input_shapes(shape):
    if shape == "image":
        torch.manual_seed(0)
        D = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 8 * 8, 1))
        real, fake = torch.randn(5, 3, 8, 8), torch.randn(5, 3, 8, 8)
    else:
        D = mlp_d(out_shape=shape)
        real, fake = batch(5)
    loss = mixup_discriminator_loss(D, real, fake, alpha=0.2, rng=gen())
    assert loss.shape == ()
    if shape == "image":  # one lam per image, broadcast over C, H, W
        lam = sample_lam(0.2, 5, rng=gen())
        mixed = lam.view(5, 1, 1, 1) * real + (1 - lam.view(5, 1, 1, 1)) * fake
        torch.testing.assert_close(loss, F.binary_cross_entropy_with_logits(D(mixed)[:, 0], lam))


def test_pool_pairing_mixes_labels_the_same_way():
    # Identity "discriminator" on 1-d data: each output is the mixed input itself, so
    # real = 1 and fake = 0 data make the output equal to the mixed target.
    D = lambda x: x[:, 0]  # noqa: E731
    real, fake = torch.ones(4, 1), torch.zeros(4, 1)
    loss, info = mixup_discriminator_loss(D, real, fake, alpha=1.0, pairing="pool",
                                          loss="least_squares", rng=gen(), return_info=True)
    # output o = target t: t (o-1)^2/2 + (1-t) o^2/2 = t(1-t)/2
    assert info["d_mixed_mean"] == info["target_mean"]
    assert float(loss) <= 0.125 + 1e-6
    assert loss > 0


def test_per_batch_lam_and_uniform_distribution():
    seen = []
    D = lambda x: (seen.append(x), x[:, 0])[1]  # noqa: E731
    real, fake = torch.ones(8, 1), torch.zeros(8, 1)
    mixup_discriminator_loss(D, real, fake, alpha=0.3, per_sample=False, distribution="uniform",
                             rng=gen())
    mixed = seen[0][:, 0]
    assert torch.all(mixed == mixed[0]) and 0 <= float(mixed[0]) <= 0.3


def test_mix_prob_zero_gives_erm_and_erm_weight_adds_it():
    D = mlp_d()
    real, fake = batch()
    erm = erm_discriminator_loss(D, real, fake)
    assert torch.equal(mixup_discriminator_loss(D, real, fake, alpha=0.2, mix_prob=0.0), erm)
    mixed_only = mixup_discriminator_loss(D, real, fake, alpha=0.2, rng=gen(1))
    both = mixup_discriminator_loss(D, real, fake, alpha=0.2, erm_weight=0.5, rng=gen(1))
    torch.testing.assert_close(both, mixed_only + 0.5 * erm)


def test_mix_prob_share_of_steps():
    D = mlp_d()
    real, fake = batch()
    g = gen(3)
    flags = [
        bool(mixup_discriminator_loss(D, real, fake, alpha=0.2, mix_prob=0.3, rng=g,
                                      return_info=True)[1]["mixed"])
        for _ in range(400)
    ]
    assert 0.23 < sum(flags) / 400 < 0.37


def test_custom_term_pair_and_module_form():
    D = mlp_d()
    real, fake = batch()
    pair = (lambda o: F.relu(1 - o), lambda o: F.relu(1 + o))
    a = mixup_discriminator_loss(D, real, fake, alpha=0.2, loss=pair, rng=gen(2))
    b = mixup_discriminator_loss(D, real, fake, alpha=0.2, loss="hinge", rng=gen(2))
    torch.testing.assert_close(a, b)
    criterion = MixupDiscriminatorLoss(alpha=0.2, loss=TermPair(*pair, name="my-hinge"),
                                       rng=gen(2))
    torch.testing.assert_close(criterion(D, real, fake), b)
    assert "my-hinge" in repr(criterion)
    with pytest.raises(TypeError, match="unknown option"):
        MixupDiscriminatorLoss(alpha=0.2, pairng="pool")


def test_generator_losses():
    o = torch.tensor([0.5, -1.0])
    torch.testing.assert_close(generator_loss(o), F.softplus(-o).mean())
    torch.testing.assert_close(
        generator_loss(o, "saturating"),
        -F.binary_cross_entropy_with_logits(o, torch.zeros(2)),
    )
    torch.testing.assert_close(generator_loss(o, "hinge"), -o.mean())
    with pytest.raises(ValueError, match="unknown generator loss"):
        generator_loss(o, "nope")


@pytest.mark.parametrize(
    ("real", "fake", "kwargs", "error", "match"),
    [
        (torch.randn(4, 2), torch.randn(5, 2), {}, ValueError, "same shape"),
        (torch.randn(4, 2), torch.randn(4, 2, dtype=torch.float64), {}, TypeError, "float64"),
        (torch.ones(4, 2, dtype=torch.long), torch.ones(4, 2, dtype=torch.long), {}, TypeError,
         "floating-point"),
        (torch.full((4, 2), float("nan")), torch.randn(4, 2), {}, ValueError, "real contains NaN"),
        (torch.randn(4, 2), torch.full((4, 2), float("inf")), {}, ValueError, "fake contains"),
        (torch.randn(0, 2), torch.randn(0, 2), {}, ValueError, "empty"),
        (torch.randn(4, 2), torch.randn(4, 2), {"alpha": -0.5}, ValueError, "alpha"),
        (torch.randn(4, 2), torch.randn(4, 2), {"alpha": float("nan")}, ValueError, "alpha"),
        (torch.randn(4, 2), torch.randn(4, 2), {"loss": "nope"}, ValueError, "unknown loss"),
        (torch.randn(4, 2), torch.randn(4, 2), {"pairing": "x"}, ValueError, "pairing"),
        (torch.randn(4, 2), torch.randn(4, 2), {"mix_prob": 2.0}, ValueError, "mix_prob"),
    ],
)
def test_bad_input(real, fake, kwargs, error, match):
    kwargs = {"alpha": 0.2, **kwargs}
    with pytest.raises(error, match=match):
        mixup_discriminator_loss(lambda x: x.sum(1), real, fake, **kwargs)


def test_nan_check_can_be_skipped():
    real = torch.full((4, 2), float("nan"))
    loss = mixup_discriminator_loss(lambda x: x.sum(1), real, torch.randn(4, 2), alpha=0.2,
                                    check_finite=False)
    assert torch.isnan(loss)


def test_discriminator_with_wrong_output_shape():
    with pytest.raises(ValueError, match="one raw output per sample"):
        mixup_discriminator_loss(lambda x: x, torch.randn(4, 2), torch.randn(4, 2), alpha=0.2)


def test_device_mismatch_is_named():
    # The meta device stands in for a second device on a CPU-only machine.
    with pytest.raises(ValueError, match="real is on cpu but fake is on meta"):
        mixup_discriminator_loss(lambda x: x.sum(1), torch.randn(4, 2),
                                 torch.randn(4, 2, device="meta"), alpha=0.2)


def test_readme_snippet_runs():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    snippet = readme.split("## Use it in your own GAN")[1].split("```python")[1].split("```")[0]
    assert len(snippet.strip().splitlines()) < 10
    namespace = {"D": mlp_d(), "G": nn.Linear(3, 2), "real": torch.randn(8, 2),
                 "z": torch.randn(8, 3), "F": F}
    exec(snippet, namespace)
    assert namespace["d_loss"].shape == () and namespace["g_loss"].shape == ()
