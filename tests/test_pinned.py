"""The GAN engine pinned against outside references, not against itself.

What D is shown in real training steps (captured with forward hooks on the nets) is checked
against the mixup definition: the `lam` each member mixes with follows Beta(alpha, alpha) or
Uniform(0, alpha) (a reference sample from `torch.distributions`), and each logged D loss
equals the loss formula written out here, from the inputs D saw and the outputs it gave.
The real data is one point, so every mixed row can be solved for its `lam`.

Broken variants these tests catch (each tried by hand): `lam` constant 0.5; `lam` drawn
with alpha 1 (alpha ignored); Uniform members drawn from Beta; the soft target swapped
(1 - lam); the ERM term dropped from `erm_weight`; pool labels not mixed.
"""

import json

import pytest
import torch
import torch.nn.functional as F

from mixup_gan.config import load_config
from mixup_gan.gan_config import LossConfig
from mixup_gan.toy.config import ToyConfig, ToyModelConfig, ToyTrainConfig
from mixup_gan.toy.data import point_file, write_points
from mixup_gan.toy.runner import build_toy_trainer, run_toy

POINT = (0.5, 0.5)  # the only real sample


# --- the formula, from the design (not from the package) ----------------------------------

TERMS = {  # (real_term, fake_term) on D's raw output o
    "bce": (lambda o: F.softplus(-o), lambda o: F.softplus(o)),
    "hinge": (lambda o: F.relu(1 - o), lambda o: F.relu(1 + o)),
    "least_squares": (lambda o: (o - 1) ** 2 / 2, lambda o: o ** 2 / 2),
    "wasserstein": (lambda o: -o, lambda o: o),
}


def mixed_loss(name: str, o, target):
    real_term, fake_term = TERMS[name]
    return (target * real_term(o) + (1 - target) * fake_term(o)).mean()


def erm_loss(name: str, o_real, o_fake):
    real_term, fake_term = TERMS[name]
    return real_term(o_real).mean() + fake_term(o_fake).mean()


# --- seeing what D sees -------------------------------------------------------------------

class Recorder:
    """Forward hooks on G and D: each D call of a D step, with the G output before it.

    In a G step D is called on G's output itself; in a D step on something else."""

    def __init__(self, G, D) -> None:
        self.steps, self._fake = [], None
        self.handles = [G.register_forward_hook(self._on_g), D.register_forward_hook(self._on_d)]

    def _on_g(self, module, args, out) -> None:
        self._fake = out.detach().double().clone()

    def _on_d(self, module, args, out) -> None:
        x = args[0].detach().double()
        fake = self._fake
        if fake is None or (x.shape == fake.shape and torch.equal(x, fake)):
            return  # a G step (or an evaluation)
        self.steps.append((fake, x.clone(), out.detach().double().clone()))

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def stacked(t):
    """(N, ...) -> (1, N, ...); stacked (P, N, ...) as is."""
    return t if t.dim() == 3 else t.unsqueeze(0)


def coefficient_of_real(x, fakes, real, pool: bool = False):
    """For mixed rows x (..., M, 2): the weight of the real point in the blend that explains
    each row best: `lam * real + (1 - lam) * fake_j` (any of the fakes (..., N, 2); the real
    point alone is lam = 1), or with `pool` also a blend of two fakes (weight 0).
    Returns (coefficient (..., M), worst residual)."""
    d = real - fakes  # (..., N, 2)
    rel = x.unsqueeze(-2) - fakes.unsqueeze(-3)  # (..., M, N, 2)
    lam = ((rel * d.unsqueeze(-3)).sum(-1) / d.square().sum(-1).unsqueeze(-2)).clamp(0, 1)
    err = (rel - lam.unsqueeze(-1) * d.unsqueeze(-3)).norm(dim=-1)  # (..., M, N)
    best, j = err.min(-1)
    coef = lam.gather(-1, j.unsqueeze(-1)).squeeze(-1)
    if not pool:
        return coef, float(best.max())
    # fake-fake blends (pool pairing): x on the segment between fakes a and b
    a, b = fakes.unsqueeze(-2), fakes.unsqueeze(-3)  # (..., N, 1, 2), (..., 1, N, 2)
    ab = a - b
    xb = x[..., :, None, None, :] - b.unsqueeze(-4)  # (..., M, N, N, 2)
    t = ((xb * ab.unsqueeze(-4)).sum(-1) / ab.square().sum(-1).clamp(min=1e-30).unsqueeze(-3)
         ).clamp(0, 1)
    ff = (xb - t.unsqueeze(-1) * ab.unsqueeze(-4)).norm(dim=-1).flatten(-2).min(-1).values
    coef = torch.where(ff < best, torch.zeros_like(coef), coef)
    return coef, float(torch.minimum(best, ff).max())


