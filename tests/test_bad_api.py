"""Hostile use of the Python API: every bad argument is one ValueError (out of range) or
TypeError (wrong kind) whose message names the argument and shows the value, raised where the
mistake is made (a `Mixup` checks its options at construction). Real numbers of every kind
(numpy scalars, 0-d tensors) are accepted and give the same numbers as Python floats."""

import math

import numpy as np
import pytest
import torch

from mixup_gan import Mixup, MixupDiscriminatorLoss, mixup_batch, mixup_criterion, sample_lam
from mixup_gan.arguments import check_alpha
from mixup_gan.classify.config import ClassifyConfig
from mixup_gan.config import ConfigError, load_config
from mixup_gan.mixup import mix_inputs
from mixup_gan.mixup_options import alpha_problem
from mixup_gan.toy.config import ToyConfig

X = torch.randn(4, 3, 8, 8)
Y = torch.tensor([0, 1, 2, 0])
PROBS = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.25, 0.75]])


def lam_of(**kwargs):
    return lambda: sample_lam(**{"alpha": 0.2, "n": 4, **kwargs})


def batch(**kwargs):
    return lambda: mixup_batch(**{"x": X, "y": Y, "alpha": 1.0, "num_classes": 3, **kwargs})


def triples():
    samples = [(torch.zeros(3, 4, 4), 0, "extra")] * 2
    return lambda: Mixup(1.0, 3).collate(samples)


