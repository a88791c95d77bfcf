"""Bench results as typed records: campaigns in, ``bench.json`` out.

A :class:`Campaign` is one line of a bench folder's ``campaigns.jsonl``; :func:`summarise`
scores campaigns against their instance's best known metric and compares the agents, into
a :class:`BenchResult`. bench.json (:meth:`BenchResult.to_dict`), the text table
(:mod:`~rsi_rl.analysis.tables`) and the plots (:mod:`~rsi_rl.analysis.plots`) all derive
from it; :mod:`~rsi_rl.analysis.folders` reads and merges bench folders into it.

Measures (all on the validation metric, which rewards), per campaign then per agent:

* **normalised regret at K**: ``(best_known - best_K) / (best_known - start)``, clipped to
  [0, 1]; ``best_known`` of an instance is the best validation metric any campaign (the
  oracle's included) reached on it, so 0 = as good as anything found. Mean and 95%
  bootstrap CI over campaigns.
* **AUC**: the mean over k = 1..K of the normalised regret of the best-so-far (lower is
  better: it rewards improving early).
* **absolute gap at K** (``gap``): ``best_known - best_K`` in the metric's own units. Where
  the start is within a sample or two of the best known, one sample moves the normalised
  regret a lot; the gap does not inflate those instances. ``headroom`` is, per instance,
  the mean over its campaigns of ``best_known - start``.
* **regret on fresh seeds** (``regret_fresh``): the same regret with the start and the
  final incumbent re-measured on seeds no agent saw, against the best re-measured final of
  the instance: free of the winner's curse of the best single-seed value.
* **seed noise** (``noise_sd``): per instance, the pooled standard deviation of the final
  incumbents over the fresh seeds; ``noise_regret`` is that sd over the headroom, and
  ``gap_in_noise_sd_*`` an agent's absolute gap in units of it.
* **experiments to the reference** (tasks with a reference config): the first k at which
  the best-so-far reaches the reference config's metric; the median among hits and the
  censored median over all campaigns (a miss counts as K + 1). **Cotra milestones**:
  shares of campaigns that improve on the start (adequacy), reach the reference (parity),
  beat it (supremacy).
* **paired tests**: for each pair of agents once (``a_vs_b``, ``a`` listed first), wins,
  ties and losses of ``a`` on regret at K over the shared (instance, seed) pairs and the
  two-sided Wilcoxon signed-rank p-value; the same for ``gap``, ``auc``, ``fresh`` and
  the censored counts to the reference (``to_reference``). ``p_holm`` is each p-value
  after Holm's correction over all pairs of that measure.

Longer than most modules (about 470 lines) because the measures above are defined once,
beside the typed records that carry them; splitting them would separate each measure from
its field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

import numpy as np

from rsi_rl.analysis.headline import Headline
from rsi_rl.analysis.stats import (
    PairedTest,
    beats,
    bootstrap_ci,
    censored,
    first_hit,
    holm_correct,
    improvement,
    mean_or_none,
    median_or_none,
    normalised_regret,
    paired_test,
    pooled_sd,
    reaches,
)

REGRET_TEXT = (
    "(best_known - best) / (best_known - start) on the validation metric, clipped to [0, 1]"
)
REGRET_FRESH_TEXT = "the same with the start and final incumbent re-measured on fresh seeds (mean)"
HEADLINE_REGRET_TEXT = (
    "(optimum - truth_k) / (optimum - median) of the frozen yardstick, truth_k the true value "
    "of the incumbent after k experiments (fresh-seed mean for trained tasks); unclipped"
)
MEASURES = ("regret", "gap", "auc", "fresh", "to_reference")


# ---------------------------------------------------------------------------- campaigns
@dataclass(frozen=True)
class Campaign:
    """One finished campaign of an agent on an (instance, seed) pair: a campaigns.jsonl line.

    ``curve`` is the best-so-far validation metric after each experiment and ``seconds``
    the cumulative experiment seconds; the ``*_fresh`` fields are the start and the final
    incumbent re-measured on fresh seeds (their means and the values), ``reference`` the
    reference config's metric on the campaign's evaluation seed.
    """

    agent: str
    instance: int
    seed: int
    start: float
    best: float
    test: float | None = None
    curve: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    experiments: int | None = None
    wall_seconds: float | None = None
    statuses: dict[str, int] = field(default_factory=dict)
    best_edits: list[str] = field(default_factory=list)
    best_config: dict[str, Any] | None = None
    start_fresh: float | None = None
    final_fresh: float | None = None
    start_fresh_values: list[float] | None = None
    final_fresh_values: list[float] | None = None
    reference: float | None = None
    truth_start: float | None = None
    truth: list[float | None] | None = None
    #: the campaign's per-experiment lines (records.jsonl.gz); not a campaigns.jsonl key
    trace: list[dict[str, Any]] = field(default_factory=list, repr=False, compare=False)

    #: keys a campaigns.jsonl line leaves out when they are None
    OPTIONAL: ClassVar[tuple[str, ...]] = (
        "best_config",
        "start_fresh",
        "final_fresh",
        "start_fresh_values",
        "final_fresh_values",
        "reference",
        "truth_start",
        "truth",
    )

    def padded_curve(self, budget: int) -> list[float]:
        """The best-so-far at k = 1..budget (a short campaign keeps its best)."""
        curve = [*self.curve, *[self.best] * max(0, budget - len(self.curve))]
        return curve[:budget] or [self.start] * budget

    def regret_curve(self, best_known: float, budget: int, maximize: bool) -> list[float]:
        """Normalised regret of the best-so-far at k = 1..budget."""
        return [
            normalised_regret(v, self.start, best_known, maximize)
            for v in self.padded_curve(budget)
        ]

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "trace"}
        return {k: v for k, v in out.items() if not (k in self.OPTIONAL and v is None)}


@dataclass(frozen=True)
class FailedCampaign:
    """A campaign that raised: recorded, and the bench went on."""

    agent: str
    instance: int
    seed: int
    error: str
    traceback: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


Row = Campaign | FailedCampaign


def parse_row(row: dict[str, Any]) -> Row:
    """A campaigns.jsonl line as a record; ValueError names what is missing."""
    missing = [k for k in ("agent", "instance", "seed") if row.get(k) is None]
    if "error" not in row:
        missing += [k for k in ("start", "best") if row.get(k) is None]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    head: dict[str, Any] = {
        "agent": str(row["agent"]),
        "instance": int(row["instance"]),
        "seed": int(row["seed"]),
    }
    if "error" in row:
        return FailedCampaign(**head, error=str(row["error"]), traceback=row.get("traceback", ""))
    known = {f.name for f in fields(Campaign)} - set(head) - {"trace"}
    kwargs: dict[str, Any] = {k: v for k, v in row.items() if k in known and v is not None}
    kwargs["start"], kwargs["best"] = float(row["start"]), float(row["best"])
    kwargs["curve"] = [float(v) for v in row.get("curve") or []]
    kwargs["seconds"] = [float(v) for v in row.get("seconds") or []]
    return Campaign(**head, **kwargs)


# ---------------------------------------------------------------------------- summaries
@dataclass(frozen=True)
class Score:
    """What :func:`summarise` measures of one campaign against its instance's best known."""

    campaign: Campaign
    regret: float
    gap: float
    auc: float
    regret_curve: list[float]
    to_reference: int | None = None  # first k reaching the reference; None: missed or none
    to_reference_censored: int | None = None  # a miss as K + 1; None: no reference
    regret_fresh: float | None = None


