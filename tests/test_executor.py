"""Executors: a pool of warm sandboxes gives serial's results, batched campaigns keep the rules.

Pools run real sandboxes on ``light_tabular`` (a numpy program, numpy-only fork servers);
the batched-campaign rules are checked with training replaced by a formula.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from rsi_rl.actions import MAX_SLOTS
from rsi_rl.agents import RandomAgent, TPEAgent
from rsi_rl.cli import main
from rsi_rl.core.edits import Candidate, apply_edit
from rsi_rl.core.errors import ConfigError
from rsi_rl.env import ResearchEnv
from rsi_rl.exec.executor import LocalExecutor, SerialExecutor, make_executor
from rsi_rl.exec.ray_pool import RAY_MISSING
from rsi_rl.search import run_campaign
from rsi_rl.testing import instant_experiments

INSTANCE = 10_000


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def edits_of_incumbent(env: ResearchEnv, n: int) -> list[tuple[Candidate, str, str]]:
    names = [env.action_names[i] for i in np.flatnonzero(env.action_masks()[:MAX_SLOTS])][:n]
    return [(*apply_edit(env.task, env.incumbent, name), name) for name in names]


def outcome(results: list) -> list[tuple]:
    return [(r.status, r.metrics, r.cached, r.message) for r in results]


@contextlib.contextmanager
def beside_serial(task, budget: int, executor: dict) -> Iterator[tuple[ResearchEnv, ResearchEnv]]:
    """A serial env and one with ``executor``, on ``task``'s instance :data:`INSTANCE`,
    both reset with seed 0 (the same evaluation seed); both closed after."""
    serial = ResearchEnv(task=task, budget=budget, instances=[INSTANCE])
    try:
        env = ResearchEnv(task=task, budget=budget, instances=[INSTANCE], executor=executor)
        try:
            serial.reset(seed=0)
            env.reset(seed=0)
            assert serial.eval_seed == env.eval_seed
            yield serial, env
        finally:
            env.close()
    finally:
        serial.close()


def serial_results(serial: ResearchEnv, cands: list[Candidate]) -> list:
    return [serial.runner.run(serial.instance, c, serial.eval_seed) for c in cands]


# ---------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": "local", "workers": 0}, "executor.workers must be a positive integer"),
        ({"name": "local", "workers": "2"}, "executor.workers must be a positive integer"),
        ({"name": "nope"}, "unknown executor 'nope'; known: local, ray, serial"),
        ({"name": "serial", "workers": 2}, "use executor=local executor.workers=N"),
        ({"name": "local", "threads": 2}, "bad executor setting for executor=local"),
    ],
)
def test_bad_executor_config_is_one_line(spec, message):
    with pytest.raises(ConfigError, match=message) as err:
        make_executor(spec)
    assert "\n" not in str(err.value)


def test_make_executor_defaults():
    assert isinstance(make_executor(None), SerialExecutor)
    assert isinstance(make_executor("serial"), SerialExecutor)
    pool = make_executor({"name": "local", "workers": 3})
    assert isinstance(pool, LocalExecutor) and pool.workers == 3
    assert make_executor(pool) is pool


def test_ray_missing_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ConfigError) as err:
        make_executor({"name": "ray", "workers": 2})
    assert str(err.value) == RAY_MISSING


def test_a_private_ray_instance_is_new_even_beside_a_running_cluster(monkeypatch):
    """``address: null`` asks ray.init for a new local instance: a plain ray.init() joins
    the cluster a ``ray start`` left (RAY_ADDRESS, /tmp/ray/ray_current_cluster) and then
    refuses the executor's num_cpus."""
    from types import SimpleNamespace

    from rsi_rl.exec.ray_pool import RayExecutor

    calls: list[dict] = []

    def init(**kwargs):
        calls.append(kwargs)
        raise RuntimeError("stop here")

    fake = SimpleNamespace(is_initialized=lambda: False, init=init)
    monkeypatch.setitem(sys.modules, "ray", fake)
    with pytest.raises(ConfigError, match="could not start Ray"):
        RayExecutor(workers=2).bind(object())  # type: ignore[arg-type]
    assert calls[0]["address"] == "local" and calls[0]["num_cpus"] >= 2
    calls.clear()
    with pytest.raises(ConfigError):
        RayExecutor(workers=2, address="auto").bind(object())  # type: ignore[arg-type]
    assert calls[0]["address"] == "auto" and "num_cpus" not in calls[0]


def test_every_executor_config_composes():
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from rsi_rl.cli import conf_dir, executor_spec

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            search = compose(config_name="search")
            local = compose(
                config_name="search", overrides=["executor=local", "executor.workers=3"]
            )
            ray = compose(
                config_name="bench", overrides=["executor=ray", "executor.address=ray://head:10001"]
            )
            tpe = compose(config_name="search", overrides=["agent=tpe", "agent.batch_size=4"])
    finally:
        GlobalHydra.instance().clear()
    assert executor_spec(search) == {"name": "serial"}
    assert executor_spec(local) == {"name": "local", "workers": 3}
    assert executor_spec(ray)["address"] == "ray://head:10001"
    assert tpe.agent.batch_size == 4
    assert isinstance(make_executor(executor_spec(search)), SerialExecutor)
    assert make_executor(executor_spec(local)).workers == 3


