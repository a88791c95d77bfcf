"""Structured configs: the type of every top-level setting of a command and of ``env.*``.

The YAML files under ``conf/`` hold the defaults and their comments; these dataclasses
hold the types. :func:`validate` merges a composed config into its command's schema, so
that a value of the wrong type fails in one line naming the key, the value and the type::

    rsi-rl search env.keep_threshold=abc
    rsi-rl: error: env.keep_threshold=abc is not a float; give a number, e.g. env.keep_threshold=1.0

The schemas are also in Hydra's ConfigStore (:func:`register`: ``schema/env``,
``schema/search``, ...), for user configs that want them in a defaults list.
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from rsi_rl.core.errors import ConfigError

#: ``env.noise_model``'s values (those of :data:`rsi_rl.core.noise.NOISE_MODELS`)
NoiseModel = enum.Enum(
    "NoiseModel", [("global", "global"), ("local", "local")], type=str, module=__name__
)
#: ``env.pruner``'s values (those of :data:`rsi_rl.exec.pruning.PRUNERS`; null: no pruning)
Pruner = enum.Enum(
    "Pruner",
    [
        ("median", "median"),
        ("successive_halving", "successive_halving"),
        ("hyperband", "hyperband"),
    ],
    type=str,
    module=__name__,
)


@dataclass
class EnvSettings:
    """``env.*``: keep-or-revert and reward settings of the research env."""

    keep_threshold: float = MISSING
    noise_model: NoiseModel = NoiseModel["global"]
    cost_per_second: float = MISSING
    invalid_penalty: float = MISSING
    mask_duplicates: bool = True
    pruner: Pruner | None = None
    pruner_warmup_steps: int = 0
    pruner_startup_trials: int = 5
    pruner_reduction_factor: int = 3
    pruner_warmup_fraction: float = 0.25


@dataclass
class SearchSettings:
    """The top-level keys of ``rsi-rl search`` (conf/search.yaml)."""

    budget: int = MISSING
    budget_seconds: float | None = None
    seed: int = MISSING
    instance: int | None = None
    test: bool = True
    quiet: bool = False
    resume: str | None = None
    cache: str | None = None
    env: EnvSettings = field(default_factory=EnvSettings)


@dataclass
class EvalSettings:
    """``eval.*`` of ``rsi-rl train``."""

    freq: int = MISSING
    episodes: int = MISSING
    instances: int = MISSING


@dataclass
class TrainSettings:
    """The top-level keys of ``rsi-rl train`` (conf/train.yaml)."""

    budget: int = MISSING
    budget_seconds: float | None = None
    total_steps: int = MISSING
    n_envs: int = MISSING
    subproc: bool = True
    seed: int = MISSING
    allow_stop: bool = False
    train_instances: int | None = None
    tasks: list[str] | None = None
    torch_threads: int | None = 1
    eval: EvalSettings = field(default_factory=EvalSettings)
    checkpoint_freq: int = 0
    resume: str | None = None
    resume_hyperparams: dict[str, Any] = field(default_factory=dict)
    progress: bool = True
    tensorboard: bool = True
    out: str | None = None
    cache: str | None = None
    env: EnvSettings = field(default_factory=EnvSettings)


@dataclass
class BenchSettings:
    """The top-level keys of ``rsi-rl bench`` (conf/bench.yaml)."""

    agents: list[str] = MISSING
    agent_overrides: dict[str, Any] = field(default_factory=dict)
    budget: int = MISSING
    budget_seconds: float | None = None
    seeds: int = MISSING
    instances: Any = None  # null, a count or a list: config_checks.check_instances
    oracle_budget: int = 0
    remeasure_seeds: int = 3
    plots: bool = True
    batch_size: int = 1
    family: str | None = None
    split: str = "val"
    yardstick: str | None = None
    endpoints: list[int] | None = None
    comparisons: list[Any] | None = None
    aa_arm: bool = True
    alpha: float = 0.05
    power: float = 0.8
    env: EnvSettings = field(default_factory=EnvSettings)


@dataclass
class TrySettings:
    """The top-level keys of ``rsi-rl try`` (conf/try.yaml)."""

    edit: str | None = None
    instance: int | None = None
    seed: int = MISSING
    baseline: bool = True
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class CheckTaskSettings:
    """The top-level keys of ``rsi-rl check-task`` (conf/check_task.yaml)."""

    instance: int | None = None
    seeds: Any = MISSING  # a seed or a list of seeds: config_checks.check_seed each
    run_edits: str = "code"
    config: dict[str, Any] = field(default_factory=dict)


#: config name (``conf/<name>.yaml``) -> its schema
SCHEMAS: dict[str, type] = {
    "search": SearchSettings,
    "train": TrainSettings,
    "bench": BenchSettings,
    "try": TrySettings,
    "check_task": CheckTaskSettings,
}


def register() -> None:
    """Store the schemas in Hydra's ConfigStore as ``schema/<name>`` (and ``schema/env``)."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(group="schema", name="env", node=EnvSettings)
    for name, schema in SCHEMAS.items():
        store.store(group="schema", name=name, node=schema)


