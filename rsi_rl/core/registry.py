"""Finding tasks by name: built-ins, ``rsi_rl.tasks`` entry points, and ``_target_`` configs."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from rsi_rl.core.errors import RsiRlError, TaskError, UnknownTaskError
from rsi_rl.core.task import InnerTask

#: built-in tasks: name -> "module:Class"
BUILTIN_TASKS: dict[str, str] = {
    "digits_mlp": "rsi_rl.envs.digits_mlp.task:DigitsMLPTask",
    "tabular": "rsi_rl.envs.tabular.task:TabularTask",
    "char_lm": "rsi_rl.envs.char_lm.task:CharLMTask",
    "mlp2": "rsi_rl.envs.mlp2.task:TwoLayerMLPTask",
    "hpobench": "rsi_rl.envs.hpobench.task:HPOBenchTask",
    "nb201": "rsi_rl.envs.nb201.task:NB201Task",
    "synth_smooth": "rsi_rl.envs.synthetic.task:SmoothSyntheticTask",
    "synth_rugged": "rsi_rl.envs.synthetic.task:RuggedSyntheticTask",
    "synth_cells": "rsi_rl.envs.synthetic.task:CellsSyntheticTask",
    "synth_mixed": "rsi_rl.envs.synthetic.task:MixedSyntheticTask",
}

ENTRY_POINT_GROUP = "rsi_rl.tasks"


def _import(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    if not attr:
        module, _, attr = ref.rpartition(".")
    try:
        obj = importlib.import_module(module)
    except ImportError as exc:
        raise UnknownTaskError(f"cannot import task module {module!r} ({exc})") from exc
    try:
        return getattr(obj, attr)
    except AttributeError:
        raise UnknownTaskError(f"module {module!r} has no task class {attr!r}") from None


def plugin_tasks() -> dict[str, Any]:
    """Entry points in the ``rsi_rl.tasks`` group: name -> EntryPoint (not loaded)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def task_names() -> list[str]:
    """Names of all built-in and plugin tasks."""
    return sorted(set(BUILTIN_TASKS) | set(plugin_tasks()))


def task_config_hint() -> str:
    """The task config file a user should fix: ``task/<choice>.yaml`` inside a Hydra job."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            choice = HydraConfig.get().runtime.choices.get("task")
            if choice:
                return f"task/{choice}.yaml"
    except Exception:  # noqa: BLE001 - only a hint for a message
        pass
    return "the task config"


def make_task(spec: str | InnerTask | type[InnerTask] | Any, **kwargs: Any) -> InnerTask:
    """Build a task from a name, class, instance, or a mapping with ``_target_``.

    Raises:
        UnknownTaskError: the name is neither built in nor a plugin, or does not import.
    """
    if isinstance(spec, InnerTask):
        return spec
    if isinstance(spec, type) and issubclass(spec, InnerTask):
        return spec(**kwargs)
    if hasattr(spec, "get") and spec.get("_target_"):  # Hydra-style config
        from hydra.utils import instantiate

        try:
            task = instantiate(spec, **kwargs)
        except Exception as exc:  # Hydra wraps import errors in its own
            cause = exc.__cause__
            if isinstance(cause, RsiRlError):  # the task's own one-line message
                raise cause from None
            if isinstance(cause, ImportError):
                root = cause.__cause__ or cause
                raise UnknownTaskError(
                    f"task config _target_={spec.get('_target_')!r} does not import ({root}); "
                    f"fix _target_ in {task_config_hint()}"
                ) from exc
            why = str(cause or exc).strip().splitlines()
            raise UnknownTaskError(
                f"task config _target_={spec.get('_target_')!r} failed: {why[0] if why else type(exc).__name__} "
                f"(in {task_config_hint()})"
            ) from exc
        if not isinstance(task, InnerTask):
            raise TaskError(f"_target_ {spec.get('_target_')!r} did not build an InnerTask")
        return task
    if not isinstance(spec, str):
        raise UnknownTaskError(f"cannot make a task from {spec!r}")
    if spec in BUILTIN_TASKS:
        cls = _import(BUILTIN_TASKS[spec])
    elif spec in plugin_tasks():
        try:
            cls = plugin_tasks()[spec].load()
        except Exception as exc:
            raise UnknownTaskError(
                f"entry point {spec!r} in {ENTRY_POINT_GROUP} failed to load: {exc}"
            ) from exc
    elif ":" in spec:
        cls = _import(spec)
    else:
        raise UnknownTaskError(f"unknown task {spec!r}; known tasks: {', '.join(task_names())}")
    task = cls(**kwargs)
    if not isinstance(task, InnerTask):
        raise TaskError(f"{spec!r} is not an InnerTask")
    return task
