"""Sweep figures from plain result rows. With alpha in the grid: final metrics against alpha
with spread over seeds (summary.png) and the first seed's final samples, one column per alpha
(snapshots.png). Otherwise (an ablation of cases): every seed's final metrics per setting
(summary.png) and every seed's final samples, one row per setting (snapshots.png). Samples
come from the populations' final_samples.pt, drawn over the points each run was judged on.
With `eval.snapshots`, strips.png: the first seed's samples at those steps, one row per
setting (the populations' snapshots.pt).
The metrics drawn are the registry's (`toy.metrics.drawn`) for the sweep's data: modes
covered and the high-quality share where the data has modes, the Frechet distance and the
curve's shares on the swiss roll."""

from __future__ import annotations

import statistics
from pathlib import Path

from ...checkpoint import CheckpointError, load_checkpoint
from ..data import DATASETS, make_distribution
from ..metrics import METRICS, Metric, drawn
from ..plots import Snapshot, plt, save_grid
from .grid import setting_of

X_KEY = "loss.alpha"


def save_sweep_figures(root: Path, keys: list[str], final: dict[str, dict]) -> None:
    """summary.png and snapshots.png; `keys`: the grid keys but the seed; `final`: each run's
    last row (grid values included), by run id."""
    if not final:
        return
    rows = list(final.values())
    save_strips(root, rows, keys)
    if X_KEY not in keys:
        save_settings_figure(root / "summary.png", rows, keys)
        save_seed_snapshots(root, rows, keys)
        return
    others = [k for k in keys if k != X_KEY]
    combos = list(dict.fromkeys(setting_of(r, others) for r in rows))
    save_metric_figure(root / "summary.png", rows, others, combos)
    save_snapshot_figure(root, rows, others, combos)


def figure_metrics(datasets) -> list[Metric]:
    """The registry's drawn metrics that apply to any of the named datasets, in registry
    order (a point file has neither modes nor a curve: the Frechet distance)."""
    names = set()
    for name in datasets:
        has_modes = name in DATASETS and make_distribution(name).has_modes
        names |= {m.name for m in drawn(has_modes) if m.applies_to(name)}
    return [m for m in METRICS.values() if m.name in names]


def _names(keys: list[str]) -> dict[str, str]:
    """What labels call each key: its shortest ending that no other key of `keys` shares
    (`alpha` for `loss.alpha`; `lr_schedule.kind` and `gradient_penalty_schedule.kind` for
    the two schedules' kinds side by side)."""
    def ending(key: str, n: int) -> str:
        return ".".join(key.split(".")[-n:])

    names = {}
    for key in keys:
        n = 1
        while n < key.count(".") + 1 and any(ending(key, n) == ending(other, n)
                                             for other in keys if other != key):
            n += 1
        names[key] = ending(key, n)
    return names


def _label(keys: list[str], combo: tuple, skip: str = "") -> str:
    # a list without spaces, so stacking a label's keys at ", " keeps it on one line
    shown = ["[" + ",".join(map(str, v)) + "]" if isinstance(v, tuple) else v for v in combo]
    names = _names(keys)
    return ", ".join(str(v) if k == "data.name" else f"{names[k]} {v}"
                     for k, v in zip(keys, shown, strict=True) if k != skip)


def _label_dataset_column(axes, col: int, dataset: str, metrics: list[Metric]) -> None:
    """A dataset's column of metric panels (one row per drawn metric): title, axis labels, a
    share's 0-1 range, a log axis, a dashed line at the dataset's mode count."""
    dist = make_distribution(dataset) if dataset != "points" else None
    for row, metric in enumerate(metrics):
        if not metric.applies_to(dataset):
            axes[row][col].clear()  # a curve metric on a ring: nothing to draw
            axes[row][col].axis("off")
            axes[row][col].text(0.5, 0.5, f"{metric.label}:\nn/a for {dataset}",
                                ha="center", va="center", fontsize=8, color="grey")
            continue
        axes[row][col].set_ylabel(metric.label)
        if metric.scale == "modes" and dist is not None and dist.has_modes:
            axes[row][col].axhline(metric.most(dist), color="grey", lw=0.8, ls="--")
        elif metric.scale == "share":
            axes[row][col].set_ylim(0, 1.02)
        elif metric.scale == "log" and axes[row][col].has_data():
            axes[row][col].set_yscale("log")
    axes[0][col].set_title(dataset)


