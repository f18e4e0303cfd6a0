"""Pictures: axes that show the data (issue 14's flat high-quality panel), per-row limits."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
import torch

from mixup_gan.toy import plots


@pytest.fixture
def closed_figures(monkeypatch):
    """The figures the plot functions close, kept for inspection."""
    figures, close = [], plt.close

    def keep(fig=None):
        figures.append(fig)
        close(fig)

    monkeypatch.setattr(plots.plt, "close", keep)
    return figures


@pytest.mark.parametrize(("shares", "top"), [
    ([0.0, 0.01, 0.03], 1.15 * 0.03),  # a few percent fills the panel
    ([0.0, 0.0], 0.01),                # all zero: still a visible axis
    ([0.2, 0.95], 1.02),               # never above 1
])
def test_high_quality_panel_is_scaled_to_the_shares(tmp_path, closed_figures, shares, top):
    rows = [{"step": 100 * i, "modes": 8, "hq_share": s} for i, s in enumerate(shares)]
    plots.save_metrics_plot(tmp_path / "m.png", rows, n_modes=8)
    axes = closed_figures[0].axes
    assert axes[0].get_ylim() == (0, 8.5)
    assert axes[1].get_ylim() == pytest.approx((0, top))
    assert (tmp_path / "m.png").stat().st_size > 0


def test_a_run_with_an_ema_draws_its_live_generator_beside_it(tmp_path, closed_figures):
    rows = [{"step": 100 * i, "modes": 8, "hq_share": s, "live_modes": 7, "live_hq_share": t}
            for i, (s, t) in enumerate([(0.02, 0.01), (0.03, 0.05)])]
    plots.save_metrics_plot(tmp_path / "m.png", rows, n_modes=8)
    modes, shares = closed_figures[0].axes
    drawn = {line.get_label(): list(line.get_ydata()) for line in shares.lines}
    assert drawn == {"EMA of G": [0.02, 0.03], "live G": [0.01, 0.05]}
    assert shares.get_ylim() == pytest.approx((0, 1.15 * 0.05))  # the scale fits both
    assert [line.get_label() for line in modes.lines][:2] == ["EMA of G", "live G"]
    plots.save_metrics_plot(tmp_path / "n.png", [{k: v for k, v in r.items()
                                                   if not k.startswith("live_")} for r in rows], 8)
    assert len(closed_figures[1].axes[1].lines) == 1  # no EMA, one line


def test_a_late_ema_is_marked_where_it_starts(tmp_path, closed_figures):
    rows = [{"step": 100 * i, "modes": 8, "hq_share": 0.5, "live_modes": 8, "live_hq_share": 0.4}
            for i in range(4)]
    plots.save_metrics_plot(tmp_path / "m.png", rows, n_modes=8, ema_start=150)
    plots.save_metrics_plot(tmp_path / "n.png", rows, n_modes=8)  # an EMA from the start
    plots.save_metrics_plot(tmp_path / "o.png", rows, n_modes=8, ema_start=15000)  # never began
    for ax in closed_figures[0].axes:
        marks = [line for line in ax.lines if line.get_label() == "EMA starts"]
        assert [list(line.get_xdata()) for line in marks] == [[150, 150]]
        assert "EMA starts" in [t.get_text() for t in ax.get_legend().get_texts()]
    for figure in closed_figures[1:]:
        assert all(line.get_label() != "EMA starts" for ax in figure.axes for line in ax.lines)
    assert closed_figures[2].axes[0].get_xlim()[1] < 1000  # not stretched to an unreached step


def test_grid_rows_keep_their_own_limits(tmp_path, closed_figures):
    real, fake = torch.zeros(5, 2), torch.ones(5, 2)
    rows = [("ring", real, [plots.Snapshot(1, fake)]),
            ("swiss roll", real, [plots.Snapshot(1, fake), plots.Snapshot(2, fake)])]
    plots.save_grid(tmp_path / "g.png", rows, [1.5, 20.0])
    axes = closed_figures[0].axes
    assert [ax.get_xlim() for ax in axes if ax.axison] == [(-1.5, 1.5), (-20, 20), (-20, 20)]
    plots.save_grid(tmp_path / "h.png", rows, 3.0)  # one limit for every row
    assert {ax.get_xlim() for ax in closed_figures[1].axes if ax.axison} == {(-3.0, 3.0)}


def test_a_panel_says_how_many_points_fell_off_it(tmp_path, closed_figures):
    """An ERM run that collapsed far away leaves an empty panel; the panel says so."""
    inside, far = torch.zeros(90, 2), torch.full((10, 2), 5.0)
    snaps = [plots.Snapshot(1, inside), plots.Snapshot(2, torch.cat([inside, far])),
             plots.Snapshot(3, far), plots.Snapshot(4, torch.cat([inside.repeat(3, 1)[:299],
                                                                 far[:1]]))]
    plots.save_strip(tmp_path / "s.png", inside, snaps, limit=1.5)
    notes = [[t.get_text() for t in ax.texts] for ax in closed_figures[0].axes]
    assert notes == [[], ["10% off the plot"], ["100% off the plot"], ["<1% off the plot"]]


def test_sweep_curves_draws_each_run_and_the_mean_per_sweep(tmp_path, closed_figures, capsys):
    """scripts/sweep_curves.py: a thin line per run, the mean over runs per step, one colour
    per sweep; a row without the metric is left out, a run without it at every step named
    on stderr; a folder without results exits 2."""
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("sweep_curves", "scripts/sweep_curves.py")
    curves = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(curves)
    rows = [("a", 1, 0.1), ("a", 2, 0.5), ("b", 1, 0.3), ("b", 2, None), ("b", 3, 0.9)]
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.jsonl").write_text("".join(
            json.dumps({"run": run, "step": step, "hq_share": v}) + "\n" for run, step, v in rows))
    assert curves.read_curves(tmp_path / "one", "hq_share") == {
        "a": [(1, 0.1), (2, 0.5)], "b": [(1, 0.3), (3, 0.9)]}
    out = tmp_path / "curves.png"
    assert curves.main([f"first={tmp_path / 'one'}", str(tmp_path / "two"), "--out",
                        str(out)]) == 0
    assert out.stat().st_size > 0
    lines = closed_figures[-1].axes[0].get_lines()
    assert len(lines) == 6  # 2 runs + the mean, per sweep
    mean = lines[2]
    assert list(mean.get_xdata()) == [1, 2, 3]
    assert list(mean.get_ydata()) == pytest.approx([0.2, 0.5, 0.9])
    assert mean.get_label() == "first (mean of 2 runs)" and lines[5].get_label().startswith("two")
    assert "not drawn" not in capsys.readouterr().err  # every run has the metric somewhere
    with (tmp_path / "two" / "results.jsonl").open("a") as f:  # a run with no value at all
        f.write(json.dumps({"run": "c", "step": 1, "hq_share": None}) + "\n")
    assert set(curves.read_curves(tmp_path / "two", "hq_share")) == {"a", "b"}
    assert ("two/results.jsonl: 1 of 3 runs have no 'hq_share' at any step and are not drawn: c"
            in capsys.readouterr().err)
    assert curves.main([str(tmp_path / "none"), "--out", str(out)]) == 2
    assert "none/results.jsonl: not found" in capsys.readouterr().err
    (tmp_path / "a=b").mkdir()  # a folder whose name holds "=" is a folder, not a label
    (tmp_path / "a=b" / "results.jsonl").write_text('{"run": "a", "step": 1}\nnot json\n')
    assert curves.main([str(tmp_path / "a=b"), "--out", str(out)]) == 2
    assert "a=b/results.jsonl: line 2 is not a sweep's result row" in capsys.readouterr().err
    assert curves.labelled("runs/c=d") == ("c=d", "runs/c=d")  # a "=" after a "/": a folder
    assert curves.labelled("lr 0.1=runs/c") == ("lr 0.1", "runs/c")
    for bad, message in (("c.txt", "not a .png file name"), ("no/c.png", "no is not a folder"),
                         ("", "not a .png file name")):
        assert curves.main([str(tmp_path / "one"), "--out", bad]) == 2
        assert capsys.readouterr().err == f"sweep_curves: error: --out {bad}: {message}\n"
    assert curves.main([str(tmp_path / "one"), "--out", str(tmp_path / "one")]) == 2


def test_a_modeless_runs_plot_draws_the_metrics_its_rows_hold(tmp_path, closed_figures):
    """A point file's rows hold the Frechet distance only; a swiss roll's also the curve's
    shares: no empty panel for a metric the data does not take."""
    point_rows = [{"step": s, "d_loss": 1.0, "g_loss": 0.5, "frechet": 0.1} for s in (1, 2)]
    roll_rows = [{**r, "near_curve": 0.5, "curve_covered": 0.9} for r in point_rows]
    for rows in (point_rows, roll_rows):
        plots.save_metrics_plot(tmp_path / "m.png", rows, n_modes=None)
    assert [[ax.get_ylabel() for ax in fig.axes] for fig in closed_figures] == [
        ["mean loss", "2D Frechet distance"],
        ["mean loss", "2D Frechet distance", "share near the curve", "share of the curve covered"]]


def test_a_sweep_figure_draws_each_datasets_metrics_and_marks_the_rest(tmp_path,
                                                                     closed_figures):
    """Ring and swiss roll side by side: one row per metric either takes; a panel whose
    metric the column's data does not take is switched off and says so."""
    from mixup_gan.toy.sweep.figures import save_metric_figure, save_settings_figure

    ring = {"data.name": "ring", "modes": 8, "hq_share": 0.9, "frechet": 0.1}
    roll = {"data.name": "swissroll", "frechet": 0.2, "near_curve": 0.5, "curve_covered": 0.8}
    rows = [{**r, "loss.alpha": a, "train.seed": 0, "lr": "linear"}
            for r in (ring, roll) for a in (0.0, 0.2)]
    save_metric_figure(tmp_path / "a.png", rows, ["data.name"], [("ring",), ("swissroll",)])
    save_settings_figure(tmp_path / "b.png", [r for r in rows if r["data.name"] == "swissroll"],
                         ["lr", "data.name"])
    mixed, alone = closed_figures
    labels = ["modes covered", "high-quality share", "2D Frechet distance",
              "share near the curve", "share of the curve covered"]
    grid = [mixed.axes[i:i + 2] for i in range(0, 10, 2)]  # rows of (ring, swissroll)
    assert [row[0].get_ylabel() or None for row in grid] == [*labels[:3], None, None]
    assert [row[0].axison for row in grid] == [True, True, True, False, False]
    assert [row[1].axison for row in grid] == [False, False, True, True, True]
    assert "n/a for ring" in grid[3][0].texts[0].get_text()
    assert grid[0][0].get_title() == "ring" and grid[0][1].get_title() == "swissroll"
    assert [ax.get_ylabel() for ax in alone.axes] == labels[2:]


