"""The page of one run directory: an ``rsi-rl search``/``train`` run (its campaign's
cards, best-so-far, lineage, edit kinds, diff and experiments) or a bench folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rsi_rl.analysis.plots import plot_kinds, plot_lineage, plot_progress
from rsi_rl.analysis.report.bench_page import bench_html
from rsi_rl.analysis.report.html import diff_html, esc, fmt, img, table, write_page
from rsi_rl.analysis.runs import (
    NON_EDITS,
    RunData,
    best_diff,
    campaign_facts,
    is_val,
    load_run,
    masked,
    num,
    verdict,
)
from rsi_rl.analysis.tables import kind_table
from rsi_rl.core.errors import ConfigError


def render_run_report(
    run_dir: str | Path,
    out: str | Path | None = None,
    campaign: int | None = None,
    embed: bool = True,
) -> Path:
    """Write ``index.html`` and the PNGs of one run directory's report; returns the HTML path.

    Args:
        run_dir: an ``rsi-rl search``/``train``/``bench`` run directory.
        out: output folder (default ``<run_dir>/report``).
        campaign: the campaign to detail (lineage, diff); ``None``: the last one.
        embed: embed the PNGs in the HTML (base64) so the page is one self-contained file.

    Raises:
        ConfigError: ``run_dir`` has no ledger (or bench.json), or ``campaign`` is unknown.
    """
    data = load_run(run_dir)
    out = Path(out) if out else data.run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    s = data.summary or {}
    title = (
        " · ".join(str(x) for x in (s.get("task") or data.meta.get("task"), s.get("agent")) if x)
        or data.run_dir.name
    )
    body: list[str] = [
        f"<h1>rsi_rl report: {esc(title)}</h1>",
        f'<div class="sub">{esc(data.run_dir.resolve())}</div>',
    ]
    campaigns = data.campaigns()
    if campaigns:
        if campaign is None:
            campaign = campaigns[-1]
        elif campaign not in campaigns:
            raise ConfigError(
                f"campaign={campaign} is not in the ledger; campaigns: {campaigns[0]}..{campaigns[-1]}"
            )
        body += campaign_sections(data, campaign, out, embed)
    if data.bench is not None:
        body.append(bench_html(data.bench, data.run_dir, out, embed))
    if data.config:
        body.append(
            f"<h2>Config</h2><details><summary>.hydra/config.yaml</summary><pre>{esc(data.config)}</pre></details>"
        )
    return write_page(out, title, body)


def tree_html(data: RunData, campaign: int, max_nodes: int = 500) -> str:
    """The candidates of a campaign as a nested list: kept edits branch on, reverted and
    failed ones are leaves; masked actions (never run) are left out."""
    rows = [r for r in data.campaign_rows(campaign) if is_val(r)]
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
        m = fmt(r.get("metric"))
        step = "" if is_root else f"#{esc(r.get('step'))} "
        text = (
            f'<span class="b {v}">{esc(label)}</span>{step}'
            f"<b>{esc(r.get('kind') if not is_root else 'start config')}</b> {esc(r.get('description') or '')} "
            f"· {esc(data.metric)}={m} <span class='mono'>{esc(str(r.get('candidate'))[:8])}</span>"
        )
        kids = children.get(r.get("candidate"), []) if (is_root or r.get("kept")) else []
        inner = ""
        if kids and count < max_nodes:
            inner = "<ul>" + "".join(node(k) for k in kids if count < max_nodes) + "</ul>"
        return f"<li>{text}{inner}</li>"

    tree = node(root, True)
    more = f"<p class='sub'>(first {max_nodes} candidates shown)</p>" if count >= max_nodes else ""
    return f'<ul class="tree">{tree}</ul>{more}'


def campaign_sections(data: RunData, campaign: int, out: Path, embed: bool) -> list[str]:
    """The sections of a run page about one campaign: cards, plots, tree, kinds, diff."""
    facts = campaign_facts(data, campaign)
    s = data.summary or {}
    same = s.get("best_candidate") == facts.best_candidate
    best = num(s.get("best_metric")) if same and s.get("best_metric") is not None else facts.best
    test = num(s.get("test_metric")) if same and s.get("test_metric") is not None else facts.test
    start = facts.start
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
        ("start " + data.metric, fmt(start), ""),
        ("best " + data.metric, fmt(best), delta),
        ("test (once, at the end)", fmt(test), ""),
        ("experiments", str(facts.experiments), f"<div class='sub'>{facts.kept} kept</div>"),
        ("experiment seconds", f"{facts.seconds:.1f}", ""),
    ]
    body.append('<div class="cards">' + "".join(
        f'<div class="card"><div class="k">{esc(k)}</div><div class="v">{v}</div>{extra}</div>' for k, v, extra in cards
    ) + "</div>")  # fmt: skip
    info = {
        "instance": facts.instance,
        "campaign": f"{campaign} of {n_camp}" if n_camp > 1 else campaign,
        "direction": "maximize" if data.maximize else "minimize",
        "statuses": ", ".join(f"{k}: {v}" for k, v in sorted(facts.statuses.items())) or "—",
        "best candidate": facts.best_candidate,
    }
    if s.get("agent"):
        info["agent"] = s.get("agent")
    body.append(
        "<p class='sub'>"
        + " · ".join(f"{esc(k)}: <b>{esc(v)}</b>" for k, v in info.items())
        + "</p>"
    )

    body.append("<h2>Best so far</h2>")
    body.append(img(plot_progress(data, campaign, out / "progress.png"), embed, "best so far"))
    body.append("<h2>Lineage of candidates</h2>")
    body.append(img(plot_lineage(data, campaign, out / "lineage.png"), embed, "lineage"))
    body.append(
        "<details open><summary>tree (kept edits branch on; reverted and failed ones are leaves)</summary>"
    )
    body.append(tree_html(data, campaign) + "</details>")

    kinds = kind_table(data)
    body.append("<h2>Edit kinds</h2>")
    scope = f"all {n_camp} campaigns" if n_camp > 1 else "this campaign"
    body.append(f"<p class='sub'>Over {scope}. Effect = metric minus the parent's metric on the same seed, "
                "signed so that positive is better; success = kept / tries.</p>")  # fmt: skip
    body.append(
        table(
            [{**k.to_dict(), "success_rate": f"{100 * k.success_rate:.0f}%"} for k in kinds],
            ["kind", "tries", "ok", "failed", "kept", "success_rate", "mean_effect", "best_effect"],
            numeric=["mean_effect", "best_effect"],
        )
    )
    body.append(img(plot_kinds(kinds, data.metric, out / "kinds.png"), embed, "edit kinds"))

    changes, diff = best_diff(data, campaign, facts)
    body.append("<h2>From start to best</h2>")
    if changes:
        rows = [{"key": k, "start": v[0], "best": v[1]} for k, v in changes.items()]
        body.append(table(rows, ["key", "start", "best"]))
    else:
        body.append("<p>No config changes.</p>")
    body.append(diff_html(diff) if diff.strip() else "<p>No code changes.</p>")

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
        table(rows, list(rows[0]) if rows else [], numeric=[data.metric, "seconds"]) + "</details>"
    )
    return body