def blocks(x, fake, n, mixed_size):
    """Split one member's D-step input (R, 2) into its parts: ('real' | 'fake' | 'mixed', rows).
    A part of n rows equal to the real point or to the fakes is plain; others are mixed."""
    real = torch.tensor(POINT, dtype=x.dtype)
    out, at = [], 0
    while at < len(x):
        rows = x[at:at + n]
        if len(rows) == n and torch.equal(rows, real.expand(n, 2)):
            out.append(("real", at, at + n))
            at += n
        elif len(rows) == n and torch.equal(rows, fake):
            out.append(("fake", at, at + n))
            at += n
        else:
            out.append(("mixed", at, at + mixed_size))
            at += mixed_size
    assert at == len(x), "D's input is not made of whole parts"
    return out


def one_point_file(tmp_path):
    path = tmp_path / "one_point.csv"
    write_points(torch.tensor([POINT, POINT]), path)  # a file needs two rows
    return path


# --- lam in a real population step -------------------------------------------------------

def reference_cdf(dist: str, alpha: float, grid):
    """The cdf of Beta(alpha, alpha) (a 400,000-draw sample of torch.distributions.Beta) or
    of Uniform(0, alpha) (exact) on `grid`."""
    if dist == "uniform":
        return (grid / alpha).clamp(0, 1)
    with torch.random.fork_rng():
        torch.manual_seed(1234)
        ref = torch.distributions.Beta(torch.tensor(alpha, dtype=torch.float64),
                                       torch.tensor(alpha, dtype=torch.float64)
                                       ).sample((400_000,)).sort().values
    return torch.searchsorted(ref, grid, right=True).double() / len(ref)


def ks(sample, dist: str, alpha: float) -> float:
    """Kolmogorov-Smirnov distance of `sample`'s cdf from the reference's, on a grid of 2,000
    points in (0, 1) (so float32 rounding of lam within 1e-7 of 0 and 1 does not count)."""
    grid = torch.linspace(5e-4, 1 - 5e-4, 2000, dtype=torch.float64)
    s = sample.double().sort().values
    empirical = torch.searchsorted(s, grid, right=True).double() / len(s)
    return float((empirical - reference_cdf(dist, alpha, grid)).abs().max())


MEMBERS = [  # (distribution, alpha, per_sample), one population
    ("beta", 0.2, True), ("beta", 1.0, True), ("uniform", 0.5, True), ("beta", 2.0, True),
    ("beta", 0.5, False),
]


def test_lam_of_a_population_step_follows_each_members_distribution(tmp_path):
    N, steps, n_dis = 64, 20, 5
    dist = point_file(one_point_file(tmp_path))
    losses = [LossConfig(alpha=a, distribution=d, per_sample=s) for d, a, s in MEMBERS]
    trainer = build_toy_trainer(ToyModelConfig(latent_dim=2, hidden=32, depth=2),
                                ToyTrainConfig(batch_size=N, n_dis=n_dis, steps=steps),
                                losses, [dist] * len(MEMBERS), list(range(len(MEMBERS))),
                                torch.device("cpu"))
    rec = Recorder(trainer.G, trainer.D)
    trainer.fit(steps, progress=False)
    rec.close()
    assert len(rec.steps) == steps * n_dis
    real = torch.tensor(POINT, dtype=torch.float64)
    fake = torch.stack([stacked(f) for f, _, _ in rec.steps])  # (D steps, P, N, 2)
    x = torch.stack([stacked(x) for _, x, _ in rec.steps])
    assert x.shape == fake.shape  # D sees only the mixed rows: nothing else is needed
    lams, residual = coefficient_of_real(x, fake, real)  # (D steps, P, N)
    assert residual < 1e-5  # every row is a blend of the real point and a fake
    for k, (d, alpha, per_sample) in enumerate(MEMBERS):
        lam = lams[:, k]  # (D steps, N)
        if not per_sample:
            assert torch.allclose(lam, lam[:, :1].expand_as(lam), atol=1e-5), k
            lam = lam[:, 0]
        lam = lam.flatten()
        if d == "beta":
            mean, var = 0.5, 1 / (4 * (2 * alpha + 1))
        else:
            mean, var = alpha / 2, alpha ** 2 / 12
        tolerance = 0.2 if not per_sample else 0.04
        assert float(lam.mean()) == pytest.approx(mean, abs=tolerance * 0.5), (k, d, alpha)
        assert float(lam.var()) == pytest.approx(var, rel=tolerance * 3), (k, d, alpha)
        # KS: n = 6,400 draws (p < 1e-6 under the right law at 0.035), 100 for one per batch
        assert ks(lam, d, alpha) < (0.2 if not per_sample else 0.035), (k, d, alpha)