def test_sweep_curves_splits_one_sweep_by_a_grid_key(tmp_path, closed_figures, capsys):
    """--split KEY: one colour (and mean) per value of the key within a folder; a key the
    rows do not carry exits 2 naming it."""
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("sweep_curves", "scripts/sweep_curves.py")
    curves = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(curves)
    rows = [("a", 0.0, 1, 0.1), ("a", 0.0, 2, 0.3), ("b", 0.1, 1, 0.5), ("b", 0.1, 2, 0.9),
            ("c", 0.1, 1, 0.7), ("c", 0.1, 2, 0.7)]
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "results.jsonl").write_text("".join(json.dumps(
        {"run": r, "loss.gradient_penalty": g, "step": t, "near_curve": v}) + "\n"
        for r, g, t, v in rows))
    out = tmp_path / "c.png"
    assert curves.main([f"roll={tmp_path / 's'}", "--out", str(out), "--metric", "near_curve",
                        "--split", "loss.gradient_penalty"]) == 0
    lines = closed_figures[-1].axes[0].get_lines()
    means = [line for line in lines if "mean" in line.get_label()]
    assert [m.get_label() for m in means] == ["roll gradient_penalty 0.0 (mean of 1 runs)",
                                              "roll gradient_penalty 0.1 (mean of 2 runs)"]
    assert list(means[1].get_ydata()) == pytest.approx([0.6, 0.8])
    assert means[0].get_color() != means[1].get_color()
    assert curves.main([str(tmp_path / "s"), "--out", str(out), "--metric", "near_curve",
                        "--split", "train.ema"]) == 2
    assert "no 'train.ema' in its rows" in capsys.readouterr().err


