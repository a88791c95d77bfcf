"""The page of a Hydra multirun folder (``rsi-rl search -m ...``): its jobs side by side,
each linking its own page."""

from __future__ import annotations

import os
from pathlib import Path

from rsi_rl.analysis.plots import plot_sweep
from rsi_rl.analysis.report.html import esc, img, table, write_page
from rsi_rl.analysis.report.run_page import render_run_report
from rsi_rl.analysis.runs import sweep_rows
from rsi_rl.core.errors import ConfigError

COLUMNS = ["job", "task", "agent", "overrides", "start", "best", "test", "experiments", "seconds"]


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
    jobs = sweep_rows(sweep_dir)
    if not jobs:
        raise ConfigError(f"{sweep_dir} holds no job folder with a ledger.sqlite or bench.json")
    out = Path(out) if out else sweep_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for job in jobs:
        page = render_run_report(job.dir, embed=embed)
        link = Path(os.path.relpath(page, out)).as_posix()
        cells = {c: getattr(job, c) for c in COLUMNS}
        rows.append({**cells, "report": f'<a href="{esc(link)}">{esc(job.dir.name)}</a>'})
    metrics = sorted({job.metric for job in jobs})
    title = f"sweep {sweep_dir.name} ({len(jobs)} jobs)"
    parts = [
        f"<h1>rsi_rl report: {esc(title)}</h1>",
        f'<div class="sub">{esc(sweep_dir.resolve())}</div>',
        "<h2>Jobs</h2>",
        f"<p class='sub'>Metric: <b>{esc(', '.join(metrics))}</b>; start, best (validation) and "
        "test of each job's last campaign; the overrides are the job's .hydra/overrides.yaml.</p>",
        table(
            rows, [*COLUMNS, "report"], numeric=["start", "best", "test", "seconds"], raw=["report"]
        ),
        "<h2>Best so far</h2>",
        img(plot_sweep(jobs, out / "sweep.png"), embed, "best so far per job"),
    ]
    return write_page(out, title, parts)
