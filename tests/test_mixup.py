"""Primitives and classification mixup: math identities and torchvision's convention."""

import pytest
import torch
import torch.nn.functional as F

from mixup_gan import Mixup, blend, mixup_batch, mixup_criterion, sample_lam, soft_targets
from mixup_gan.mixup import mix_inputs


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("distribution", ["beta", "uniform"])
def test_sample_lam_range_shape_and_seed(distribution):
    lam = sample_lam(0.5, 1000, distribution=distribution, rng=gen(1))
    assert lam.shape == (1000,) and lam.dtype == torch.float32
    assert float(lam.min()) >= 0 and float(lam.max()) <= (1 if distribution == "beta" else 0.5)
    assert torch.equal(lam, sample_lam(0.5, 1000, distribution=distribution, rng=gen(1)))


@pytest.mark.parametrize("alpha", [1e-4, 1e-3, 0.2, 1.0, 10.0])
def test_sample_lam_follows_beta(alpha):
    # Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1)), no atom at 0.5, and for small a almost
    # all mass near 0 and 1. Catches the underflowing Gamma ratio (87% of draws exactly 0.5
    # at alpha 1e-4, 24% at 1e-3) and a lam that ignores alpha.
    stats = pytest.importorskip("scipy.stats")
    lam = sample_lam(alpha, 100_000, rng=gen(2), dtype=torch.float64)
    assert float((lam == 0.5).double().mean()) < 1e-3
    assert abs(float(lam.mean()) - 0.5) < 0.005
    assert float(lam.var()) == pytest.approx(1 / (4 * (2 * alpha + 1)), rel=0.02)
    for x in (1e-6, 0.01, 0.1, 0.3, 0.7, 0.99):
        assert float((lam < x).double().mean()) == pytest.approx(
            stats.beta(alpha, alpha).cdf(x), abs=0.005), x
    ends = float(((lam < 0.01) | (lam > 0.99)).double().mean())
    assert ends == pytest.approx(2 * stats.beta(alpha, alpha).cdf(0.01), abs=0.005)
    if alpha <= 1e-3:
        assert ends > 0.99


def test_sample_lam_per_batch_follows_beta_too():
    # one lam per call: many calls with one generator give Beta draws, not 0.5
    rng = gen(5)
    lam = torch.cat([sample_lam(1e-4, 3, per_sample=False, rng=rng)[:1] for _ in range(400)])
    assert float(((lam < 0.01) | (lam > 0.99)).float().mean()) > 0.97


def test_sample_lam_alpha_zero_and_per_batch_and_dtype():
    assert torch.equal(sample_lam(0.0, 7), torch.ones(7))
    shared = sample_lam(1.0, 9, per_sample=False, rng=gen(3))
    assert torch.all(shared == shared[0])
    half = sample_lam(1.0, 4, dtype=torch.float64, rng=gen(3))
    assert half.dtype == torch.float64


@pytest.mark.parametrize("alpha", [-0.1, float("nan"), float("inf"), 1e300, 1e-40])
def test_sample_lam_rejects_bad_alpha(alpha):
    with pytest.raises(ValueError, match="alpha"):
        sample_lam(alpha, 4)


def test_uniform_alpha_above_one_is_refused():
    with pytest.raises(ValueError, match=r"alpha 2.0 must be <= 1 with distribution 'uniform'"):
        sample_lam(2.0, 4, distribution="uniform")


def test_blend_broadcasts_and_is_exact_at_the_ends():
    a, b = torch.randn(4, 3, 5, 5, generator=gen()), torch.randn(4, 3, 5, 5, generator=gen(1))
    lam = torch.tensor([0.0, 1.0, 0.25, 0.7])
    out = blend(a, b, lam)
    assert torch.equal(out[0], b[0]) and torch.equal(out[1], a[1])
    torch.testing.assert_close(out[2], 0.25 * a[2] + 0.75 * b[2])
    torch.testing.assert_close(out[3], 0.7 * a[3] + 0.3 * b[3])
    torch.testing.assert_close(blend(a, b, 0.3), 0.3 * a + 0.7 * b)
    with pytest.raises(ValueError, match="3 values for a batch of 4"):
        blend(a, b, torch.rand(3))