def test_sweep_curves_merges_a_labels_folders_and_draws_each_metric(tmp_path, closed_figures):
    """The same LABEL on two folders (one recipe's seeds in two sittings) is one mean over
    both; two metrics (an EMA's and its live G's) are a colour each."""
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("sweep_curves", "scripts/sweep_curves.py")
    curves = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(curves)
    for name, v in (("s01", 0.2), ("s23", 0.6)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.jsonl").write_text("".join(
            json.dumps({"run": "seed0", "step": t, "hq_share": v * t, "live_hq_share": v})
            + "\n" for t in (1, 2)))  # the same run id in both folders: two runs still
    out = tmp_path / "c.png"
    assert curves.main([f"ema={tmp_path / 's01'}", f"ema={tmp_path / 's23'}", "--out",
                        str(out), "--metric", "hq_share", "live_hq_share"]) == 0
    ax = closed_figures[-1].axes[0]
    means = {line.get_label(): list(line.get_ydata()) for line in ax.get_lines()
             if "mean" in line.get_label()}
    assert means == {"ema hq_share (mean of 2 runs)": pytest.approx([0.4, 0.8]),
                     "ema live_hq_share (mean of 2 runs)": pytest.approx([0.4, 0.4])}
    assert ax.get_ylabel() == "hq_share / live_hq_share"


