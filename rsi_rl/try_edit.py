"""``rsi-rl try``: one edit against a task, through the same sandbox and evaluator.

    rsi-rl try task=digits_mlp edit=grad_clip
    rsi-rl try task=digits_mlp edit=envs/digits_mlp/patches/silu.diff
    rsi-rl try task=digits_mlp edit=my_train.py +config.epochs=4

``edit`` is one of the task's edits (``lr_up``, ``width_max``, ``act:gelu``, a patch name;
an unknown one lists them), a task patch file's name (from the task's ``patches/``
folder), a path to a unified diff (``.diff``/``.patch``), or a path to a
full replacement of one program file (matched by file name, else the entry file). The
incumbent is the instance's start config (with ``config`` overrides) and pristine source;
the command trains it and the edited child on the same seed and prints the child's
experiment record, with ``baseline_metric`` and ``delta``, as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rsi_rl.core.edits import Candidate, apply_edit, start_candidate
from rsi_rl.core.errors import EditError, PatchError
from rsi_rl.core.patching import apply_unified_diff, read_patch_file, task_patch_files
from rsi_rl.core.record import ExperimentRecord
from rsi_rl.core.seeds import evaluation_seed
from rsi_rl.core.task import InnerTask
from rsi_rl.exec.runner import Runner
from rsi_rl.exec.sandbox import SandboxLimits


def _not_text(spec: str) -> str:
    return (
        f"edit={spec}: not a UTF-8 text file (binary?); give an edit name, a .diff/.patch, or a "
        "replacement program file in text"
    )


def resolve_edit(task: InnerTask, cand: Candidate, edit: str) -> tuple[Candidate, str, str]:
    """Apply a user edit spec to ``cand``: returns (child, edit name, description).

    Raises:
        EditError: unknown spec, a diff that does not apply (:class:`PatchError` naming the
            hunk), or a replacement file the program does not have.
    """
    spec = str(edit).strip()
    if spec in task.edit_space().index:
        child, description = apply_edit(task, cand, spec)
        return child, spec, description
    patch_files = task_patch_files(task.program_dir)
    named = [p for p in patch_files if spec in (p.name, p.path.stem if p.path else None)]
    path = Path(spec).expanduser()
    if named or path.suffix in (".diff", ".patch"):
        try:
            pf = named[0] if named else read_patch_file(path)
        except UnicodeDecodeError:
            raise EditError(_not_text(spec)) from None
        source = apply_unified_diff(cand.source, pf.text)
        child = Candidate(dict(cand.config), source, cand.toggles, cand.hash, pf.name)
        return child, pf.name, f"{pf.description} ({pf.path.name if pf.path else spec})"
    if path.is_file():
        target = path.name if path.name in cand.source else task.entry
        source = dict(cand.source)
        try:
            source[target] = path.read_text()
        except UnicodeDecodeError:
            raise EditError(_not_text(spec)) from None
        child = Candidate(dict(cand.config), source, cand.toggles, cand.hash, "replace")
        return child, "replace", f"replace {target} with {path}"
    names = task.edit_names() + [p.name for p in patch_files]
    raise EditError(
        f"edit={spec!r} is neither an edit of task {task.name!r} ({', '.join(names)}) nor an "
        "existing .diff/.patch or replacement file; fix the edit= override"
    )


def try_edit(
    task: InnerTask,
    edit: str,
    instance: int | None = None,
    seed: int = 0,
    config: dict[str, Any] | None = None,
    limits: SandboxLimits | None = None,
    baseline: bool = True,
) -> dict[str, Any]:
    """Run the start candidate and its child under ``edit``; the child's record as a dict.

    The dict holds every :class:`~rsi_rl.core.record.ExperimentRecord` field (``None`` where a
    single try has none: campaign, step, kept, ...) plus the task, the edit spec, the
    metric's name, ``baseline_status``, ``baseline_metric`` and ``delta``.

    ``seed`` is the campaign seed of ``rsi-rl search``: both programs train on its
    evaluation seed (:func:`~rsi_rl.core.seeds.evaluation_seed`), so the baseline here equals a
    search campaign's baseline with the same ``seed`` and instance. The record's ``seed``
    is that evaluation seed; ``campaign_seed`` is ``seed``.
    """
    inst = task.make_instance(int(instance if instance is not None else task.heldout_seeds[0]))
    start = start_candidate(task, {**inst.start_config, **(config or {})})
    child, kind, description = resolve_edit(task, start, edit)
    eval_seed = evaluation_seed(seed)
    with Runner(task, limits or SandboxLimits(timeout=task.default_timeout)) as runner:
        base = runner.run(inst, start, eval_seed) if baseline else None
        result = runner.run(inst, child, eval_seed)
        budget = runner.limits.timeout
    metric = result.metrics.get(task.metric) if result.status == "ok" else None
    base_metric = (
        base.metrics.get(task.metric) if base is not None and base.status == "ok" else None
    )
    record = ExperimentRecord.from_result(
        result,
        instance=inst.id,
        parent=start.hash,
        candidate=child.hash,
        kind=kind,
        description=description,
        config=child.config,
        diff=child.diff(start),
        seed=eval_seed,
        split="val",
        budget_seconds=budget,
        metric=metric,
    )
    return {
        "task": task.name,
        "edit": str(edit),
        "campaign_seed": int(seed),
        "metric_name": task.metric,
        "self_reported": task.self_reported,
        **record.to_dict(),
        "baseline_status": base.status if base is not None else None,
        "baseline_metric": base_metric,
        "delta": None if metric is None or base_metric is None else metric - base_metric,
    }


def try_job(cfg: Any) -> dict[str, Any]:
    """Hydra job of ``rsi-rl try``: prints the experiment record as JSON on stdout."""
    from rsi_rl import builder
    from rsi_rl.config_checks import check_instance
    from rsi_rl.core.errors import ConfigError

    s = builder.settings(cfg, "try")
    if not s.edit:
        raise ConfigError("rsi-rl try needs edit=<edit name>|path/to.diff|path/to/train.py")
    task = builder.make_task(cfg)
    instance = check_instance(s.instance, task)
    limits = builder.sandbox_limits(cfg, task)
    config: dict[str, Any] = builder.to_plain(s.config) or {}
    try:
        record = try_edit(task, str(s.edit), instance, s.seed, config, limits, s.baseline)
    except PatchError as exc:
        raise PatchError(f"edit={s.edit}: {exc}") from None
    print(json.dumps(record, indent=2, default=str))
    return record
