"""Bench folders on disk: read one, merge several into one :class:`BenchResult`.

A bench folder (the run directory of ``rsi-rl bench``) holds:

- ``campaigns.jsonl``: one :class:`~rsi_rl.analysis.results.Campaign` (or
  :class:`~rsi_rl.analysis.results.FailedCampaign`) per line;
- ``oracle.jsonl``: the oracle search's campaigns, when it ran (they only add to the best
  known metric of their instance);
- ``bench.json``: the summary (:meth:`BenchResult.to_dict`), its ``setup`` naming the task,
  metric, direction, agents and budget.

:func:`merge_benches` summarises the campaigns of several folders as one bench. Every
agent is deterministic given its (instance, seed) pair, so an agent run in a later job
joins an earlier comparison without rerunning the others, and the merge of jobs that
split the agents (or the pairs) equals one job over all of them. Example::

    from rsi_rl.analysis.folders import BenchSource, merge_benches

    result = merge_benches([
        "runs/bench/2026-01-01/12-00-00",                     # every agent of this job
        BenchSource.parse("runs/bench/2026-01-02/09-00-00:tpe=tpe_new"),  # tpe, renamed
    ])
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rsi_rl.analysis.results import (
    REGRET_FRESH_TEXT,
    REGRET_TEXT,
    BenchResult,
    Campaign,
    Row,
    parse_row,
    summarise,
)
from rsi_rl.core.errors import ConfigError

BENCH_JSON, CAMPAIGNS, ORACLE = "bench.json", "campaigns.jsonl", "oracle.jsonl"
#: the agent name of the oracle's campaigns (they add to the best known, never compared)
ORACLE_AGENT = "_oracle"


def read_campaigns(path: str | Path) -> list[Row]:
    """The records of a campaigns.jsonl (or oracle.jsonl) file.

    A cut-off last line (a bench stopped while writing it) is skipped; any other bad line
    raises :class:`ConfigError` naming the file and the line.
    """
    path = Path(path)
    lines = [(n, s) for n, s in enumerate(path.read_text().splitlines(), 1) if s.strip()]
    out: list[Row] = []
    for i, (n, line) in enumerate(lines):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            if i == len(lines) - 1:
                break
            raise ConfigError(f"{path} line {n} is not JSON ({exc.msg})") from exc
        try:
            if not isinstance(row, dict):
                raise ValueError("not a JSON object")
            out.append(parse_row(row))
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"{path} line {n}: {exc}; pass a campaigns.jsonl that rsi-rl bench wrote"
            ) from exc
    return out


def write_campaigns(path: Path, rows: Sequence[Row]) -> None:
    """Write ``rows`` as a campaigns.jsonl file (one JSON object a line)."""
    path.write_text("".join(json.dumps(r.to_dict(), default=str) + "\n" for r in rows))


def write_bench_json(path: Path, result: BenchResult) -> None:
    """Write ``result`` as bench.json."""
    path.write_text(json.dumps(result.to_dict(), indent=2, default=str))


def read_json(path: Path) -> Any:
    """The JSON in ``path``; None when the file is missing or not JSON."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        return None


@dataclass(frozen=True)
class BenchData:
    """What one bench folder (or campaigns.jsonl file) holds."""

    path: Path
    rows: list[Row]
    oracle: list[Campaign] = field(default_factory=list)
    setup: dict[str, Any] = field(default_factory=dict)

    def agents(self) -> list[str]:
        """The agents of the rows: in the setup's order, then in order of appearance."""
        found = list(dict.fromkeys(r.agent for r in self.rows))
        listed = [str(a) for a in self.setup.get("agents") or [] if a in found]
        return listed + [a for a in found if a not in listed]


def read_bench(path: str | Path) -> BenchData:
    """Read a bench folder, or a campaigns.jsonl file (with its folder's setup when it is
    a bench folder's own campaigns.jsonl)."""
    path = Path(path)
    folder: Path | None = path
    campaigns = path / CAMPAIGNS
    if path.is_dir():
        if not campaigns.is_file():
            raise ConfigError(
                f"{path} has no {CAMPAIGNS}; pass the run directory of rsi-rl bench "
                "or a campaigns.jsonl file"
            )
    elif path.is_file():
        folder, campaigns = (path.parent if path.name == CAMPAIGNS else None), path
    else:
        raise ConfigError(f"{path} does not exist; pass a bench folder or a campaigns.jsonl file")
    oracle: list[Campaign] = []
    setup: dict[str, Any] = {}
    if folder is not None:
        if (folder / ORACLE).is_file():
            oracle = [r for r in read_campaigns(folder / ORACLE) if isinstance(r, Campaign)]
        bench = read_json(folder / BENCH_JSON)
        if isinstance(bench, dict) and isinstance(bench.get("setup"), dict):
            setup = bench["setup"]
    return BenchData(path=path, rows=read_campaigns(campaigns), oracle=oracle, setup=setup)


