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

Modules: :mod:`.run_page` (a run or bench folder), :mod:`.bench_page` (its bench
section), :mod:`.sweep_page` (a multirun folder), :mod:`.html` (the building blocks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rsi_rl.analysis.report.run_page import render_run_report
from rsi_rl.analysis.report.sweep_page import render_sweep_report
from rsi_rl.analysis.runs import is_sweep
from rsi_rl.core.errors import ConfigError


def render_report(
    run_dir: str | Path,
    out: str | Path | None = None,
    campaign: int | None = None,
    embed: bool = True,
) -> Path:
    """Write the report of ``run_dir``; returns the path of its ``index.html``.

    An ``rsi-rl search``/``train``/``bench`` run directory gets :func:`render_run_report`'s
    page (the arguments are its own); the folder of a Hydra multirun (``-m``) holding such
    job directories gets a page comparing the jobs (:func:`render_sweep_report`, which
    details no single campaign).

    Raises:
        ConfigError: ``run_dir`` has no ledger (or bench.json), or ``campaign`` is unknown.
    """
    if is_sweep(run_dir):
        return render_sweep_report(run_dir, out=out, embed=embed)
    return render_run_report(run_dir, out=out, campaign=campaign, embed=embed)


def report_job(cfg: Any) -> Path:
    """``rsi-rl report RUN_DIR``: write the report and print where it is."""
    from omegaconf import OmegaConf

    if OmegaConf.is_missing(cfg, "run_dir"):
        raise ConfigError("which run? usage: rsi-rl report RUN_DIR [out=...] [campaign=N]")
    page = render_report(cfg.run_dir, out=cfg.out, campaign=cfg.campaign, embed=bool(cfg.embed))
    print(f"report: {page}  (open file://{page.resolve()})")
    return page


__all__ = ["render_report", "render_run_report", "render_sweep_report", "report_job"]