def score(
    c: Campaign, best_known: float, fresh_known: float | None, budget: int, maximize: bool
) -> Score:
    """The measures of campaign ``c`` (see the module docstring)."""
    regs = c.regret_curve(best_known, budget, maximize)
    hit = first_hit(c.curve, c.reference, maximize) if c.reference is not None else None
    fresh = None
    if c.final_fresh is not None and c.start_fresh is not None and fresh_known is not None:
        fresh = normalised_regret(c.final_fresh, c.start_fresh, fresh_known, maximize)
    return Score(
        campaign=c,
        regret=normalised_regret(c.best, c.start, best_known, maximize),
        gap=max(0.0, improvement(best_known, c.best, maximize)),
        auc=float(np.mean(regs)),
        regret_curve=regs,
        to_reference=hit,
        to_reference_censored=censored(hit, budget) if c.reference is not None else None,
        regret_fresh=fresh,
    )


@dataclass(frozen=True)
class AgentSummary:
    """One agent's entry of bench.json.

    The groups ``fresh``, ``reference`` and ``noise`` are None when not measured (no
    re-measurement, no reference config, no seed noise); bench.json spreads their keys.
    """

    campaigns: int
    errors: int
    regret_mean: float | None
    regret_ci95: tuple[float, float]
    regret_median: float | None
    gap_mean: float | None
    gap_ci95: tuple[float, float]
    auc_mean: float | None
    auc_ci95: tuple[float, float]
    best_mean: float | None
    start_mean: float | None
    test_mean: float | None
    seconds_mean: float | None
    fresh: dict[str, Any] | None = None  # regret_fresh_mean, regret_fresh_ci95, final_fresh_mean
    reference: dict[str, Any] | None = None  # experiments_to_reference_*, reached, cotra
    noise: dict[str, float] | None = None  # gap_in_noise_sd_median, gap_in_noise_sd_mean

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for group in ("fresh", "reference", "noise"):
            out.update(out.pop(group) or {})
        return out