@dataclass(frozen=True)
class BenchSource:
    """A bench folder (or campaigns.jsonl file) to merge, and which of its agents.

    ``agents`` maps each agent to take to its label in the merge (``{"tpe": "tpe_new"}``
    renames); None takes every agent under its own name.
    """

    path: Path
    agents: dict[str, str] | None = None

    @classmethod
    def parse(cls, spec: str | Path) -> BenchSource:
        """``PATH`` or ``PATH:agent1,agent2=label`` (``agent=label`` takes ``agent`` under
        the name ``label``)."""
        spec = str(spec)
        path, sep, names = spec.rpartition(":")
        if not sep or Path(spec).exists() or not path:
            return cls(Path(spec))
        picks = [n.strip().partition("=") for n in names.split(",") if n.strip()]
        if not picks:
            raise ConfigError(f"{spec!r}: name agents after the colon, PATH:agent1,agent2=label")
        return cls(Path(path), {a: new or a for a, _, new in picks})

    def __str__(self) -> str:
        if self.agents is None:
            return str(self.path)
        picks = (a if a == label else f"{a}={label}" for a, label in self.agents.items())
        return f"{self.path}:{','.join(picks)}"


def _agreed(key: str, given: Any, found: dict[Path, Any], flag: str) -> Any:
    """The one value of setup ``key`` that ``given`` and every source agree on (None:
    unknown); ConfigError naming the sources that disagree."""
    values = {str(v) for v in found.values()}
    if given is not None and found and values != {str(given)}:
        clash = ", ".join(f"{p} has {key} {v}" for p, v in found.items())
        raise ConfigError(f"{flag} {given} but {clash}; merge benches of the same {key}")
    if given is None and len(values) > 1:
        clash = ", ".join(f"{p} has {key} {v}" for p, v in found.items())
        raise ConfigError(f"{clash}; merge benches of the same {key}")
    return given if given is not None else next(iter(found.values()), None)


def merge_benches(
    sources: Sequence[BenchSource | str | Path],
    budget: int | None = None,
    maximize: bool | None = None,
) -> BenchResult:
    """Summarise the campaigns of several bench folders as one bench.

    Args:
        sources: bench folders or campaigns.jsonl files, as :class:`BenchSource` or as
            ``PATH[:agent1,agent2=label]`` strings. Agents keep the order they are listed
            in (sources first to last). Every oracle campaign adds to its instance's best
            known metric.
        budget: K of the campaigns; None: the budget of the folders' bench.json.
        maximize: the metric's direction; None: the folders' bench.json's, else maximize.

    Raises:
        ConfigError: a source that is missing or holds none of an agent asked for, the
            same agent's campaign on one (instance, seed) pair in two sources, or
            sources that disagree on the budget or the direction (or no budget known).
    """
    picked = [s if isinstance(s, BenchSource) else BenchSource.parse(s) for s in sources]
    if not picked:
        raise ConfigError("merge needs at least one bench folder or campaigns.jsonl")
    rows: list[Row] = []
    oracle: list[Campaign] = []
    labels: list[str] = []
    where: dict[tuple[str, int, int], Path] = {}
    budgets: dict[Path, Any] = {}
    directions: dict[Path, Any] = {}
    tasks: dict[Path, Any] = {}
    metrics: dict[Path, Any] = {}
    for src in picked:
        data = read_bench(src.path)
        found = data.agents()
        take = src.agents if src.agents is not None else {a: a for a in found}
        missing = [a for a in take if a not in found]
        if missing:
            raise ConfigError(
                f"{src.path} has no campaigns of {', '.join(missing)}; it has {', '.join(found)}"
            )
        for r in data.rows:
            if r.agent not in take:
                continue
            r = replace(r, agent=take[r.agent])
            key = (r.agent, r.instance, r.seed)
            if key in where:
                raise ConfigError(
                    f"agent {r.agent} has a campaign on instance {r.instance} seed {r.seed} in "
                    f"both {where[key]} and {src.path}; take it from one (PATH:agent,...)"
                )
            where[key] = src.path
            rows.append(r)
        labels += [a for a in take.values() if a not in labels]
        oracle += data.oracle
        stores = {"budget": budgets, "direction": directions, "task": tasks, "metric": metrics}
        for name, store in stores.items():
            if data.setup.get(name) is not None:
                store[src.path] = data.setup[name]
    k = _agreed("budget", budget, budgets, "budget")
    if k is None:
        raise ConfigError(
            f"the budget of {picked[0].path} is unknown (no bench.json beside it); pass budget "
            "(merge_campaigns.py --budget K)"
        )
    given = None if maximize is None else ("maximize" if maximize else "minimize")
    direction = _agreed("direction", given, directions, "direction") or "maximize"
    result = summarise([*rows, *oracle], labels, int(k), direction == "maximize")

    def common(found: dict[Path, Any]) -> Any:
        """The one value of the sources, or the sorted list of them (None: none)."""
        values = sorted({str(v) for v in found.values()})
        return values[0] if len(values) == 1 else values or None

    setup = {
        "task": common(tasks),
        "metric": common(metrics),
        "direction": direction,
        "agents": labels,
        "budget": int(k),
        "sources": [str(s) for s in picked],
        "regret": REGRET_TEXT,
        "regret_fresh": REGRET_FRESH_TEXT,
    }
    return replace(result, setup=setup)


def unordered_pairs(paired: dict[str, Any]) -> dict[str, Any]:
    """Each pair of agents once: ``a_vs_b`` kept, its mirror ``b_vs_a`` dropped.

    bench.json stores each pair once; files written by older versions hold both
    directions (the same test seen from either agent), and a table needs one. Keys that
    are not ``<a>_vs_<b>`` stay.
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
