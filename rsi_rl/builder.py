"""From a composed config to what a command runs: settings, task, env, agent, trainer, tracker.

Every subcommand builds through here, so a config key means the same in each::

    s = settings(cfg, "search")                    # typed top-level keys, ranges checked
    task = make_task(cfg)
    env = make_env(task, s.budget, [1000], env_kwargs(cfg), run_dir=run_dir)
    agent = build_agent(cfg.agent, seed=s.seed, name="greedy")

Heavy modules (the env, agents, Hydra's instantiate) are imported inside the functions: the
CLI imports this module on every command.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rsi_rl.config_checks import check_ranges
from rsi_rl.confpaths import agent_config_file, conf_dir, executor_spec, search_dirs
from rsi_rl.core.errors import ConfigError, fixable_cause, user_message

if TYPE_CHECKING:
    from rsi_rl.agents.base import Agent
    from rsi_rl.core.task import InnerTask
    from rsi_rl.env import ResearchEnv
    from rsi_rl.exec.sandbox import SandboxLimits
    from rsi_rl.tracking import Tracker

#: the ``_target_`` of the SB3 trainer configs (``conf/trainer/*.yaml``, ``rsi-rl train``)
TRAINER_TARGET = "rsi_rl.agents.sb3.build_algorithm"

#: ``env.*`` keys that are ResearchEnv arguments of the same name
ENV_KEYS = (
    "keep_threshold",
    "noise_model",
    "cost_per_second",
    "invalid_penalty",
    "mask_duplicates",
    "pruner",
    "pruner_warmup_steps",
    "pruner_startup_trials",
    "pruner_reduction_factor",
    "pruner_warmup_fraction",
)


def to_plain(node: Any) -> Any:
    """A config node as plain Python (resolved); other values as they are."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


# ---------------------------------------------------------------------------- settings, task
def settings(cfg: Any, config_name: str) -> Any:
    """The typed top-level settings of ``cfg`` (a composed ``conf/<config_name>.yaml``):
    types by :func:`rsi_rl.config_schema.validate`, ranges by
    :func:`rsi_rl.config_checks.check_ranges`. None for a command without a schema.

    Raises:
        ConfigError: one line naming the key to fix.
    """
    from rsi_rl.config_schema import validate

    typed = validate(cfg, config_name)
    if typed is not None:
        check_ranges(typed)
    return typed


def make_task(cfg: Any) -> InnerTask:
    """The task of ``cfg.task`` (a name, a ``_target_`` mapping or a plugin spec)."""
    from rsi_rl.core.registry import make_task as make

    return make(cfg.task)


def sandbox_settings(cfg: Any) -> dict[str, Any]:
    """The ``sandbox`` group's limits that are set (null means: the default)."""
    spec = to_plain(cfg.get("sandbox")) or {}
    return {str(k): v for k, v in spec.items() if v is not None}


def sandbox_limits(cfg: Any, task: InnerTask) -> SandboxLimits:
    """:class:`~rsi_rl.exec.sandbox.SandboxLimits` of ``cfg.sandbox`` (timeout: the task's default)."""
    from rsi_rl.exec.sandbox import SandboxLimits

    fields = sandbox_settings(cfg)
    fields.setdefault("timeout", task.default_timeout)
    if "hidden_paths" in fields:
        fields["hidden_paths"] = tuple(fields["hidden_paths"])
    try:
        return SandboxLimits(**fields)
    except TypeError as exc:
        raise ConfigError(f"bad sandbox setting: {exc}") from None


# ---------------------------------------------------------------------------- env
def proposer_spec(proposer_cfg: Any) -> dict[str, Any] | None:
    """The ``proposer`` group as a plain mapping (None: no proposer); ``python`` in its
    command means this interpreter."""
    if proposer_cfg is None or proposer_cfg.get("command") is None:
        return None
    spec: dict[str, Any] = to_plain(proposer_cfg)
    cmd = spec["command"]
    if isinstance(cmd, list) and cmd and cmd[0] == "python":
        spec["command"] = [sys.executable, *cmd[1:]]
    return spec


