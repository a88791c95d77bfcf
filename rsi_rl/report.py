"""``rsi-rl report RUN_DIR``: a self-contained HTML page (and PNGs) that explains a run.

From the ledger of a run directory (``ledger.sqlite``, plus ``summary.json`` and ``best/``
when present) it draws:

- start, best and test metrics (marked *self-reported* when the task reports its own);
- best-so-far vs experiments and vs seconds (``progress.png``);
- the lineage of candidates, kept and reverted edits marked (``lineage.png`` and a tree);
- a table of edit kinds: tries, kept, success rate, mean effect on the metric;
- the diff from the start candidate to the best one (config changes and code);
- for bench run directories (``bench.json``), the per-agent comparison, each pair of
  agents' paired test once, and the regret curves (bands clipped to [0, 1]);
- for the folder of a Hydra multirun (``rsi-rl search -m ...``: job folders ``0_...``,
  ``1_...``), one page comparing the jobs, linking each job's own report.

Everything lands in ``<RUN_DIR>/report/`` (``index.html`` with the PNGs embedded, and the
PNGs beside it). Example::

    rsi-rl report runs/search/2026-01-01/12-00-00_digits_mlp_greedy
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rsi_rl.errors import ConfigError
from rsi_rl.ledger import read_ledger

COLORS = {"kept": "#2e7d32", "reverted": "#9e9e9e", "failed": "#c62828", "start": "#1565c0"}
NON_EDITS = ("baseline", "reevaluate", "test", "stop", "propose")


# --------------------------------------------------------------------------- data
@dataclass
class RunData:
    """What a report is drawn from: ledger rows plus the run directory's extras."""

    run_dir: Path
    rows: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] | None = None
    bench: Any = None
    config: str | None = None  # Hydra's .hydra/config.yaml

    @property
    def metric(self) -> str:
        return str((self.summary or {}).get("metric") or self.meta.get("metric") or "metric")

    @property
    def direction(self) -> str:
        """``maximize`` or ``minimize``: what the run recorded, else the task's, else a guess.

        In order: the ledger's meta ``direction``, ``summary.json``'s ``direction``,
        ``bench.json``'s ``setup.direction``, the registered task's ``direction``, and
        last a guess from the metric's name (``loss``, ``err``, ``bpb``, ``ppl``: minimize).
        """
        setup = self.bench.get("setup") if isinstance(self.bench, dict) else None
        for source in (self.meta, self.summary, setup):
            direction = (source or {}).get("direction") if isinstance(source, dict) else None
            if direction in ("maximize", "minimize"):
                return str(direction)
        if self.meta.get("task"):
            try:
                from rsi_rl.registry import make_task

                direction = make_task(str(self.meta["task"])).direction
                if direction in ("maximize", "minimize"):
                    return str(direction)
            except Exception:  # noqa: BLE001 - a plugin task may be gone; guess from the name
                pass
        guess = any(s in self.metric for s in ("loss", "err", "bpb", "ppl"))
        return "minimize" if guess else "maximize"

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"

    def campaigns(self) -> list[int]:
        return sorted({int(r["campaign"]) for r in self.rows if r.get("campaign") is not None})

    def campaign_rows(self, campaign: int) -> list[dict[str, Any]]:
        return [r for r in self.rows if r.get("campaign") == campaign]


