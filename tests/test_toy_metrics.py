"""Toy metrics pinned on hand-made point sets."""

import math
from pathlib import Path

import pytest
import torch

from mixup_gan.toy.data import grid, read_points, ring, swissroll
from mixup_gan.toy.metrics import METRICS, Metric, curve_metrics, evaluate, frechet_2d, mode_metrics

RING = ring()


def test_all_points_on_one_mode():
    m = mode_metrics(RING.centers[[3]].repeat(100, 1), RING.centers, RING.std)
    assert m["modes"] == 1 and m["hq_share"] == 1.0
    assert m["reverse_kl"] == pytest.approx(math.log(8))


def test_perfect_samples():
    m = mode_metrics(RING.centers.repeat(50, 1), RING.centers, RING.std)
    assert m == {"modes": 8, "hq_share": 1.0, "reverse_kl": pytest.approx(0.0, abs=1e-12)}


def test_two_modes_and_far_points():
    on_two = RING.centers[[0, 1]].repeat(10, 1)
    far = torch.full((20, 2), 5.0)
    m = mode_metrics(torch.cat([on_two, far]), RING.centers, RING.std)
    assert m["modes"] == 2 and m["hq_share"] == 0.5
    assert m["reverse_kl"] == pytest.approx(math.log(4))


def test_three_std_boundary():
    c = RING.centers[0]
    inside = c + torch.tensor([2.9 * RING.std, 0.0])
    outside = c + torch.tensor([0.0, 3.1 * RING.std])
    m = mode_metrics(torch.stack([inside, outside]), RING.centers, RING.std)
    assert m["hq_share"] == 0.5 and m["modes"] == 1


def test_no_high_quality_samples_gives_nan_reverse_kl():
    m = mode_metrics(torch.zeros(10, 2), RING.centers, RING.std)
    assert m["modes"] == 0 and m["hq_share"] == 0.0 and math.isnan(m["reverse_kl"])


def test_true_samples_score_as_expected():
    g = grid()
    samples = g.sample(20000, torch.Generator().manual_seed(0))
    m = mode_metrics(samples, g.centers, g.std)
    assert m["modes"] == 25
    # P(|noise| <= 3 std) for a 2D isotropic Gaussian is 1 - exp(-9/2).
    assert m["hq_share"] == pytest.approx(1 - math.exp(-4.5), abs=3e-3)
    assert m["reverse_kl"] < 2e-3


def test_frechet_2d():
    x = torch.randn(1000, 2, generator=torch.Generator().manual_seed(0))
    assert frechet_2d(x, x) == pytest.approx(0.0, abs=1e-9)
    # Same covariance, mean shifted by (0.3, -0.4): distance = |shift|^2 = 0.25.
    assert frechet_2d(x + torch.tensor([0.3, -0.4]), x) == pytest.approx(0.25, abs=1e-6)
    # Scaled by 2 around the same mean: tr(S) + tr(4S) - 2 tr(2S) = tr(S).
    centred = x - x.mean(0)
    expected = float(torch.cov(centred.T.double()).trace())
    assert frechet_2d(2 * centred, centred) == pytest.approx(expected, rel=1e-6)


ROLL = swissroll()


def test_curve_metrics_by_hand():
    """Curve points (0,0), (1,0), (2,0), std 0.1 (radius 0.3): of the samples, only (0, 0.25)
    is near a curve point, and only (0,0) has a sample within 0.3; the chunking changes
    nothing."""
    curve = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    samples = torch.tensor([[0.0, 0.25], [1.0, 0.35], [5.0, 5.0]])
    for chunk in (1, 2, 1024):
        m = curve_metrics(samples, curve, 0.1, chunk=chunk)
        assert m == {"near_curve": pytest.approx(1 / 3), "curve_covered": pytest.approx(1 / 3)}
    # the threshold is the radius in std: at 2 std (0.2) nothing is near; at 4 (0.4), (1, 0.35)
    # is near (1, 0) too, which (0, 0.25) is not: 2 of 3 samples, 2 of 3 curve points
    assert curve_metrics(samples, curve, 0.1, threshold=2.0) == {
        "near_curve": 0.0, "curve_covered": 0.0}
    assert curve_metrics(samples, curve, 0.1, threshold=4.0) == {
        "near_curve": pytest.approx(2 / 3), "curve_covered": pytest.approx(2 / 3)}


def test_true_swiss_roll_samples_are_near_and_cover_the_curve():
    samples = ROLL.sample(20000, torch.Generator().manual_seed(0))
    m = curve_metrics(samples, ROLL.curve, ROLL.std)
    # The curve is nearly straight at the noise's scale: the distance to it is about a 1D
    # normal's |N(0, std)|, within 3 std 99.73% of the time (2D noise reaches further: 98.9%).
    assert m["near_curve"] == pytest.approx(0.9973, abs=1.5e-3)
    assert m["curve_covered"] == 1.0
    shipped = read_points(Path(__file__).resolve().parents[1] / "toy_data" / "swissroll.csv")
    m = curve_metrics(shipped, ROLL.curve, ROLL.std)  # the reference runs are judged against
    assert m["near_curve"] > 0.99 and m["curve_covered"] == 1.0


def test_collapse_and_half_a_roll_read_in_the_covered_share():
    on_curve = ROLL.curve[: len(ROLL.curve) // 2]  # the inner half of the roll, noiseless
    half = curve_metrics(on_curve, ROLL.curve, ROLL.std)
    assert half["near_curve"] == 1.0 and 0.5 <= half["curve_covered"] < 0.52
    collapsed = curve_metrics(ROLL.curve[[1000]].repeat(500, 1), ROLL.curve, ROLL.std)
    assert collapsed["near_curve"] == 1.0 and collapsed["curve_covered"] < 0.03
    off = curve_metrics(ROLL.curve + torch.tensor([0.0, 4.0]), ROLL.curve, ROLL.std)
    assert off == {"near_curve": 0.0, "curve_covered": 0.0}


def test_evaluate_gives_each_dataset_the_metrics_that_apply():
    g = torch.Generator().manual_seed(1)
    on_roll = evaluate(ROLL.sample(300, g), ROLL, ROLL.sample(300, g))
    assert set(on_roll) == {"frechet", "near_curve", "curve_covered"}
    on_ring = evaluate(RING.sample(300, g), RING, RING.sample(300, g))
    assert set(on_ring) == {"modes", "hq_share", "reverse_kl", "frechet"}
    with pytest.raises(ValueError, match="needs is"):
        Metric("x", "x", "higher", lambda j: 0.0, needs="mode")
    assert [m.name for m in METRICS.values() if m.needs == "curve"] == [
        "near_curve", "curve_covered"]