def summarise_agent(
    scores: Sequence[Score], errors: int, noise_sd: dict[int, float], maximize: bool
) -> AgentSummary:
    """An agent's entry from its scored campaigns (ordered by instance and seed)."""
    cs = [s.campaign for s in scores]
    regret, gap, auc = ([getattr(s, m) for s in scores] for m in ("regret", "gap", "auc"))
    fresh = [s for s in scores if s.regret_fresh is not None]
    fresh_group = None
    if fresh:
        fresh_group = {
            "regret_fresh_mean": mean_or_none(s.regret_fresh for s in fresh),
            "regret_fresh_ci95": bootstrap_ci([s.regret_fresh for s in fresh]),
            "final_fresh_mean": mean_or_none(s.campaign.final_fresh for s in fresh),
        }
    refs = [(c.best, c.start, c.reference) for c in cs if c.reference is not None]
    reference_group = None
    if refs:
        hits = [s.to_reference for s in scores if s.to_reference is not None]
        reference_group = {
            "experiments_to_reference_median": median_or_none(hits),
            "experiments_to_reference_censored_median": median_or_none(
                s.to_reference_censored for s in scores
            ),
            "reached_reference": len(hits) / len(refs),
            "cotra": {
                "adequacy": float(np.mean([beats(b, s0, maximize) for b, s0, _ in refs])),
                "parity": float(np.mean([reaches(b, r, maximize) for b, _, r in refs])),
                "supremacy": float(np.mean([beats(b, r, maximize) for b, _, r in refs])),
            },
        }
    in_sd = [
        s.gap / noise_sd[s.campaign.instance]
        for s in scores
        if noise_sd.get(s.campaign.instance, 0.0) > 0
    ]
    noise_group = None
    if in_sd:
        noise_group = {
            "gap_in_noise_sd_median": float(np.median(in_sd)),
            "gap_in_noise_sd_mean": float(np.mean(in_sd)),
        }
    return AgentSummary(
        campaigns=len(scores),
        errors=errors,
        regret_mean=mean_or_none(regret),
        regret_ci95=bootstrap_ci(regret),
        regret_median=median_or_none(regret),
        gap_mean=mean_or_none(gap),
        gap_ci95=bootstrap_ci(gap),
        auc_mean=mean_or_none(auc),
        auc_ci95=bootstrap_ci(auc),
        best_mean=mean_or_none(c.best for c in cs),
        start_mean=mean_or_none(c.start for c in cs),
        test_mean=mean_or_none(c.test for c in cs),
        seconds_mean=mean_or_none(c.seconds[-1] if c.seconds else 0.0 for c in cs),
        fresh=fresh_group,
        reference=reference_group,
        noise=noise_group,
    )


