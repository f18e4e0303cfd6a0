"""The public D loss as users run it: PyTorch's DCGAN port from the README, the two classic
mistakes caught, mixed precision, torch.compile, diagnostics, pickling."""

import io
import pickle
import re
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn, optim
from torch.nn.utils.parametrizations import spectral_norm

from mixup_gan import (
    DiscriminatorWarning,
    MixupDiscriminatorLoss,
    erm_discriminator_loss,
    generator_loss,
    mixup_discriminator_loss,
    sample_lam,
)

README = Path(__file__).resolve().parent.parent / "README.md"
NC, NZ, NGF, NDF = 3, 16, 8, 8


def weights_init(m):  # DCGAN's init
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def dcgan_generator() -> nn.Module:
    """DCGAN's G (64x64 images), narrow."""
    layers, width = [], NGF * 8
    layers += [nn.ConvTranspose2d(NZ, width, 4, 1, 0, bias=False), nn.BatchNorm2d(width),
               nn.ReLU(True)]
    for _ in range(3):
        layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                   nn.BatchNorm2d(width // 2), nn.ReLU(True)]
        width //= 2
    layers += [nn.ConvTranspose2d(width, NC, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers).apply(weights_init)


def dcgan_discriminator(batch_norm=True, sigmoid=True) -> nn.Module:
    """DCGAN's D as its script writes it: BatchNorm2d and a trailing Sigmoid."""
    layers, width = [nn.Conv2d(NC, NDF, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)], NDF
    for _ in range(3):
        layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False)]
        layers += [nn.BatchNorm2d(width * 2)] if batch_norm else []
        layers += [nn.LeakyReLU(0.2, True)]
        width *= 2
    layers += [nn.Conv2d(width, 1, 4, 1, 0, bias=False), nn.Flatten(0)]
    layers += [nn.Sigmoid()] if sigmoid else []
    return nn.Sequential(*layers).apply(weights_init)


def fake_images(n):
    return torch.rand(n, NC, 64, 64) * 2 - 1


def readme_port() -> str:
    section = README.read_text().split("### Worked example: PyTorch's DCGAN")[1]
    return section.split("```python")[1].split("```")[0]


def test_readme_dcgan_port_trains_balanced_on_fake_data():
    torch.manual_seed(0)
    dataloader = [(fake_images(16), torch.zeros(16)) for _ in range(40)]
    log = []
    ns = {"nn": nn, "optim": optim, "torch": torch, "spectral_norm": spectral_norm,
          "mixup_discriminator_loss": mixup_discriminator_loss, "generator_loss": generator_loss,
          "nc": NC, "nz": NZ, "ndf": NDF, "device": "cpu", "lr": 2e-4,
          "weights_init": weights_init, "netG": dcgan_generator(), "dataloader": dataloader}
    ns["print"] = lambda *a: log.append((ns["D_x"], ns["D_G_z2"], ns["errD"].item()))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DiscriminatorWarning)  # the port draws no warning
        exec(readme_port(), ns)
    assert len(log) == 40
    d_x, d_g_z, _ = zip(*log, strict=True)
    # balanced: neither side wins over 40 iterations (the naive port: D(G(z)) -> 0.9999;
    # without the Sigmoid but with BatchNorm, 0.999 in 19). With the public sampler's draws
    # since the one-Beta-sampler change, D(x) ends at 0.82 here: D slowly learns the fake data.
    assert min(d_x) > 0.1 and max(d_x) < 0.9, d_x
    assert min(d_g_z) > 0.1 and max(d_g_z) < 0.9, d_g_z


