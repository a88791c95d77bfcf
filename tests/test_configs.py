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
    from rsi_rl.task import InnerTask

    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(config_name="search", overrides=[f"task={task}"])
    assert isinstance(instantiate(cfg.task), InnerTask)


@pytest.mark.parametrize("group", ["agent", "logger", "env", "sandbox"])
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