def test_soft_targets_sum_to_one_and_smoothing_applied_once():
    y = torch.tensor([0, 2, 1, 2, 0])
    x = torch.randn(5, 3, generator=gen())
    for smoothing in (0.0, 0.1):
        _, soft = mixup_batch(x, y, alpha=1.0, num_classes=3, label_smoothing=smoothing,
                              per_sample=True, rng=gen(4))
        torch.testing.assert_close(soft.sum(1), torch.ones(5))
        assert float(soft.min()) >= smoothing / 3 - 1e-7
    smoothed = soft_targets(y, 3, label_smoothing=0.3)
    torch.testing.assert_close(smoothed[0], torch.tensor([0.8, 0.1, 0.1]))


@pytest.mark.parametrize("per_sample", [False, True])
def test_soft_target_cross_entropy_equals_criterion_form(per_sample):
    x = torch.randn(7, 4, generator=gen())  # odd batch size
    y = torch.randint(0, 5, (7,), generator=gen(1))
    x_mixed, perm, lam = mix_inputs(x, alpha=0.4, per_sample=per_sample, rng=gen(2))
    x_again, soft = mixup_batch(x, y, alpha=0.4, num_classes=5, per_sample=per_sample,
                                rng=gen(2))
    assert torch.equal(x_mixed, x_again)
    logits = torch.randn(7, 5, generator=gen(3))
    soft_loss = F.cross_entropy(logits, soft)
    reduction = "none" if per_sample else "mean"
    pair_loss = mixup_criterion(
        lambda o, t: F.cross_entropy(o, t, reduction=reduction), logits, y, y[perm], lam
    )
    torch.testing.assert_close(soft_loss, pair_loss)


def test_criterion_form_refuses_scalar_loss_with_per_sample_lam():
    logits, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    with pytest.raises(ValueError, match="reduction='none'"):
        mixup_criterion(F.cross_entropy, logits, y, y.flip(0), torch.tensor([0.1, 0.5, 0.9, 0.3]))


def test_matches_torchvision_mixup_convention():
    # torchvision's MixUp pairs each sample with its neighbour (roll by 1) and weights the
    # original by lam; with that permutation and a fixed lam ours is identical.
    from torchvision.transforms import v2

    x = torch.rand(5, 3, 8, 8, generator=gen())
    y = torch.tensor([0, 3, 1, 2, 3])
    tv = v2.MixUp(alpha=1.0, num_classes=4)
    tv._dist.sample = lambda shape=(): torch.tensor(0.3)
    x_tv, y_tv = tv(x.clone(), y.clone())
    roll = torch.arange(5).roll(1)
    x_ours, y_ours = mixup_batch(x, y, alpha=1.0, num_classes=4, lam=0.3, perm=roll)
    torch.testing.assert_close(x_ours, x_tv)
    torch.testing.assert_close(y_ours, y_tv)


def test_probability_labels_and_no_in_place_change():
    x = torch.randn(6, 2, generator=gen())
    y = torch.softmax(torch.randn(6, 3, generator=gen(1)), dim=1)
    x0, y0 = x.clone(), y.clone()
    x_mixed, soft = mixup_batch(x, y, alpha=1.0, lam=0.25, perm=torch.arange(6).flip(0))
    assert torch.equal(x, x0) and torch.equal(y, y0)
    torch.testing.assert_close(soft, 0.25 * y + 0.75 * y.flip(0))
    torch.testing.assert_close(x_mixed, 0.25 * x + 0.75 * x.flip(0))


def test_collate_form_in_a_dataloader():
    data = torch.utils.data.TensorDataset(torch.randn(9, 2), torch.randint(0, 3, (9,)))
    mix = Mixup(alpha=1.0, num_classes=3, rng=gen())
    batches = list(torch.utils.data.DataLoader(data, batch_size=4, collate_fn=mix.collate))
    assert [b[0].shape[0] for b in batches] == [4, 4, 1]
    for _, soft in batches:
        assert soft.shape[1] == 3
        torch.testing.assert_close(soft.sum(1), torch.ones(soft.shape[0]))