# (id, call, exception type, words the message must hold: the argument, then the value)
CASES = [
    ("alpha 1e300", lam_of(alpha=1e300), ValueError, ["alpha", "1e+300"]),
    ("alpha past the float range", lam_of(alpha=10**400), ValueError, ["alpha", "finite"]),
    ("alpha -inf", lam_of(alpha=-math.inf), ValueError, ["alpha", "-inf"]),
    ("alpha denormal", lam_of(alpha=1e-320), ValueError, ["alpha", "1e-320"]),
    ("alpha string", lam_of(alpha="0.2"), TypeError, ["alpha", "'0.2'"]),
    ("alpha bool", lam_of(alpha=True), TypeError, ["alpha", "True"]),
    ("alpha None", lam_of(alpha=None), TypeError, ["alpha", "None"]),
    ("alpha complex", lam_of(alpha=0.2 + 0j), TypeError, ["alpha", "complex"]),
    ("alpha vector", lam_of(alpha=torch.tensor([0.2, 0.3])), TypeError, ["alpha", "(2,)"]),
    ("alpha numpy bool", lam_of(alpha=np.bool_(True)), TypeError, ["alpha", "True"]),
    ("uniform alpha 1.5", lam_of(alpha=1.5, distribution="uniform"), ValueError,
     ["alpha", "1.5", "uniform"]),
    ("distribution unknown", lam_of(distribution="normal"), ValueError,
     ["distribution", "'normal'"]),
    ("distribution list", lam_of(distribution=["beta"]), ValueError, ["distribution", "['beta']"]),
    ("n float", lam_of(n=2.5), TypeError, ["n", "2.5"]),
    ("n string", lam_of(n="4"), TypeError, ["n", "'4'"]),
    ("n negative", lam_of(n=-1), ValueError, ["n", "-1"]),
    ("rng int", lam_of(rng=0), TypeError, ["rng", "0 (int)"]),
    ("rng numpy", lam_of(rng=np.random.default_rng(0)), TypeError, ["rng", "Generator"]),
    ("per_sample string", lam_of(per_sample="yes"), TypeError, ["per_sample", "'yes'"]),
    ("per_sample int", lam_of(per_sample=1), TypeError, ["per_sample", "1"]),
    ("dtype int", lam_of(dtype=torch.int64), TypeError, ["dtype", "int64"]),
    ("dtype string", lam_of(dtype="float32"), TypeError, ["dtype", "'float32'"]),
    ("device unknown", lam_of(device="gpu"), ValueError, ["device", "'gpu'"]),
    ("lam 2", batch(lam=2.0), ValueError, ["lam", "2"]),
    ("lam negative", batch(lam=-0.1), ValueError, ["lam", "-0.1"]),
    ("lam nan", batch(lam=math.nan), ValueError, ["lam", "nan"]),
    ("lam string", batch(lam="0.5"), TypeError, ["lam", "'0.5'"]),
    ("lam one bad row", batch(lam=torch.tensor([0.2, 1.3, 0.5, 0.5])), ValueError,
     ["lam", "1.3"]),
    ("lam wrong length", batch(lam=torch.rand(3)), ValueError, ["lam", "(3,)", "batch of 4"]),
    ("cutmix lam 1.5", batch(mode="cutmix", lam=1.5), ValueError, ["lam", "1.5"]),
    ("cutmix lam per sample", batch(mode="cutmix", lam=torch.tensor([0.2, 0.3, 0.4, 0.5])),
     ValueError, ["lam", "one lam per batch"]),
    ("perm out of range", batch(perm=torch.tensor([0, 1, 2, 9])), ValueError, ["perm", "9"]),
    ("perm float", batch(perm=torch.tensor([0.0, 1.0, 2.0, 3.0])), ValueError,
     ["perm", "float32"]),
    ("perm short", batch(perm=torch.tensor([1, 0])), ValueError, ["perm", "(2,)"]),
    ("probabilities negative", batch(y=PROBS * torch.tensor([-1.0, 2.0]), num_classes=None),
     ValueError, ["probability labels y", "-1"]),
    ("probabilities are logits", batch(y=PROBS * 3, num_classes=None), ValueError,
     ["probability labels y", "sums to 3"]),
    ("probabilities nan", batch(y=PROBS.flip(0).clone().fill_(math.nan), num_classes=None),
     ValueError, ["probability labels y", "nan"]),
    ("labels a list", batch(y=[0, 1, 2, 0]), TypeError, ["labels y", "list"]),
    ("labels bool", batch(y=torch.tensor([True, False, True, False])), ValueError,
     ["labels", "torch.bool"]),
    ("x a list", batch(x=[[0.0, 1.0]] * 4), TypeError, ["x", "list"]),
    ("label_smoothing 1", batch(label_smoothing=1.0), ValueError, ["label_smoothing", "1.0"]),
    ("label_smoothing string", batch(label_smoothing="0.1"), TypeError,
     ["label_smoothing", "'0.1'"]),
    ("num_classes float", batch(num_classes=3.0), TypeError, ["num_classes", "3.0"]),
    ("num_classes bool", batch(num_classes=True), TypeError, ["num_classes", "True"]),
    ("mode misspelt", batch(mode="CutMix"), ValueError, ["mode", "'CutMix'"]),
    ("check_finite string", batch(check_finite="no"), TypeError, ["check_finite", "'no'"]),
    ("mix_inputs rng string", lambda: mix_inputs(X, alpha=0.2, rng="seed"), TypeError,
     ["rng", "'seed'"]),
    ("criterion lam 1.5", lambda: mixup_criterion(torch.nn.functional.cross_entropy,
                                                  torch.randn(4, 3), Y, Y, 1.5), ValueError,
     ["lam", "1.5"]),
    ("Mixup label_smoothing 2", lambda: Mixup(label_smoothing=2), ValueError,
     ["label_smoothing", "2"]),
    ("Mixup num_classes 0", lambda: Mixup(num_classes=0), ValueError, ["num_classes", "0"]),
    ("Mixup cutmix per_sample", lambda: Mixup(mode="cutmix", per_sample=True), ValueError,
     ["per_sample", "cutmix"]),
    ("Mixup alpha string", lambda: Mixup(alpha="1"), TypeError, ["alpha", "'1'"]),
    ("Mixup alpha 1e300", lambda: Mixup(alpha=1e300), ValueError, ["alpha", "1e+300"]),
    ("Mixup rng int", lambda: Mixup(rng=42), TypeError, ["rng", "42"]),
    ("Mixup distribution", lambda: Mixup(distribution="gauss"), ValueError,
     ["distribution", "'gauss'"]),
    ("Mixup mode", lambda: Mixup(mode="mix"), ValueError, ["mode", "'mix'"]),
    ("collate triples", triples(), TypeError, ["(x, y) samples", "3 fields"]),
    ("collate nothing", lambda: Mixup(1.0, 3).collate([]), TypeError,
     ["(x, y) samples", "no samples"]),
    ("collate tensors", lambda: Mixup(1.0, 3).collate([torch.zeros(2)] * 2), TypeError,
     ["(x, y) samples", "Tensor"]),
    ("D loss alpha 1e300", lambda: MixupDiscriminatorLoss(alpha=1e300), ValueError,
     ["alpha", "1e+300"]),
]