@dataclass(frozen=True)
class Pair:
    """The paired tests of agent ``a`` against ``b`` (each measure over their shared pairs)."""

    a: str
    b: str
    regret: PairedTest
    gap: PairedTest
    auc: PairedTest
    fresh: PairedTest | None = None
    to_reference: PairedTest | None = None

    @property
    def key(self) -> str:
        return f"{self.a}_vs_{self.b}"

    def to_dict(self) -> dict[str, Any]:
        out = self.regret.to_dict()
        for measure in MEASURES[1:]:
            test = getattr(self, measure)
            if test is not None:
                out[measure] = test.to_dict()
        return out


def compare(
    a: str, b: str, sa: dict[tuple[int, int], Score], sb: dict[tuple[int, int], Score]
) -> Pair:
    """Paired tests of agent ``a`` (scores ``sa``) against ``b`` on their shared pairs."""

    shared = sorted(set(sa) & set(sb))

    def test(measure: str) -> PairedTest | None:
        keys = [k for k in shared if None not in (getattr(sa[k], measure), getattr(sb[k], measure))]
        if not keys and measure in ("regret_fresh", "to_reference_censored"):
            return None  # not measured for this pair
        x, y = ([getattr(s[k], measure) for k in keys] for s in (sa, sb))
        return paired_test(x, y)

    regret, gap, auc = test("regret"), test("gap"), test("auc")
    assert regret is not None and gap is not None and auc is not None
    return Pair(a, b, regret, gap, auc, test("regret_fresh"), test("to_reference_censored"))


def holm_pairs(pairs: Sequence[Pair]) -> list[Pair]:
    """``pairs`` with ``p_holm`` set on every test, one family per measure."""
    updates: list[dict[str, Any]] = [{} for _ in pairs]
    for measure in MEASURES:
        family = [(i, t) for i, p in enumerate(pairs) if (t := getattr(p, measure)) is not None]
        for (i, _), corrected in zip(family, holm_correct([t for _, t in family]), strict=True):
            updates[i][measure] = corrected
    return [replace(p, **u) for p, u in zip(pairs, updates, strict=True)]