def load_run(run_dir: str | Path) -> RunData:
    """Read a run directory; raises :class:`ConfigError` when it holds no ledger or bench."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(
            f"run directory {str(run_dir)!r} does not exist (pass RUN_DIR, e.g. runs/search/<date>/<time>_...)"
        )
    bench = _read_json(run_dir / "bench.json")
    rows: list[dict[str, Any]] = []
    meta: dict[str, Any] = {}
    if (run_dir / "ledger.sqlite").exists():
        rows = read_ledger(run_dir)
        meta = _read_meta(run_dir / "ledger.sqlite")
    elif bench is None:
        raise ConfigError(
            f"{run_dir} has no ledger.sqlite (nor bench.json); pass the folder of an rsi-rl run"
        )
    cfg = run_dir / ".hydra" / "config.yaml"
    return RunData(
        run_dir=run_dir,
        rows=rows,
        meta=meta,
        summary=_read_json(run_dir / "summary.json"),
        bench=bench,
        config=cfg.read_text() if cfg.is_file() else None,
    )


def _read_json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        return None


def _read_meta(path: Path) -> dict[str, Any]:
    import sqlite3

    db = sqlite3.connect(path, timeout=60.0)
    try:
        return {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM meta")}
    except sqlite3.Error:
        return {}
    finally:
        db.close()


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def verdict(row: dict[str, Any]) -> str:
    """``kept``, ``reverted`` (ran fine, not better) or ``failed`` (crash, timeout, ...)."""
    if row.get("status") != "ok":
        return "failed"
    return "kept" if row.get("kept") else "reverted"


def masked(row: dict[str, Any]) -> bool:
    """Whether ``row`` is a masked action: ``invalid`` and never run (no seed).

    An ``invalid`` row with a seed was run and refused (e.g. it tampered with its scratch
    files, or its proposal failed): a failed experiment, not a masked action.
    """
    return row.get("status") == "invalid" and row.get("seed") is None


# --------------------------------------------------------------------------- analysis
def campaign_facts(data: RunData, campaign: int) -> dict[str, Any]:
    """Start, best and test metric, counts and the best candidate of one campaign."""
    rows = data.campaign_rows(campaign)
    val = [r for r in rows if r.get("split", "val") == "val"]
    base = next((r for r in val if r.get("kind") == "baseline"), None)
    exps = [r for r in val if r.get("kind") not in ("baseline", "stop")]
    test = next((r for r in rows if r.get("split") == "test"), None)
    last = val[-1] if val else None
    best_cand = base.get("candidate") if base else None
    for r in exps:
        if r.get("kept"):
            best_cand = r.get("candidate")
    statuses: dict[str, int] = {}
    for r in exps:
        statuses[str(r.get("status"))] = statuses.get(str(r.get("status")), 0) + 1
    return {
        "campaign": campaign,
        "instance": (base or last or {}).get("instance"),
        "start": _num(base.get("metric")) if base else None,
        "best": _num(last.get("incumbent_metric")) if last else None,
        "best_seen": _num(last.get("best_metric")) if last else None,
        "test": _num(test.get("metric")) if test else None,
        "experiments": len(exps),
        "kept": sum(1 for r in exps if r.get("kept")),
        "seconds": sum(_num(r.get("seconds")) or 0.0 for r in exps),
        "statuses": statuses,
        "best_candidate": best_cand,
        "start_candidate": base.get("candidate") if base else None,
    }


def kind_table(data: RunData, campaigns: Iterable[int] | None = None) -> list[dict[str, Any]]:
    """Per edit kind: tries, ok runs, kept, success rate and mean effect on the metric.

    The effect of an experiment is its metric minus its parent's metric on the same
    seed (signed so that positive is better); failures count as tries with no effect.
    """
    sign = 1.0 if data.maximize else -1.0
    wanted = set(campaigns) if campaigns is not None else None
    cand_metric: dict[tuple[Any, Any], float] = {}
    stats: dict[str, dict[str, Any]] = {}
    for r in data.rows:
        if r.get("split", "val") != "val" or (
            wanted is not None and r.get("campaign") not in wanted
        ):
            continue
        key = (r.get("campaign"), r.get("candidate"))
        m = _num(r.get("metric"))
        kind = str(r.get("kind"))
        if kind in ("baseline", "stop"):
            if m is not None:
                cand_metric.setdefault(key, m)
            continue
        s = stats.setdefault(
            kind, {"kind": kind, "tries": 0, "ok": 0, "kept": 0, "failed": 0, "effects": []}
        )
        s["tries"] += 1
        if r.get("status") == "ok":
            s["ok"] += 1
        elif not masked(r):  # a run refused as invalid failed; a masked action did not run
            s["failed"] += 1
        s["kept"] += int(bool(r.get("kept")))
        parent = cand_metric.get((r.get("campaign"), r.get("parent")))
        if kind != "reevaluate" and m is not None and parent is not None:
            s["effects"].append(sign * (m - parent))
        if m is not None and kind != "reevaluate":
            cand_metric.setdefault(key, m)
    out = []
    for s in stats.values():
        eff = s.pop("effects")
        s["mean_effect"] = sum(eff) / len(eff) if eff else None
        s["best_effect"] = max(eff) if eff else None
        s["success_rate"] = s["kept"] / s["tries"] if s["tries"] else 0.0
        out.append(s)
    out.sort(
        key=lambda s: (
            -(s["success_rate"]),
            -(s["mean_effect"] if s["mean_effect"] is not None else -1e9),
        )
    )
    return out


def best_diff(data: RunData, campaign: int, facts: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Config changes and code diff from the start candidate to the campaign's best."""
    summary = data.summary or {}
    best_dir = data.run_dir / "best"
    if summary.get("best_candidate") == facts["best_candidate"] and best_dir.is_dir():
        changes = _read_json(best_dir / "config_changes.json") or {}
        patch = best_dir / "diff.patch"
        return changes, patch.read_text() if patch.is_file() else ""
    rows = [r for r in data.campaign_rows(campaign) if r.get("split", "val") == "val"]
    base = next((r for r in rows if r.get("kind") == "baseline"), None)
    kept = [r for r in rows if r.get("kept") and r.get("kind") != "baseline"]
    start_cfg = (base or {}).get("config") or {}
    best_cfg = (kept[-1].get("config") if kept else start_cfg) or {}
    changes = {
        k: [start_cfg.get(k), best_cfg.get(k)]
        for k in sorted(set(start_cfg) | set(best_cfg))
        if start_cfg.get(k) != best_cfg.get(k)
    }
    parts = [
        f"# step {r.get('step')}: {r.get('kind')}\n{r.get('diff')}" for r in kept if r.get("diff")
    ]
    return changes, "\n".join(parts)


