"""A bench's headline numbers, from per-experiment records and a frozen yardstick only.

Inputs (all in a bench folder, all committed with it):

- ``protocol.json``: the :class:`Protocol` written before the first campaign (agents,
  budget K, endpoints, declared comparisons, alpha, power, instances);
- ``records.jsonl.gz``: one line per experiment of every finished campaign (and a
  ``k = 0`` line for its start), each with ``truth``: the true value of the incumbent
  after that experiment (a landscape task's ``true_value``), or for trained tasks its
  mean over fresh seeds at the endpoints (and the start);
- ``yardstick.json`` (:mod:`rsi_rl.analysis.yardstick`): per instance, optimum and median.

Measures, per campaign:

- ``regret@k`` for each endpoint k: ``(optimum - truth_k) / (optimum - median)`` where
  ``truth_k`` is the incumbent's true value after k experiments (a campaign that stopped
  early keeps its last incumbent). Never the best single-seed value, and never measured
  against what the compared agents found.
- ``auc``: the mean of that regret over k = 1..K (tasks with a truth curve only).

Per agent: mean, median and 95% bootstrap interval of each measure. Per declared
comparison ``(a, b, alternative)`` and measure: the paired Wilcoxon test over the shared
(instance, seed) pairs (``less``: the claim that ``a``'s regret is lower), Holm's
correction over every declared comparison and measure together, and the smallest effect
(in regret) the test resolves with its pairs at ``power``, given the observed sd of the
paired differences, at Holm's strictest level ``alpha / m``.

:func:`headline` is the one function both ``rsi-rl bench`` and
``python -m rsi_rl.analysis.rederive`` call.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from rsi_rl.analysis.stats import (
    ALTERNATIVES,
    PairedTest,
    bootstrap_ci,
    holm_correct,
    mean_or_none,
    median_or_none,
    min_detectable_effect,
    paired_test,
)
from rsi_rl.analysis.yardstick import Yardstick
from rsi_rl.core.errors import ConfigError

log = logging.getLogger("rsi_rl")

RECORDS, PROTOCOL = "records.jsonl.gz", "protocol.json"
AUC = "auc"


def endpoint_key(k: int) -> str:
    """The measure name of the regret after ``k`` experiments (``regret@k``)."""
    return f"regret@{int(k)}"


# ---------------------------------------------------------------------------- protocol
@dataclass(frozen=True)
class Protocol:
    """What a bench declares before it runs: the numbers it will report and the tests."""

    task: str
    agents: list[str]
    budget: int
    endpoints: list[int]
    comparisons: list[tuple[str, str, str]]
    alpha: float = 0.05
    power: float = 0.8
    maximize: bool = True
    family: str | None = None
    split: str | None = None
    instances: list[int] = field(default_factory=list)
    seeds: int = 0
    #: whether the records hold a truth curve (every k), so that the AUC is measured
    auc: bool = True

    @property
    def measures(self) -> list[str]:
        """The measures reported and tested: ``regret@k`` per endpoint, then ``auc``."""
        return [*(endpoint_key(k) for k in self.endpoints), *([AUC] if self.auc else [])]

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "agents": list(self.agents),
            "budget": self.budget,
            "endpoints": list(self.endpoints),
            "comparisons": [list(c) for c in self.comparisons],
            "alpha": self.alpha,
            "power": self.power,
            "maximize": self.maximize,
            "family": self.family,
            "split": self.split,
            "instances": list(self.instances),
            "seeds": self.seeds,
            "auc": self.auc,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Protocol:
        return cls(
            task=str(d["task"]),
            agents=[str(a) for a in d["agents"]],
            budget=int(d["budget"]),
            endpoints=[int(k) for k in d["endpoints"]],
            comparisons=[(str(a), str(b), str(alt)) for a, b, alt in d["comparisons"]],
            alpha=float(d.get("alpha", 0.05)),
            power=float(d.get("power", 0.8)),
            maximize=bool(d.get("maximize", True)),
            family=d.get("family"),
            split=d.get("split"),
            instances=[int(i) for i in d.get("instances") or []],
            seeds=int(d.get("seeds") or 0),
            auc=bool(d.get("auc", True)),
        )


def check_endpoints(endpoints: Iterable[int], budget: int) -> list[int]:
    """Sorted distinct endpoints; those above ``budget`` are left out (logged), and none
    left means ``[budget]``. ConfigError names an endpoint below 1."""
    out = sorted({int(k) for k in endpoints})
    bad = [k for k in out if k < 1]
    if bad:
        raise ConfigError(f"endpoints={out}: each must be >= 1, e.g. endpoints=[5,10,{budget}]")
    kept = [k for k in out if k <= int(budget)]
    if len(kept) < len(out):
        log.warning(
            f"endpoints {[k for k in out if k > int(budget)]} exceed budget={budget}: left out"
        )
    return kept or [int(budget)]


def declared_comparisons(
    raw: Sequence[Sequence[str]] | None, agents: Sequence[str], aa: tuple[str, str] | None
) -> list[tuple[str, str, str]]:
    """The comparisons to test, each ``(a, b, alternative)``.

    ``raw`` items are ``[a, b]`` (two-sided) or ``[a, b, alternative]`` with alternative
    ``two-sided``, ``less`` (a's regret is lower) or ``greater``; None compares every pair
    of ``agents`` two-sided. The A/A pair ``aa`` is added (two-sided) when both its agents
    run and it is not declared. ConfigError names a comparison of an agent not running.
    """
    agents = list(agents)
    if raw is None:
        items: list[tuple[str, str, str]] = [
            (a, b, "two-sided") for i, a in enumerate(agents) for b in agents[i + 1 :]
        ]
    else:
        items = []
        for c in raw:
            c = [str(x) for x in c]
            if len(c) not in (2, 3) or c[0] == c[1]:
                raise ConfigError(
                    f"comparisons item {c}: write [a, b] or [a, b, less|greater|two-sided]"
                )
            alt = c[2] if len(c) == 3 else "two-sided"
            if alt not in ALTERNATIVES:
                raise ConfigError(
                    f"comparisons item {c}: alternative must be one of {ALTERNATIVES}"
                )
            missing = [x for x in c[:2] if x not in agents]
            if missing:
                raise ConfigError(
                    f"comparisons item {c} names {', '.join(missing)}, not among agents "
                    f"({', '.join(agents)}); add it to agents or drop the comparison"
                )
            items.append((c[0], c[1], alt))
    declared = any({a, b} == set(aa or ()) for a, b, _ in items)
    if aa is not None and all(x in agents for x in aa) and not declared:
        items.append((aa[0], aa[1], "two-sided"))
    return list(dict.fromkeys(items))


# ---------------------------------------------------------------------------- records
def write_records(fh: Any, lines: Iterable[dict[str, Any]]) -> None:
    """Append per-experiment lines to an open text stream (one JSON object a line)."""
    for line in lines:
        fh.write(json.dumps(line, default=str) + "\n")


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """The lines of a records.jsonl.gz file (a cut-off last line is skipped)."""
    out = []
    with gzip.open(path, "rt") as fh:
        try:
            for line in fh:
                if line.strip():
                    out.append(json.loads(line))
        except (EOFError, json.JSONDecodeError):  # a bench stopped while writing
            pass
    return out


CampaignKey = tuple[str, int, int]  # agent, instance, seed


def campaign_truths(lines: Iterable[dict[str, Any]]) -> dict[CampaignKey, dict[int, float | None]]:
    """Per campaign, k -> the incumbent's true value after k experiments (k = 0: start)."""
    out: dict[CampaignKey, dict[int, float | None]] = {}
    for r in lines:
        key = (str(r["agent"]), int(r["instance"]), int(r["seed"]))
        t = r.get("truth")
        out.setdefault(key, {})[int(r["k"])] = None if t is None else float(t)
    return out


def campaign_measures(
    truths: dict[int, float | None],
    instance: int,
    ys: Yardstick,
    endpoints: Sequence[int],
    budget: int,
) -> dict[str, float | None]:
    """``regret@k`` per endpoint and ``auc`` of one campaign (None where not measured)."""
    last = max(truths) if truths else 0

    def regret(k: int) -> float | None:
        return ys.regret(instance, truths.get(min(k, last)))

    out: dict[str, float | None] = {endpoint_key(k): regret(k) for k in endpoints}
    curve = [regret(k) for k in range(1, int(budget) + 1)]
    out[AUC] = None if not curve or any(v is None for v in curve) else mean_or_none(curve)
    return out


# ---------------------------------------------------------------------------- headline
@dataclass(frozen=True)
class MeasureStats:
    """One agent's measure over its campaigns."""

    n: int
    mean: float | None
    median: float | None
    ci95: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "mean": self.mean, "median": self.median, "ci95": list(self.ci95)}