def _strip_sweep(root, runs, steps=(2, 1)):
    """A sweep folder as scripts/sweep_strips.py reads it: results.jsonl rows of `runs`
    ((id, data, seed, x)) and one population's snapshots.pt, where run x's generated points
    at step t sit at x + t, its data at -x, its plot limit is x / 10 (steps stored unsorted)."""
    import json

    from mixup_gan.checkpoint import save_checkpoint

    (root / "populations" / "pop-a").mkdir(parents=True)
    (root / "results.jsonl").write_text("".join(json.dumps(
        {"run": i, "data.name": d, "train.seed": s, "step": t}) + "\n"
        for i, d, s, _ in runs for t in steps))
    points = {step: torch.stack([torch.full((4, 2), x + step) for *_, x in runs])
              for step in steps}
    save_checkpoint({"ids": [i for i, *_ in runs],
                     "real": [torch.full((3, 2), -x) for *_, x in runs],
                     "limits": [x / 10 for *_, x in runs], "steps": points},
                    root / "populations" / "pop-a" / "snapshots.pt")


def _strips_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("sweep_strips", "scripts/sweep_strips.py")
    strips = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(strips)
    return strips


def _drawn(fig, n_rows):
    """Per row of a strip figure: its label, the first data and generated x per panel, the
    first panel's limit."""
    rows = []
    for r in range(n_rows):
        panels = fig.axes[r * 2:r * 2 + 2]
        rows.append((panels[0].get_ylabel(),
                     [(ax.collections[0].get_offsets()[0][0],
                       ax.collections[1].get_offsets()[0][0]) for ax in panels],
                     panels[0].get_xlim()[1]))
    return rows


