"""``logger=wandb``: one Weights & Biases run per command; wandb is imported only in
:meth:`WandbTracker.start`."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from rsi_rl.core.errors import ConfigError
from rsi_rl.core.record import STEP_KEYS, TABLE_COLUMNS, RecordLike, as_dict
from rsi_rl.tracking.base import Tracker, _flat_scalars, _jsonable, _number, experiment_row
from rsi_rl.tracking.context import (
    _artifact_name,
    _git_root,
    _shown_path,
    has_wandb_api_key,
    hydra_context,
    run_name,
    wandb_root,
)


class WandbTracker(Tracker):
    """``logger=wandb``: one W&B run per command (and per Hydra multirun job).

    What it records: the full resolved config (plus the Hydra overrides and group
    choices); per experiment the step metrics ``experiment/metric``,
    ``experiment/best_metric`` (best-so-far), ``experiment/incumbent_metric``,
    ``experiment/reward`` and ``experiment/seconds`` against ``experiment/index`` (0 = the
    baseline, then 1, 2, ... like the console lines and the ledger's ``step``); all
    experiments as the table ``experiments`` (edit, kind, diff, metric, status, seconds,
    kept, ...); at the end the run summary, the best candidate (``best/``: config and
    source) as an artifact of type ``candidate``, the files the task keeps
    (``best/artifacts/``, e.g. a model's weights) as one of type ``model``, and
    ``results.tsv`` as one of type ``ledger``. With ``sync_tensorboard`` it also syncs
    the TensorBoard logs that SB3 writes to :meth:`tensorboard_log` (meta-training
    curves), under SB3's own names (``rollout/...``, ``train/...``, ``eval/...``).

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
        for key in ("task", "agent", "trainer"):
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
    def log_experiment(self, record: RecordLike, info: dict[str, Any]) -> None:
        if self.run is None:
            return
        fields = as_dict(record)
        if fields.get("kind") == "stop":
            return
        if fields.get("split", "val") != "val":  # the final test evaluation: summary only
            if fields.get("metric") is not None:
                self.run.summary["test_metric"] = fields.get("metric")
            return
        metrics: dict[str, Any] = {"experiment/index": self._n}  # 0 = the baseline
        self._n += 1
        for key in STEP_KEYS:
            v = _number(fields.get(key))
            if v is not None:
                metrics[f"experiment/{key}"] = v
        metrics["experiment/kept"] = int(bool(fields.get("kept")))
        metrics["experiment/ok"] = int(fields.get("status") == "ok")
        for key in ("seconds_used", "experiments_used"):
            v = _number(info.get(key))
            if v is not None:
                metrics[f"experiment/{key}"] = v
        if fields.get("campaign") is not None:
            metrics["experiment/campaign"] = fields["campaign"]
        self.run.log(metrics)
        if len(self._rows) < self.max_table_rows:
            self._rows.append(experiment_row(fields))
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

    def _log_candidate(self, best: Path, name: str, meta: dict[str, Any], skip: Path) -> None:
        """``best/`` as a ``candidate`` artifact without the folder ``skip`` (the task's
        artifacts, logged on their own)."""
        import wandb

        art = wandb.Artifact(_artifact_name(name), type="candidate", metadata=_jsonable(meta))
        for path in sorted(best.rglob("*")):
            if path.is_file() and skip not in path.parents:
                art.add_file(str(path), name=str(path.relative_to(best)))
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
            name = f"best-{task}-{self.run_dir.name}"
            kept = best / "artifacts"
            if kept.is_dir():  # the task's artifacts (a model): their own artifact, type model
                self._log_candidate(best, name, meta, skip=kept)
                self.log_artifact(kept, f"model-{task}-{self.run_dir.name}", "model", meta)
            else:
                self.log_artifact(best, name, "candidate", meta)
        tsv = self.run_dir / "results.tsv"
        if tsv.is_file():
            self.log_artifact(tsv, f"results-{self.run_dir.name}", "ledger")

    def tensorboard_log(self, run_dir: str | Path) -> str | None:
        return str(Path(run_dir) / "tb") if self.sync_tensorboard else None
