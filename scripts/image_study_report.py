"""The image study's table: FID and KID of every finished run, measured in the feature space of
a small classifier trained on the dataset itself, plus a side-by-side sample figure.

Inception features run at about 9 images/s on one core of the 2-core CPU (`mixup-gan fid`'s
fp32 path, the other core training: 20,000 images in 2,153 s), so 10,000 generated images
per run cost ~18 minutes; a classifier trained on the same images at 32x32, as the GANs see
them (a LeNet, two epochs, 88.6% test accuracy on Fashion-MNIST), gives features in seconds.
The statistics are torch-fidelity's own (`fid_features_to_statistics`, `fid_statistics_to_metric`,
`kid_features_to_metric`); only the feature extractor differs, so the numbers compare runs
with each other, not with published Inception FIDs, and only within one feature net: it is
trained once per runs folder and kept there (`feature_net_<dataset>.pt`); one trained on
another machine or thread count scales the numbers differently (docs/results.md: 188 vs 165
for the same run). The floor is printed too: the same metric between 10,000 real training
images and the 10,000 test images.

Runs are the folders `scripts/image_study.sh` writes (`<arch>_<loss>_<arm>_seed<k>`); a run
without `summary.json` (unfinished) is listed as such and left out of the means. Each run's
generator is its EMA (what `mixup-gan sample` and `mixup-gan fid` draw), sampled with a fixed
noise seed. A run trained with `eval.generator_every` kept its generator along the way
(`generators/step_<k>.pt`): each of those is scored too (`--curve-n` images), giving FID over
training (fid_curves.png; the last point is the final generator).

`--inception N` adds the common protocol beside it: torch-fidelity's Inception FID and KID of
N EMA samples against the test split, computed as `mixup-gan fid RUN/checkpoint.pt
<dataset>-test -n N --metrics fid,kid --no-download` computes them, in process (on CUDA when
present; the weights are found before any other work; `--inception-weights` as in `mixup-gan
fid`). Each run keeps its score as `inception_fid_n<N>.json`, `mixup-gan fid`'s report plus
the checkpoint's SHA-256, the dataset and N, so a rerun scores only new or retrained runs; a
file of that name that is not such a record stops the report, named. On one core of this CPU
that is about 18 minutes per run at N = 10,000, plus once as long for the test set (its
features are cached).
Usage: python scripts/image_study_report.py [--runs runs/image_study/fashion-mnist]
           [--dataset fashion-mnist] [--data-root data] [--n 10000] [--curve-n 5000]
           [--inception 10000 [--inception-weights PATH]] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import Tensor, nn  # noqa: E402
from torch_fidelity.metric_fid import (  # noqa: E402
    fid_features_to_statistics,
    fid_statistics_to_metric,
)
from torch_fidelity.metric_kid import kid_features_to_metric  # noqa: E402

from mixup_gan.checkpoint import (  # noqa: E402
    CheckpointError,
    atomic_write,
    load_checkpoint,
    save_checkpoint,
)
from mixup_gan.classify.nets import LeNet  # noqa: E402
from mixup_gan.config import ConfigError  # noqa: E402
from mixup_gan.datasets import fit_side, idx_split  # noqa: E402
from mixup_gan.fid import evaluate, resolve_inception_weights  # noqa: E402
from mixup_gan.fid.evaluator import INCEPTION as INCEPTION_V3  # noqa: E402
from mixup_gan.fid.inception import file_sha256  # noqa: E402
from mixup_gan.image.generator import load_generator  # noqa: E402

RUN_NAME = re.compile(r"(?P<arch>\w+?)_(?P<loss>bce|hinge)_(?P<arm>\w+)_seed(?P<seed>\d+)$")
ARMS = ("erm", "mixup", "levers", "erm_decay", "mixup_decay")  # table and colour order
KEPT = re.compile(r"step_(\d+)\.pt")  # generators/step_<N>.pt, as eval.generator_every names them
KID_SUBSETS = 100  # torch-fidelity's default, of 1,000 images each
INCEPTION = INCEPTION_V3  # --inception's extractor: torch-fidelity's FID Inception


def arm_order(arm: str) -> tuple[int, str]:
    """Sort key: the known arms in ARMS order, then any other arm by name."""
    return (ARMS.index(arm) if arm in ARMS else len(ARMS), arm)


def pixels(dataset: str, root: str, train: bool) -> tuple[Tensor, Tensor]:
    """The split at 32x32 as the GANs see it, in [-1, 1], and its labels."""
    images, labels = idx_split(dataset, root, train=train, download=False,  # read once
                               keys=("--data-root", "give the folder that holds it"))
    return fit_side(images[:, None], 32).float() / 127.5 - 1, labels.long()


def feature_net(path: Path, train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor]) -> LeNet:
    """Load the feature net from `path`, or train it (seed 0, 2 epochs of Adam) and save it."""
    net = LeNet((1, 32, 32), 10)  # the classic width, 32 and 64 channels
    if path.is_file():
        net.load_state_dict(load_checkpoint(path)["net"])
        return net
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = train
    for _epoch in range(2):
        net.train()
        for idx in torch.randperm(len(x)).split(128):
            loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        net.eval()
        accuracy = float((net(test[0]).argmax(1) == test[1]).float().mean())
    print(f"feature net: test accuracy {accuracy:.4f} (2 epochs, seed 0) -> {path}")
    save_checkpoint({"net": net.state_dict(), "test_accuracy": accuracy}, path)
    return net


def distances(features: Tensor, reference: Tensor, reference_stats: dict) -> dict:
    fid = fid_statistics_to_metric(fid_features_to_statistics(features), reference_stats,
                                   verbose=False)["frechet_inception_distance"]
    kid = kid_features_to_metric(features, reference, kid_subsets=KID_SUBSETS,
                                 kid_subset_size=1000, rng_seed=0, verbose=False)
    return {"fid": fid, "kid": kid["kernel_inception_distance_mean"]}


@torch.no_grad()
def draw(checkpoint: Path, n: int, seed: int = 0) -> Tensor:
    G, latent_dim = load_generator(checkpoint)
    z = torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(seed))
    return torch.cat([G(z[i:i + 500]) for i in range(0, n, 500)]).clamp(-1, 1)


def mean_std(values: list[float], digits: int = 2) -> str:
    if len(values) < 2:
        return f"{values[0]:.{digits}f}" if values else "-"
    return f"{statistics.mean(values):.{digits}f} +- {statistics.stdev(values):.{digits}f}"


def sample_figure(runs: dict[str, Path], path: Path) -> None:
    """8x8 samples of each arm's first finished seed, side by side (same noise)."""
    fig, axes = plt.subplots(1, len(runs), figsize=(3.2 * len(runs), 3.4), squeeze=False)
    for ax, (label, checkpoint) in zip(axes[0], runs.items(), strict=True):
        x = (draw(checkpoint, 64, seed=1) + 1) / 2
        grid = x.reshape(8, 8, 32, 32).permute(0, 2, 1, 3).reshape(256, 256)
        ax.imshow(grid.numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(label, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fid_curve(folder: Path, net: LeNet, reference: Tensor, reference_stats: dict,
              n: int) -> list[dict]:
    """FID and KID of each generator a run kept (`generators/step_<k>.pt`), by step."""
    points = []
    for path in sorted((folder / "generators").glob("step_*.pt")):
        kept = KEPT.fullmatch(path.name)
        if kept is None:  # not one the run wrote (step_final.pt, a copy): left out
            print(f"{path}: not a kept generator's name (step_<N>.pt), left out")
            continue
        points.append({"step": int(kept[1]), **distances(net.features(draw(path, n)),
                                                          reference, reference_stats)})
    return points


def inception_scores(folder: Path, dataset: str, root: str, n: int,
                     weights: str | None = None) -> dict:
    """Inception FID and KID of the run's EMA generator (n samples) against the test split,
    read from the run's `inception_fid_n<n>.json` when it records this checkpoint (by
    SHA-256), dataset and n; otherwise computed and written there."""
    path, checkpoint = folder / f"inception_fid_n{n}.json", folder / "checkpoint.pt"
    record = {"checkpoint_sha256": file_sha256(checkpoint), "dataset": f"{dataset}-test", "n": n}
    if path.is_file():
        try:
            kept = json.loads(path.read_text())
            stale = any(kept[key] != value for key, value in record.items())
            metrics = kept["metrics"]
            values = {"inception_fid": float(metrics["fid"]),
                      "inception_kid": float(metrics["kid_mean"])}
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"{path}: not a score this report wrote (it needs metrics fid and "
                              f"kid_mean, {', '.join(record)}); move it away to score the "
                              "run again") from None
        if kept.get("feature_extractor") != INCEPTION:
            raise ConfigError(f"{path}: scored with {kept.get('feature_extractor')!r}, not "
                              f"{INCEPTION}; move it away to score the run again")
        if not stale:
            return values
    report = evaluate(str(checkpoint), f"{dataset}-test", n=n, metrics=["fid", "kid"],
                      datasets_root=root, download=False, verbose=False,
                      feature_extractor=INCEPTION, inception_weights=weights,
                      load_generator=load_generator)
    atomic_write(path, json.dumps({**record, **report}, indent=1) + "\n")
    return {"inception_fid": report["metrics"]["fid"],
            "inception_kid": report["metrics"]["kid_mean"]}


def curve_figure(results: list[dict], path: Path) -> None:
    """FID over training: one panel per (arch, loss), one colour per arm, a thin line per
    seed and a thick one for the mean over the seeds that reached each step."""
    panels = sorted({(r["arch"], r["loss"]) for r in results if r["curve"]})
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (arch, loss) in zip(axes[0], panels, strict=True):
        arms = sorted({r["arm"] for r in results
                       if (r["arch"], r["loss"]) == (arch, loss) and r["curve"]},
                      key=arm_order)
        for i, arm in enumerate(arms):
            runs = [r for r in results if (r["arch"], r["loss"], r["arm"]) == (arch, loss, arm)
                    and r["curve"]]
            for r in runs:
                ax.plot([p["step"] for p in r["curve"]], [p["fid"] for p in r["curve"]],
                        color=f"C{i}", alpha=0.3, lw=0.8)
            steps = sorted({p["step"] for r in runs for p in r["curve"]})
            mean = [statistics.mean(p["fid"] for r in runs for p in r["curve"] if p["step"] == s)
                    for s in steps]
            ax.plot(steps, mean, color=f"C{i}", lw=2, marker="o", ms=3,
                    label=f"{arm} ({len(runs)} seed{'' if len(runs) == 1 else 's'})")
        ax.set_title(f"{arch}, {loss}", fontsize=9)
        ax.set_xlabel("generator step")
        ax.set_ylabel("FID (LeNet features)")
        ax.set_yscale("log")  # FID falls by 10-100x over a run; the end is what is compared
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(
        description="FID and KID of every finished image-study run in a LeNet feature space "
        "trained on the dataset, with the real-vs-real floor and a sample figure.")
    parser.add_argument("--runs", type=Path, default=Path("runs/image_study/fashion-mnist"),
                        help="the folder holding the study's run folders")
    parser.add_argument("--dataset", default="fashion-mnist", choices=("fashion-mnist", "mnist"),
                        help="the runs' training set (its test split is the reference)")
    parser.add_argument("--data-root", default="data", help="where the dataset is "
                        "(mixup-gan data fetch DATASET --root DIR)")
    parser.add_argument("--n", type=int, default=10000,
                        help="generated images per run (at least 1000, KID's subset size)")
    parser.add_argument("--out", type=Path, help="where the table, JSON and figure go "
                        "(default: the runs folder)")
    parser.add_argument("--curve-n", type=int, default=5000,
                        help="generated images per kept generator (FID over training)")
    parser.add_argument("--inception", type=int, default=0, metavar="N",
                        help="also Inception FID and KID of N samples per run against the "
                        "test split (the common protocol: 10000); 0 (default): off")
    parser.add_argument("--inception-weights", metavar="PATH",
                        help="inception-v3-compat state dict (else: torch-fidelity's cache, "
                        "then the offline-fid extra; never downloaded here)")
    args = parser.parse_args()
    if not args.runs.is_dir():
        parser.error(f"--runs {args.runs}: no such folder")
    if args.inception_weights and not args.inception:
        parser.error("--inception-weights needs --inception N")
    sizes = {"--n": args.n, "--curve-n": args.curve_n}
    if args.inception:  # 0: off
        sizes["--inception"] = args.inception
    for flag, value in sizes.items():
        if value < 1000:
            parser.error(f"{flag} {value}: at least 1000 (KID's subset size)")
    try:
        report(args)
    except (ConfigError, CheckpointError, OSError) as exc:
        print(f"image_study_report.py: {exc}", file=sys.stderr)
        sys.exit(2)


def report(args: argparse.Namespace) -> None:
    out = args.out or args.runs
    out.mkdir(parents=True, exist_ok=True)
    weights = args.inception_weights
    if args.inception and INCEPTION == INCEPTION_V3:  # missing weights: said before any work
        resolve_inception_weights(weights, download=False)
    train, test = pixels(args.dataset, args.data_root, True), pixels(args.dataset,
                                                                     args.data_root, False)
    net = feature_net(args.runs / f"feature_net_{args.dataset}.pt", train, test)
    reference = net.features(test[0])
    reference_stats = fid_features_to_statistics(reference)
    real = train[0][torch.randperm(len(train[0]), generator=torch.Generator().manual_seed(0))
                    [:len(test[0])]]
    floor = distances(net.features(real), reference, reference_stats)
    print(f"floor (10,000 real training images vs the test set): FID {floor['fid']:.3f}, "
          f"KID {floor['kid']:.5f}")
    results, unfinished = [], []
    for folder in sorted(p for p in args.runs.iterdir() if p.is_dir()):
        match = RUN_NAME.match(folder.name)
        if not match:
            continue
        if not (folder / "summary.json").is_file():
            unfinished.append(folder.name)
            continue
        scores = distances(net.features(draw(folder / "checkpoint.pt", args.n)), reference,
                           reference_stats)
        if args.inception:
            scores |= inception_scores(folder, args.dataset, args.data_root, args.inception,
                                       weights)
        curve = fid_curve(folder, net, reference, reference_stats, args.curve_n)
        row = {**match.groupdict(), "seed": int(match["seed"]), "run": folder.name, **scores,
               "curve": curve}
        results.append(row)
        print(f"{folder.name}: FID {scores['fid']:.3f}, KID {scores['kid']:.5f}"
              + (f"; Inception FID {scores['inception_fid']:.3f}, KID "
                 f"{scores['inception_kid']:.5f}" if args.inception else "")
              + (f"; FID over training at {len(curve)} steps" if curve else ""))
    inception = ([("inception_fid", f"FID (Inception, {args.inception})"),
                  ("inception_kid", "KID (Inception)")] if args.inception else [])
    columns = [("fid", "FID (LeNet)"), ("kid", "KID (LeNet)"), *inception]
    digits = {"inception_kid": 4}  # Inception KIDs are ~0.001-0.3
    lines = ["| arch | loss | arm | seeds | " + " | ".join(c[1] for c in columns) + " |",
             "|---|---|---|---|" + "---|" * len(columns)]
    groups = sorted({(r["arch"], r["loss"], r["arm"]) for r in results},
                    key=lambda g: (g[0], g[1], arm_order(g[2])))
    for arch, loss, arm in groups:
        rows = [r for r in results if (r["arch"], r["loss"], r["arm"]) == (arch, loss, arm)]
        seeds = ", ".join(str(r["seed"]) for r in rows)
        lines.append(f"| {arch} | {loss} | {arm} | {seeds} | "
                     + " | ".join(mean_std([r[key] for r in rows], digits.get(key, 2))
                                  for key, _ in columns) + " |")
    lines.append(f"| real train vs test | | | | {floor['fid']:.2f} | {floor['kid']:.2f} |"
                 + " |" * len(inception))
    table = "\n".join(lines) + "\n\nUnfinished: " + (", ".join(unfinished) or "none")
    (out / "study_table.md").write_text(table + "\n")
    (out / "study.json").write_text(json.dumps({"floor": floor, "runs": results,
                                                "unfinished": unfinished, "n": args.n,
                                                "curve_n": args.curve_n,
                                                "inception_n": args.inception}, indent=1))
    print(table)
    firsts = {}
    for arch, loss, arm in groups:
        first = min((r for r in results if (r["arch"], r["loss"], r["arm"]) == (arch, loss, arm)),
                    key=lambda r: r["seed"])
        firsts[f"{arch} {loss} {arm} seed {first['seed']}"] = args.runs / first["run"] / \
            "checkpoint.pt"
    if firsts:
        sample_figure(firsts, out / "study_samples.png")
        print(f"wrote {out / 'study_samples.png'}")
    if any(r["curve"] for r in results):
        curve_figure(results, out / "fid_curves.png")
        print(f"wrote {out / 'fid_curves.png'}")


if __name__ == "__main__":
    main()