# --- a D step's logged loss is the formula on what D saw ---------------------------------

CASES = [
    ["loss.alpha=0.2"],
    ["loss.alpha=0.5", "loss.name=hinge", "loss.distribution=uniform"],
    ["loss.alpha=0.3", "loss.name=least_squares", "loss.erm_weight=0.5"],
    ["loss.alpha=1.0", "loss.name=wasserstein", "loss.per_sample=false"],
    ["loss.alpha=0.0", "loss.name=hinge"],
    ["loss.alpha=0.4", "loss.pairing=pool"],
    ["loss.alpha=0.2", "loss.mix_prob=0.5"],
    ["loss.alpha=0.2", "loss.gradient_penalty=1", "loss.erm_weight=0.25"],
]


def run_recorded(monkeypatch, cfg, runs, name: str):
    """`run_toy(cfg, name)` with a `Recorder` on the run's own G and D: its metrics rows and
    the recorder (`cfg.output.dir` must be `runs`)."""
    import mixup_gan.toy.runner as runner

    recorders, real_build = [], runner.build_toy_trainer

    def build(*args, **kwargs):  # the run's own trainer, with hooks on its nets
        trainer = real_build(*args, **kwargs)
        recorders.append(Recorder(trainer.G, trainer.D))
        return trainer

    monkeypatch.setattr(runner, "build_toy_trainer", build)
    run_toy(cfg, name)
    rows = [json.loads(line) for line in (runs / name / "metrics.jsonl").read_text().splitlines()]
    return rows, recorders[0]


@pytest.mark.parametrize("overrides", CASES, ids=lambda o: ",".join(o))
def test_logged_d_loss_is_the_formula_on_what_d_saw(tmp_path, monkeypatch, overrides):
    N, n_dis, steps = 8, 2, 12
    cfg = load_config(None, ToyConfig, [
        "data.name=points", f"data.path={one_point_file(tmp_path)}", "data.reference=null",
        "model.hidden=16", "model.depth=2", f"train.steps={steps}", f"train.batch_size={N}",
        f"train.n_dis={n_dis}", "eval.every=1", "eval.n_samples=50", "eval.snapshots=[]",
        f"output.dir={tmp_path / 'runs'}", "output.checkpoint_every=100",
        "output.progress=false", "train.device=cpu", *overrides])
    rows, recorder = run_recorded(monkeypatch, cfg, tmp_path / "runs", "formula")
    d_steps = recorder.steps
    assert len(d_steps) == steps * n_dis and len(rows) == steps
    loss, real = cfg.loss, torch.tensor(POINT, dtype=torch.float64)
    mixed_size = 2 * N if loss.pairing == "pool" else N
    chose = set()
    for row, (fake, x, out) in zip(rows, d_steps[n_dis - 1::n_dis], strict=True):
        fake, x, o = stacked(fake)[0], stacked(x)[0], out.reshape(-1)
        parts = {kind: (a, b) for kind, a, b in blocks(x, fake, N, mixed_size)}
        erm = mix = None
        if "real" in parts:
            erm = erm_loss(loss.name, o[slice(*parts["real"])], o[slice(*parts["fake"])])
        if "mixed" in parts:
            rows_at = slice(*parts["mixed"])
            target, residual = coefficient_of_real(x[rows_at], fake, real,
                                                   pool=loss.pairing == "pool")
            assert residual < 1e-5
            mix = mixed_loss(loss.name, o[rows_at], target) + loss.erm_weight * (
                erm if erm is not None else 0.0)
        candidates = {"mixup": mix, "erm": erm} if loss.mix_prob < 1 else (
            {"mixup": mix} if loss.alpha > 0 else {"erm": erm})
        match = [name for name, value in candidates.items()
                 if value is not None and abs(float(value) - row["d_loss"])
                 <= 1e-5 * max(1.0, abs(row["d_loss"]))]
        assert match, (row["step"], row["d_loss"], {k: v and float(v)
                                                    for k, v in candidates.items()})
        chose.update(match)
    if loss.mix_prob < 1:
        assert chose == {"mixup", "erm"}  # the coin picks each in some steps