@dataclass(frozen=True)
class Comparison:
    """A declared comparison: per measure its paired test and resolvable effect."""

    a: str
    b: str
    alternative: str
    tests: dict[str, PairedTest]
    mde: dict[str, float | None]

    @property
    def key(self) -> str:
        return f"{self.a}_vs_{self.b}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "alternative": self.alternative,
            "tests": {m: {**t.to_dict(), "mde": self.mde.get(m)} for m, t in self.tests.items()},
        }


@dataclass(frozen=True)
class Headline:
    """The headline of a bench (what bench.json's ``headline`` holds)."""

    protocol: Protocol
    agents: dict[str, dict[str, MeasureStats]]
    campaigns: dict[str, int]
    comparisons: list[Comparison]
    power_alpha: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "measures": self.protocol.measures,
            "alpha": self.protocol.alpha,
            "power": self.protocol.power,
            "power_alpha": self.power_alpha,
            "agents": {
                a: {
                    "campaigns": self.campaigns.get(a, 0),
                    **{m: s.to_dict() for m, s in ms.items()},
                }
                for a, ms in self.agents.items()
            },
            "comparisons": {c.key: c.to_dict() for c in self.comparisons},
        }


@lru_cache(maxsize=256)
def _mde_ratio(n: int, alpha: float, power: float, alternative: str) -> float | None:
    """The resolvable effect in units of the differences' sd (scale-free, so cached)."""
    return min_detectable_effect(1.0, n, alpha, power, alternative)