@pytest.mark.parametrize(("call", "error", "words"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_argument_is_named(call, error, words):
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    for word in words:
        assert word in message, (word, message)
    assert "\n" not in message


@pytest.mark.parametrize("alpha", [0.25, np.float32(0.25), np.float64(0.25), torch.tensor(0.25),
                                   torch.tensor(0.25, dtype=torch.float64)],
                         ids=["float", "np.float32", "np.float64", "tensor", "tensor64"])
def test_real_numbers_of_every_kind_are_one_alpha(alpha):
    # the same numbers as the Python float (0.25 is exact in every dtype)
    expected = sample_lam(0.25, 6, rng=torch.Generator().manual_seed(0))
    assert torch.equal(sample_lam(alpha, 6, rng=torch.Generator().manual_seed(0)), expected)
    mix = Mixup(alpha, np.int64(3))
    assert mix.alpha == 0.25 and type(mix.alpha) is float and mix.num_classes == 3
    assert torch.equal(sample_lam(1, 6, rng=torch.Generator().manual_seed(0)),
                       sample_lam(1.0, 6, rng=torch.Generator().manual_seed(0)))


def test_good_probability_labels_within_tolerance_pass():
    # float16 softmax rows do not sum to 1 exactly; they are probabilities all the same
    y = torch.softmax(torch.randn(4, 10, generator=torch.Generator().manual_seed(0)), 1).half()
    _, soft = mixup_batch(X, y, alpha=1.0, lam=0.5, perm=torch.tensor([1, 0, 3, 2]))
    torch.testing.assert_close(soft.sum(1), torch.ones(4), atol=2e-3, rtol=0)


ALPHAS = [0.0, 1e-31, 1e-30, 1e-4, 0.2, 1.0, 1.5, 10.0, 1e6, 1.5e6, 1e300, math.inf, -0.0,
          -1e-9, math.nan]


@pytest.mark.parametrize("distribution", ["beta", "uniform"])
def test_the_api_and_the_configs_share_one_alpha_rule(distribution):
    # `alpha_problem` (configs) and `check_alpha` (the API) accept exactly the same alphas;
    # a rule changed in one place only fails here
    for alpha in ALPHAS:
        try:
            check_alpha(alpha, distribution)
            api_ok = True
        except ValueError:
            api_ok = False
        problem = alpha_problem(distribution, alpha)
        assert api_ok == (problem is None), (alpha, problem)
        assert problem is None or problem[0] == "alpha"
    assert check_alpha(1e6) == 1e6 and alpha_problem("beta", 1e6) is None


@pytest.mark.parametrize("schema", [ToyConfig, ClassifyConfig], ids=["toy", "classify"])
def test_a_config_alpha_obeys_the_api_rule(tmp_path, schema):
    # the schemas' own range on loss.alpha and alpha_problem must agree with check_alpha at
    # the edges: a config accepts exactly the alphas sample_lam can draw
    path = tmp_path / "run.yaml"
    for value in ("1e6", "1e-30", "0", "1e300", "1.5e6", "1e-40", ".inf"):
        path.write_text(f"loss:\n  alpha: {value}\n")
        try:
            api_ok = check_alpha(float(value)) == float(value)
        except ValueError:
            api_ok = False
        if api_ok:
            assert load_config(path, schema).loss.alpha == float(value)
        else:
            with pytest.raises(ConfigError, match=r"loss\.alpha: .*must be"):
                load_config(path, schema)
