"""Trackers: where a run's progress goes besides the ledger (a layer; the core never imports one).

A command instantiates ``cfg.logger`` (a Hydra group) and calls, in this order::

    tracker.start(run_dir, resolved_config)
    tracker.log_experiment(record, info)      # after every experiment (campaigns)
    tracker.log_metrics({"train/x": 1.0}, step=...)   # any scalars (meta-training, bench)
    tracker.log_table("bench", rows)          # list of dicts -> one table
    tracker.log_images({"best_so_far": "plot.png"})
    tracker.log_artifact(path, name, type)    # a file or folder, versioned
    tracker.log_summary(summary)              # once, at the end of a successful run
    tracker.finish()                          # always, in ``finally``

Loggers: ``logger=none`` keeps only the ledger; ``logger=csv`` also writes
``progress.csv``; ``logger=tensorboard`` writes TensorBoard event files;
``logger=wandb`` records the run in Weights & Biases (offline unless asked otherwise).
Commands that train SB3 models ask :meth:`Tracker.tensorboard_log` where SB3 should write
its TensorBoard logs (``None``: nowhere); the W&B tracker syncs them.

Experiments are counted from 0 everywhere (``experiment/index``, the console lines and the
ledger's ``step`` of the start config): index 0 is the baseline.

Also :func:`progress_bar`: a tqdm bar with an ETA on a terminal, and one log line every
30 seconds (done/total, rate, ETA) when stderr is not a terminal (nohup, SLURM, CI).
"""

from __future__ import annotations

import csv
import json
import math
import netrc
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from rsi_rl.errors import ConfigError, user_message