def headline(lines: Iterable[dict[str, Any]], ys: Yardstick, protocol: Protocol) -> Headline:
    """Score every campaign in ``lines`` against ``ys`` and test the declared comparisons.

    The result depends on the records, the yardstick and the protocol only (not on the
    order of the lines, nor on agents outside a comparison). Raises ConfigError for an
    instance missing from the yardstick.
    """
    truths = campaign_truths(lines)
    ys.check(sorted({inst for _, inst, _ in truths}))
    measures = protocol.measures
    scored: dict[str, dict[tuple[int, int], dict[str, float | None]]] = {
        a: {} for a in protocol.agents
    }
    for (agent, inst, seed), by_k in sorted(truths.items()):
        if agent in scored:
            scored[agent][(inst, seed)] = campaign_measures(
                by_k, inst, ys, protocol.endpoints, protocol.budget
            )
    agents: dict[str, dict[str, MeasureStats]] = {}
    for a, by_pair in scored.items():
        agents[a] = {}
        for m in measures:
            vals = [v[m] for _, v in sorted(by_pair.items()) if v[m] is not None]
            agents[a][m] = MeasureStats(
                len(vals), mean_or_none(vals), median_or_none(vals), bootstrap_ci(vals)
            )
    family: list[tuple[int, str, PairedTest]] = []
    for i, (a, b, alt) in enumerate(protocol.comparisons):
        sa, sb = scored.get(a, {}), scored.get(b, {})
        for m in measures:
            keys = [k for k in sorted(set(sa) & set(sb)) if None not in (sa[k][m], sb[k][m])]
            x = [float(sa[k][m]) for k in keys]  # type: ignore[arg-type]
            y = [float(sb[k][m]) for k in keys]  # type: ignore[arg-type]
            family.append((i, m, paired_test(x, y, alt, sd=True)))
    corrected = holm_correct([t for _, _, t in family]) if family else []
    power_alpha = protocol.alpha / max(1, len(family))
    tests: list[dict[str, PairedTest]] = [{} for _ in protocol.comparisons]
    mde: list[dict[str, float | None]] = [{} for _ in protocol.comparisons]
    for (i, m, _), t in zip(family, corrected, strict=True):
        tests[i][m] = t
        ratio = _mde_ratio(t.n, power_alpha, protocol.power, t.alternative) if t.n else None
        mde[i][m] = ratio * t.sd_diff if ratio is not None and t.sd_diff else None
    comparisons = [
        Comparison(a, b, alt, tests[i], mde[i])
        for i, (a, b, alt) in enumerate(protocol.comparisons)
    ]
    return Headline(
        protocol=protocol,
        agents=agents,
        campaigns={a: len(v) for a, v in scored.items()},
        comparisons=comparisons,
        power_alpha=power_alpha,
    )


__all__ = [
    "AUC",
    "PROTOCOL",
    "RECORDS",
    "Comparison",
    "Headline",
    "MeasureStats",
    "Protocol",
    "campaign_measures",
    "campaign_truths",
    "check_endpoints",
    "declared_comparisons",
    "endpoint_key",
    "headline",
    "read_records",
    "write_records",
]