# ---------------------------------------------------------------------------- pool == serial
def test_pool_results_equal_serial_results(light_tabular):
    pool = {"name": "local", "workers": 2}
    with beside_serial(light_tabular, 6, pool) as (serial, pool_env):
        cands = [c for c, _, _ in edits_of_incumbent(serial, 3)]
        cands.append(cands[0])  # a duplicate trains once, then is a cache hit
        want = serial_results(serial, cands)
        assert [r.status for r in want] == ["ok"] * 4
        got = pool_env.executor.run_many(pool_env.instance, cands, pool_env.eval_seed)
        assert outcome(got) == outcome(want)
        assert [r.cached for r in got] == [False, False, False, True]
        # a second batch is served from the env runner's cache, as serial runs would be
        again = pool_env.executor.run_many(pool_env.instance, cands[:2], pool_env.eval_seed)
        assert all(r.cached for r in again)
        assert [r.metrics for r in again] == [r.metrics for r in want[:2]]
        # the workers are warm sandboxes of their own
        pids = pool_env.executor.processes
        assert len(pids) == 2 and all(alive(p) for p in pids)


def landscape(cand: Candidate) -> float:
    """A made-up val_acc of tabular's knobs (the formula campaigns train with)."""
    c = cand.config
    return 0.5 + 0.02 * np.log2(c["steps"] / 25) - 0.03 * abs(np.log2(c["lr"] / 0.01))


@pytest.fixture()
def instant():
    with instant_experiments(landscape) as runs:
        yield runs


def test_try_candidates_truncates_to_the_budget_and_records_in_order(instant):
    env = ResearchEnv(task="tabular", budget=2, instances=[INSTANCE])
    try:
        env.reset(seed=1)
        batch = edits_of_incumbent(env, 3)
        steps = env.try_candidates(*(list(x) for x in zip(*batch, strict=True)))
        assert len(steps) == 2 and env.experiments_used == 2
        assert [s[3] for s in steps] == [False, True]  # truncated on the last one
        recs = env.log[1:]
        assert [r["kind"] for r in recs] == [k for _, _, k in batch[:2]]
        assert all(r["parent"] == env.log[0]["candidate"] for r in recs)
        assert env.seconds_used == pytest.approx(sum(r["seconds"] for r in recs)) == 2.0
        assert env.try_candidates([batch[2][0]]) == []  # the budget is spent
    finally:
        env.close()
    trained = [c.hash for c, _, _ in instant]  # the baseline and the two within the budget
    assert trained == [env.log[0]["candidate"]] + [c.hash for c, _, _ in batch[:2]]


# ---------------------------------------------------------------------------- campaigns
def ledger_view(env: ResearchEnv) -> list[tuple]:
    return [
        (r["kind"], r["candidate"], r["status"], r["metric"], r["kept"], r["incumbent_metric"])
        for r in env.log
    ]


def check_keep_rule(env: ResearchEnv) -> None:
    """Each record kept iff it beat the incumbent of the moment by more than the threshold."""
    incumbent = env.log[0]["metric"]
    for r in env.log[1:]:
        if r["split"] != "val":
            continue
        beat = (
            r["status"] == "ok"
            and env.task.score(r["metric"]) - env.task.score(incumbent)
            > env.keep_threshold * env.task.noise_prior
        )
        assert r["kept"] == beat, r
        if r["kept"]:
            incumbent = r["metric"]
        assert r["incumbent_metric"] == pytest.approx(incumbent)


@pytest.mark.parametrize("agent_cls", [RandomAgent, TPEAgent])
def test_batched_campaign_respects_budget_keep_rule_and_is_worker_independent(agent_cls, instant):
    runs = []
    for executor in (None, {"name": "local", "workers": 2}):
        env = ResearchEnv(task="tabular", budget=5, instances=[INSTANCE], executor=executor)
        try:
            agent = agent_cls(seed=3, batch_size=3)
            summary = run_campaign(env, agent, seed=2, instance=INSTANCE, test=False)
            assert summary["experiments"] == 5 == env.experiments_used  # 3 + 2: cut to budget
            check_keep_rule(env)
            runs.append(ledger_view(env))
        finally:
            env.close()
    assert runs[0] == runs[1]  # the same campaign with 1 or 2 workers
    kinds = [k for k, *_ in runs[0][1:]]
    if agent_cls is RandomAgent:
        assert len(set(kinds[:3])) == 3  # distinct edits of the incumbent in one batch
    else:
        assert set(kinds) == {"tpe"}
    assert any(kept for *_, kept, _ in runs[0][1:])  # the formula rewards some edits


