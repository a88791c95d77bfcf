"""Tables: a bench result as text, and a run's edit kinds (tries, kept, mean effect)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from rsi_rl.analysis.headline import Headline
from rsi_rl.analysis.results import BenchResult
from rsi_rl.analysis.runs import RunData, is_val, masked, num
from rsi_rl.analysis.stats import PairedTest


def _test(t: PairedTest) -> str:
    holm = f", Holm {t.p_holm:.3g}" if t.p_holm is not None else ""
    return f"{t.wins}/{t.ties}/{t.losses} (p = {t.p_value:.3g}{holm})"


def format_table(result: BenchResult) -> str:
    """The per-agent table and the paired tests of a bench result, as text."""
    lines = [f"{'agent':<10} {'regret@K':>9} {'95% CI':>17} {'AUC':>7} {'best':>7} {'n':>4}"]
    for a, e in result.agents.items():
        if e.regret_mean is None or e.auc_mean is None or e.best_mean is None:
            lines.append(f"{a:<10} (no campaign finished; {e.errors} errors)")
            continue
        lo, hi = e.regret_ci95
        lines.append(
            f"{a:<10} {e.regret_mean:9.3f} [{lo:6.3f}, {hi:6.3f}] {e.auc_mean:7.3f} "
            f"{e.best_mean:7.4f} {e.campaigns:4d}"
        )
        if e.gap_mean is not None:
            in_sd = (e.noise or {}).get("gap_in_noise_sd_median")
            lines.append(
                f"{'':<10} absolute gap to the best known: {e.gap_mean:.4f}"
                + (f" (median {in_sd:.2f} seed-noise sd)" if in_sd is not None else "")
            )
        if e.fresh:
            flo, fhi = e.fresh["regret_fresh_ci95"]
            lines.append(
                f"{'':<10} re-measured on fresh seeds: regret {e.fresh['regret_fresh_mean']:.3f} "
                f"[{flo:.3f}, {fhi:.3f}], final metric {e.fresh['final_fresh_mean']:.4f}"
            )
        if e.reference:
            ref, c = e.reference, e.reference["cotra"]
            lines.append(
                f"{'':<10} cotra adequacy {c['adequacy']:.2f} parity {c['parity']:.2f} "
                f"supremacy {c['supremacy']:.2f}; median experiments to reference "
                f"{ref['experiments_to_reference_median']} among hits, "
                f"{ref['experiments_to_reference_censored_median']} with a miss as K+1"
            )
    if result.noise_sd:
        sd = float(np.median(list(result.noise_sd.values())))
        floor = result.noise_regret
        lines.append(
            f"seed noise of a final incumbent (sd over fresh seeds), median over instances: "
            f"{sd:.4f}"
            + (f" (= normalised regret {np.median(list(floor.values())):.3f})" if floor else "")
        )
    for p in result.pairs:
        t = p.regret
        holm = f", Holm {t.p_holm:.3g}" if t.p_holm is not None else ""
        lines.append(
            f"{p.key}: wins {t.wins} ties {t.ties} losses {t.losses} "
            f"(p = {t.p_value:.3g}{holm}, Wilcoxon signed-rank); "
            f"absolute gap p = {p.gap.p_value:.3g}; AUC {_test(p.auc)}"
            + (f"; fresh seeds: {_test(p.fresh)}" if p.fresh is not None else "")
        )
    return "\n".join(lines)


def _num(v: float | None, fmt: str = ".3f") -> str:
    return "-" if v is None or not np.isfinite(v) else format(v, fmt)


def _mde(v: float | None, n: int) -> str:
    """A resolvable effect; ``none`` where the pairs allow no p-value below the level."""
    return _num(v) if v is not None else ("none" if n else "-")


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """The lines of a Markdown table: ``header``, its rule, then one line per row.

    Example:
        >>> markdown_table(["agent", "auc"], [["tpe", "0.41"]])
        ['| agent | auc |', '|---|---|', '| tpe | 0.41 |']
    """
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def format_headline(h: Headline) -> str:
    """A bench's headline as Markdown: per agent each measure's mean [95% CI] (median, n);
    per declared comparison and measure the paired Wilcoxon test, Holm's p-value and the
    smallest effect resolvable at the protocol's power."""
    p = h.protocol
    measures = p.measures
    where = f" ({p.family}/{p.split})" if p.family else ""
    rows: list[list[str]] = []
    for a, stats in h.agents.items():
        cells = [a]
        for m in measures:
            st = stats[m]
            lo, hi = st.ci95
            cells.append(
                f"{_num(st.mean)} [{_num(lo)}, {_num(hi)}] ({_num(st.median)}, {st.n})"
                if st.n
                else "-"
            )
        rows.append(cells)
    lines = [
        f"Regret against the frozen yardstick, task {p.task}{where}, budget {p.budget}: "
        "0 = optimum, 1 = median config; mean [95% CI] (median, n)",
        "",
        *markdown_table(["agent", *measures], rows),
        "",
        f"Declared comparisons: paired Wilcoxon signed-rank on regret (diff = a - b, negative: "
        f"a better); Holm over {sum(len(c.tests) for c in h.comparisons)} tests; mde = "
        f"smallest effect resolvable at power {p.power:g}, level {h.power_alpha:.3g} "
        "(none: too few pairs or no spread)",
        "",
    ]
    columns = "comparison,alternative,measure,n,wins/ties/losses,mean diff,p,p Holm,mde"
    tests = [
        [
            f"{c.a} vs {c.b}",
            c.alternative,
            m,
            str(t.n),
            f"{t.wins}/{t.ties}/{t.losses}",
            _num(t.mean_diff, "+.3f"),
            f"{t.p_value:.3g}",
            _num(t.p_holm, ".3g"),
            _mde(c.mde.get(m), t.n),
        ]
        for c in h.comparisons
        for m, t in c.tests.items()
    ]
    lines += markdown_table(columns.split(","), tests)
    return "\n".join(lines)


