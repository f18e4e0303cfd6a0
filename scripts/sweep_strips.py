"""Samples over training for sweeps side by side: for each dataset, one row per label with
one seed's samples at the sweeps' `eval.snapshots` steps (their populations'
snapshots.pt), in the order the folders are given. For recipes trained as separate sweeps
(the paper's recipe above the shipped one). Folders given the same LABEL are one recipe's
sittings: the seed's run may be in any one of them. Each folder holds one setting per
dataset and seed (a sweep of several cases draws them itself, in its own strips.png).

Usage: python scripts/sweep_strips.py [LABEL=]FOLDER ... --out strips.png [--seed 0]
           [--data ring grid]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweep_curves import checked_out, labelled, result_rows  # noqa: E402

from mixup_gan.checkpoint import CheckpointError  # noqa: E402
from mixup_gan.toy.plots import Snapshot, save_grid  # noqa: E402
from mixup_gan.toy.sweep.figures import kept_snapshots  # noqa: E402


def seeded_runs(folder: Path, seed: int) -> dict[str, str]:
    """The run id of each dataset's run with `seed` in a sweep folder, by data name, in the
    order of its results.jsonl; a ValueError for a folder that holds two settings of one."""
    def seeded(row: dict) -> tuple[str, str] | None:
        if row["train.seed"] != seed:
            return None
        hash(row["data.name"])  # a dict key below: an unhashable name is a damaged row
        return row["data.name"], row["run"]

    runs: dict[str, list[str]] = {}
    for found in result_rows(folder, seeded):
        if found is not None and found[1] not in runs.get(found[0], []):
            runs.setdefault(found[0], []).append(found[1])
    for data, ids in runs.items():
        if len(ids) > 1:
            raise ValueError(f"{folder}: {len(ids)} runs of {data} with seed {seed} (several "
                             "settings: the sweep's own strips.png draws a row for each)")
    return {data: ids[0] for data, ids in runs.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", help="sweep folders, optionally LABEL=FOLDER")
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.add_argument("--seed", type=int, default=0, help="whose samples (default 0)")
    parser.add_argument("--data", nargs="+", help="only these datasets (default: all)")
    args = parser.parse_args(argv)
    drawn: dict[str, dict[str, tuple]] = {}  # data name -> label -> (real, snapshots, limit)
    where: dict[tuple[str, str], str] = {}  # (data, label) -> the folder drawn
    folders: dict[str, list[str]] = {}  # label -> its folders
    try:
        out = checked_out(args.out)
        for given in args.folders:
            label, folder = labelled(given)
            folders.setdefault(label, []).append(folder)
            runs = seeded_runs(Path(folder), args.seed)
            kept, reals, limits = kept_snapshots(Path(folder))
            for data, run in runs.items():
                if args.data and data not in args.data:
                    continue
                if (data, label) in where:
                    raise ValueError(f"{where[data, label]} and {folder}: both have {data} with "
                                     f"seed {args.seed} under the label {label!r} (give each "
                                     "folder its own LABEL=)")
                if run not in kept:
                    raise ValueError(f"{folder}: run {run} has no snapshots.pt entry (the "
                                     "sweep's eval.snapshots keeps the samples over training)")
                where[data, label] = folder
                steps = sorted(kept[run])
                drawn.setdefault(data, {})[label] = (
                    reals[run], [Snapshot(s, kept[run][s]) for s in steps], limits[run])
        for label, given in folders.items():
            if not any(label in by_label for by_label in drawn.values()):
                raise ValueError(f"{', '.join(given)}: no run with seed {args.seed}"
                                 + (f" of {' '.join(args.data)}" if args.data else "")
                                 + " (--seed picks another)")
    except (ValueError, CheckpointError) as exc:
        print(f"sweep_strips: error: {exc}", file=sys.stderr)
        return 2
    for data in args.data or drawn:  # a label without one of the datasets: said, not hidden
        absent = [label for label in folders if label not in drawn.get(data, {})]
        if absent:
            print(f"sweep_strips: no {data} run with seed {args.seed} in {', '.join(absent)}: "
                  "no row for it", file=sys.stderr)
    rows = [(f"{label}\n{data}", real, snaps) for data, by_label in drawn.items()
            for label, (real, snaps, _) in by_label.items()]
    limits = [limit for by_label in drawn.values() for _, _, limit in by_label.values()]
    try:
        save_grid(out, rows, limits, title=f"samples over training, seed {args.seed} "
                  "(orange: the data, blue: generated)")
    except OSError as exc:
        print(f"sweep_strips: error: --out {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
