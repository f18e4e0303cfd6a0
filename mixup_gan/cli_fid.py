"""`mixup-gan fid`: its arguments and its command (the rest of the command line: cli.py)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .config import ConfigError, check_seed
from .run_folder import make_folder


def check_output_file(path: Path, flag: str) -> None:
    """An output file must be writable before any work starts: its folder is made now."""
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: is a folder; give a file name")
    make_folder(path.parent, f"{flag} {path}")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{flag} {path}: the file is not writable")


def cmd_fid(args: argparse.Namespace) -> int:
    import json

    from .checkpoint import atomic_write
    from .fid import evaluate
    from .fid.files import check_outputs
    from .image.generator import load_generator

    seed = check_seed(args.seed)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    if args.resize is not None and args.resize <= 0:
        raise ConfigError(f"--resize must be a positive size in pixels, got {args.resize}")
    check_outputs({"--out": args.out, "--save-stats": args.save_stats},
                  [args.generated, args.reference])
    check_output_file(args.out, "--out")
    if args.save_stats:
        check_output_file(args.save_stats, "--save-stats")
    report = evaluate(
        args.generated, args.reference, n=args.n, resize=args.resize or 0,
        precision=args.precision,
        datasets_root=args.datasets_root, save_stats=args.save_stats, metrics=metrics,
        feature_extractor=args.feature_extractor, inception_weights=args.inception_weights,
        device=args.device, batch_size=args.batch_size, seed=seed,
        cache_dir=args.cache_dir, use_cache=not args.no_cache, download=not args.no_download,
        verbose=not args.no_progress, load_generator=load_generator)
    atomic_write(args.out, json.dumps(report, indent=1) + "\n")
    weights = report["weights"]
    print(f"generated: {report['generated']}")
    print(f"reference: {report['reference']}")
    print(f"features:  {report['feature_extractor']} on {report['device']} "
          f"({report['precision']})"
          + (f", weights from {weights['origin']} ({weights['path']})" if weights else ""))
    print(f"\n  {'metric':<12} value")
    for key, value in report["metrics"].items():
        print(f"  {key:<12} {value:.6g}")
    if report.get("saved_statistics"):
        print(f"\nreference statistics: {report['saved_statistics']}")
    print(f"\nwrote {args.out} ({report['seconds']:.1f} s)")
    return 0


def add_fid_parser(sub) -> None:
    fid = sub.add_parser(
        "fid", help="FID / KID / precision-recall / IS through torch-fidelity",
        description="Each input is an image GAN checkpoint (samples drawn in batches, EMA "
        "weights when present), a folder of images, a dataset registered with torch-fidelity "
        "(cifar10-train, ...) or a statistics file from --save-stats.")
    fid.add_argument("generated", help="checkpoint, image folder, dataset name or statistics")
    fid.add_argument("reference", nargs="?", help="the same kinds (not needed for IS alone)")
    fid.add_argument("--metrics", default="fid", help="comma-separated: fid, kid, pr, is")
    fid.add_argument("-n", type=int, default=10000, help="images drawn from a generator")
    fid.add_argument("--batch-size", type=int, default=64)
    fid.add_argument("--seed", type=int, default=0, help="generator noise and KID subsets")
    fid.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    fid.add_argument("--inception-weights", type=Path,
                     help="inception-v3-compat state dict (else: torch-fidelity's cache, the "
                     "offline-fid extra, then a download)")
    fid.add_argument("--feature-extractor", default="inception-v3-compat",
                     help="a torch-fidelity feature extractor name")
    fid.add_argument("--precision", choices=("fp32", "bf16", "reference"), default="fp32",
                     help="fp32: torch-fidelity's FID to 4+ digits, faster (default); bf16: "
                     "faster where bfloat16 is native, less exact; reference: unmodified")
    fid.add_argument("--resize", type=int, default=None,
                     help="resize and centre-crop folder images to N x N (mixed sizes)")
    fid.add_argument("--datasets-root", help="where registered datasets are (or go)")
    fid.add_argument("--no-download", action="store_true",
                     help="never download datasets or weights")
    fid.add_argument("--cache-dir", type=Path, help="reference feature cache "
                     "(default: ~/.cache/mixup-gan/fid)")
    fid.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    fid.add_argument("--save-stats", type=Path, help="write the REFERENCE's FID statistics here")
    fid.add_argument("--out", type=Path, default=Path("fid.json"), help="JSON report")
    fid.add_argument("--no-progress", action="store_true", help="hide progress output")
    fid.set_defaults(func=cmd_fid)