def test_the_naive_dcgan_port_is_refused_then_warned():
    real, fake = fake_images(16), fake_images(16)
    D = dcgan_discriminator()  # Sigmoid and BatchNorm: outputs are probabilities
    with pytest.raises(ValueError, match=r"ends in nn.Sigmoid \(13\).*check_discriminator=False"), \
            pytest.warns(DiscriminatorWarning, match="batch statistics"):
        mixup_discriminator_loss(D, real, fake, alpha=0.2)
    D = dcgan_discriminator(sigmoid=False)
    with pytest.warns(DiscriminatorWarning, match=r"Sequential normalises with batch statistics"
                      r" in training mode \(3 \(BatchNorm2d\), 6 \(BatchNorm2d\), 9 "):
        mixup_discriminator_loss(D, real, fake, alpha=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per D
        mixup_discriminator_loss(D, real, fake, alpha=0.2)
        mixup_discriminator_loss(dcgan_discriminator(sigmoid=False).eval(), real, fake,
                                 alpha=0.2)  # BatchNorm in eval mode uses no batch statistics
        erm_discriminator_loss(dcgan_discriminator(sigmoid=False), real, fake)  # no mixup
        # the opt-out
        mixup_discriminator_loss(dcgan_discriminator(), real, fake, alpha=0.2,
                                 check_discriminator=False)


def test_a_batch_norm_d_first_called_in_eval_mode_warns_once_it_trains():
    """A validation pass before training must not use up the check (it did: the first call
    marked D as seen, in eval mode, so training with mixup never warned)."""
    real, fake = fake_images(16), fake_images(16)
    D = dcgan_discriminator(sigmoid=False).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mixup_discriminator_loss(D, real, fake, alpha=0.2)  # eval: no batch statistics
    D.train()
    with pytest.warns(DiscriminatorWarning, match="batch statistics in training mode"):
        mixup_discriminator_loss(D, real, fake, alpha=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # still once per D
        mixup_discriminator_loss(D, real, fake, alpha=0.2)


def test_outputs_that_look_like_probabilities_warn():
    D = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))
    real, fake = torch.randn(32, 2), torch.randn(32, 2)
    squashed = lambda x: torch.sigmoid(D(x))  # noqa: E731  (a sigmoid no module shows)
    with pytest.warns(DiscriminatorWarning, match=r"every output of function .* in \[0, 1\]"):
        mixup_discriminator_loss(squashed, real, fake, alpha=0.2)
    # a Sigmoid registered last but not applied last (a gate) is no error: outputs say so
    gated = nn.Sequential(nn.Linear(2, 1), nn.Sigmoid())
    gated.forward = lambda x: gated[0](x) * 10 - 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mixup_discriminator_loss(gated, real, fake, alpha=0.2)


@pytest.mark.parametrize("fake_dtype", [torch.bfloat16, torch.float16])
def test_autocast_with_a_float32_real_batch_and_a_low_precision_generator(fake_dtype):
    torch.manual_seed(0)
    D = nn.Sequential(nn.Linear(3, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    G = nn.Linear(4, 3).to(fake_dtype)
    real = torch.randn(8, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fake = G(torch.randn(8, 4, dtype=fake_dtype))
        assert fake.dtype != real.dtype
        loss, info = mixup_discriminator_loss(D, real, fake, alpha=0.2, return_info=True,
                                              rng=torch.Generator().manual_seed(1))
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert D[0].weight.grad is not None and G.weight.grad is None
    # the loss is the formula on the fake cast up to float32, with D under autocast
    lam = sample_lam(0.2, 8, rng=torch.Generator().manual_seed(1))
    x = lam[:, None] * real + (1 - lam[:, None]) * fake.detach().float()
    torch.testing.assert_close(info["x_mixed"], x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = F.binary_cross_entropy_with_logits(D(x).float().squeeze(1), lam)
    torch.testing.assert_close(loss, expected)
    # a wider fake than real would lose precision silently: refused
    with pytest.raises(TypeError, match="real is torch.float32 but fake is torch.float64"):
        mixup_discriminator_loss(D, real, real.double(), alpha=0.2)


def test_diagnostics_name_what_was_computed():
    torch.manual_seed(0)
    D = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    loss, info = mixup_discriminator_loss(D, real, fake, alpha=0.5, erm_weight=1.0,
                                          rng=torch.Generator().manual_seed(2), return_info=True)
    lam = sample_lam(0.5, 6, rng=torch.Generator().manual_seed(2))
    x = lam[:, None] * real + (1 - lam[:, None]) * fake
    assert torch.equal(info["lam"], lam) and torch.equal(info["target"], lam)
    torch.testing.assert_close(info["x_mixed"], x)
    torch.testing.assert_close(info["d_mixed_mean"], D(x).mean())
    torch.testing.assert_close(info["d_mixed_prob"], torch.sigmoid(D(x)).mean())
    torch.testing.assert_close(info["d_real_prob"], torch.sigmoid(D(real)).mean())
    torch.testing.assert_close(info["d_fake_mean"], D(fake).mean())
    # a user's own regularizer on the mixed points, from info alone
    x_req = info["x_mixed"].requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x_req).sum(), x_req, create_graph=True)
    (loss + grad.square().sum(1).mean()).backward()
    # hinge: raw outputs only; pure mixup: no plain terms
    _, info = mixup_discriminator_loss(D, real, fake, alpha=0.5, loss="hinge", return_info=True)
    assert "d_mixed_mean" in info and not any(k.endswith("_prob") for k in info)
    assert "d_real_mean" not in info and "d_fake_mean" not in info


@pytest.mark.parametrize("term", [lambda o: -o.mean(), lambda o: o.sum(-1, keepdim=True)])
def test_a_reducing_custom_term_is_an_error(term):
    with pytest.raises(ValueError, match="a term must be per sample"):
        mixup_discriminator_loss(lambda x: x.sum(1), torch.randn(4, 2), torch.randn(4, 2),
                                 alpha=0.2, loss=(term, F.softplus))


def test_gradient_penalty_is_half_g_times_the_mean_squared_gradient_on_mixed_points():
    torch.manual_seed(0)
    D = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    plain = mixup_discriminator_loss(D, real, fake, alpha=0.3, rng=torch.Generator().manual_seed(4))
    loss, info = mixup_discriminator_loss(D, real, fake, alpha=0.3, gradient_penalty=2.0,
                                          rng=torch.Generator().manual_seed(4), return_info=True)
    x = info["x_mixed"].requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x).sum(), x)
    expected = 2.0 / 2 * grad.square().sum(1).mean()
    torch.testing.assert_close(info["penalty"], expected)
    torch.testing.assert_close(loss, plain + expected)
    loss.backward()  # twice differentiable
    with pytest.raises(ValueError, match="gradient_penalty"):
        MixupDiscriminatorLoss(alpha=0.2, gradient_penalty=-1.0)


