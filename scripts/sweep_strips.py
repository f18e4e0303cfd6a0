"""Samples over training for sweeps side by side: for each dataset, one row per
`[LABEL=]FOLDER` with one seed's samples at the sweep's `eval.snapshots` steps (its
populations' snapshots.pt), in the order the folders are given. For recipes trained as
separate sweeps (the paper's recipe above the shipped one); folders given the same LABEL are
one recipe's sittings, and the first that holds the seed is drawn.

Usage: python scripts/sweep_strips.py [LABEL=]FOLDER ... --out strips.png [--seed 0]
           [--data ring grid]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweep_curves import labelled  # noqa: E402

from mixup_gan.toy.plots import Snapshot, save_grid  # noqa: E402
from mixup_gan.toy.sweep.figures import kept_snapshots  # noqa: E402


def seeded_runs(folder: Path, seed: int) -> dict[str, str]:
    """The run id of each dataset's run with `seed` in a sweep folder, by data name, in the
    order of its results.jsonl."""
    path = folder / "results.jsonl"
    if not path.is_file():
        raise ValueError(f"{path}: not found (`mixup-gan sweep --report` writes it)")
    runs: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            row = json.loads(line)
            if row["train.seed"] == seed:
                runs.setdefault(row["data.name"], row["run"])
        except (ValueError, TypeError, KeyError):
            raise ValueError(f"{path}: line {number} is not a sweep's result row") from None
    if not runs:
        raise ValueError(f"{path}: no run with seed {seed} (--seed picks another)")
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", help="sweep folders, optionally LABEL=FOLDER")
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.add_argument("--seed", type=int, default=0, help="whose samples (default 0)")
    parser.add_argument("--data", nargs="+", help="only these datasets (default: all)")
    args = parser.parse_args(argv)
    drawn: dict[str, dict[str, tuple]] = {}  # data name -> label -> (real, snapshots, limit)
    try:
        for given in args.folders:
            label, folder = labelled(given)
            runs = seeded_runs(Path(folder), args.seed)
            kept, reals, limits = kept_snapshots(Path(folder))
            for data, run in runs.items():
                if args.data and data not in args.data:
                    continue
                if run not in kept:
                    raise ValueError(f"{folder}: run {run} has no snapshots.pt entry (the "
                                     "sweep's eval.snapshots keeps the samples over training)")
                steps = sorted(kept[run])
                drawn.setdefault(data, {}).setdefault(label, (
                    reals[run], [Snapshot(s, kept[run][s]) for s in steps], limits[run]))
        missing = [d for d in args.data or [] if d not in drawn]
        if missing:
            raise ValueError(f"--data {' '.join(missing)}: no folder has a run of it with seed "
                             f"{args.seed}")
    except ValueError as exc:
        print(f"sweep_strips: error: {exc}", file=sys.stderr)
        return 2
    rows = [(f"{label}\n{data}", real, snaps) for data, by_label in drawn.items()
            for label, (real, snaps, _) in by_label.items()]
    limits = [limit for by_label in drawn.values() for _, _, limit in by_label.values()]
    save_grid(Path(args.out), rows, limits, title=f"samples over training, seed {args.seed}")
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
