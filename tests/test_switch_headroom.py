"""scripts/switch_headroom.py on a tiny setting: two synth_smooth validation instances,
K = 6, greedy standing in for the policy."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest

from rsi_rl.agents import GreedyAgent, TPEAgent
from rsi_rl.analysis.yardstick import Yardstick, compute_yardstick, true_value
from rsi_rl.builder import make_env
from rsi_rl.core.edits import start_candidate
from rsi_rl.core.families import split_seeds
from rsi_rl.core.registry import make_task
from rsi_rl.search import run_campaign

ROOT = Path(__file__).resolve().parents[1]
K = 6


@pytest.fixture(scope="module")
def sh() -> Any:
    spec = importlib.util.spec_from_file_location(
        "switch_headroom", ROOT / "scripts/switch_headroom.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("switch_headroom", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def setting() -> tuple[Any, list[int], Yardstick]:
    task = make_task("synth_smooth")
    instances = split_seeds("synth_smooth", "val", 2)
    entries = compute_yardstick(task, instances)
    return task, instances, Yardstick(task.name, task.direction, entries)


def _campaign(sh: Any, task: Any, inst: int, arm: str) -> tuple[Any, Any]:
    env = make_env(task, K, [inst], {"executor": "serial"})
    agent, switch = sh.make_arm(arm, 0, GreedyAgent(seed=0), env, task.direction == "maximize")
    run_campaign(env, agent, seed=0, instance=inst, test=False)
    return env, switch


def test_oracle_runs_the_proposal_with_the_better_true_value(sh, setting):
    task, instances, _ = setting
    env, switch = _campaign(sh, task, instances[0], "oracle")
    records = [r for r in env.log if r.get("kind") != "baseline" and r.get("split") == "val"]
    assert len(switch.choices) == len(switch.values) == len(records) == K
    sign = 1 if task.direction == "maximize" else -1
    for choice, (vt, vp, _), rec in zip(switch.choices, switch.values, records, strict=True):
        assert choice == ("policy" if sign * (vp - vt) > 0 else "tpe")  # ties: TPE
        assert (rec["kind"] == "tpe") == (choice == "tpe")
    # TPE was told every experiment (its own and greedy's) beside the start: none lost
    tpe = switch.agents["tpe"]
    done = tpe.study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(done) == K + 1
    env.close()


def test_oracle_values_are_the_candidates_true_values(sh, setting):
    task, instances, _ = setting
    env = make_env(task, K, [instances[1]], {"executor": "serial"})
    seen: dict[str, Any] = {}
    run_proposals = env.run_proposals

    def recording(proposals: Any) -> Any:
        for p in proposals:
            seen[p.candidate.hash] = p.candidate
        return run_proposals(proposals)

    env.run_proposals = recording  # type: ignore[method-assign]
    maximize = task.direction == "maximize"
    agent, switch = sh.make_arm("oracle", 1, GreedyAgent(seed=1), env, maximize)
    run_campaign(env, agent, seed=1, instance=instances[1], test=False)
    records = [r for r in env.log if r.get("kind") != "baseline" and r.get("split") == "val"]
    best = max if maximize else min
    assert env.instance is not None
    incumbent = true_value(task, env.instance, start_candidate(task, env.instance.start_config))
    for (vt, vp, vi), rec in zip(switch.values, records, strict=True):
        assert vi == pytest.approx(incumbent)  # proposed for the incumbent of the time
        ran = true_value(task, env.instance, seen[rec["candidate"]])
        assert ran == pytest.approx(best(vt, vp))
        if rec["kept"]:
            incumbent = ran
    env.close()


@pytest.mark.parametrize(("arm", "k"), [("first5", 5), ("alternate", None)])
def test_rules_ask_the_agent_they_pick(sh, setting, arm, k):
    task, instances, _ = setting
    env, switch = _campaign(sh, task, instances[0], arm)
    if k is not None:
        want = ["policy"] * k + ["tpe"] * (K - k)
    else:
        want = ["policy" if i % 2 == 0 else "tpe" for i in range(K)]
    assert switch.choices == want
    kinds = [r["kind"] for r in env.log if r.get("kind") != "baseline" and r["split"] == "val"]
    assert [kd == "tpe" for kd in kinds] == [c == "tpe" for c in want]
    env.close()


def test_tpe_arm_is_plain_tpe(sh, setting):
    task, instances, _ = setting
    agent, switch = sh.make_arm("tpe", 3, GreedyAgent(seed=0), None, True)
    assert isinstance(agent, TPEAgent) and agent.seed == 3 and switch is None


def test_run_family_and_summary(sh, setting):
    task, instances, ys = setting
    arms = ["tpe", "policy", "oracle", "first5"]
    rows = sh.run_family(task, instances, ys, GreedyAgent(seed=0), arms, K, [5])
    assert sorted((r["arm"], r["seed"]) for r in rows) == sorted(
        (a, s) for a in arms for s in range(len(instances))
    )
    measures = ["regret@5", "auc"]
    for r in rows:
        assert all(r[m] is not None for m in measures)
    res = sh.summarise(rows, measures, task.direction == "maximize")
    assert res["best_rule"] == "first5"
    assert set(res["tests"]) == {"oracle_vs_tpe", "first5_vs_tpe"}
    assert res["tests"]["oracle_vs_tpe"]["auc"]["n"] == len(instances)
    for a in arms:
        got = [r["regret@5"] for r in rows if r["arm"] == a]
        assert res["means"][a]["regret@5"] == pytest.approx(sum(got) / len(got))
    oracle = [r for r in rows if r["arm"] == "oracle"]
    steps = [v for r in oracle for v in r["values"]]
    assert len(steps) == len(instances) * K
    sign = 1 if task.direction == "maximize" else -1
    decisive = [v for v in steps if sign * (v[0] - v[2]) > 0 or sign * (v[1] - v[2]) > 0]
    assert res["oracle_decisive_share"] == pytest.approx(len(decisive) / len(steps))
    assert 0.0 <= res["oracle_policy_share"] <= 1.0
    text = sh.table({"synth_smooth": res}, measures)
    assert all(f"| synth_smooth | {a} |" in text for a in arms)


@pytest.mark.parametrize(
    ("maximize", "decisive", "policy_decisive"), [(True, 1 / 3, 1.0), (False, 2 / 3, 0.0)]
)
def test_summary_of_fake_rows(sh, maximize, decisive, policy_decisive):
    # incumbent 0.5: maximising, only step 1 has a candidate better than it (the policy's
    # 0.9); minimising, steps 2 and 3 (TPE's 0.1 and 0.4)
    values = [[0.6, 0.9, 0.5], [0.1, 0.3, 0.5], [0.4, 0.45, 0.5]]
    choices = ["policy"] * 3 if maximize else ["tpe"] * 3
    rows = [
        {"arm": "tpe", "instance": 7, "seed": 0, "regret@2": 0.4, "auc": 0.5},
        {"arm": "tpe", "instance": 8, "seed": 1, "regret@2": 0.2, "auc": 0.3},
        {
            "arm": "oracle",
            "instance": 7,
            "seed": 0,
            "regret@2": 0.1,
            "auc": 0.2,
            "choices": choices,
            "values": values,
        },
        {
            "arm": "oracle",
            "instance": 8,
            "seed": 1,
            "regret@2": None,
            "auc": 0.1,
            "choices": choices,
            "values": values,
        },
        {"arm": "alternate", "instance": 7, "seed": 0, "regret@2": 0.3, "auc": 0.9},
        {"arm": "first5", "instance": 7, "seed": 0, "regret@2": 0.2, "auc": 0.9},
    ]
    res = sh.summarise(rows, ["regret@2", "auc"], maximize)
    assert res["means"]["oracle"] == {"regret@2": pytest.approx(0.1), "auc": pytest.approx(0.15)}
    assert res["best_rule"] == "first5"
    assert res["tests"]["oracle_vs_tpe"]["regret@2"]["n"] == 1  # a missing value drops its pair
    assert res["tests"]["oracle_vs_tpe"]["auc"]["wins"] == 2
    assert res["oracle_decisive_share"] == pytest.approx(decisive)
    assert res["oracle_policy_share_decisive"] == policy_decisive
    assert res["oracle_policy_share"] == choices.count("policy") / 3