def test_sweep_strips_draws_one_seed_per_label_and_dataset(tmp_path, closed_figures, capsys):
    """scripts/sweep_strips.py: per dataset, a row per label (in the order given) with the
    chosen seed's data and samples at each kept step, in step order, over the run's own
    limit; a label's folders (sittings) are searched together; `--data` keeps some datasets
    and a label without one is said on stderr."""
    strips = _strips_script()
    _strip_sweep(tmp_path / "paper", [("p0", "ring", 0, 10.0), ("p1", "ring", 1, 20.0),
                                      ("q0", "grid", 0, 30.0)])
    _strip_sweep(tmp_path / "best", [("b1", "ring", 1, 40.0), ("c1", "grid", 1, 50.0),
                                     ("c0", "grid", 0, 60.0)])
    _strip_sweep(tmp_path / "best2", [("b2", "ring", 2, 70.0), ("b0", "ring", 0, 80.0)])
    out = tmp_path / "s.png"
    assert strips.main([f"paper={tmp_path / 'paper'}", f"best={tmp_path / 'best'}",
                        "--seed", "1", "--out", str(out)]) == 0
    assert out.stat().st_size > 0 and capsys.readouterr() == (f"{out}\n", "sweep_strips: no "
                                                               "grid run with seed 1 in paper: "
                                                               "no row for it\n")
    fig = closed_figures[-1]
    assert _drawn(fig, 3) == [("paper\nring", [(-20, 21), (-20, 22)], 2.0),
                              ("best\nring", [(-40, 41), (-40, 42)], 4.0),
                              ("best\ngrid", [(-50, 51), (-50, 52)], 5.0)]
    assert [ax.get_title() for ax in fig.axes[:2]] == ["step 1", "step 2"]
    assert fig.texts[0].get_text().startswith("samples over training, seed 1")
    assert strips.main([str(tmp_path / "paper"), f"best={tmp_path / 'best'}",
                        f"best={tmp_path / 'best2'}", "--data", "ring", "--out",
                        str(out)]) == 0  # seed 0: the best's ring run is in its 2nd sitting
    assert _drawn(closed_figures[-1], 2) == [("paper\nring", [(-10, 11), (-10, 12)], 1.0),
                                             ("best\nring", [(-80, 81), (-80, 82)], 8.0)]
    assert capsys.readouterr().err == ""


def test_sweep_strips_bad_input_exits_2_naming_it(tmp_path, capsys):
    """A seed, dataset, snapshot file or --out that does not work, a label with the same run
    in two folders, a folder of several settings: exit 2, one line naming the culprit."""
    import json

    strips = _strips_script()
    _strip_sweep(tmp_path / "a", [("p0", "ring", 0, 10.0)])
    _strip_sweep(tmp_path / "x" / "a", [("r0", "ring", 0, 20.0)])
    _strip_sweep(tmp_path / "two", [("s0", "ring", 0, 10.0), ("t0", "ring", 0, 20.0)])
    a, out = str(tmp_path / "a"), str(tmp_path / "s.png")
    cases = [
        ([a, "--seed", "3"], f"{a}: no run with seed 3 (--seed picks another)"),
        ([a, "--data", "grid"], f"{a}: no run with seed 0 of grid"),
        ([a, str(tmp_path / "x" / "a")], f"{a} and {tmp_path / 'x' / 'a'}: both have ring "
                                         "with seed 0 under the label 'a'"),
        ([str(tmp_path / "two")], f"{tmp_path / 'two'}: 2 runs of ring with seed 0 (several "
                                  "settings"),
        ([str(tmp_path / "none")], f"{tmp_path / 'none' / 'results.jsonl'}: not found"),
        ([f"{tmp_path}/b=c"], f"{tmp_path / 'b=c' / 'results.jsonl'}: not found"),
        ([a, "--out", str(tmp_path / "s")], "--out " + str(tmp_path / "s") + ": not a .png"),
        ([a, "--out", str(tmp_path / "no" / "s.png")], "is not a folder"),
        ([a, "--out", str(tmp_path / "d.png")], "--out " + str(tmp_path / "d.png") +
         ": is a folder"),
    ]
    (tmp_path / "d.png").mkdir()
    for argv, message in cases:
        argv = argv if "--out" in argv else [*argv, "--out", out]
        assert strips.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("sweep_strips: error: ") and message in err, (argv, err)
        assert err.count("\n") == 1
    snapshots = tmp_path / "a" / "populations" / "pop-a" / "snapshots.pt"
    for damage in (b"not a checkpoint", None):
        if damage is None:  # a readable file without the sweep's keys
            from mixup_gan.checkpoint import save_checkpoint
            save_checkpoint({"steps": {}}, snapshots)
        else:
            snapshots.write_bytes(damage)
        assert strips.main([a, "--out", out]) == 2
        err = capsys.readouterr().err
        assert f"{snapshots}:" in err and err.count("\n") == 1, err
    snapshots.unlink()
    assert strips.main([a, "--out", out]) == 2
    assert f"{a}: run p0 has no snapshots.pt entry" in capsys.readouterr().err
    (tmp_path / "a" / "results.jsonl").write_text(json.dumps([1, 2]) + "\n")
    assert strips.main([a, "--out", out]) == 2
    assert "results.jsonl: line 1 is not a sweep's result row" in capsys.readouterr().err