def env_kwargs(cfg: Any) -> dict[str, Any]:
    """:class:`~rsi_rl.env.ResearchEnv` keyword arguments from a job's ``env``, ``sandbox``,
    ``executor`` and ``proposer`` groups and its ``cache`` (budget and instances aside:
    each command picks its own). Plain values only: a training env pickles them."""
    env = to_plain(cfg.get("env")) or {}
    kwargs: dict[str, Any] = {key: env[key] for key in ENV_KEYS if env.get(key) is not None}
    kwargs["sandbox"] = sandbox_settings(cfg)
    if cfg.get("cache") is not None:
        kwargs["cache_path"] = str(cfg.cache)
    if cfg.get("executor") is not None:
        kwargs["executor"] = executor_spec(cfg)
    if proposer_spec(cfg.get("proposer")) is not None:
        kwargs["proposer"] = proposer_spec(cfg.proposer)
    return kwargs


def make_env(
    task: Any,
    budget: int,
    instances: str | int | list[int],
    kwargs: Mapping[str, Any],
    **extra: Any,
) -> ResearchEnv:
    """The research env of every command: ``kwargs`` from :func:`env_kwargs`, ``extra``
    the command's own (``run_dir``, ``budget_seconds``, ``allow_stop``)."""
    from rsi_rl.env import ResearchEnv

    return ResearchEnv(task=task, budget=int(budget), instances=instances, **{**kwargs, **extra})


# ---------------------------------------------------------------------------- agents
def _locate(target: str) -> Any:
    """The object a ``_target_`` names (``package.module.Name``); None if not importable."""
    import importlib

    parts = target.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def agent_parameters(cls: Any) -> list[str] | None:
    """The keyword arguments an agent class takes (``seed`` aside); None: any (``**kwargs``)."""
    import inspect

    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return [
        p.name
        for p in params
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "seed"
    ]


def check_agent_config(agent_cfg: Any, choice: str | None = None) -> None:
    """Fail with a :class:`ConfigError` naming the fix when ``agent_cfg`` cannot make a
    search agent: an SB3 trainer config, or a key the agent class does not take.

    Args:
        agent_cfg: an agent config (with ``_target_``).
        choice: the preset it came from (``agent=<choice>``), for the message.
    """
    from rsi_rl.agents.base import Agent

    target = agent_cfg.get("_target_")
    if target is None:
        return
    if str(target) == TRAINER_TARGET:
        raise ConfigError(
            f"agent={choice or '...'} is an SB3 trainer: train it with `rsi-rl train "
            f"trainer=...`; to search with a trained policy use agent=policy "
            "agent.path=<policy.zip>"
        )
    cls = _locate(str(target))
    takes = agent_parameters(cls) if isinstance(cls, type) and issubclass(cls, Agent) else None
    if takes is None:
        return  # instantiate reports it
    name = choice or cls.name or cls.__name__
    for key in map(str, agent_cfg):
        if not (key.startswith("_") or key == "seed" or key in takes):
            raise ConfigError(
                f"agent {name} does not take {key!r} (it takes: {', '.join(takes)}); fix or "
                f"drop the override agent.{key}"
            )


def error_cause(exc: BaseException) -> str:
    """One line: the rsi_rl error in ``exc``'s chain, else the wrapped cause (Hydra puts
    ``Error in call to target ...:`` first and the reason after it)."""
    if fixable_cause(exc) is not None or exc.__cause__ is None:
        return user_message(exc)
    cause = exc.__cause__
    text = str(cause).strip()
    return f"{type(cause).__name__}: {text.splitlines()[0]}" if text else type(cause).__name__