# --------------------------------------------------------------------------- plots
def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_progress(data: RunData, campaign: int, path: Path, max_campaigns: int = 40) -> Path:
    """Best-so-far vs experiments and vs seconds (the chosen campaign bold, others thin)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), constrained_layout=True)
    shown = data.campaigns()[-max_campaigns:]
    if campaign not in shown:
        shown.append(campaign)
    for c in shown:
        rows = [
            r
            for r in data.campaign_rows(c)
            if r.get("split", "val") == "val" and r.get("kind") != "stop"
        ]
        xs, ts, best = [], [], []
        t = 0.0
        for i, r in enumerate(rows):
            if r.get("kind") != "baseline":
                t += _num(r.get("seconds")) or 0.0
            xs.append(i)
            ts.append(t)
            best.append(_num(r.get("incumbent_metric")))
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
                m = _num(r.get("metric"))
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
    plt = _plt()
    rows = [
        r
        for r in data.campaign_rows(campaign)
        if r.get("split", "val") == "val" and r.get("kind") not in ("stop",)
    ]
    rows = rows[:max_nodes]
    pos: dict[Any, tuple[float, float]] = {}
    metrics = [m for m in (_num(r.get("metric")) for r in rows) if m is not None]
    floor = (min(metrics) - 0.05 * (max(metrics) - min(metrics) or 1.0)) if metrics else 0.0
    fig, ax = plt.subplots(figsize=(11, 4.2), constrained_layout=True)
    for i, r in enumerate(rows):
        kind = r.get("kind")
        m = _num(r.get("metric"))
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


def plot_kinds(table: list[dict[str, Any]], metric: str, path: Path) -> Path | None:
    """Bar chart of the mean effect per edit kind (success rate in the labels)."""
    rows = [r for r in table if r["mean_effect"] is not None]
    if not rows:
        return None
    plt = _plt()
    rows.sort(key=lambda r: r["mean_effect"])
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(rows) + 1.2), constrained_layout=True)
    ys = range(len(rows))
    ax.barh(
        list(ys),
        [r["mean_effect"] for r in rows],
        color=[COLORS["kept"] if r["mean_effect"] > 0 else COLORS["failed"] for r in rows],
    )
    ax.set_yticks(
        list(ys), [f"{r['kind']} ({r['kept']}/{r['tries']} kept)" for r in rows], fontsize=8
    )
    ax.axvline(0, color="#333", lw=0.8)
    ax.set_xlabel(f"mean effect on {metric} (positive = better)")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- HTML
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#fafafa;color:#222}
main{max-width:1180px;margin:0 auto;padding:18px 26px 60px;box-sizing:border-box}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.15em;margin:1.6em 0 .5em;border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#666;font-size:.9em;overflow-wrap:anywhere}.cards{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}
.card{background:#fff;border:1px solid #e0e0e0;border-radius:8px;padding:10px 16px;min-width:120px}
.card .v{font-size:1.45em;font-weight:600}.card .k{color:#666;font-size:.8em;text-transform:uppercase;letter-spacing:.04em}
.up{color:#2e7d32}.down{color:#c62828}.warn{background:#fff3e0;border:1px solid #ffb74d;padding:6px 10px;border-radius:6px}
img{max-width:100%;background:#fff;border:1px solid #e0e0e0;border-radius:6px}
.tw{max-width:100%;overflow-x:auto;margin:6px 0}
table{border-collapse:collapse;background:#fff;font-size:.88em}td{overflow-wrap:anywhere;max-width:32em}th,td{border:1px solid #e0e0e0;padding:4px 9px;text-align:left}
th{background:#f0f0f0}td.n{text-align:right;font-variant-numeric:tabular-nums}
pre{background:#1e1e1e;color:#ddd;padding:10px 14px;border-radius:6px;overflow:auto;font-size:.82em;max-height:520px}
pre .a{color:#8fd18f}pre .d{color:#f08c8c}pre .h{color:#8fb8f0}
ul.tree,ul.tree ul{list-style:none;margin:0;padding-left:18px}ul.tree li{margin:2px 0;position:relative}
ul.tree ul{border-left:1px dashed #bbb}
.b{display:inline-block;border-radius:4px;padding:0 6px;font-size:.78em;color:#fff;margin-right:4px}
.b.kept{background:#2e7d32}.b.reverted{background:#9e9e9e}.b.failed{background:#c62828}.b.start{background:#1565c0}
.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em;color:#555}
details summary{cursor:pointer;color:#1565c0}
"""


def _e(x: Any) -> str:
    return html.escape(str(x))


