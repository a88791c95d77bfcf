"""The bench section of a report page, from a bench folder's bench.json and campaigns.jsonl."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rsi_rl.analysis.folders import CAMPAIGNS, read_campaigns, unordered_pairs
from rsi_rl.analysis.plots import plot_regret_curves
from rsi_rl.analysis.report.html import esc, fmt, img, table
from rsi_rl.analysis.results import Campaign
from rsi_rl.analysis.runs import num
from rsi_rl.core.errors import ConfigError


def bench_curves(bench: dict[str, Any], run_dir: Path) -> dict[str, list[list[float]]]:
    """Per agent, each campaign's normalised regret of the best-so-far at k = 1..K.

    Recomputed from campaigns.jsonl against bench.json's ``best_known`` exactly as
    ``rsi-rl bench`` computes them (:meth:`~rsi_rl.analysis.results.Campaign.regret_curve`);
    {} when the folder has no readable campaigns.jsonl.
    """
    setup = bench.get("setup") or {}
    budget = int(setup.get("budget") or 0)
    maximize = setup.get("direction", "maximize") != "minimize"
    known = bench.get("best_known") or {}
    if budget < 1 or not (run_dir / CAMPAIGNS).is_file():
        return {}
    try:
        rows = read_campaigns(run_dir / CAMPAIGNS)
    except ConfigError:
        return {}
    out: dict[str, list[list[float]]] = {}
    for r in rows:
        bk = num(known.get(str(r.instance)))
        if isinstance(r, Campaign) and bk is not None:
            out.setdefault(r.agent, []).append(r.regret_curve(bk, budget, maximize))
    return out


def flat_row(name: str, entry: dict[str, Any]) -> dict[str, Any]:
    """One table row of a bench entry: ``[low, high]`` pairs and nested dicts spread out."""
    row: dict[str, Any] = {"name": name}
    for key, value in entry.items():
        if isinstance(value, list | tuple) and len(value) == 2:
            row[key] = f"[{fmt(value[0], 3)}, {fmt(value[1], 3)}]"
        elif isinstance(value, dict):
            for k, v in value.items():
                if not isinstance(v, dict | list):
                    row[f"{key}_{k}"] = v
        elif not isinstance(value, list):
            row[key] = value
    return row


def paired_rows(paired: dict[str, Any]) -> list[dict[str, Any]]:
    """One table row per pair of agents (each pair once): its test, then each measure's
    wins/ties/losses and p-values."""
    rows = []
    for key, test in unordered_pairs(paired).items():
        if not isinstance(test, dict):
            continue
        row: dict[str, Any] = {"pair": key.replace("_vs_", " vs ")}
        row.update({k: v for k, v in test.items() if not isinstance(v, dict | list)})
        for measure, sub in test.items():
            if isinstance(sub, dict):
                wins, ties, losses = sub.get("wins"), sub.get("ties"), sub.get("losses")
                if wins is not None:
                    row[f"{measure} w/t/l"] = f"{wins}/{ties}/{losses}"
                if sub.get("p_value") is not None:
                    row[f"{measure} p"] = sub.get("p_value")
                if sub.get("p_holm") is not None:
                    row[f"{measure} p_holm"] = sub.get("p_holm")
        rows.append(row)
    return rows


def bench_html(bench: Any, run_dir: Path, out: Path, embed: bool) -> str:
    """The bench section of a page: whatever bench.json holds (older files too), and the
    regret curves redrawn from campaigns.jsonl."""
    parts = ["<h2>Agents compared (bench)</h2>"]
    if not isinstance(bench, dict):
        return "".join(parts) + "<p>bench.json holds no results.</p>"
    setup = bench.get("setup") or {}
    if setup:
        info = {k: setup.get(k) for k in ("task", "metric", "direction", "budget", "seeds")}
        parts.append(
            "<p class='sub'>"
            + " · ".join(f"{esc(k)}: <b>{esc(v)}</b>" for k, v in info.items() if v is not None)
            + "</p>"
        )
    agents = bench.get("agents") or {}
    if isinstance(agents, dict) and agents:
        rows = [flat_row(n, e) for n, e in agents.items() if isinstance(e, dict)]
        cols = list(dict.fromkeys(c for r in rows for c in r))
        numeric = [c for c in cols if any(isinstance(r.get(c), float) for r in rows)]
        parts.append("<h3>agents</h3>" + table(rows, cols, numeric))
    pairs = paired_rows(bench.get("paired") or {})
    if pairs:
        cols = list(dict.fromkeys(c for r in pairs for c in r))
        numeric = [c for c in cols if any(isinstance(r.get(c), float) for r in pairs)]
        parts.append(
            "<h3>paired tests (each pair once)</h3><p class='sub'>Wins, ties and losses of the "
            "first agent against the second on normalised regret at K over the same (instance, "
            "seed) pairs; p: two-sided Wilcoxon signed-rank; p_holm: the same after Holm's "
            "correction over all pairs.</p>" + table(pairs, cols, numeric)
        )
    rest = {k: v for k, v in bench.items() if k not in ("agents", "paired", "setup", "plots")}
    tables: list[tuple[str, list[dict[str, Any]]]] = []
    scalar_maps: list[tuple[str, dict[str, Any]]] = []
    for name, obj in rest.items():
        if isinstance(obj, list) and obj and all(isinstance(x, dict) for x in obj):
            tables.append((name, obj))
        elif isinstance(obj, dict) and obj and all(isinstance(v, dict) for v in obj.values()):
            tables.append((name, [flat_row(k, v) for k, v in obj.items()]))
        elif (
            isinstance(obj, dict)
            and obj
            and all(not isinstance(v, dict | list) for v in obj.values())
        ):
            scalar_maps.append((name, obj))
    for name, rows in tables[:6]:
        cols = list(
            dict.fromkeys(c for r in rows for c, v in r.items() if not isinstance(v, dict | list))
        )
        numeric = [c for c in cols if any(isinstance(r.get(c), float) for r in rows)]
        parts.append(f"<h3>{esc(name)}</h3>" + table(rows[:200], cols[:16], numeric))
    if scalar_maps:
        keys = list(dict.fromkeys(k for _, m in scalar_maps for k in m))[:200]
        rows = [{"instance": k, **{n: m.get(k) for n, m in scalar_maps}} for k in keys]
        names = [n for n, _ in scalar_maps]
        parts.append("<h3>per instance</h3>" + table(rows, ["instance", *names], names))
    scalars = {k: v for k, v in rest.items() if not isinstance(v, dict | list)}
    if scalars:
        parts.append(
            table([scalars], list(scalars), [k for k, v in scalars.items() if isinstance(v, float)])
        )
    own = plot_regret_curves(bench_curves(bench, run_dir), out / "bench_regret.png")
    if own is not None:
        parts.append("<h3>normalised regret vs experiments</h3>" + img(own, embed, "regret"))
    for png in sorted(run_dir.glob("*.png")) + sorted((run_dir / "plots").glob("*.png")):
        if own is not None and png.name == "best_so_far_experiments.png":
            continue  # the same curves, redrawn above with the bands clipped to [0, 1]
        if embed:
            parts.append(f"<h3>{esc(png.stem)}</h3>" + img(png, embed=True, alt=png.stem))
        else:
            rel = Path(os.path.relpath(png, out))
            parts.append(
                f'<h3>{esc(png.stem)}</h3><p><img src="{esc(rel)}" alt="{esc(png.stem)}"></p>'
            )
    return "\n".join(parts)