def test_a_crash_and_a_hang_in_a_batch_are_recorded_and_the_rest_goes_on(light_tabular):
    """...and closing the env leaves no process and no scratch folder behind."""
    env = ResearchEnv(
        task=light_tabular,
        budget=4,
        instances=[INSTANCE],
        timeout=4.0,
        executor={"name": "local", "workers": 2},
    )
    try:
        env.reset(seed=0)
        start = env.incumbent
        entry = light_tabular.entry

        def variant(code: str) -> Candidate:
            source = dict(start.source)
            source[entry] = code + "\n" + source[entry]
            return Candidate(dict(start.config), source)

        crash = variant("raise RuntimeError('boom')")
        hang = variant("import time\nwhile True:\n    time.sleep(0.1)")
        ok, desc, kind = edits_of_incumbent(env, 1)[0]
        steps = env.try_candidates([crash, hang, ok], ["crash", "hang", desc], ["a", "b", kind])
        statuses = [s[4]["experiment"]["status"] for s in steps]
        assert statuses == ["crash", "timeout", "ok"]
        assert "boom" in env.log[1]["message"] and env.experiments_used == 3
        assert env.status_counts["crash"] == 1 and env.status_counts["timeout"] == 1
        pids = env.executor.processes + [env.runner.sandbox._proc.pid]  # type: ignore[union-attr]
        roots = [Path(r) for r in env.executor._roots]  # type: ignore[attr-defined]
        assert len(pids) == 3 and all(alive(p) for p in pids) and all(r.is_dir() for r in roots)
    finally:
        env.close()
    assert not any(alive(p) for p in pids)
    assert not any(r.exists() for r in roots)
    env.executor.close()  # idempotent


# ---------------------------------------------------------------------------- CLI
def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rsi_rl.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["executor=nope"], "unknown executor 'nope'; known: local, ray, serial"),
        (["executor=local", "executor.workers=0"], "executor.workers must be a positive integer"),
        (["agent=greedy", "agent.batch_size=2"], "unknown config key 'agent.batch_size'"),
    ],
)
def test_cli_bad_executor_is_one_line(tmp_path, monkeypatch, capsys, args, expected):
    monkeypatch.chdir(tmp_path)
    with instant_experiments(landscape), pytest.raises(SystemExit) as exc:
        main(["search", "task=tabular", "budget=1", *args])
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rsi-rl: error: ") and expected in lines[0]


@pytest.mark.slow
def test_cli_search_and_bench_with_a_local_pool(tmp_path):
    p = cli(
        "search",
        "task=tabular",
        "agent=tpe",
        "agent.batch_size=2",
        "executor=local",
        "executor.workers=2",
        "budget=3",
        "test=false",
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr
    progress = [ln for ln in p.stdout.splitlines() if ln.startswith("[")]
    assert [ln.split("]")[0] for ln in progress] == ["[1/3", "[2/3", "[3/3"]
    p = cli(
        "bench",
        "agents=[random,tpe]",
        "seeds=1",
        "budget=3",
        "batch_size=2",
        "executor=local",
        "executor.workers=2",
        "remeasure_seeds=0",
        "plots=false",
        "aa_arm=false",
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr
    rows = [
        json.loads(ln) for ln in next(tmp_path.rglob("campaigns.jsonl")).read_text().splitlines()
    ]
    assert [r["experiments"] for r in rows] == [3, 3]


# ---------------------------------------------------------------------------- Ray
@pytest.mark.slow
def test_ray_executor_equals_serial_and_cleans_up(tabular):
    pytest.importorskip("ray")
    import ray

    with beside_serial(tabular, 4, {"name": "ray", "workers": 2}) as (serial, env):
        cands = [c for c, _, _ in edits_of_incumbent(serial, 3)]
        want = serial_results(serial, cands)
        got = env.executor.run_many(env.instance, cands, env.eval_seed)
        assert outcome(got) == outcome(want)
        actors = env.executor.pids()  # type: ignore[attr-defined]
        assert len(set(actors)) == 2 and os.getpid() not in actors
        summary = run_campaign(env, TPEAgent(seed=0, batch_size=2), seed=1, test=False)
        assert summary["experiments"] == 4
        check_keep_rule(env)
    assert not ray.is_initialized()
    assert not any(alive(p) for p in actors)


def test_seconds_cap_reaches_batch_workers(light_tabular):
    """A batch on local workers is capped like a single experiment: no run may take
    longer than what is left of ``budget_seconds``; a capped timeout is not cached."""
    env = ResearchEnv(
        task=light_tabular,
        budget=10,
        budget_seconds=0.3,
        instances=[10_001],
        executor={"name": "local", "workers": 2},
    )
    try:
        env.reset(seed=0)
        source = {light_tabular.entry: "import time\nwhile True:\n    time.sleep(0.05)\n"}
        child = Candidate(dict(env.incumbent.config), source)
        out = env.try_candidates([child])
        exp = out[0][4]["experiment"]
        assert exp["status"] == "timeout" and "0.3s wall-clock limit" in exp["message"]
        assert out[0][3]  # the cap is spent
        key = env.runner.cache_key(env.instance.id, child.hash, env.eval_seed, "val")
        assert env.runner.cache.get(key) is None  # with more time left it may finish
    finally:
        env.close()
