"""A run directory as typed data: its ledger, summary and config, and the jobs of a multirun.

:func:`load_run` reads an ``rsi-rl search``/``train``/``bench`` run directory (the
ledger's rows, ``summary.json``, ``bench.json``, ``.hydra/config.yaml``);
:func:`campaign_facts` condenses one campaign; :func:`sweep_rows` lists the jobs of a
Hydra multirun folder. The report pages, tables and plots draw from these.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rsi_rl.analysis.folders import BENCH_JSON, read_json
from rsi_rl.core.errors import ConfigError
from rsi_rl.store.ledger import read_ledger

#: ledger row kinds that are not edits of the candidate
NON_EDITS = ("baseline", "reevaluate", "test", "stop", "propose")


def num(v: Any) -> float | None:
    """``v`` as a finite float, None when it is not one."""
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


def is_val(row: dict[str, Any]) -> bool:
    """Whether ``row`` is a validation experiment (the test run is not)."""
    return bool(row.get("split", "val") == "val")


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
                from rsi_rl.core.registry import make_task

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

    def val_rows(self, campaign: int) -> list[dict[str, Any]]:
        """The campaign's validation rows, without ``stop``."""
        return [r for r in self.campaign_rows(campaign) if is_val(r) and r.get("kind") != "stop"]


def load_run(run_dir: str | Path) -> RunData:
    """Read a run directory; raises :class:`ConfigError` when it holds no ledger or bench."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(
            f"run directory {str(run_dir)!r} does not exist (pass RUN_DIR, e.g. runs/search/<date>/<time>_...)"
        )
    bench = read_json(run_dir / BENCH_JSON)
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
        summary=read_json(run_dir / "summary.json"),
        bench=bench,
        config=cfg.read_text() if cfg.is_file() else None,
    )


def _read_meta(path: Path) -> dict[str, Any]:
    import sqlite3

    db = sqlite3.connect(path, timeout=60.0)
    try:
        return {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM meta")}
    except sqlite3.Error:
        return {}
    finally:
        db.close()


@dataclass(frozen=True)
class CampaignFacts:
    """Start, best and test metric, counts and the best candidate of one campaign."""

    campaign: int
    instance: Any
    start: float | None
    best: float | None
    best_seen: float | None
    test: float | None
    experiments: int
    kept: int
    seconds: float
    statuses: dict[str, int]
    best_candidate: str | None
    start_candidate: str | None


def campaign_facts(data: RunData, campaign: int) -> CampaignFacts:
    """The :class:`CampaignFacts` of ``campaign`` from the ledger rows."""
    rows = data.campaign_rows(campaign)
    val = [r for r in rows if is_val(r)]
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
    return CampaignFacts(
        campaign=campaign,
        instance=(base or last or {}).get("instance"),
        start=num(base.get("metric")) if base else None,
        best=num(last.get("incumbent_metric")) if last else None,
        best_seen=num(last.get("best_metric")) if last else None,
        test=num(test.get("metric")) if test else None,
        experiments=len(exps),
        kept=sum(1 for r in exps if r.get("kept")),
        seconds=sum(num(r.get("seconds")) or 0.0 for r in exps),
        statuses=statuses,
        best_candidate=best_cand,
        start_candidate=base.get("candidate") if base else None,
    )


def best_diff(data: RunData, campaign: int, facts: CampaignFacts) -> tuple[dict[str, Any], str]:
    """Config changes and code diff from the start candidate to the campaign's best."""
    summary = data.summary or {}
    best_dir = data.run_dir / "best"
    if summary.get("best_candidate") == facts.best_candidate and best_dir.is_dir():
        changes = read_json(best_dir / "config_changes.json") or {}
        patch = best_dir / "diff.patch"
        return changes, patch.read_text() if patch.is_file() else ""
    rows = [r for r in data.campaign_rows(campaign) if is_val(r)]
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


# --------------------------------------------------------------------------- multirun
def _is_job(path: Path) -> bool:
    return path.is_dir() and ((path / "ledger.sqlite").exists() or (path / BENCH_JSON).is_file())


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


@dataclass(frozen=True)
class SweepJob:
    """One job of a multirun: what it ran (task, agent, overrides) and its last campaign."""

    job: int | str
    dir: Path
    data: RunData
    task: str | None
    agent: str | None
    overrides: str
    metric: str
    start: float | None
    best: float | None
    test: float | None
    experiments: int | None
    seconds: float | None


def _metric(summary: dict[str, Any], key: str, fallback: float | None) -> float | None:
    """``summary[key]`` when the summary has it, else ``fallback`` (from the ledger)."""
    return num(summary.get(key)) if summary.get(key) is not None else fallback


def sweep_rows(sweep_dir: str | Path) -> list[SweepJob]:
    """One :class:`SweepJob` per job of a multirun folder.

    Metrics come from the job's ``summary.json`` when present, else from its ledger's
    last campaign.
    """
    rows = []
    for job in sweep_jobs(sweep_dir):
        data = load_run(job)
        s = data.summary or {}
        head = job.name.split("_", 1)[0]
        setup = (data.bench.get("setup") or {}) if isinstance(data.bench, dict) else {}
        campaigns = data.campaigns()
        facts = campaign_facts(data, campaigns[-1]) if campaigns else None

        agents = ", ".join(str(a) for a in setup.get("agents") or [])
        rows.append(
            SweepJob(
                job=int(head) if head.isdigit() else job.name,
                dir=job,
                data=data,
                task=s.get("task") or data.meta.get("task") or setup.get("task"),
                agent=s.get("agent") or agents or None,
                overrides=" ".join(_overrides(job)),
                metric=data.metric,
                start=_metric(s, "start_metric", facts.start if facts else None),
                best=_metric(s, "best_metric", facts.best if facts else None),
                test=_metric(s, "test_metric", facts.test if facts else None),
                experiments=facts.experiments if facts else None,
                seconds=round(facts.seconds, 1) if facts else None,
            )
        )
    return rows
