"""Plots (PNG, matplotlib on the Agg backend): a bench's regret curves, a run's progress,
lineage and edit kinds, and a multirun's jobs side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rsi_rl.analysis.results import BenchResult
from rsi_rl.analysis.runs import RunData, SweepJob, is_val, masked, num, verdict
from rsi_rl.analysis.stats import regret_band
from rsi_rl.analysis.tables import KindStats

COLORS = {"kept": "#2e7d32", "reverted": "#9e9e9e", "failed": "#c62828", "start": "#1565c0"}


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# --------------------------------------------------------------------------- bench
def plot_regret_curves(
    curves: dict[str, list[list[float]]],
    path: Path,
    title: str = "normalised regret of best-so-far vs experiments",
) -> Path | None:
    """Mean normalised regret of the best-so-far vs experiments per agent, with a 95%
    band clipped to [0, 1]; None when there is no curve."""
    curves = {a: runs for a, runs in curves.items() if runs}
    if not curves:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.2), constrained_layout=True)
    for agent, runs in curves.items():
        mean, low, high = regret_band(runs)
        k = np.arange(1, len(mean) + 1)
        (line,) = ax.plot(k, mean, label=f"{agent} ({len(runs)} campaigns)")
        ax.fill_between(k, low, high, alpha=0.2, color=line.get_color())
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel("experiments")
    ax.set_ylabel("normalised regret of best-so-far (0 = best known)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_regret_seconds(result: BenchResult, path: Path, points: int = 100) -> Path | None:
    """Mean normalised regret of the best-so-far vs cumulative experiment seconds per
    agent (1 before the first experiment); None when no campaign has timings."""
    timed = [s for s in result.scores if s.campaign.seconds]
    if not timed:
        return None
    plt = pyplot()
    grid = np.linspace(0, max(s.campaign.seconds[-1] for s in timed), points)
    fig, ax = plt.subplots(figsize=(8, 4.2), constrained_layout=True)
    for agent in result.agents:
        series = []
        for s in timed:
            if s.campaign.agent != agent:
                continue
            regs = [1.0, *s.regret_curve[: len(s.campaign.seconds)]]
            times = [0.0, *s.campaign.seconds]
            idx = np.searchsorted(times, grid, side="right") - 1
            series.append(np.asarray(regs)[np.clip(idx, 0, len(regs) - 1)])
        if series:
            ax.plot(grid, np.mean(series, axis=0), label=agent)
    ax.set_xlabel("experiment seconds (wall-clock, cumulative)")
    ax.set_ylabel("normalised regret of best-so-far")
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_title("best-so-far vs seconds", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_bench(result: BenchResult, run_dir: Path) -> list[Path]:
    """``best_so_far_experiments.png`` and ``best_so_far_seconds.png`` of a bench."""
    drawn = [
        plot_regret_curves(result.curves(), run_dir / "best_so_far_experiments.png"),
        plot_regret_seconds(result, run_dir / "best_so_far_seconds.png"),
    ]
    return [p for p in drawn if p is not None]


# --------------------------------------------------------------------------- runs
def plot_progress(data: RunData, campaign: int, path: Path, max_campaigns: int = 40) -> Path:
    """Best-so-far vs experiments and vs seconds (the chosen campaign bold, others thin)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), constrained_layout=True)
    shown = data.campaigns()[-max_campaigns:]
    if campaign not in shown:
        shown.append(campaign)
    for c in shown:
        rows = [r for r in data.campaign_rows(c) if is_val(r) and r.get("kind") != "stop"]
        xs, ts, best = [], [], []
        t = 0.0
        for i, r in enumerate(rows):
            if r.get("kind") != "baseline":
                t += num(r.get("seconds")) or 0.0
            xs.append(i)
            ts.append(t)
            best.append(num(r.get("incumbent_metric")))
        main = c == campaign
        style = (
            {"lw": 2.2, "color": COLORS["start"], "zorder": 3}
            if main
            else {"lw": 0.8, "alpha": 0.35, "color": "#555"}
        )
        label = "incumbent (best so far)" if main else None
        axes[0].step(xs, best, where="post", label=label, **style)
        axes[1].step(ts, best, where="post", **style)
        if main:
            for r, x, tt in zip(rows, xs, ts, strict=True):
                m = num(r.get("metric"))
                if m is None or r.get("kind") == "baseline":
                    continue
                v = verdict(r)
                axes[0].scatter([x], [m], s=22, color=COLORS[v], zorder=4, label=v)
                axes[1].scatter([tt], [m], s=22, color=COLORS[v], zorder=4)
    for ax, xlabel in zip(axes, ("experiments", "experiment seconds (cumulative)"), strict=True):
        ax.set_xlabel(xlabel)
        ax.set_ylabel(data.metric)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    uniq = dict(zip(labels, handles, strict=True))
    axes[0].legend(uniq.values(), uniq.keys(), fontsize=8, loc="best")
    axes[0].set_title("best so far vs experiments", fontsize=10)
    axes[1].set_title("best so far vs seconds", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_lineage(data: RunData, campaign: int, path: Path, max_nodes: int = 400) -> Path:
    """Candidates of a campaign as a tree: x = experiment, y = metric, edges parent -> child."""
    plt = pyplot()
    rows = [r for r in data.campaign_rows(campaign) if is_val(r) and r.get("kind") not in ("stop",)]
    rows = rows[:max_nodes]
    pos: dict[Any, tuple[float, float]] = {}
    metrics = [m for m in (num(r.get("metric")) for r in rows) if m is not None]
    floor = (min(metrics) - 0.05 * (max(metrics) - min(metrics) or 1.0)) if metrics else 0.0
    fig, ax = plt.subplots(figsize=(11, 4.2), constrained_layout=True)
    for i, r in enumerate(rows):
        kind = r.get("kind")
        m = num(r.get("metric"))
        if kind == "baseline":
            pos.setdefault(r.get("candidate"), (i, m if m is not None else floor))
            ax.scatter([i], [m], s=90, marker="s", color=COLORS["start"], zorder=5, label="start")
            continue
        if kind == "reevaluate":
            if m is not None and r.get("candidate") in pos:
                ax.scatter(
                    [i],
                    [m],
                    s=18,
                    marker="D",
                    facecolors="none",
                    edgecolors=COLORS["start"],
                    zorder=4,
                    label="re-evaluation",
                )
            continue
        if kind == "invalid" or masked(r):  # masked actions never ran: no point
            continue
        v = verdict(r)
        y = m if m is not None else floor
        parent = pos.get(r.get("parent"))
        if parent is not None:
            ax.plot(
                [parent[0], i], [parent[1], y], color=COLORS[v],
                lw=2.0 if v == "kept" else 0.8, ls="-" if v == "kept" else ":", zorder=2 if v == "kept" else 1,
            )  # fmt: skip
        if v == "failed":
            ax.scatter([i], [y], s=30, marker="x", color=COLORS[v], zorder=4, label=v)
        else:
            face = COLORS[v] if v == "kept" else "white"
            ax.scatter(
                [i],
                [y],
                s=40 if v == "kept" else 26,
                color=face,
                edgecolors=COLORS[v],
                zorder=4,
                label=v,
            )
        if v == "kept":
            pos[r.get("candidate")] = (i, y)
            ax.annotate(
                str(kind),
                (i, y),
                textcoords="offset points",
                xytext=(4, 6),
                fontsize=7,
                color=COLORS["kept"],
            )
        else:
            pos.setdefault(r.get("candidate"), (i, y))
    handles, labels = ax.get_legend_handles_labels()
    uniq = dict(zip(labels, handles, strict=True))
    ax.legend(uniq.values(), uniq.keys(), fontsize=8, loc="best")
    ax.set_xlabel("experiment")
    ax.set_ylabel(data.metric + " (failed runs at the bottom)")
    ax.set_title(
        f"lineage of candidates, campaign {campaign}: kept edits form the trunk", fontsize=10
    )
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_kinds(table: list[KindStats], metric: str, path: Path) -> Path | None:
    """Bar chart of the mean effect per edit kind (success rate in the labels)."""
    rows = sorted(
        ((r, r.mean_effect) for r in table if r.mean_effect is not None), key=lambda x: x[1]
    )
    if not rows:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(rows) + 1.2), constrained_layout=True)
    ys = list(range(len(rows)))
    effects = [e for _, e in rows]
    ax.barh(ys, effects, color=[COLORS["kept"] if e > 0 else COLORS["failed"] for e in effects])
    ax.set_yticks(ys, [f"{r.kind} ({r.kept}/{r.tries} kept)" for r, _ in rows], fontsize=8)
    ax.axvline(0, color="#333", lw=0.8)
    ax.set_xlabel(f"mean effect on {metric} (positive = better)")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_sweep(jobs: list[SweepJob], path: Path) -> Path | None:
    """Best-so-far vs experiments, one line per job (its last campaign)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 4.2), constrained_layout=True)
    drawn = 0
    for job in jobs:
        data = job.data
        campaigns = data.campaigns()
        if not campaigns:
            continue
        vals = [
            num(r.get("incumbent_metric"))
            for r in data.campaign_rows(campaigns[-1])
            if is_val(r) and r.get("kind") != "stop"
        ]
        label = f"job {job.job}: " + " ".join(str(x) for x in (job.agent, job.overrides) if x)
        ax.step(range(len(vals)), vals, where="post", label=label[:70])
        drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    metrics = sorted({job.metric for job in jobs})
    ax.set_xlabel("experiments")
    ax.set_ylabel(metrics[0] if len(metrics) == 1 else " / ".join(metrics))
    ax.set_title("best so far vs experiments, one line per job", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