@dataclass(frozen=True)
class KindStats:
    """One edit kind over a run: tries, ok runs, failures, kept, and its effects.

    The effect of an experiment is its metric minus its parent's on the same seed, signed
    so that positive is better; ``success_rate`` is kept / tries.
    """

    kind: str
    tries: int
    ok: int
    failed: int
    kept: int
    success_rate: float
    mean_effect: float | None
    best_effect: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def kind_table(data: RunData, campaigns: Iterable[int] | None = None) -> list[KindStats]:
    """Per edit kind: tries, ok runs, kept, success rate and mean effect on the metric,
    by success rate then mean effect. Failures count as tries with no effect; a masked
    action (never run) is a try, not a failure."""
    sign = 1.0 if data.maximize else -1.0
    wanted = set(campaigns) if campaigns is not None else None
    cand_metric: dict[tuple[Any, Any], float] = {}
    counts: dict[str, dict[str, int]] = {}
    effects: dict[str, list[float]] = {}
    for r in data.rows:
        if not is_val(r) or (wanted is not None and r.get("campaign") not in wanted):
            continue
        key = (r.get("campaign"), r.get("candidate"))
        m = num(r.get("metric"))
        kind = str(r.get("kind"))
        if kind in ("baseline", "stop"):
            if m is not None:
                cand_metric.setdefault(key, m)
            continue
        c = counts.setdefault(kind, {"tries": 0, "ok": 0, "failed": 0, "kept": 0})
        c["tries"] += 1
        if r.get("status") == "ok":
            c["ok"] += 1
        elif not masked(r):  # a run refused as invalid failed; a masked action did not run
            c["failed"] += 1
        c["kept"] += int(bool(r.get("kept")))
        parent = cand_metric.get((r.get("campaign"), r.get("parent")))
        eff = effects.setdefault(kind, [])
        if kind != "reevaluate" and m is not None:
            if parent is not None:
                eff.append(sign * (m - parent))
            cand_metric.setdefault(key, m)
    out = [
        KindStats(
            kind=kind,
            **c,
            success_rate=c["kept"] / c["tries"] if c["tries"] else 0.0,
            mean_effect=sum(effects[kind]) / len(effects[kind]) if effects[kind] else None,
            best_effect=max(effects[kind]) if effects[kind] else None,
        )
        for kind, c in counts.items()
    ]
    out.sort(
        key=lambda s: (
            -s.success_rate,
            -(s.mean_effect if s.mean_effect is not None else -1e9),
        )
    )
    return out
