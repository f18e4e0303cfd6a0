"""A metric against the training step for sweeps side by side: one thin line per run, the mean
over a sweep's runs thick, one colour per sweep. For comparing recipes trained as separate
sweeps (each folder's `results.jsonl`, as `mixup-gan sweep` or `--report` writes it), or
the settings of one sweep: `--split KEY` gives each value of a grid key its own colour.
Folders given the same LABEL are one group (a recipe's seeds run in several sittings);
several metrics (`--metric hq_share live_hq_share`: a sweep's EMA of G and its live G) are
drawn side by side, a colour per group and metric.

Usage: python scripts/sweep_curves.py [LABEL=]FOLDER ... --out curves.png
           [--metric hq_share [live_hq_share ...]] [--split loss.gradient_penalty]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def result_rows(folder: Path, take: Callable[[dict], Any]) -> list:
    """`take(row)` for each row of a sweep folder's results.jsonl, in order; a ValueError
    naming the file when it is missing, or the line that is no JSON or that `take` cannot
    read (a KeyError, TypeError, ...: not a sweep's result row)."""
    path = folder / "results.jsonl"
    if not path.is_file():
        raise ValueError(f"{path}: not found (`mixup-gan sweep --report` writes it)")
    taken = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            taken.append(take(json.loads(line)))
        except (ValueError, TypeError, KeyError, AttributeError):
            raise ValueError(f"{path}: line {number} is not a sweep's result row") from None
    return taken


def read_curves(folder: Path, metric: str) -> dict[str, list[tuple[int, float]]]:
    """Each run's (step, metric) points, by run id; a row without the metric (a diverged run,
    or no high-quality sample for the reverse KL) is left out."""
    def point(row: dict) -> tuple[str, tuple[int, float] | None]:
        hash(row["run"])  # a dict key below: an unhashable id is a damaged row
        value = row.get(metric)
        return row["run"], None if value is None else (row["step"], float(value))

    curves: dict[str, list[tuple[int, float]]] = {}
    runs: dict[str, None] = {}  # every run id, in order
    for run, at in result_rows(folder, point):
        runs.setdefault(run)
        if at is not None:
            curves.setdefault(run, []).append(at)
    path = folder / "results.jsonl"
    if not curves:
        raise ValueError(f"{path}: no row has {metric!r}")
    missing = [run for run in runs if run not in curves]
    if missing:  # said, not only counted in the legend
        print(f"sweep_curves: {path}: {len(missing)} of {len(runs)} runs have no {metric!r} "
              f"at any step and are not drawn: {', '.join(missing)}", file=sys.stderr)
    return curves


def run_values(folder: Path, key: str) -> dict[str, str]:
    """Each run's value of `key` (a grid key its rows carry), by run id."""
    values = {}
    for row in result_rows(folder, dict):
        if key not in row:
            raise ValueError(f"{folder / 'results.jsonl'}: no {key!r} in its rows (--split "
                             "takes a key of the sweep's grid or cases)")
        values[row["run"]] = str(row[key])
    return values


def labelled(given: str) -> tuple[str, str]:
    """(label, folder) of a `[LABEL=]FOLDER` argument; the label defaults to the folder's
    name. A folder whose name holds "=" is a folder, not a label: an existing path, or a
    "=" after a "/" (`runs/a=b`)."""
    label, _, folder = given.partition("=")
    if not folder or Path(given).exists() or "/" in label:
        label, folder = "", given
    return label or Path(folder).name, folder


def checked_out(given: str) -> Path:
    """The --out argument as a path to write a PNG to: a ValueError naming it otherwise."""
    out = Path(given)
    if out.suffix.lower() != ".png":
        raise ValueError(f"--out {given}: not a .png file name")
    if not out.parent.is_dir():
        raise ValueError(f"--out {given}: {out.parent} is not a folder")
    if out.is_dir():
        raise ValueError(f"--out {given}: is a folder")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", help="sweep folders, optionally LABEL=FOLDER")
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.add_argument("--metric", nargs="+", default=["hq_share"])
    parser.add_argument("--split", metavar="KEY", help="a colour per value of this grid key")
    args = parser.parse_args(argv)
    try:
        out = checked_out(args.out)
    except ValueError as exc:
        print(f"sweep_curves: error: {exc}", file=sys.stderr)
        return 2
    groups: dict[str, dict] = {}  # label -> curves by (folder, run): a label's folders merge
    for metric in args.metric:
        shown = f" {metric}" if len(args.metric) > 1 else ""
        for given in args.folders:
            label, folder = labelled(given)
            try:
                curves = read_curves(Path(folder), metric)
                values = run_values(Path(folder), args.split) if args.split else {}
            except ValueError as exc:
                print(f"sweep_curves: error: {exc}", file=sys.stderr)
                return 2
            for run, points in curves.items():
                where = label + shown
                if args.split:
                    where = f"{label} {args.split.split('.', 1)[-1]} {values[run]}{shown}"
                groups.setdefault(where, {})[(folder, run)] = points
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (label, curves) in enumerate(groups.items()):
        color = f"C{i}"
        for points in curves.values():
            ax.plot(*zip(*points, strict=True), color=color, alpha=0.3, lw=0.8)
        steps = sorted({s for points in curves.values() for s, _ in points})
        mean = [statistics.mean(v for points in curves.values() for s, v in points if s == step)
                for step in steps]
        ax.plot(steps, mean, color=color, lw=2.5, label=f"{label} (mean of {len(curves)} runs)")
    ax.set(xlabel="iteration", ylabel=" / ".join(args.metric))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    try:
        fig.savefig(out, dpi=110)
    except OSError as exc:
        print(f"sweep_curves: error: --out {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    finally:
        plt.close(fig)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