def _fmt(v: Any, digits: int = 4) -> str:
    n = _num(v)
    if n is None:
        return "—" if v is None else _e(v)
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    return f"{n:.{digits}f}"


def _img(path: Path | None, embed: bool, alt: str) -> str:
    if path is None or not path.is_file():
        return ""
    if embed:
        src = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
    else:
        src = _e(path.name)
    return f'<p><img src="{src}" alt="{_e(alt)}"></p>'


def _table(rows: list[dict[str, Any]], columns: list[str], numeric: Iterable[str] = ()) -> str:
    num = set(numeric)
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c)
            if c in num:
                cells.append(f'<td class="n">{_fmt(v)}</td>')
            else:
                cells.append(f"<td>{_e('' if v is None else v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    # the wrapper scrolls sideways: a wide table never widens the page
    return f'<div class="tw"><table><tr>{head}</tr>{"".join(body)}</table></div>'


def _write_page(out: Path, title: str, body: list[str]) -> Path:
    """Write ``<out>/index.html``: one self-contained page (no script, no external link)."""
    doc = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>rsi_rl report: {_e(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )
    page = out / "index.html"
    page.write_text(doc, encoding="utf-8")
    return page


def _diff_html(text: str) -> str:
    out = []
    for line in text.splitlines():
        cls = ""
        if line.startswith(("+++", "---", "@@", "# step")):
            cls = "h"
        elif line.startswith("+"):
            cls = "a"
        elif line.startswith("-"):
            cls = "d"
        out.append(f'<span class="{cls}">{_e(line)}</span>' if cls else _e(line))
    return "<pre>" + "\n".join(out) + "</pre>"


def _tree_html(data: RunData, campaign: int, max_nodes: int = 500) -> str:
    rows = [r for r in data.campaign_rows(campaign) if r.get("split", "val") == "val"]
    children: dict[Any, list[dict[str, Any]]] = {}
    root = None
    for r in rows:
        kind = r.get("kind")
        if kind == "baseline":
            root = root or r
        elif kind not in NON_EDITS and not masked(r):
            children.setdefault(r.get("parent"), []).append(r)
    if root is None:
        return "<p>no start candidate in this campaign</p>"
    count = 0

    def node(r: dict[str, Any], is_root: bool = False) -> str:
        nonlocal count
        count += 1
        v = "start" if is_root else verdict(r)
        label = "start" if is_root else (r.get("status") if v == "failed" else v)
        m = _fmt(r.get("metric"))
        step = "" if is_root else f"#{_e(r.get('step'))} "
        text = (
            f'<span class="b {v}">{_e(label)}</span>{step}'
            f"<b>{_e(r.get('kind') if not is_root else 'start config')}</b> {_e(r.get('description') or '')} "
            f"· {_e(data.metric)}={m} <span class='mono'>{_e(str(r.get('candidate'))[:8])}</span>"
        )
        kids = children.get(r.get("candidate"), []) if (is_root or r.get("kept")) else []
        inner = ""
        if kids and count < max_nodes:
            inner = "<ul>" + "".join(node(k) for k in kids if count < max_nodes) + "</ul>"
        return f"<li>{text}{inner}</li>"

    tree = node(root, True)
    more = f"<p class='sub'>(first {max_nodes} candidates shown)</p>" if count >= max_nodes else ""
    return f'<ul class="tree">{tree}</ul>{more}'


def _flat_row(name: str, entry: dict[str, Any]) -> dict[str, Any]:
    """One table row of a bench entry: ``[low, high]`` pairs and nested dicts spread out."""
    row: dict[str, Any] = {"name": name}
    for key, value in entry.items():
        if isinstance(value, list | tuple) and len(value) == 2:
            row[key] = f"[{_fmt(value[0], 3)}, {_fmt(value[1], 3)}]"
        elif isinstance(value, dict):
            for k, v in value.items():
                if not isinstance(v, dict | list):
                    row[f"{key}_{k}"] = v
        elif not isinstance(value, list):
            row[key] = value
    return row


def unordered_pairs(paired: dict[str, Any]) -> dict[str, Any]:
    """Each pair of agents once: ``a_vs_b`` kept, its mirror ``b_vs_a`` dropped.

    ``bench.json`` stores each pair once (``a`` before ``b`` in the bench's agent list);
    files written by older versions hold both directions (the same test seen from either
    agent), and a table needs one. Keys that are not ``<a>_vs_<b>`` stay.
    """
    out: dict[str, Any] = {}
    seen: set[frozenset[str]] = set()
    for key, value in paired.items():
        a, sep, b = str(key).partition("_vs_")
        if sep:
            pair = frozenset((a, b))
            if pair in seen:
                continue
            seen.add(pair)
        out[key] = value
    return out


def _paired_rows(paired: dict[str, Any]) -> list[dict[str, Any]]:
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
        rows.append(row)
    return rows


def bench_regret_curves(
    bench: dict[str, Any], campaigns: list[dict[str, Any]]
) -> dict[str, list[list[float]]]:
    """Per agent, each campaign's normalised regret of the best-so-far at k = 1..K.

    Recomputed from ``campaigns.jsonl`` and ``bench.json``'s ``best_known`` exactly as
    ``rsi-rl bench`` does (clipped to [0, 1]; a short campaign keeps its last value).
    """
    from rsi_rl.bench import normalised_regret

    setup = bench.get("setup") or {}
    budget = int(setup.get("budget") or 0)
    maximize = setup.get("direction", "maximize") != "minimize"
    known = bench.get("best_known") or {}
    out: dict[str, list[list[float]]] = {}
    for r in campaigns:
        bk = _num(known.get(str(r.get("instance"))))
        start, best = _num(r.get("start")), _num(r.get("best"))
        if "error" in r or bk is None or start is None or best is None or budget < 1:
            continue
        curve = [float(v) for v in r.get("curve") or []]
        curve = (curve + [best] * max(0, budget - len(curve)))[:budget] or [start] * budget
        regs = [normalised_regret(v, start, bk, maximize) for v in curve]
        out.setdefault(str(r.get("agent")), []).append(regs)
    return out


def regret_band(runs: list[list[float]]) -> tuple[Any, Any, Any]:
    """Mean regret curve and its 95% normal band, the band clipped to [0, 1].

    Regret lives in [0, 1]: a band around a mean near 0 must not dip below it.
    """
    import numpy as np

    arr = np.asarray(runs, dtype=float)
    mean = arr.mean(axis=0)
    se = arr.std(axis=0, ddof=1) / math.sqrt(len(arr)) if len(arr) > 1 else 0 * mean
    return mean, np.clip(mean - 1.96 * se, 0.0, 1.0), np.clip(mean + 1.96 * se, 0.0, 1.0)


def plot_bench_regret(curves: dict[str, list[list[float]]], path: Path) -> Path | None:
    """Mean normalised regret of the best-so-far vs experiments, a 95% band clipped to [0, 1]."""
    import numpy as np

    if not curves:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.2), constrained_layout=True)
    for agent, runs in curves.items():
        mean, low, high = regret_band(runs)
        k = np.arange(1, len(mean) + 1)
        (line,) = ax.plot(k, mean, label=f"{agent} ({len(runs)} campaigns)")
        ax.fill_between(k, low, high, alpha=0.2, color=line.get_color())
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel("experiments")
    ax.set_ylabel("normalised regret of best-so-far (0 = best known)")
    ax.set_title("normalised regret vs experiments (mean, 95% band)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                rows.append(row)
    return rows


def _bench_html(bench: Any, run_dir: Path, out: Path, embed: bool) -> str:
    parts = ["<h2>Agents compared (bench)</h2>"]
    if not isinstance(bench, dict):
        return "".join(parts) + "<p>bench.json holds no results.</p>"
    setup = bench.get("setup") or {}
    if setup:
        info = {k: setup.get(k) for k in ("task", "metric", "direction", "budget", "seeds")}
        parts.append(
            "<p class='sub'>"
            + " · ".join(f"{_e(k)}: <b>{_e(v)}</b>" for k, v in info.items() if v is not None)
            + "</p>"
        )
    agents = bench.get("agents") or {}
    if isinstance(agents, dict) and agents:
        rows = [_flat_row(n, e) for n, e in agents.items() if isinstance(e, dict)]
        cols = list(dict.fromkeys(c for r in rows for c in r))
        numeric = [c for c in cols if any(isinstance(r.get(c), float) for r in rows)]
        parts.append("<h3>agents</h3>" + _table(rows, cols, numeric))
    pairs = _paired_rows(bench.get("paired") or {})
    if pairs:
        cols = list(dict.fromkeys(c for r in pairs for c in r))
        numeric = [c for c in cols if any(isinstance(r.get(c), float) for r in pairs)]
        parts.append(
            "<h3>paired tests (each pair once)</h3><p class='sub'>Wins, ties and losses of the "
            "first agent against the second on normalised regret at K over the same (instance, "
            "seed) pairs; p: two-sided Wilcoxon signed-rank.</p>" + _table(pairs, cols, numeric)
        )
    rest = {k: v for k, v in bench.items() if k not in ("agents", "paired", "setup", "plots")}
    tables: list[tuple[str, list[dict[str, Any]]]] = []
    scalar_maps: list[tuple[str, dict[str, Any]]] = []
    for name, obj in rest.items():
        if isinstance(obj, list) and obj and all(isinstance(x, dict) for x in obj):
            tables.append((name, obj))
        elif isinstance(obj, dict) and obj and all(isinstance(v, dict) for v in obj.values()):
            tables.append((name, [_flat_row(k, v) for k, v in obj.items()]))
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
        parts.append(f"<h3>{_e(name)}</h3>" + _table(rows[:200], cols[:16], numeric))
    if scalar_maps:
        keys = list(dict.fromkeys(k for _, m in scalar_maps for k in m))[:200]
        rows = [{"instance": k, **{n: m.get(k) for n, m in scalar_maps}} for k in keys]
        names = [n for n, _ in scalar_maps]
        parts.append("<h3>per instance</h3>" + _table(rows, ["instance", *names], names))
    scalars = {k: v for k, v in rest.items() if not isinstance(v, dict | list)}
    if scalars:
        parts.append(
            _table(
                [scalars], list(scalars), [k for k, v in scalars.items() if isinstance(v, float)]
            )
        )
    own = plot_bench_regret(
        bench_regret_curves(bench, _read_jsonl(run_dir / "campaigns.jsonl")),
        out / "bench_regret.png",
    )
    if own is not None:
        parts.append("<h3>normalised regret vs experiments</h3>" + _img(own, embed, "regret"))
    for png in sorted(run_dir.glob("*.png")) + sorted((run_dir / "plots").glob("*.png")):
        if own is not None and png.name == "best_so_far_experiments.png":
            continue  # the same curves, redrawn above with the bands clipped to [0, 1]
        if embed:
            parts.append(f"<h3>{_e(png.stem)}</h3>" + _img(png, embed=True, alt=png.stem))
        else:
            rel = Path(os.path.relpath(png, out))
            parts.append(
                f'<h3>{_e(png.stem)}</h3><p><img src="{_e(rel)}" alt="{_e(png.stem)}"></p>'
            )
    return "\n".join(parts)


def render_report(
    run_dir: str | Path,
    out: str | Path | None = None,
    campaign: int | None = None,
    embed: bool = True,
) -> Path:
    """Write ``index.html`` and the PNGs of a run directory's report; returns the HTML path.

    Args:
        run_dir: an ``rsi-rl search``/``train``/``bench`` run directory, or the folder of
            a Hydra multirun (``-m``) holding such job directories: then a page comparing
            the jobs (see :func:`render_sweep_report`).
        out: output folder (default ``<run_dir>/report``).
        campaign: the campaign to detail (lineage, diff); ``None``: the last one.
        embed: embed the PNGs in the HTML (base64) so the page is one self-contained file.

    Raises:
        ConfigError: ``run_dir`` has no ledger (or bench.json), or ``campaign`` is unknown.
    """
    if is_sweep(run_dir):
        return render_sweep_report(run_dir, out=out, embed=embed)
    data = load_run(run_dir)
    out = Path(out) if out else data.run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    s = data.summary or {}
    title = (
        " · ".join(str(x) for x in (s.get("task") or data.meta.get("task"), s.get("agent")) if x)
        or data.run_dir.name
    )
    body: list[str] = [
        f"<h1>rsi_rl report: {_e(title)}</h1>",
        f'<div class="sub">{_e(data.run_dir.resolve())}</div>',
    ]
    campaigns = data.campaigns()
    if campaigns:
        if campaign is None:
            campaign = campaigns[-1]
        elif campaign not in campaigns:
            raise ConfigError(
                f"campaign={campaign} is not in the ledger; campaigns: {campaigns[0]}..{campaigns[-1]}"
            )
        body += _campaign_sections(data, campaign, out, embed)
    if data.bench is not None:
        body.append(_bench_html(data.bench, data.run_dir, out, embed))
    if data.config:
        body.append(
            f"<h2>Config</h2><details><summary>.hydra/config.yaml</summary><pre>{_e(data.config)}</pre></details>"
        )
    return _write_page(out, title, body)


# --------------------------------------------------------------------------- multirun
def _is_job(path: Path) -> bool:
    return path.is_dir() and ((path / "ledger.sqlite").exists() or (path / "bench.json").is_file())


def sweep_jobs(sweep_dir: str | Path) -> list[Path]:
    """The job directories of a Hydra multirun folder, by job number (then name)."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        return []
    jobs = [p for p in sweep_dir.iterdir() if _is_job(p)]

    def order(p: Path) -> tuple[int, str]:
        head = p.name.split("_", 1)[0]
        return (int(head) if head.isdigit() else 1 << 30, p.name)

    return sorted(jobs, key=order)


def is_sweep(path: str | Path) -> bool:
    """Whether ``path`` is a multirun folder: no ledger of its own, job folders below."""
    path = Path(path)
    return path.is_dir() and not _is_job(path) and bool(sweep_jobs(path))


def _overrides(job: Path) -> list[str]:
    path = job / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return []
    import yaml

    try:
        items = yaml.safe_load(path.read_text()) or []
    except yaml.YAMLError:
        return []
    return [str(x) for x in items] if isinstance(items, list) else []


def sweep_rows(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """One row per job of a multirun: job, task, agent, overrides, metrics, experiments, seconds.

    Metrics come from the job's ``summary.json`` when present, else from its ledger's
    last campaign; ``data`` holds the job's :class:`RunData`.
    """
    rows = []
    for job in sweep_jobs(sweep_dir):
        data = load_run(job)
        s = data.summary or {}
        head = job.name.split("_", 1)[0]
        setup = (data.bench.get("setup") or {}) if isinstance(data.bench, dict) else {}
        row: dict[str, Any] = {
            "job": int(head) if head.isdigit() else job.name,
            "dir": job,
            "data": data,
            "task": s.get("task") or data.meta.get("task") or setup.get("task"),
            "agent": s.get("agent") or ", ".join(str(a) for a in setup.get("agents") or []) or None,
            "overrides": " ".join(_overrides(job)),
            "metric": data.metric,
        }
        campaigns = data.campaigns()
        facts = campaign_facts(data, campaigns[-1]) if campaigns else {}
        row["start"] = (
            _num(s.get("start_metric")) if s.get("start_metric") is not None else facts.get("start")
        )
        row["best"] = (
            _num(s.get("best_metric")) if s.get("best_metric") is not None else facts.get("best")
        )
        row["test"] = (
            _num(s.get("test_metric")) if s.get("test_metric") is not None else facts.get("test")
        )
        row["experiments"] = facts.get("experiments")
        row["seconds"] = round(facts["seconds"], 1) if facts else None
        rows.append(row)
    return rows


def plot_sweep(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """Best-so-far vs experiments, one line per job (its last campaign)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 4.2), constrained_layout=True)
    drawn = 0
    for row in rows:
        data: RunData = row["data"]
        campaigns = data.campaigns()
        if not campaigns:
            continue
        vals = [
            _num(r.get("incumbent_metric"))
            for r in data.campaign_rows(campaigns[-1])
            if r.get("split", "val") == "val" and r.get("kind") != "stop"
        ]
        label = f"job {row['job']}: " + " ".join(
            str(x) for x in (row["agent"], row["overrides"]) if x
        )
        ax.step(range(len(vals)), vals, where="post", label=label[:70])
        drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    metrics = sorted({str(r["metric"]) for r in rows})
    ax.set_xlabel("experiments")
    ax.set_ylabel(metrics[0] if len(metrics) == 1 else " / ".join(metrics))
    ax.set_title("best so far vs experiments, one line per job", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def render_sweep_report(
    sweep_dir: str | Path, out: str | Path | None = None, embed: bool = True
) -> Path:
    """The page of a Hydra multirun folder: a table of its jobs and their best-so-far curves.

    Writes each job's own report (``<job>/report/index.html``) and links it from the
    table. Returns the path of the sweep's page (``<sweep_dir>/report/index.html``).

    Raises:
        ConfigError: ``sweep_dir`` holds no job directory with a ledger or bench.json.
    """
    sweep_dir = Path(sweep_dir)
    rows = sweep_rows(sweep_dir)
    if not rows:
        raise ConfigError(f"{sweep_dir} holds no job folder with a ledger.sqlite or bench.json")
    out = Path(out) if out else sweep_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    table = []
    for row in rows:
        page = render_report(row["dir"], embed=embed)
        link = Path(os.path.relpath(page, out)).as_posix()
        table.append({**row, "report": f'<a href="{_e(link)}">{_e(row["dir"].name)}</a>'})
    cols = ["job", "task", "agent", "overrides", "start", "best", "test", "experiments", "seconds"]
    num = {"start", "best", "test", "seconds"}
    head = "".join(f"<th>{_e(c)}</th>" for c in [*cols, "report"])
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{_fmt(r.get(c))}</td>'
            if c in num
            else f"<td>{_e('' if r.get(c) is None else r.get(c))}</td>"
            for c in cols
        )
        + f"<td>{r['report']}</td></tr>"
        for r in table
    )
    metrics = sorted({str(r["metric"]) for r in rows})
    title = f"sweep {sweep_dir.name} ({len(rows)} jobs)"
    parts = [
        f"<h1>rsi_rl report: {_e(title)}</h1>",
        f'<div class="sub">{_e(sweep_dir.resolve())}</div>',
        "<h2>Jobs</h2>",
        f"<p class='sub'>Metric: <b>{_e(', '.join(metrics))}</b>; start, best (validation) and "
        "test of each job's last campaign; the overrides are the job's .hydra/overrides.yaml.</p>",
        f'<div class="tw"><table><tr>{head}</tr>{body}</table></div>',
        "<h2>Best so far</h2>",
        _img(plot_sweep(rows, out / "sweep.png"), embed, "best so far per job"),
    ]
    return _write_page(out, title, parts)


