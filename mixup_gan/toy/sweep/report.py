"""A sweep's results: every population's metrics rows gathered into results.jsonl/.csv, the
summary table (mean and spread over seeds of each setting's last row) and the figures."""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from pathlib import Path

from ...checkpoint import atomic_write
from ...config import ConfigError
from ...run_folder import RunFolder
from ..metrics import LIVE, METRICS, Metric
from .figures import save_sweep_figures
from .grid import SweepRun, group_name, setting_of


def write_results(root: Path, runs: list[SweepRun], groups: list[list[SweepRun]],
                  targets: dict[str, dict[str, float]] | None = None) -> None:
    """Collect every population's rows into results.jsonl / results.csv, then the summary
    table (summary.md, counting the seeds that reach `targets`) and the figures, all from
    these plain rows."""
    by_id = {r.id: r for r in runs}
    rows = []
    for members in groups:
        folder = RunFolder(root / "populations", group_name(members))
        for row in folder.read_metrics():
            run = by_id.get(row.get("run"))
            step = row.get("step")
            if run is None or not isinstance(step, int) or isinstance(step, bool):
                raise ConfigError(f"{folder.metrics}: a row of no run of this population, or "
                                  f"without a step ({str(row)[:60]}); the file is damaged")
            rows.append({**run.values, "data.name": run.config.data.name, **row})
    atomic_write(root / "results.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    columns = list(dict.fromkeys(k for r in rows for k in r))
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(root / "results.csv", table.getvalue())
    keys = [k for k in runs[0].values if k != "train.seed"]
    final = final_rows(rows)
    atomic_write(root / "summary.md", summary_table(keys, [r.id for r in runs], final, targets))
    save_sweep_figures(root, keys, final)


def mean_spread(values: list) -> str:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return "n/a"
    text = f"{statistics.mean(finite):.3g} ± {statistics.pstdev(finite):.2g}"
    missing = len(values) - len(finite)
    return text + (f" ({missing} n/a)" if missing else "")


def final_rows(rows: list[dict]) -> dict[str, dict]:
    """Each run's last logged row, by run id."""
    final: dict[str, dict] = {}
    for row in rows:
        if row["step"] >= final.get(row["run"], {"step": -1})["step"]:
            final[row["run"]] = row
    return final


def reaches(metric: Metric, value: float | None, target: float) -> bool:
    """Whether `value` is at least `target` where higher is better, at most where lower."""
    if value is None or not math.isfinite(value):
        return False
    return value >= target if metric.better == "higher" else value <= target


def summary_table(keys: list[str], ids: list[str], final: dict[str, dict],
                  targets: dict[str, dict[str, float]] | None = None) -> str:
    """Markdown: one line per setting (grid values but the seed), last-step metrics (every
    registered one, its header arrow saying which way is better) as mean ± std over seeds.
    A run with no high-quality sample has no reverse KL ("n/a"); a metric that applies to
    none of the sweep's data (the curve's shares on a ring and grid sweep) has no column.
    Runs with an EMA of G add the live G's metrics (`live_hq_share`) after the EMA's
    ("no EMA" for a setting without one: its scores are the live G's).
    With `targets` (data.name -> metric -> value), a metric's cell also counts the seeds
    that reach its target, `[3/5 ≥ 0.95]`, and a last column the seeds that reach all of
    their data's targets at once."""
    targets = targets or {}
    settings: dict[tuple, list[dict]] = {}
    for run_id in ids:
        if run_id in final:
            row = final[run_id]
            settings.setdefault(setting_of(row, keys), []).append(row)
    datasets = {row["data.name"] for done in settings.values() for row in done}
    metrics = [m for m in METRICS.values() if any(m.applies_to(d) for d in datasets)]
    rows = [row for done in settings.values() for row in done]
    columns = [(m.name, m) for m in metrics] + [  # the live G's too, in a sweep with an EMA
        (LIVE + m.name, m) for m in metrics if any(LIVE + m.name in row for row in rows)]
    extra = ["every target"] if targets else []
    lines = ["| " + " | ".join(keys + ["seeds", "step", *(f"{name} {m.arrow}"
                                                          for name, m in columns), *extra])
             + " |", "|" + "---|" * (len(keys) + 2 + len(columns) + len(extra))]
    for done in settings.values():
        wanted = targets.get(done[0]["data.name"], {})
        averaged = any(k.startswith(LIVE) for d in done for k in d)  # has an EMA of G
        cells = []
        for name, m in columns:
            cell = mean_spread([d.get(name) for d in done])
            if name.startswith(LIVE) and not averaged:
                cell = "no EMA"  # the setting's G is its sampler: the columns before
            if name in wanted:
                hits = sum(reaches(m, d.get(m.name), wanted[m.name]) for d in done)
                cell += f" [{hits}/{len(done)} {'≥' if m.better == 'higher' else '≤'} " \
                        f"{wanted[m.name]:g}]"
            cells.append(cell)
        if targets:
            every = sum(all(reaches(METRICS[k], d.get(k), v) for k, v in wanted.items())
                        for d in done)
            cells.append(f"{every}/{len(done)}" if wanted else "n/a")
        step = max(d["step"] for d in done)
        setting = [done[0][k] for k in keys]  # as written: a list shows as [0.5, 0.999]
        lines.append("| " + " | ".join([*map(str, setting), str(len(done)), str(step), *cells])
                     + " |")
    return "\n".join(lines) + "\n"