def build_agent(agent_cfg: Any, seed: int, name: str | None = None) -> Agent:
    """Instantiate a search agent config (``conf/agent/<name>.yaml`` and overrides).

    Raises:
        ConfigError: one line, ``agent <name>: <cause>``, for a config that cannot make an
            rsi_rl Agent (a trainer, an unknown key, a missing policy file, ...).
    """
    from hydra.utils import instantiate

    from rsi_rl.agents.base import Agent

    check_agent_config(agent_cfg, name)
    label = name or str(agent_cfg.get("_target_", "?")).rsplit(".", 1)[-1]
    try:
        agent = instantiate(agent_cfg, seed=seed)
    except Exception as exc:
        raise ConfigError(f"agent {label}: {error_cause(exc)}") from exc
    if not isinstance(agent, Agent):
        raise ConfigError(
            f"agent {label}: _target_ {agent_cfg.get('_target_')!r} is not an rsi_rl Agent"
        )
    return agent


def agent_configs(names: list[str], cfg: Any) -> dict[str, Any]:
    """``rsi-rl bench``'s agent configs by name: ``agent/<name>.yaml`` of the config search
    path (``--config-dir`` first), with ``batch_size`` (for agents that batch) and
    ``agent_overrides.<name>`` applied. Names without a file are left out (built-ins)."""
    from omegaconf import OmegaConf

    configs: dict[str, Any] = {}
    for name in names:
        path = agent_config_file(name, [*search_dirs(), conf_dir()])
        if path is not None:
            configs[name] = OmegaConf.load(path)
    batch_size = int(cfg.get("batch_size") or 1)
    for agent_cfg in configs.values():  # agents that batch (their config has the key)
        if batch_size > 1 and "batch_size" in agent_cfg:
            agent_cfg.batch_size = batch_size
    for name, extra in (cfg.get("agent_overrides") or {}).items():
        if name in configs:  # key by key: ``stages.0.agent.moves`` reaches into a list
            for key, value in _leaves(to_plain(extra)):
                OmegaConf.update(configs[name], key, value, merge=False)
    return configs


def _leaves(tree: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """``(dotted key, value)`` of a nested mapping's leaves (lists are values)."""
    if not isinstance(tree, Mapping) or not tree:
        return [(prefix, tree)] if prefix else []
    out: list[tuple[str, Any]] = []
    for key, value in tree.items():
        out += _leaves(value, f"{prefix}.{key}" if prefix else str(key))
    return out


# ---------------------------------------------------------------------------- trainer, tracker
def trainer_spec(cfg: Any) -> dict[str, Any]:
    """``cfg.trainer`` (``conf/trainer/<name>.yaml``) as a plain mapping.

    Raises:
        ConfigError: a trainer config whose ``_target_`` is not the SB3 builder.
    """
    from rsi_rl.agents.sb3 import algorithm_classes

    spec: dict[str, Any] = dict(to_plain(cfg.trainer))
    target = spec.get("_target_", "")
    if target != TRAINER_TARGET:
        raise ConfigError(
            f"trainer._target_={target!r} is not trainable; rsi-rl train takes an SB3 "
            f"trainer: {', '.join(algorithm_classes())} (trainer=maskable_ppo)"
        )
    return spec


def make_tracker(cfg: Any) -> Tracker:
    """The tracker of ``cfg.logger`` (see :mod:`rsi_rl.tracking`)."""
    from rsi_rl.tracking import make_tracker as make

    return make(cfg.get("logger"))


def run_dir() -> Path:
    """The running Hydra job's output directory."""
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


__all__ = [
    "ENV_KEYS",
    "TRAINER_TARGET",
    "agent_configs",
    "agent_parameters",
    "build_agent",
    "check_agent_config",
    "env_kwargs",
    "error_cause",
    "make_env",
    "make_task",
    "make_tracker",
    "proposer_spec",
    "run_dir",
    "sandbox_limits",
    "sandbox_settings",
    "settings",
    "to_plain",
    "trainer_spec",
]