def _campaign_sections(data: RunData, campaign: int, out: Path, embed: bool) -> list[str]:
    facts = campaign_facts(data, campaign)
    s = data.summary or {}
    same = s.get("best_candidate") == facts["best_candidate"]
    best = (
        _num(s.get("best_metric")) if same and s.get("best_metric") is not None else facts["best"]
    )
    test = (
        _num(s.get("test_metric")) if same and s.get("test_metric") is not None else facts["test"]
    )
    start = facts["start"]
    body: list[str] = []
    if s.get("self_reported"):
        body.append('<p class="warn">Self-reported metric: this task\'s program prints its own score; '
                    "the numbers below are not from a trusted evaluator.</p>")  # fmt: skip
    delta = ""
    if start is not None and best is not None:
        gain = (best - start) if data.maximize else (start - best)
        delta = f'<div class="{"up" if gain > 0 else "down"}">{gain:+.4f}</div>'
    n_camp = len(data.campaigns())
    cards = [
        ("start " + data.metric, _fmt(start), ""),
        ("best " + data.metric, _fmt(best), delta),
        ("test (once, at the end)", _fmt(test), ""),
        ("experiments", str(facts["experiments"]), f"<div class='sub'>{facts['kept']} kept</div>"),
        ("experiment seconds", f"{facts['seconds']:.1f}", ""),
    ]
    body.append('<div class="cards">' + "".join(
        f'<div class="card"><div class="k">{_e(k)}</div><div class="v">{v}</div>{extra}</div>' for k, v, extra in cards
    ) + "</div>")  # fmt: skip
    info = {
        "instance": facts["instance"],
        "campaign": f"{campaign} of {n_camp}" if n_camp > 1 else campaign,
        "direction": "maximize" if data.maximize else "minimize",
        "statuses": ", ".join(f"{k}: {v}" for k, v in sorted(facts["statuses"].items())) or "—",
        "best candidate": facts["best_candidate"],
    }
    if s.get("agent"):
        info["agent"] = s.get("agent")
    body.append(
        "<p class='sub'>" + " · ".join(f"{_e(k)}: <b>{_e(v)}</b>" for k, v in info.items()) + "</p>"
    )

    body.append("<h2>Best so far</h2>")
    body.append(_img(plot_progress(data, campaign, out / "progress.png"), embed, "best so far"))
    body.append("<h2>Lineage of candidates</h2>")
    body.append(_img(plot_lineage(data, campaign, out / "lineage.png"), embed, "lineage"))
    body.append(
        "<details open><summary>tree (kept edits branch on; reverted and failed ones are leaves)</summary>"
    )
    body.append(_tree_html(data, campaign) + "</details>")

    table = kind_table(data)
    body.append("<h2>Edit kinds</h2>")
    scope = f"all {n_camp} campaigns" if n_camp > 1 else "this campaign"
    body.append(f"<p class='sub'>Over {scope}. Effect = metric minus the parent's metric on the same seed, "
                "signed so that positive is better; success = kept / tries.</p>")  # fmt: skip
    body.append(
        _table(
            [{**r, "success_rate": f"{100 * r['success_rate']:.0f}%"} for r in table],
            ["kind", "tries", "ok", "failed", "kept", "success_rate", "mean_effect", "best_effect"],
            numeric=["mean_effect", "best_effect"],
        )
    )
    body.append(_img(plot_kinds(table, data.metric, out / "kinds.png"), embed, "edit kinds"))

    changes, diff = best_diff(data, campaign, facts)
    body.append("<h2>From start to best</h2>")
    if changes:
        rows = [{"key": k, "start": v[0], "best": v[1]} for k, v in changes.items()]
        body.append(_table(rows, ["key", "start", "best"]))
    else:
        body.append("<p>No config changes.</p>")
    body.append(_diff_html(diff) if diff.strip() else "<p>No code changes.</p>")

    exps = [r for r in data.campaign_rows(campaign) if r.get("kind") not in ("stop",)]
    rows = [
        {
            "step": r.get("step"), "kind": r.get("kind"), "edit": r.get("description"),
            "split": r.get("split"), "status": r.get("status"), data.metric: r.get("metric"),
            "verdict": "start" if r.get("kind") == "baseline" else ("test" if r.get("split") == "test" else verdict(r)),
            "seconds": r.get("seconds"), "message": r.get("message") or "",
        }
        for r in exps[:2000]
    ]  # fmt: skip
    body.append("<h2>Experiments</h2><details><summary>all experiments of this campaign "
                f"({len(exps)})</summary>")  # fmt: skip
    body.append(
        _table(rows, list(rows[0]) if rows else [], numeric=[data.metric, "seconds"]) + "</details>"
    )
    return body


def report_job(cfg: Any) -> Path:
    """``rsi-rl report RUN_DIR``: write the report and print where it is."""
    from omegaconf import OmegaConf

    if OmegaConf.is_missing(cfg, "run_dir"):
        raise ConfigError("which run? usage: rsi-rl report RUN_DIR [out=...] [campaign=N]")
    page = render_report(cfg.run_dir, out=cfg.out, campaign=cfg.campaign, embed=bool(cfg.embed))
    print(f"report: {page}  (open file://{page.resolve()})")
    return page