def test_the_loss_module_pickles_and_saves():
    criterion = MixupDiscriminatorLoss(alpha=0.2, loss="hinge", pairing="pool",
                                       rng=torch.Generator().manual_seed(0))
    D = nn.Linear(2, 1)
    real, fake = torch.randn(4, 2), torch.randn(4, 2)
    criterion(D, real, fake)  # builds its per-device plan
    copy = pickle.loads(pickle.dumps(criterion))
    assert repr(copy) == repr(criterion)
    holder = nn.Module()
    holder.criterion = criterion
    buffer = io.BytesIO()
    torch.save(holder, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False).criterion
    torch.testing.assert_close(loaded(D, real, fake), copy(D, real, fake))  # same rng state
    pickle.dumps(MixupDiscriminatorLoss(alpha=0.2))  # every built-in table entry pickles


@pytest.mark.slow  # torch.compile takes about a minute on 2 CPU cores
def test_a_d_step_compiles_with_fullgraph():
    torch.manual_seed(0)
    D = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    opt = torch.optim.Adam(D.parameters(), lr=1e-3)
    criterion = MixupDiscriminatorLoss(alpha=0.2)
    loss_fn = torch.compile(lambda real, fake: criterion(D, real, fake), fullgraph=True)
    for _ in range(3):
        real, fake = torch.randn(8, 2), torch.randn(8, 2)
        loss = loss_fn(real, fake)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.shape == () and torch.isfinite(loss)
    assert re.search("MixupDiscriminatorLoss", repr(criterion))


def test_image_run_with_batch_norm_and_mixup_warns(tmp_path):
    pytest.importorskip("sklearn")
    from mixup_gan.config import load_config
    from mixup_gan.image.config import ImageConfig
    from mixup_gan.image.runner import run_image

    def config(*overrides):
        return load_config(None, ImageConfig, [
            "data.name=digits", "data.channels=1", "model.latent_dim=8", "model.g_width=8",
            "model.d_width=8", "train.steps=1", "train.batch_size=8", "train.n_dis=1",
            "eval.every=1", "eval.n_samples=4", f"output.dir={tmp_path}", "output.progress=false",
            "train.device=cpu", *overrides])

    with pytest.warns(DiscriminatorWarning, match=r"BatchNorm2d.*model.d_norm: spectral"):
        run_image(config("model.d_norm=batch", "loss.alpha=0.2"), "bn")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DiscriminatorWarning)
        run_image(config("model.d_norm=batch", "loss.alpha=0"), "bn-erm")
        run_image(config("loss.alpha=0.2"), "sn")
