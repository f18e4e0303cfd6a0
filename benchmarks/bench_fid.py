"""`mixup-gan fid` against a direct torch_fidelity.calculate_metrics call (one run).

Each measurement runs in a fresh process (wall time of the call, peak resident memory of the
process), alternating ours and theirs. Inputs: a tiny DCGAN generator checkpoint and a folder
of PNGs that this script writes, both 32x32. Both sides compute FID with caches off and the same
extractor, batch size and seed, and must print the same number.
With --bf16, a third side: ours with `--precision bf16` (less exact: its FID difference
from theirs is printed). Ours runs `--precision fp32` (the default: batch norms folded,
channels_last), theirs torch-fidelity's module as it is.
Then the peak memory for 10k vs 50k generated samples, ours and theirs: it may grow by the
feature matrix (N x D floats), not by the images.

The default extractor is `pixel-pool` (48 features, seconds on a CPU), which measures our
plumbing; `--extractor inception-v3-compat` measures the real thing (hours on 2 CPU cores
for 10k images: use a GPU).
Usage: python benchmarks/bench_fid.py [--extractor NAME] [--n 5000] [--repeats 3]
       OMP_NUM_THREADS=2 python benchmarks/bench_fid.py --extractor inception-v3-compat
           --n 64 --reference 64 --batch-size 32 --repeats 1 --skip-memory --bf16
           (CPU: minutes)
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

FEATURE_DIMS = {"pixel-pool": 48, "inception-v3-compat": 2048}


def make_inputs(root: Path, n_reference: int) -> tuple[Path, Path]:
    from PIL import Image

    from mixup_gan.checkpoint import save_checkpoint
    from mixup_gan.config import config_to_dict, load_config
    from mixup_gan.image.config import ImageConfig
    from mixup_gan.image.generator import build_image_nets

    config = load_config(None, ImageConfig, ["model.g_width=32", "model.latent_dim=64"])
    torch.manual_seed(0)
    G, _ = build_image_nets(config)
    checkpoint = save_checkpoint({"step": 0, "nets": {"generator": G.state_dict()},
                                  "optimizers": {}, "rng": None, "progress": {},
                                  "config": config_to_dict(config)}, root / "g.pt")
    folder = root / "reference"
    folder.mkdir()
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n_reference, 32, 32, 3), generator=g, dtype=torch.uint8)
    for i, image in enumerate(images):
        Image.fromarray(image.numpy()).save(folder / f"{i:05d}.png")
    return checkpoint, folder


def child(side: str, checkpoint: str, folder: str, n: int, extractor: str,
          batch_size: int) -> None:
    """One measurement; prints JSON {seconds, peak_mb, fid}."""
    import mixup_gan.fid  # noqa: F401  (registers pixel-pool with torch-fidelity)

    options = dict(batch_size=batch_size, verbose=False)
    start = time.perf_counter()
    if side.startswith("ours"):
        from mixup_gan.fid import evaluate
        from mixup_gan.image.generator import load_generator

        fid = evaluate(checkpoint, folder, n=n, feature_extractor=extractor, device="cpu",
                       seed=0, use_cache=False, load_generator=load_generator,
                       precision="bf16" if side == "ours-bf16" else "fp32",
                       **options)["metrics"]["fid"]
    else:
        import torch_fidelity
        from torch import nn

        from mixup_gan.fid.inception import resolve_inception_weights
        from mixup_gan.fid.inputs import ToUInt8RGB
        from mixup_gan.image.generator import load_generator

        G, latent_dim = load_generator(checkpoint)
        model = torch_fidelity.GenerativeModelModuleWrapper(
            nn.Sequential(G, ToUInt8RGB()), latent_dim, "normal", 0)
        weights = (str(resolve_inception_weights().path)
                   if extractor == "inception-v3-compat" else None)
        fid = torch_fidelity.calculate_metrics(
            input1=model, input1_model_num_samples=n, input2=folder, fid=True, cuda=False,
            feature_extractor=extractor, feature_extractor_weights_path=weights, cache=False,
            rng_seed=0, **options)["frechet_inception_distance"]
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "fid": fid}))


def measure(side, checkpoint, folder, n, extractor, batch_size=64) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", side, str(checkpoint),
                          str(folder), str(n), extractor, str(batch_size)],
                         capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--extractor", default="pixel-pool")
    parser.add_argument("--n", type=int, default=5000, help="generated samples, ours vs theirs")
    parser.add_argument("--reference", type=int, default=2000, help="reference folder images")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--bf16", action="store_true", help="also time ours in bfloat16")
    parser.add_argument("--skip-memory", action="store_true",
                        help="skip the 10k vs 50k memory part (for slow extractors)")
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        side, checkpoint, folder, n, extractor, batch_size = args.child
        return child(side, checkpoint, folder, int(n), extractor, int(batch_size))

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint, folder = make_inputs(Path(tmp), args.reference)
        sides = ["ours", "theirs"] + ["ours-bf16"] * args.bf16
        runs: dict[str, list[dict]] = {side: [] for side in sides}
        for round_ in range(args.repeats):  # alternate, and reverse the order each round
            for side in (sides if round_ % 2 == 0 else sides[::-1]):
                runs[side].append(measure(side, checkpoint, folder, args.n, args.extractor,
                                          args.batch_size))
        time_of = {s: statistics.median(r["seconds"] for r in runs[s]) for s in runs}
        peak_of = {s: statistics.median(r["peak_mb"] for r in runs[s]) for s in runs}
        print(f"extractor {args.extractor}: {args.n} generated vs {args.reference} reference "
              f"images (32x32), batch {args.batch_size}, CPU, {torch.get_num_threads()} "
              "threads; "
              f"median of {args.repeats} fresh processes each")
        images = args.n + args.reference
        theirs_fid = runs["theirs"][0]["fid"]
        for side in runs:
            fid = runs[side][0]["fid"]
            print(f"  {side:<9} {time_of[side]:7.2f} s ({images / time_of[side]:6.2f} images/s)"
                  f"  peak {peak_of[side]:7.0f} MB  FID {fid:.6f}  relative difference "
                  f"{abs(fid - theirs_fid) / abs(theirs_fid):.1e}")
        for side in sides[::2]:
            print(f"  time ratio {side}/theirs  {time_of[side] / time_of['theirs']:.3f}")
        print(f"  memory ratio ours/theirs {peak_of['ours'] / peak_of['theirs']:.3f}")

        if args.skip_memory:
            return
        dims = FEATURE_DIMS.get(args.extractor, 2048)
        print(f"peak memory for 10k vs 50k generated samples (the 40k more have {dims}-d "
              f"float32 features of {40_000 * dims * 4 / 2**20:.0f} MB; as uint8 images they "
              f"would take {40_000 * 3 * 32 * 32 / 2**20:.0f} MB):")
        for side in runs:
            small, large = (measure(side, checkpoint, folder, n, args.extractor)
                            for n in (10_000, 50_000))
            print(f"  {side:<7} {small['peak_mb']:5.0f} MB -> {large['peak_mb']:5.0f} MB "
                  f"(+{large['peak_mb'] - small['peak_mb']:.0f} MB)")


if __name__ == "__main__":
    main()