@pytest.mark.parametrize(
    ("x", "y", "kwargs", "match"),
    [
        (torch.randn(3, 2), torch.tensor([0, 1, 5]), {"num_classes": 3}, "label 5 is out of range"),
        (torch.randn(3, 2), torch.tensor([0, 1, 2]), {}, "num_classes is required"),
        (torch.randn(0, 2), torch.zeros(0, dtype=torch.long), {"num_classes": 3}, "empty"),
        (torch.tensor([[1.0, float("nan")]]), torch.tensor([0]), {"num_classes": 3}, "NaN"),
        (torch.randn(3, 2), torch.tensor([0, 1, 2]), {"num_classes": 3, "alpha": -1}, "alpha"),
        (torch.randn(3, 2), torch.tensor([0, 1]), {"num_classes": 3}, "3 samples but y has 2"),
    ],
)
def test_bad_classification_input(x, y, kwargs, match):
    kwargs = {"alpha": 1.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        mixup_batch(x, y, **kwargs)


def test_integer_inputs_refused():
    with pytest.raises(TypeError, match="floating-point"):
        mixup_batch(torch.ones(3, 2, dtype=torch.long), torch.tensor([0, 1, 2]), alpha=1.0,
                    num_classes=3)


def test_cutmix_pastes_one_box_and_targets_use_the_kept_share():
    x = torch.zeros(4, 1, 10, 10)
    x[1] = 1.0  # only image 1 is ones, and perm pairs image 0 with image 1
    y = torch.tensor([0, 1, 2, 3])
    perm = torch.tensor([1, 0, 3, 2])
    mixed, soft = mixup_batch(x, y, alpha=1.0, num_classes=4, mode="cutmix", lam=0.75,
                              perm=perm, rng=gen(0))
    kept = 1 - float(mixed[0].mean())  # image 0 received a box of ones from image 1
    assert 0 < kept < 1
    torch.testing.assert_close(soft[0], torch.tensor([kept, 1 - kept, 0.0, 0.0]))
    # the box of image 1 came from image 0 (zeros), the same box
    torch.testing.assert_close(1 - mixed[1], mixed[0])
    assert torch.equal(x[2], torch.zeros(1, 10, 10))  # input untouched


def test_cutmix_refuses_per_sample_lam_and_flat_inputs():
    with pytest.raises(ValueError, match="per_sample=True does not go with mode='cutmix'"):
        mixup_batch(torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 0, 1]), alpha=1.0,
                    num_classes=2, mode="cutmix", per_sample=True)
    with pytest.raises(ValueError, match="cutmix needs images"):
        mixup_batch(torch.randn(4, 8), torch.tensor([0, 1, 0, 1]), alpha=1.0, num_classes=2,
                    mode="cutmix")


def test_generator_is_a_deprecated_alias_of_rng():
    from mixup_gan import MixupDiscriminatorLoss, mixup_discriminator_loss

    with pytest.warns(DeprecationWarning, match="pass rng="):
        old = sample_lam(0.2, 5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(old, sample_lam(0.2, 5, rng=torch.Generator().manual_seed(0)))
    with pytest.raises(TypeError, match="rng= only"):
        sample_lam(0.2, 5, rng=torch.Generator(), generator=torch.Generator())
    real, fake = torch.randn(4, 2), torch.randn(4, 2)
    with pytest.warns(DeprecationWarning):
        a = mixup_discriminator_loss(lambda x: x.sum(1), real, fake, alpha=0.2,
                                     generator=torch.Generator().manual_seed(1))
    b = mixup_discriminator_loss(lambda x: x.sum(1), real, fake, alpha=0.2,
                                 rng=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    with pytest.warns(DeprecationWarning):
        MixupDiscriminatorLoss(alpha=0.2, generator=torch.Generator())