def save_metric_figure(path: Path, rows: list[dict], keys: list[str], combos) -> None:
    """The drawn metrics vs alpha (modes covered and the high-quality share on data with
    modes), mean +- std over seeds."""
    datasets = list(dict.fromkeys(r["data.name"] for r in rows))
    metrics = figure_metrics(datasets)
    fig, axes = plt.subplots(len(metrics), len(datasets), dpi=120, squeeze=False,
                             figsize=(4.2 * len(datasets), 3 * len(metrics)))
    for col, dataset in enumerate(datasets):
        for combo in combos:
            chosen = [r for r in rows if r["data.name"] == dataset
                      and setting_of(r, keys) == combo]
            if not chosen:
                continue
            alphas = sorted({r[X_KEY] for r in chosen})
            for row, metric in enumerate(m.name for m in metrics):
                means, spreads = [], []
                for alpha in alphas:
                    values = [r.get(metric) for r in chosen if r[X_KEY] == alpha]
                    values = [v for v in values if v is not None]
                    means.append(statistics.mean(values) if values else float("nan"))
                    spreads.append(statistics.pstdev(values) if len(values) > 1 else 0.0)
                axes[row][col].errorbar(alphas, means, yerr=spreads, marker="o", ms=4,
                                        capsize=3,
                                        label=_label(keys, combo, skip="data.name") or "runs")
        for row in range(len(metrics)):
            axes[row][col].set_xlabel("alpha (0 = ERM)")
            axes[row][col].grid(alpha=0.3)
        first = next(row for row, m in enumerate(metrics) if m.applies_to(dataset))
        axes[first][col].legend(fontsize=8)
        _label_dataset_column(axes, col, dataset, metrics)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _pictured(root: Path, name: str, pick) -> tuple[dict, dict, dict]:
    """From each population's `name` file (final_samples.pt, snapshots.pt): by run id, what
    `pick(state, k)` takes for member k, the points it was judged on, its plot limit."""
    taken, reals, limits = {}, {}, {}
    for path in sorted((root / "populations").glob(f"*/{name}")):
        state = load_checkpoint(path)
        try:
            for k, run_id in enumerate(state["ids"]):
                taken[run_id], reals[run_id] = pick(state, k), state["real"][k]
                limits[run_id] = state["limits"][k]
        except (KeyError, IndexError, TypeError):
            raise CheckpointError(f"{path}: not a sweep's {name} (damaged, or written by "
                                  "something else)") from None
    return taken, reals, limits


def kept_snapshots(root: Path) -> tuple[dict, dict, dict]:
    """Each run's samples at its `eval.snapshots` steps ({step: points}), the points it was
    judged on, its plot limit, by run id (strips.png; scripts/sweep_strips.py)."""
    return _pictured(root, "snapshots.pt", lambda state, k: {
        step: fake[k] for step, fake in state["steps"].items()})


def _final_samples(root: Path) -> tuple[dict, dict, dict]:
    """Each finished run's final samples, the points it was judged on, its plot limit."""
    return _pictured(root, "final_samples.pt", lambda state, k: state["fake"][k])


def save_snapshot_figure(root: Path, rows: list[dict], keys: list[str], combos) -> None:
    """Final samples of the first seed: one row per setting, one column per alpha."""
    samples, reals, limits = _final_samples(root)
    first_seed = rows[0]["train.seed"]
    alphas = sorted({r[X_KEY] for r in rows})
    grid_rows, row_limits = [], []
    for combo in combos:
        chosen = {r[X_KEY]: r for r in rows if r["train.seed"] == first_seed
                  and setting_of(r, keys) == combo}
        if not chosen or any(r["run"] not in samples for r in chosen.values()):
            continue
        some = next(iter(chosen.values()))["run"]
        row_limits.append(limits[some])
        snaps = [Snapshot(chosen[a]["step"], samples[chosen[a]["run"]], title=f"alpha {a}")
                 for a in alphas if a in chosen]
        grid_rows.append((_label(keys, combo), reals[some], snaps))
    if grid_rows:
        save_grid(root / "snapshots.png", grid_rows, row_limits,
                  title=f"final samples, seed {first_seed}; columns: alpha {alphas}")