class Tracker:
    """No-op tracker; subclasses override what they record."""

    def start(self, run_dir: Path, config: dict[str, Any]) -> None:
        """Called once with the run directory and the resolved config."""

    def log_experiment(self, record: dict[str, Any], info: dict[str, Any]) -> None:
        """Called after every experiment with its ledger record and the env's ``info``."""

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Record scalars (e.g. ``{"train/episode_return": 0.3}``) at an optional step."""

    def log_table(
        self, name: str, rows: list[dict[str, Any]], columns: list[str] | None = None
    ) -> None:
        """Record a table: one dict per row; ``columns`` fixes their order (default: first row's keys)."""

    def log_images(self, images: Mapping[str, str | Path]) -> None:
        """Record image files (PNG plots) under names."""

    def log_artifact(
        self,
        path: str | Path,
        name: str,
        type: str = "result",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Record a file or folder as a versioned artifact."""

    def log_summary(self, summary: dict[str, Any]) -> None:
        """Called once at the end of a successful run."""

    def tensorboard_log(self, run_dir: str | Path) -> str | None:
        """Folder where SB3 should write TensorBoard logs for this tracker (``None``: none)."""
        return None

    def finish(self) -> None:
        """Always called (in ``finally``)."""


class NullTracker(Tracker):
    """``logger=none``: nothing beyond the ledger."""


class CSVTracker(Tracker):
    """``logger=csv``: ``progress.csv`` in the run directory."""

    FIELDS = (
        "step",
        "kind",
        "status",
        "metric",
        "kept",
        "incumbent_metric",
        "best_metric",
        "reward",
        "seconds",
        "seconds_used",
    )

    def __init__(self, filename: str = "progress.csv"):
        self.filename = filename
        self._fh: Any = None

    def start(self, run_dir: Path, config: dict[str, Any]) -> None:
        self._fh = open(Path(run_dir) / self.filename, "w", newline="")  # noqa: SIM115 - open until finish()
        self._w = csv.DictWriter(self._fh, fieldnames=self.FIELDS, extrasaction="ignore")
        self._w.writeheader()

    def log_experiment(self, record: dict[str, Any], info: dict[str, Any]) -> None:
        if self._fh is not None:
            self._w.writerow({**record, "seconds_used": info.get("seconds_used")})
            self._fh.flush()

    def finish(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


# --------------------------------------------------------------------------- helpers
#: per-experiment scalars logged as step metrics (``experiment/<name>``)
STEP_KEYS = ("metric", "best_metric", "incumbent_metric", "reward", "seconds")
#: columns of the experiments table
TABLE_COLUMNS = (
    "campaign", "step", "kind", "edit", "status", "metric", "kept", "seconds", "reward",
    "best_metric", "candidate", "parent", "diff",
)  # fmt: skip


def _number(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def experiment_row(record: dict[str, Any], max_diff: int = 4000) -> dict[str, Any]:
    """One row of the experiments table from a ledger record (diff truncated)."""
    diff = str(record.get("diff") or "")
    if len(diff) > max_diff:
        diff = diff[:max_diff] + f"\n... ({len(diff) - max_diff} more characters)"
    return {
        "campaign": record.get("campaign"),
        "step": record.get("step"),
        "kind": record.get("kind"),
        "edit": record.get("description"),
        "status": record.get("status"),
        "metric": _number(record.get("metric")),
        "kept": bool(record.get("kept")),
        "seconds": _number(record.get("seconds")),
        "reward": _number(record.get("reward")),
        "best_metric": _number(record.get("best_metric")),
        "candidate": record.get("candidate"),
        "parent": record.get("parent"),
        "diff": diff,
    }


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def _flat_scalars(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flat_scalars(value, f"{name}/"))
        elif isinstance(value, bool | int | float | str) or value is None:
            out[name] = value
    return out


def has_wandb_api_key() -> bool:
    """Whether a W&B API key is configured (``WANDB_API_KEY`` or ``~/.netrc``)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        host = (
            os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].split("/")[0]
        )
        return netrc.netrc().authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def hydra_context() -> dict[str, Any]:
    """What the running Hydra job says about itself (empty outside a Hydra app).

    Keys: ``job`` (the command, e.g. ``search``), ``multirun`` (bool), ``sweep``
    (a name for the sweep: ``<job>_<date>_<time>`` of the sweep folder), ``num`` (the job
    number in the sweep), ``overrides`` (the task overrides) and ``choices`` (config groups).
    """
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if not HydraConfig.initialized():
            return {}
        hc = HydraConfig.get()
    except Exception:  # noqa: BLE001 - hydra absent or not running
        return {}
    ctx: dict[str, Any] = {
        "job": hc.job.name,
        "multirun": hc.mode == RunMode.MULTIRUN,
        "overrides": list(hc.overrides.task),
        "choices": {k: v for k, v in hc.runtime.choices.items() if not str(k).startswith("hydra/")},
    }
    if ctx["multirun"]:
        sweep = Path(str(hc.sweep.dir))
        parts = [p for p in (sweep.parent.name, sweep.name) if p]
        ctx["sweep"] = "_".join([str(hc.job.name), *parts])
        ctx["num"] = getattr(hc.job, "num", None)
    return ctx


def _git_root(start: Path) -> Path | None:
    for p in (start, *start.parents):
        if (p / ".git").exists():
            return p
    return None


def _artifact_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:120] or "artifact"


def _choice(ctx: dict[str, Any], config: Mapping[str, Any], key: str) -> str | None:
    """The name of config group ``key`` (``task``, ``agent``): Hydra's choice, else the config's."""
    choice = ctx.get("choices", {}).get(key)
    if choice and not str(choice).startswith("_"):
        return str(choice)
    value = config.get(key)
    if isinstance(value, str) and value:
        return value
    if isinstance(value, Mapping):
        for field in ("name", "_target_"):
            if isinstance(value.get(field), str) and value[field]:
                return str(value[field]).rsplit(".", 1)[-1]
    return None


def run_name(ctx: dict[str, Any], config: Mapping[str, Any], now: datetime | None = None) -> str:
    """A readable W&B run name, unique across commands and sweeps.

    ``<task>-<agent>-s<seed>[-j<job number>]-<yymmdd-HHMMSS>``: the job number of a Hydra
    multirun tells the jobs of one sweep apart, the start time tells sweeps (and single
    runs) apart. Parts that the command does not have (no agent in ``bench``) are left out.

    Args:
        ctx: :func:`hydra_context` of the running job.
        config: the resolved command config.
        now: the start time (default: now).
    """
    parts = [_choice(ctx, config, "task"), _choice(ctx, config, "agent")]
    seed = config.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        parts.append(f"s{seed}")
    if ctx.get("multirun") and ctx.get("num") is not None:
        parts.append(f"j{ctx['num']}")
    parts.append((now or datetime.now()).strftime("%y%m%d-%H%M%S"))
    return _artifact_name("-".join(p for p in parts if p))