def _expected(schema: type, key: str) -> tuple[str, str] | None:
    """(what the field ``key`` of ``schema`` takes, an example value) by its annotation."""
    hints: Any = schema
    for part in key.split("."):
        fields = typing.get_type_hints(hints) if dataclasses.is_dataclass(hints) else {}
        if part not in fields:
            return None
        hints = fields[part]
    optional = type(None) in typing.get_args(hints)  # `X | None` (no other unions here)
    base = next((a for a in typing.get_args(hints) if a is not type(None)), hints)
    base = typing.get_origin(base) or base if optional else typing.get_origin(hints) or hints
    what, example = {
        float: ("a float", "give a number, e.g. {key}=1.0"),
        int: ("an integer", "give a whole number, e.g. {key}=3"),
        bool: ("a boolean", "give true or false, e.g. {key}=true"),
        str: ("a string", "give text, e.g. {key}=name"),
        list: ("a list", "give a list, e.g. {key}=[a,b]"),
        dict: ("a mapping", "give keys, e.g. +{key}.name=value"),
    }.get(base, (f"a {getattr(base, '__name__', base)}", "see `--cfg job` for its form"))
    if isinstance(base, type) and issubclass(base, enum.Enum):
        names = [m.name for m in base]
        what, example = f"one of {', '.join(names)}", f"e.g. {{key}}={names[0]}"
    if optional:
        what, example = f"{what} or null", example + " or {key}=null"
    return what, example.format(key=key)


def _shown(value: Any) -> str:
    from omegaconf import OmegaConf

    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value)
    return "null" if value is None else str(value)


def validate(cfg: Any, config_name: str) -> Any:
    """Check the types of ``cfg`` (a composed ``conf/<config_name>.yaml``) against its
    schema; returns the typed settings (a DictConfig of the schema, values converted).

    Keys outside the schema (the config groups: task, agent, sandbox, ...) are left out.

    Raises:
        ConfigError: one line naming the key, its value and the type it takes, or an
            ``env.*`` key that is not an env setting.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigKeyError, ValidationError

    schema = SCHEMAS.get(config_name)
    if schema is None:
        return None
    names = [f.name for f in dataclasses.fields(schema)]
    top = {name: cfg[name] for name in names if name in cfg}
    try:
        return OmegaConf.merge(OmegaConf.structured(schema), top)
    except ConfigKeyError as exc:
        key = str(exc.full_key)
        parent = key.rsplit(".", 1)[0]
        options = [f.name for f in dataclasses.fields(EnvSettings)] if parent == "env" else []
        known = f" (it takes: {', '.join(options)})" if options else ""
        raise ConfigError(
            f"{key} is not a setting of {parent}{known}; fix or drop the override {key}"
        ) from None
    except ValidationError as exc:
        key = str(exc.full_key)
        expected = _expected(schema, key)
        if expected is None:
            raise ConfigError(f"{key}: {str(exc).splitlines()[0]}") from None
        what, example = expected
        raise ConfigError(f"{key}={_shown(exc.value)} is not {what}; {example}") from None


__all__ = [
    "SCHEMAS",
    "BenchSettings",
    "CheckTaskSettings",
    "EnvSettings",
    "EvalSettings",
    "NoiseModel",
    "Pruner",
    "SearchSettings",
    "TrainSettings",
    "TrySettings",
    "register",
    "validate",
]
