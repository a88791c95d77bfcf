"""What an env is built on: sandbox limits, the instance pool, the runner and executor."""

from __future__ import annotations

import pytest

from rsi_rl.core.errors import ConfigError
from rsi_rl.env_setup import bound_runner, env_limits, instance_pool
from rsi_rl.exec.pruning import pruner_settings
from rsi_rl.exec.sandbox import SandboxLimits


def test_limits_hide_the_runs_own_records_from_the_program(tabular, tmp_path):
    cache = tmp_path / "cache.sqlite"
    limits = env_limits(tabular, {"memory_mb": 512}, None, tmp_path / "run", cache)
    assert limits.timeout == tabular.default_timeout and limits.memory_mb == 512
    c = str(cache.resolve())
    assert limits.hidden_paths[-4:] == (
        str((tmp_path / "run").resolve()),
        c,
        f"{c}-wal",
        f"{c}-shm",
    )
    assert env_limits(tabular, None, None, None, None).hidden_paths == SandboxLimits().hidden_paths


def test_timeout_overrides_the_sandbox_settings(tabular):
    assert env_limits(tabular, {"timeout": 3.0}, None, None, None).timeout == 3.0
    assert env_limits(tabular, {"timeout": 3.0}, 7.0, None, None).timeout == 7.0
    assert env_limits(tabular, SandboxLimits(timeout=3.0), 7.0, None, None).timeout == 7.0


def test_a_bad_sandbox_field_is_a_config_error(tabular):
    with pytest.raises(ConfigError, match="bad sandbox setting"):
        env_limits(tabular, {"memory": 3}, None, None, None)


def test_instance_pool(tabular):
    assert instance_pool(tabular, 7) == [7]
    assert instance_pool(tabular, [3, "4"]) == [3, 4]
    assert list(instance_pool(tabular, "train")) == list(tabular.instance_seeds("train"))
    with pytest.raises(ConfigError, match="at least one"):
        instance_pool(tabular, [])
    with pytest.raises(ConfigError, match="instance split"):
        instance_pool(tabular, "somewhere")


def test_a_pruner_needs_an_executor_in_this_process(tabular):
    limits = env_limits(tabular, None, None, None, None)
    with pytest.raises(ConfigError, match="executor=serial or executor=local"):
        bound_runner(tabular, limits, None, None, {"name": "ray"}, pruner_settings("median"))
    runner, executor = bound_runner(tabular, limits, None, None, None, pruner_settings("median"))
    try:
        assert executor.name == "serial" and runner.task is tabular
    finally:
        executor.close()
        runner.close()