@dataclass(frozen=True)
class BenchResult:
    """Everything bench.json holds, plus the scored campaigns the plots draw."""

    agents: dict[str, AgentSummary]
    pairs: list[Pair]
    best_known: dict[int, float]
    headroom: dict[int, float]
    noise_sd: dict[int, float]
    best_known_fresh: dict[int, float]
    budget: int
    maximize: bool
    scores: list[Score] = field(default_factory=list, repr=False)
    setup: dict[str, Any] = field(default_factory=dict)
    plots: list[str] = field(default_factory=list)
    #: regret against a frozen yardstick (:mod:`rsi_rl.analysis.headline`); None without one
    headline: Headline | None = None

    @property
    def noise_regret(self) -> dict[int, float]:
        """Per instance, the normalised regret one seed-noise sd amounts to."""
        h = self.headroom
        return {i: min(1.0, sd / h[i]) for i, sd in self.noise_sd.items() if h.get(i, 0) > 0}

    def curves(self) -> dict[str, list[list[float]]]:
        """Per agent, each campaign's normalised regret of the best-so-far at k = 1..K."""
        out: dict[str, list[list[float]]] = {a: [] for a in self.agents}
        for s in self.scores:
            out[s.campaign.agent].append(s.regret_curve)
        return {a: c for a, c in out.items() if c}

    def to_dict(self) -> dict[str, Any]:
        """The bench.json mapping (instances as string keys)."""

        def keyed(d: dict[int, float]) -> dict[str, float]:
            return {str(k): v for k, v in d.items()}

        out: dict[str, Any] = {
            "agents": {a: e.to_dict() for a, e in self.agents.items()},
            "paired": {p.key: p.to_dict() for p in self.pairs},
            "best_known": keyed(self.best_known),
            "headroom": keyed(self.headroom),
            "noise_sd": keyed(self.noise_sd),
            "best_known_fresh": keyed(self.best_known_fresh),
        }
        if self.noise_regret:
            out["noise_regret"] = keyed(self.noise_regret)
            out["noise_regret_median"] = float(np.median(list(self.noise_regret.values())))
        if self.headline is not None:
            out["headline"] = self.headline.to_dict()
        if self.setup:
            out["setup"] = self.setup
        if self.plots:
            out["plots"] = self.plots
        return out


def summarise(
    rows: Sequence[Row], agents: Sequence[str], budget: int, maximize: bool
) -> BenchResult:
    """Score the campaigns of ``agents`` among ``rows`` and compare each pair once.

    Every finished campaign in ``rows`` (other agents' and the oracle's too) adds to its
    instance's best known metric; only ``agents`` are summarised and compared, in their
    order. The result does not depend on the order of ``rows``.
    """
    agents = list(agents)
    # one order whatever the order of rows: the same sums, to the last bit, and key order
    done = sorted(
        (r for r in rows if isinstance(r, Campaign)), key=lambda c: (c.instance, c.seed, c.agent)
    )
    pick = max if maximize else min
    best_known: dict[int, float] = {}
    fresh_known: dict[int, float] = {}
    starts: dict[int, list[float]] = {}
    finals: dict[int, list[list[float]]] = {}
    for c in done:
        vals = [c.best, c.start, *c.curve]
        vals += [v for v in (c.reference, best_known.get(c.instance)) if v is not None]
        best_known[c.instance] = pick(vals)
        if c.final_fresh is not None and c.start_fresh is not None:
            v = pick(c.final_fresh, c.start_fresh)
            fresh_known[c.instance] = pick(v, fresh_known.get(c.instance, v))
        starts.setdefault(c.instance, []).append(c.start)
        finals.setdefault(c.instance, []).append(c.final_fresh_values or [])
    headroom = {
        i: float(np.mean([improvement(best_known[i], s, maximize) for s in v]))
        for i, v in starts.items()
    }
    noise = {i: sd for i, groups in finals.items() if (sd := pooled_sd(groups)) is not None}
    by_agent: dict[str, dict[tuple[int, int], Score]] = {a: {} for a in agents}
    for c in done:
        if c.agent in by_agent:
            by_agent[c.agent][(c.instance, c.seed)] = score(
                c, best_known[c.instance], fresh_known.get(c.instance), budget, maximize
            )
    ordered = {a: [s[k] for k in sorted(s)] for a, s in by_agent.items()}
    failed = [r.agent for r in rows if isinstance(r, FailedCampaign)]
    pairs = [
        compare(a, b, by_agent[a], by_agent[b])
        for i, a in enumerate(agents)
        for b in agents[i + 1 :]
        if a != b
    ]
    return BenchResult(
        agents={a: summarise_agent(ordered[a], failed.count(a), noise, maximize) for a in agents},
        pairs=holm_pairs(pairs),
        best_known=best_known,
        headroom=headroom,
        noise_sd=noise,
        best_known_fresh=fresh_known,
        budget=int(budget),
        maximize=maximize,
        scores=[s for a in agents for s in ordered[a]],
    )