def _settings(rows: list[dict], keys: list[str]) -> dict[tuple, list[dict]]:
    """Rows by setting (the values of `keys`), in the sweep's order, each seed's row in turn."""
    settings: dict[tuple, list[dict]] = {}
    for row in rows:
        settings.setdefault(setting_of(row, keys), []).append(row)
    return settings


def save_settings_figure(path: Path, rows: list[dict], keys: list[str]) -> None:
    """The drawn metrics per setting (modes covered and the high-quality share on data with
    modes): one dot per seed, a bar at the mean; one column per dataset."""
    others = [k for k in keys if k != "data.name"]
    datasets = list(dict.fromkeys(r["data.name"] for r in rows))
    metrics = figure_metrics(datasets)
    settings = _settings(rows, others)
    fig, axes = plt.subplots(len(metrics), len(datasets), squeeze=False, dpi=120,
                             figsize=(max(3.0, 1.3 * len(settings)) * len(datasets),
                                      3.25 * len(metrics)))
    for col, dataset in enumerate(datasets):
        for row, metric in enumerate(m.name for m in metrics):
            ax = axes[row][col]
            for x, done in enumerate(settings.values()):
                values = [r[metric] for r in done if r["data.name"] == dataset
                          and r.get(metric) is not None]
                if values:
                    ax.bar(x, statistics.mean(values), color="C0", alpha=0.35, width=0.6)
                    ax.plot([x] * len(values), values, "o", color="C0", ms=4)
            ax.set_xticks(range(len(settings)), ["\n".join(map(str, s)) for s in settings],
                          fontsize=7)
            ax.set_xlabel(" / ".join(_names(others).values()), fontsize=8)
            ax.grid(alpha=0.3, axis="y")
        _label_dataset_column(axes, col, dataset, metrics)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def save_seed_snapshots(root: Path, rows: list[dict], keys: list[str]) -> None:
    """Every seed's final samples: one row per setting, one column per seed."""
    samples, reals, limits = _final_samples(root)
    grid_rows, row_limits = [], []
    for setting, done in _settings(rows, keys).items():
        done = [r for r in done if r["run"] in samples]
        if done:
            row_limits.append(limits[done[0]["run"]])
            snaps = [Snapshot(r["step"], samples[r["run"]], title=f"seed {r['train.seed']}")
                     for r in done]
            grid_rows.append((_label(keys, setting).replace(", ", "\n"),
                              reals[done[0]["run"]], snaps))
    if grid_rows:
        save_grid(root / "snapshots.png", grid_rows, row_limits, title="final samples")


def save_strips(root: Path, rows: list[dict], keys: list[str]) -> None:
    """The first seed's samples at each `eval.snapshots` step, one row per setting (grid
    values but the seed): how each setting's samples change over training."""
    kept, reals, limits = kept_snapshots(root)
    first_seed = rows[0]["train.seed"]
    grid_rows, row_limits = [], []
    for setting, done in _settings(rows, keys).items():
        first = next((r for r in done if r["train.seed"] == first_seed and r["run"] in kept),
                     None)
        if first is None:
            continue
        steps = sorted(kept[first["run"]])
        grid_rows.append((_label(keys, setting).replace(", ", "\n"), reals[first["run"]],
                          [Snapshot(step, kept[first["run"]][step]) for step in steps]))
        row_limits.append(limits[first["run"]])
    if grid_rows:
        save_grid(root / "strips.png", grid_rows, row_limits,
                  title=f"samples over training, seed {first_seed}")