def wandb_root(dir: str | None = None) -> Path:
    """The folder that holds the ``wandb/`` folder of every run of this project.

    ``dir`` if given, else ``$WANDB_DIR`` if set, else the project root (the working
    directory the command started in, before any Hydra ``chdir``). That is where
    ``wandb sync`` with no path (``wandb sync --sync-all`` in older wandb versions) looks
    when run from the project root (or with the same ``WANDB_DIR``).
    """
    if dir:
        return Path(dir)
    if os.environ.get("WANDB_DIR"):
        return Path(os.environ["WANDB_DIR"])
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.utils import get_original_cwd

        if HydraConfig.initialized():
            return Path(get_original_cwd())
    except Exception:  # noqa: BLE001 - hydra absent or not running
        pass
    return Path.cwd()


def _shown_path(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it (shorter to copy)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- W&B
class WandbTracker(Tracker):
    """``logger=wandb``: one W&B run per command (and per Hydra multirun job).

    What it records: the full resolved config (plus the Hydra overrides and group
    choices); per experiment the step metrics ``experiment/metric``,
    ``experiment/best_metric`` (best-so-far), ``experiment/incumbent_metric``,
    ``experiment/reward`` and ``experiment/seconds`` against ``experiment/index`` (0 = the
    baseline, then 1, 2, ... like the console lines and the ledger's ``step``); all
    experiments as the table ``experiments`` (edit, kind, diff, metric, status, seconds,
    kept, ...); at the end the run summary, the best candidate (``best/``: config and
    source) as an artifact of type ``candidate`` and ``results.tsv`` as one of type
    ``ledger``. With ``sync_tensorboard`` it also syncs the TensorBoard logs that SB3
    writes to :meth:`tensorboard_log` (meta-training curves), under SB3's own names
    (``rollout/...``, ``train/...``, ``eval/...``).

    Where runs go: every run of a project lands in one folder, ``<root>/wandb/``, where
    ``<root>`` is ``dir``, else ``$WANDB_DIR``, else the project root (the directory the
    command was started in). Offline runs are uploaded with::

        wandb sync                     # from the project root: every run not yet synced
                                       # (older wandb: wandb sync --sync-all)
        wandb sync wandb/offline-run-<date>_<time>-<id>   # one run

    and each command ends with one line that names its run folder (``offline W&B run:
    wandb sync <folder>``); wandb's own console lines are silenced.

    Run names: ``<task>-<agent>-s<seed>[-j<job number>]-<yymmdd-HHMMSS>`` (see
    :func:`run_name`), unique across sweeps; the run directory is in the config
    (``run_dir``).

    Args:
        project: W&B project.
        entity: W&B entity (team or user); ``None``: the default of the API key.
        mode: ``offline`` (write a run folder, upload later with ``wandb sync``),
            ``online`` (needs an API key: ``wandb login`` or ``WANDB_API_KEY``) or
            ``disabled``. ``None``: ``$WANDB_MODE`` if set, else ``offline``.
        group: W&B group; ``None``: the Hydra sweep (``<command>_<date>_<time>``) in a
            multirun, else no group.
        name: run name; ``None``: :func:`run_name` (task, agent, seed, job number, time).
        tags: extra tags (the task and agent are added).
        notes: run notes.
        sync_tensorboard: sync TensorBoard event files written during the run.
        dir: parent folder of the ``wandb/`` folder; ``None``: ``$WANDB_DIR``, else the
            project root (see :func:`wandb_root`).
        max_table_rows: cap on the rows of the experiments table (meta-training runs can
            have thousands of experiments; the step metrics keep all of them).
        log_code: also save the program's source with the run (W&B code saving).
    """

    def __init__(
        self,
        project: str = "rsi_rl",
        entity: str | None = None,
        mode: str | None = None,
        group: str | None = None,
        name: str | None = None,
        tags: Iterable[str] | None = None,
        notes: str | None = None,
        sync_tensorboard: bool = True,
        dir: str | None = None,
        max_table_rows: int = 10_000,
        log_code: bool = False,
    ):
        mode = mode or os.environ.get("WANDB_MODE") or "offline"
        if mode == "dryrun":
            mode = "offline"
        if mode not in ("offline", "online", "disabled"):
            raise ConfigError(f"logger.mode must be offline, online or disabled, got {mode!r}")
        if mode == "online" and not has_wandb_api_key():
            raise ConfigError(
                "logger.mode=online needs a W&B API key (run `wandb login` or set WANDB_API_KEY); "
                "or leave logger.mode=offline and upload later with `wandb sync`"
            )
        self.project, self.entity, self.mode = project, entity, mode
        self.group, self.name, self.notes = group, name, notes
        self.tags = list(tags or [])
        self.sync_tensorboard = bool(sync_tensorboard)
        self.dir = dir
        self.max_table_rows = int(max_table_rows)
        self.log_code = bool(log_code)
        self.run: Any = None
        self.run_dir: Path | None = None
        self._rows: list[dict[str, Any]] = []
        self._dropped = 0
        self._n = 0
        self._table_logged = False
        self._patched = False
        self.sync_dir: Path | None = None

    # ---------------------------------------------------------------- lifecycle
    def start(self, run_dir: Path, config: dict[str, Any]) -> None:
        try:
            import wandb
        except ImportError as exc:
            raise ConfigError(
                "logger=wandb needs the wandb package: pip install 'rsi-rl[wandb]'"
            ) from exc
        self.run_dir = Path(run_dir)
        ctx = hydra_context()
        full = dict(_jsonable(config))
        full.setdefault("run_dir", str(self.run_dir))
        if ctx:
            full["hydra"] = {
                k: ctx[k] for k in ("job", "overrides", "choices", "sweep", "num") if k in ctx
            }
        tags = list(self.tags)
        for key in ("task", "agent"):
            choice = ctx.get("choices", {}).get(key)
            if choice and choice not in tags and not str(choice).startswith("_"):
                tags.append(str(choice))
        parent = wandb_root(self.dir)
        parent.mkdir(parents=True, exist_ok=True)
        root = _git_root(Path.cwd())
        settings = wandb.Settings(
            quiet=True,
            silent=True,  # no banner, no `wandb leet` hint; finish() prints the sync command
            disable_git=root is None,
            git_root=str(root) if root else None,
            save_code=self.log_code,
        )
        self._patch_tensorboard(wandb)
        self.run = wandb.init(
            project=self.project,
            entity=self.entity,
            mode=self.mode,  # type: ignore[arg-type]
            dir=str(parent),
            config=full,
            group=self.group or ctx.get("sweep"),
            job_type=ctx.get("job"),
            name=self.name or run_name(ctx, full),
            tags=tags,
            notes=self.notes,
            reinit="finish_previous",
            settings=settings,
        )
        sync_dir = getattr(self.run.settings, "sync_dir", None)
        self.sync_dir = Path(sync_dir) if sync_dir else None
        self.run.define_metric("experiment/index")
        self.run.define_metric("experiment/*", step_metric="experiment/index")

    def _patch_tensorboard(self, wandb: Any) -> None:
        """Sync the TensorBoard files SB3 writes (before init: its writer is created later).

        No ``root_logdir``: W&B then names a single log folder's scalars as written
        (``rollout/ep_rew_mean``), not prefixed by SB3's run-numbered folder
        (``maskable_ppo_1/rollout/ep_rew_mean``).
        """
        if not self.sync_tensorboard:
            return
        wandb_tb: Any = wandb.tensorboard  # type: ignore[attr-defined]
        wandb_tb.unpatch()  # a previous job of a multirun in this process
        try:
            wandb_tb.patch()
            self._patched = True
        except Exception as exc:  # noqa: BLE001 - tensorboard missing: no curves, still a run
            print(f"rsi-rl: W&B TensorBoard sync is off ({exc})", file=sys.stderr)

    def finish(self) -> None:
        run, self.run = self.run, None
        if run is None:
            return
        failed = sys.exc_info()[0] is not None
        try:
            if not self._table_logged:
                self._log_experiments_table(run)
        finally:
            import wandb

            run.finish(exit_code=1 if failed else 0)
            wandb_tb: Any = wandb.tensorboard  # type: ignore[attr-defined]
            if self._patched:
                wandb_tb.unpatch()
                self._patched = False
            wandb.teardown()  # the run folder is complete on disk when finish() returns
            line = self.sync_line()
            if line:
                print(f"rsi-rl: {line}", file=sys.stderr, flush=True)

    def sync_line(self) -> str | None:
        """The one line that says where the run went (``None`` for ``mode=disabled``)."""
        if self.mode == "disabled" or self.sync_dir is None:
            return None
        if self.mode == "offline":
            return f"offline W&B run: wandb sync {_shown_path(self.sync_dir)}"
        return f"W&B run synced; local copy in {_shown_path(self.sync_dir)}"

    # ---------------------------------------------------------------- experiments
    def log_experiment(self, record: dict[str, Any], info: dict[str, Any]) -> None:
        if self.run is None or record.get("kind") == "stop":
            return
        if record.get("split", "val") != "val":  # the final test evaluation: summary only
            if record.get("metric") is not None:
                self.run.summary["test_metric"] = record.get("metric")
            return
        metrics: dict[str, Any] = {"experiment/index": self._n}  # 0 = the baseline
        self._n += 1
        for key in STEP_KEYS:
            v = _number(record.get(key))
            if v is not None:
                metrics[f"experiment/{key}"] = v
        metrics["experiment/kept"] = int(bool(record.get("kept")))
        metrics["experiment/ok"] = int(record.get("status") == "ok")
        for key in ("seconds_used", "experiments_used"):
            v = _number(info.get(key))
            if v is not None:
                metrics[f"experiment/{key}"] = v
        if record.get("campaign") is not None:
            metrics["experiment/campaign"] = record["campaign"]
        self.run.log(metrics)
        if len(self._rows) < self.max_table_rows:
            self._rows.append(experiment_row(record))
        else:
            self._dropped += 1

    def _log_experiments_table(self, run: Any) -> None:
        if not self._rows:
            return
        import wandb

        cols: list[Any] = list(TABLE_COLUMNS)
        table = wandb.Table(columns=cols, data=[[r.get(c) for c in cols] for r in self._rows])
        run.log({"experiments": table})
        if self._dropped:
            run.summary["experiments_table_dropped_rows"] = self._dropped
        self._table_logged = True

    # ---------------------------------------------------------------- generic
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if self.run is not None:
            self.run.log(dict(metrics), step=step)

    def log_table(
        self, name: str, rows: list[dict[str, Any]], columns: list[str] | None = None
    ) -> None:
        if self.run is None or not rows:
            return
        import wandb

        cols: list[Any] = list(columns or rows[0].keys())
        data = [
            [_jsonable(r.get(c)) if isinstance(r.get(c), dict | list) else r.get(c) for c in cols]
            for r in rows
        ]
        data = [[json.dumps(v) if isinstance(v, dict | list) else v for v in row] for row in data]
        self.run.log({name: wandb.Table(columns=cols, data=data)})

    def log_images(self, images: Mapping[str, str | Path]) -> None:
        if self.run is None:
            return
        import wandb

        payload = {
            name: wandb.Image(str(path)) for name, path in images.items() if Path(path).is_file()
        }
        if payload:
            self.run.log(payload)

    def log_artifact(
        self,
        path: str | Path,
        name: str,
        type: str = "result",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if self.run is None:
            return
        import wandb

        path = Path(path)
        if not path.exists():
            return
        art = wandb.Artifact(_artifact_name(name), type=type, metadata=_jsonable(metadata or {}))
        if path.is_dir():
            art.add_dir(str(path))
        else:
            art.add_file(str(path))
        self.run.log_artifact(art)

    def log_summary(self, summary: dict[str, Any]) -> None:
        if self.run is None:
            return
        self.run.summary.update(_jsonable(summary))
        self._log_experiments_table(self.run)
        if self.run_dir is None:
            return
        best = self.run_dir / "best"
        if best.is_dir():
            meta = _flat_scalars({k: v for k, v in summary.items() if k != "run_dir"})
            meta["best_config"] = summary.get("best_config")
            task = summary.get("task") or "task"
            self.log_artifact(best, f"best-{task}-{self.run_dir.name}", "candidate", meta)
        tsv = self.run_dir / "results.tsv"
        if tsv.is_file():
            self.log_artifact(tsv, f"results-{self.run_dir.name}", "ledger")

    def tensorboard_log(self, run_dir: str | Path) -> str | None:
        return str(Path(run_dir) / "tb") if self.sync_tensorboard else None


# --------------------------------------------------------------------------- TensorBoard
class TensorBoardTracker(Tracker):
    """``logger=tensorboard``: event files in ``<run_dir>/tb`` (``tensorboard --logdir <run_dir>/tb``).

    Per experiment the scalars ``experiment/metric``, ``best_metric``, ``reward``...;
    :meth:`log_metrics` writes any scalars; SB3 training logs go to the same folder.
    """

    def __init__(self, subdir: str = "tb"):
        self.subdir = subdir
        self._writer: Any = None
        self._n = 0

    def start(self, run_dir: Path, config: dict[str, Any]) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise ConfigError(
                "logger=tensorboard needs the tensorboard package: pip install tensorboard"
            ) from exc
        self._writer = SummaryWriter(log_dir=str(Path(run_dir) / self.subdir / "rsi_rl"))
        self._writer.add_text("config", "```\n" + json.dumps(_jsonable(config), indent=2) + "\n```")

    def log_experiment(self, record: dict[str, Any], info: dict[str, Any]) -> None:
        if (
            self._writer is None
            or record.get("kind") == "stop"
            or record.get("split", "val") != "val"
        ):
            return
        n, self._n = self._n, self._n + 1  # 0 = the baseline, like the console and ledger
        for key in STEP_KEYS:
            v = _number(record.get(key))
            if v is not None:
                self._writer.add_scalar(f"experiment/{key}", v, n)
        self._writer.add_scalar("experiment/kept", float(bool(record.get("kept"))), n)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if self._writer is None:
            return
        for key, value in metrics.items():
            v = _number(value)
            if v is not None:
                self._writer.add_scalar(key, v, step)

    def log_summary(self, summary: dict[str, Any]) -> None:
        if self._writer is not None:
            for key, value in _flat_scalars(summary).items():
                v = _number(value) if not isinstance(value, str) else None
                if v is not None:
                    self._writer.add_scalar(f"summary/{key}", v, 0)

    def tensorboard_log(self, run_dir: str | Path) -> str | None:
        return str(Path(run_dir) / self.subdir)

    def finish(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()


# --------------------------------------------------------------------------- progress
#: seconds between two progress lines when stderr is not a terminal
PROGRESS_SECONDS = 30.0


def _duration(seconds: float) -> str:
    """``1h02m``, ``3m05s`` or ``42s``."""
    s = max(0, int(round(seconds)))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


class LogProgress:
    """Progress as log lines, for output that is not a terminal (nohup, SLURM, CI logs).

    The same interface as the tqdm bar that :func:`progress_bar` returns on a terminal
    (``update``, ``set_postfix``, ``close``, a context manager). One line every
    ``interval`` seconds of progress and one at the end, e.g.::

        rsi-rl: bench 12/40 campaigns (30%), 0.21 campaigns/s, elapsed 57s, ETA 2m13s

    Args:
        total: number of units (``None``: unknown, no percentage or ETA).
        desc: label at the start of the line.
        unit: unit name.
        interval: seconds between two lines.
        initial: units already done (a resumed run); the rate counts only new ones.
        stream: where lines go (default: stderr at the time of writing).
        clock: seconds counter (``time.monotonic``; tests pass a fake one).
    """

    def __init__(
        self,
        total: int | None,
        desc: str = "",
        unit: str = "it",
        interval: float = PROGRESS_SECONDS,
        initial: int = 0,
        stream: TextIO | None = None,
        clock: Any = time.monotonic,
    ):
        self.total, self.desc, self.unit = total, desc, unit
        self.interval = float(interval)
        self.n = self.initial = int(initial)
        self.postfix = ""
        self._stream, self._clock = stream, clock
        self._t0 = self._last = clock()
        self._closed = False

    def update(self, n: int = 1) -> None:
        """Count ``n`` more units; write a line when ``interval`` seconds have passed."""
        self.n += int(n)
        now = self._clock()
        if now - self._last >= self.interval:
            self._write(now)

    def set_postfix(self, ordered_dict: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        """Extra ``key=value`` items at the end of the next lines (as tqdm's)."""
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_postfix_str(self, text: str = "") -> None:
        """Extra text at the end of the next lines (as tqdm's)."""
        self.postfix = str(text)

    def line(self, now: float | None = None) -> str:
        """The progress line at time ``now`` (default: the clock's)."""
        now = self._clock() if now is None else now
        elapsed = max(0.0, now - self._t0)
        done = self.n - self.initial
        rate = done / elapsed if elapsed > 0 else None
        units = self.unit if self.unit in ("it", "") or self.unit.endswith("s") else f"{self.unit}s"
        head = f"{self.desc} " if self.desc else ""
        if self.total:
            text = f"{head}{self.n}/{self.total} {units} ({100 * self.n / self.total:.0f}%)"
        else:
            text = f"{head}{self.n} {units}"
        text += f", {rate:.3g} {units}/s" if rate else ""
        text += f", elapsed {_duration(elapsed)}"
        if self.total and self.n < self.total:
            eta = (self.total - self.n) / rate if rate else None
            text += f", ETA {_duration(eta)}" if eta is not None else ", ETA ?"
        return text + (f", {self.postfix}" if self.postfix else "")

    def _write(self, now: float) -> None:
        self._last = now
        stream = self._stream or sys.stderr
        print(f"rsi-rl: {self.line(now)}", file=stream, flush=True)

    def close(self) -> None:
        """Write the last line (once)."""
        if not self._closed:
            self._closed = True
            self._write(self._clock())

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_bar(
    total: int | None,
    desc: str = "",
    unit: str = "it",
    enabled: bool | None = None,
    initial: int = 0,
    interval: float | None = None,
) -> Any:
    """Progress of a long command: a tqdm bar on a terminal, log lines otherwise.

    On a terminal (stderr is a TTY): a tqdm bar with rate and ETA. Otherwise (nohup,
    SLURM, CI): a :class:`LogProgress` that writes one line with done/total, rate and ETA
    every ``interval`` seconds and one at the end.

    Args:
        total: number of steps (``None``: unknown).
        desc: label.
        unit: unit name (``experiment``, ``step``, ``campaign``).
        enabled: ``True``: always the tqdm bar; ``False``: nothing at all; ``None``: the
            bar on a terminal, log lines otherwise.
        initial: steps already done (a resumed run).
        interval: seconds between two log lines; ``None``: ``$RSI_RL_PROGRESS_SECONDS``,
            else 30.

    Use as ``with progress_bar(n, "bench", "campaign") as bar: ... bar.update(1)``.
    """
    from tqdm.auto import tqdm

    if enabled is None and not sys.stderr.isatty():
        if interval is None:
            interval = float(os.environ.get("RSI_RL_PROGRESS_SECONDS") or PROGRESS_SECONDS)
        return LogProgress(total, desc, unit, interval=interval, initial=initial)
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        initial=initial,
        disable=enabled is False,
        dynamic_ncols=True,
        leave=False,
    )


# --------------------------------------------------------------------------- command helpers
def make_tracker(logger_cfg: Any) -> Tracker:
    """The tracker of a ``logger`` config group (``None``: :class:`NullTracker`)."""
    if logger_cfg is None:
        return NullTracker()
    from hydra.utils import instantiate

    try:
        tracker = instantiate(logger_cfg)
    except ConfigError:
        raise
    except Exception as exc:  # Hydra wraps errors raised in constructors
        cause = exc.__cause__ if isinstance(exc.__cause__, ConfigError) else None
        if cause is not None:
            raise cause from None
        raise ConfigError(f"logger config failed: {user_message(exc)}") from exc
    if not isinstance(tracker, Tracker):
        raise ConfigError(
            f"logger._target_ {logger_cfg.get('_target_')!r} is not an rsi_rl Tracker"
        )
    return tracker


@contextmanager
def tracked(cfg: Any, run_dir: str | Path) -> Iterator[Tracker]:
    """Start the tracker of ``cfg.logger`` with the resolved ``cfg``; always finish it.

    Example (a Hydra job)::

        with tracked(cfg, run_dir) as tracker:
            result = work(cfg, run_dir)
            tracker.log_summary(result)
    """
    from omegaconf import OmegaConf

    tracker = make_tracker(cfg.get("logger"))
    config = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else dict(cfg)
    tracker.start(Path(run_dir), config)  # type: ignore[arg-type]
    try:
        yield tracker
    finally:
        tracker.finish()


def log_training(tracker: Tracker, run_dir: str | Path, policy: str | Path | None = None) -> None:
    """After ``rsi-rl train``: ``train.json`` as the summary, the eval curve, the policy artifact.

    The training curves themselves reach W&B through TensorBoard sync.
    """
    run_dir = Path(run_dir)
    info = (
        json.loads((run_dir / "train.json").read_text())
        if (run_dir / "train.json").is_file()
        else {}
    )
    evals = info.get("eval") or {}
    steps, returns = evals.get("timesteps") or [], evals.get("mean_return") or []
    if steps:
        tracker.log_table(
            "eval",
            [{"timesteps": s, "mean_return": r} for s, r in zip(steps, returns, strict=False)],
        )
    tracker.log_summary({k: v for k, v in info.items() if k != "eval"})
    name = f"policy-{info.get('task', 'task')}-{info.get('algo', 'agent')}-{run_dir.name}"
    for path in (policy, run_dir / "best_policy.zip"):
        if path is not None and Path(path).is_file():
            stem = Path(path).stem
            tracker.log_artifact(
                path, name if stem == "policy" else f"{name}-{stem}", "model", info
            )


def log_bench(tracker: Tracker, run_dir: str | Path, result: dict[str, Any]) -> None:
    """After ``rsi-rl bench``: per-agent and paired tables (each pair once), plots, ``bench.json``."""
    run_dir = Path(run_dir)
    agents = result.get("agents") or {}
    rows = []
    for name, entry in agents.items():
        row: dict[str, Any] = {"agent": name}
        for key, value in entry.items():
            if isinstance(value, list | tuple) and len(value) == 2:
                row[f"{key}_low"], row[f"{key}_high"] = value
            elif isinstance(value, dict):
                row.update({f"{key}_{k}": v for k, v in value.items()})
            else:
                row[key] = value
        rows.append(row)
    if rows:
        cols = list(dict.fromkeys(c for r in rows for c in r))
        tracker.log_table("bench/agents", rows, cols)
    from rsi_rl.report import unordered_pairs

    paired = [  # a_vs_b and b_vs_a are one test: each pair once
        {"pair": k, **v}
        for k, v in unordered_pairs(result.get("paired") or {}).items()
        if isinstance(v, dict)
    ]
    if paired:
        tracker.log_table("bench/paired", paired, list(dict.fromkeys(c for r in paired for c in r)))
    plots = [Path(p) for p in result.get("plots") or []] or sorted(run_dir.glob("*.png"))
    tracker.log_images({f"bench/{p.stem}": p for p in plots if p.is_file()})
    tracker.log_summary({"setup": result.get("setup"), "agents": agents})
    if (run_dir / "bench.json").is_file():
        tracker.log_artifact(run_dir / "bench.json", f"bench-{run_dir.name}", "bench")
