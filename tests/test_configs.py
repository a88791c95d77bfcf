"""Every Hydra config composes, lightning-hydra-template style."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate

from rsi_rl.cli import conf_dir


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (conf_dir() / group).glob("*.yaml") if not p.stem.startswith("_"))


@pytest.fixture(autouse=True)
def _clear_hydra():
    GlobalHydra.instance().clear()
    yield
    GlobalHydra.instance().clear()


@pytest.mark.parametrize("task", _options("task"))
def test_every_task_config_instantiates(task):
    from rsi_rl.core.task import InnerTask

    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(config_name="search", overrides=[f"task={task}"])
    assert isinstance(instantiate(cfg.task), InnerTask)


@pytest.mark.parametrize("group", ["agent", "logger", "env", "sandbox", "executor", "proposer"])
def test_every_group_option_composes(group):
    for option in _options(group):
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            cfg = compose(config_name="search", overrides=[f"{group}={option}"])
        assert cfg.budget > 0 and group in cfg


def test_campaign_agents_instantiate():
    from rsi_rl.agents import Agent

    for option in ("random", "greedy", "tpe", "random_search", "policy", "policy_tpe"):
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            cfg = compose(config_name="search", overrides=[f"agent={option}"])
        assert isinstance(instantiate(cfg.agent, seed=0), Agent)


def test_bench_agent_overrides_as_documented():
    """docs/cli.md: per-agent settings are added with ``+agent_overrides.<agent>.<key>=``."""
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(
            config_name="bench",
            overrides=["+agent_overrides.policy.path=my.zip"],
        )
    assert cfg.agent_overrides.policy.path == "my.zip"


@pytest.mark.parametrize("trainer", _options("trainer"))
def test_every_trainer_config_composes_for_train(trainer):
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"trainer={trainer}"])
    assert cfg.trainer.algo == trainer and "agent" not in cfg


def test_search_agents_and_trainers_are_separate_groups():
    assert set(_options("trainer")) == {"maskable_ppo", "ppo", "a2c", "dqn"}
    assert not set(_options("agent")) & set(_options("trainer"))


@pytest.mark.parametrize("name", ["search", "train", "bench", "try", "check_task"])
def test_shipped_configs_fit_their_schema(name):
    """Every top-level key of the schema is in the shipped YAML and of its type."""
    import dataclasses

    from rsi_rl.builder import settings
    from rsi_rl.config_schema import SCHEMAS

    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(config_name=name, overrides=["edit=x"] if name == "try" else [])
    typed = settings(cfg, name)
    assert {f.name for f in dataclasses.fields(SCHEMAS[name])} <= set(cfg)
    if "env" in typed:
        assert set(typed.env) == set(cfg.env)  # conf/env/default.yaml: every env setting


def test_the_schemas_are_in_hydras_config_store():
    from hydra.core.config_store import ConfigStore

    from rsi_rl.config_schema import register

    register()
    stored = ConfigStore.instance().list("schema")
    assert {"env.yaml", "search.yaml", "train.yaml", "bench.yaml"} <= set(stored)


def test_a_schema_in_a_user_defaults_list_types_the_env():
    """A user config can take the env schema in its defaults list (Hydra then refuses a
    wrong type itself)."""
    from rsi_rl.config_schema import register

    register()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(config_name="search", overrides=["+schema@env=env", "env.keep_threshold=2"])
    assert cfg.env.keep_threshold == 2.0 and isinstance(cfg.env.keep_threshold, float)


@pytest.mark.parametrize(
    ("name", "overrides", "message"),
    [
        ("search", ["env.keep_threshold=abc"], "env.keep_threshold=abc is not a float; "),
        ("search", ["seed=-1"], "seed=-1: the seed must be a non-negative integer"),
        ("search", ["budget=0"], "budget must be a positive integer number of experiments"),
        ("train", ["eval.episodes=x"], "eval.episodes=x is not an integer"),
        ("train", ["allow_stop=x"], "allow_stop=x is not a boolean"),
        ("bench", ["instances=[a]"], "instances='a': an instance is a non-negative integer"),
        ("bench", ["agents=3"], "agents=3 is not a list; give a list, e.g. agents=[a,b]"),
        ("try", ["edit=[1]"], "edit=[1] is not a string or null"),
        ("check_task", ["run_edits=[1]"], "run_edits=[1] is not a string"),
    ],
)
def test_settings_of_the_wrong_type_or_range_name_the_key(name, overrides, message):
    from rsi_rl.builder import settings
    from rsi_rl.core.errors import ConfigError

    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(config_name=name, overrides=overrides)
    with pytest.raises(ConfigError) as err:
        settings(cfg, name)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_agent_overrides_reach_into_a_sequence_stage():
    """bench's ``agent_overrides`` set keys inside a list (a sequence's stages) by index."""
    from rsi_rl import builder

    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(
            "bench",
            overrides=[
                "agents=[opening_tpe,tpe]",
                '+agent_overrides.opening_tpe.stages.0.agent.moves=["width:hi","lr:down"]',
                "+agent_overrides.tpe.n_startup_trials=5",
            ],
        )
    configs = builder.agent_configs(["opening_tpe", "tpe"], cfg)
    assert list(configs["opening_tpe"].stages[0].agent.moves) == ["width:hi", "lr:down"]
    assert configs["opening_tpe"].stages[1].experiments is None  # the rest kept
    assert configs["tpe"].n_startup_trials == 5
