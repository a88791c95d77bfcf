"""rsi-rl bench: summaries of campaign rows, the equal-budget comparison, merging bench
folders, and the bad inputs of each.

One bench trains in real sandboxes (``light_tabular``: a numpy program); the others train a
formula (:func:`rsi_rl.testing.instant_experiments`).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from rsi_rl.agents.base import Agent
from rsi_rl.analysis.bench import bench
from rsi_rl.analysis.results import parse_row
from rsi_rl.analysis.results import summarise as summarise_rows
from rsi_rl.analysis.tables import format_table
from rsi_rl.core.errors import ConfigError, UnknownAgentError
from rsi_rl.testing import instant_experiments


class CrashingAgent(Agent):
    name = "crashing"

    def ask(self, view, n):
        raise RuntimeError("boom")


def landscape(cand) -> float:
    """A made-up val_acc of tabular's knobs."""
    c = cand.config
    return 0.5 + 0.02 * np.log2(c["steps"] / 25) - 0.03 * abs(np.log2(c["lr"] / 0.01))


@pytest.fixture()
def instant():
    """Training is :func:`landscape` with a spread of 0.01 across seeds."""
    with instant_experiments(landscape, noise=0.01) as runs:
        yield runs


def summarise(rows, agents, budget, maximize):
    """bench.json's mapping of the campaign rows (dicts, as campaigns.jsonl holds them)."""
    return summarise_rows([parse_row(r) for r in rows], agents, budget, maximize).to_dict()


def test_summarise_pairs_by_instance_and_seed():
    rows = [
        {
            "agent": a,
            "instance": 1,
            "seed": s,
            "start": 0.5,
            "best": b,
            "curve": [b, b],
            "seconds": [1.0, 2.0],
        }
        for s in range(3)
        for a, b in (("x", 0.9), ("y", 0.7))
    ]
    rows.append({"agent": "y", "instance": 1, "seed": 9, "error": "boom"})
    res = summarise(rows, ["x", "y"], budget=2, maximize=True)
    assert res["agents"]["x"]["regret_mean"] == 0.0
    assert res["agents"]["y"]["regret_mean"] == pytest.approx(0.5)
    assert res["agents"]["y"]["errors"] == 1
    assert res["paired"]["x_vs_y"]["wins"] == 3
    assert res["paired"]["x_vs_y"]["auc"]["wins"] == 3  # x's curve is lower throughout


def test_absolute_gap_does_not_inflate_low_headroom_instances():
    """On instance 0 the start is one sample (0.01) below the best known, on instance 1 it
    is 0.4 below. `a` misses that one sample on 0 and is perfect on 1; `b` is perfect on 0
    and misses 0.1 on 1. Normalised, `a` looks worse (1.0 vs 0.25); in metric units it
    loses 0.01 where `b` loses 0.1, and the gap says so."""

    def row(agent, inst, start, best):
        return {
            "agent": agent,
            "instance": inst,
            "seed": inst,
            "start": start,
            "best": best,
            "curve": [best],
            "seconds": [1.0],
        }

    rows = [row("a", 0, 0.89, 0.89), row("b", 0, 0.89, 0.90)]
    rows += [row("a", 1, 0.5, 0.9), row("b", 1, 0.5, 0.8)]
    res = summarise(rows, ["a", "b"], budget=1, maximize=True)
    a, b = res["agents"]["a"], res["agents"]["b"]
    assert a["regret_mean"] == pytest.approx(0.5) and b["regret_mean"] == pytest.approx(0.125)
    assert a["gap_mean"] == pytest.approx(0.005) and b["gap_mean"] == pytest.approx(0.05)
    assert res["headroom"] == pytest.approx({"0": 0.01, "1": 0.4})
    gap = res["paired"]["a_vs_b"]["gap"]
    assert (gap["wins"], gap["losses"]) == (1, 1) and gap["mean_diff"] == pytest.approx(-0.045)
    # minimising: the gap is measured in the same direction as the regret
    low = summarise(
        [row("a", 0, 2.0, 1.5), row("b", 0, 2.0, 1.0)], ["a", "b"], budget=1, maximize=False
    )
    assert low["agents"]["a"]["gap_mean"] == pytest.approx(0.5)
    assert low["headroom"] == pytest.approx({"0": 1.0})


def test_noise_sd_pools_the_reruns_of_final_incumbents():
    rows = [
        {
            "agent": a,
            "instance": 3,
            "seed": 0,
            "start": 0.5,
            "best": best,
            "curve": [best],
            "seconds": [1.0],
            "final_fresh_values": vals,
        }
        for a, best, vals in (("a", 0.8, [0.7, 0.8, 0.9]), ("b", 0.7, [0.5, 0.6, 0.7]))
    ]
    res = summarise(rows, ["a", "b"], budget=1, maximize=True)
    # each campaign's own mean removed: squares 0.02 + 0.02 over 2 + 2 degrees of freedom
    assert res["noise_sd"] == {"3": pytest.approx(0.1)}
    # one sd over the headroom 0.8 - 0.5 is a normalised regret of 1/3; b's gap is one sd
    assert res["noise_regret"] == {"3": pytest.approx(1 / 3)}
    assert res["noise_regret_median"] == pytest.approx(1 / 3)
    assert res["agents"]["a"]["gap_in_noise_sd_median"] == pytest.approx(0.0)
    assert res["agents"]["b"]["gap_in_noise_sd_median"] == pytest.approx(1.0)
    rows = [parse_row(r) for r in rows]
    assert "1.00 seed-noise sd" in format_table(summarise_rows(rows, ["a", "b"], 1, True))


def test_experiments_to_reference_counts_misses_in_the_censored_median():
    """`fast` reaches the reference at experiment 1 once and misses twice; `steady` reaches
    it at experiment 3 every time. Among hits `fast` looks faster; counting a miss as
    K + 1 it is not, and the paired test of censored counts says so too."""

    def row(agent, seed, curve):
        return {
            "agent": agent,
            "instance": seed,
            "seed": seed,
            "start": 0.5,
            "best": max(curve),
            "curve": curve,
            "seconds": [1.0] * len(curve),
            "reference": 0.8,
        }

    rows = [row("fast", 0, [0.8, 0.8, 0.8, 0.8]), row("fast", 1, [0.6] * 4)]
    rows += [row("fast", 2, [0.7] * 4)]
    rows += [row("steady", s, [0.6, 0.7, 0.8, 0.8]) for s in range(3)]
    res = summarise(rows, ["steady", "fast"], budget=4, maximize=True)
    fast, steady = res["agents"]["fast"], res["agents"]["steady"]
    assert fast["experiments_to_reference_median"] == 1.0
    assert fast["experiments_to_reference_censored_median"] == 5.0  # misses count as K + 1
    assert steady["experiments_to_reference_median"] == 3.0
    assert steady["experiments_to_reference_censored_median"] == 3.0
    assert fast["cotra"]["parity"] == pytest.approx(1 / 3) and steady["cotra"]["parity"] == 1.0
    to_ref = res["paired"]["steady_vs_fast"]["to_reference"]
    assert (to_ref["wins"], to_ref["losses"], to_ref["n"]) == (2, 1, 3)


def test_bench_runs_agents_side_by_side(tmp_path, light_tabular, monkeypatch):
    import rsi_rl.analysis.bench as bench_module

    def provenance() -> dict:
        """Which commit bench.json names: the one before the first campaign ran."""
        return {"commit": "after" if (tmp_path / "campaigns.jsonl").exists() else "before"}

    monkeypatch.setattr(bench_module, "provenance", provenance)
    agent_cfgs = {"crashing": {"_target_": "tests.test_bench.CrashingAgent"}}
    res = bench(
        light_tabular,
        ["greedy", "random", "crashing"],
        tmp_path,
        budget=2,
        seeds=2,
        instances=1,
        agent_cfgs=agent_cfgs,
    ).to_dict()
    data = json.loads((tmp_path / "bench.json").read_text())
    assert data["setup"]["budget"] == 2 and data["setup"]["instances"] == [10_000]
    assert data["setup"]["commit"] == "before"
    for a in ("greedy", "random"):
        assert res["agents"][a]["campaigns"] == 2
        assert 0.0 <= res["agents"][a]["regret_mean"] <= 1.0
    assert res["agents"]["crashing"]["errors"] == 2  # recorded, the bench went on
    assert "greedy_vs_random" in res["paired"]
    assert (tmp_path / "best_so_far_experiments.png").is_file()
    assert (tmp_path / "best_so_far_seconds.png").is_file()
    rows = [json.loads(x) for x in (tmp_path / "campaigns.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and "boom" in rows[-1]["error"]
    # start and final incumbent re-measured on fresh seeds, the same for both agents
    ok = [r for r in rows if "error" not in r]
    assert all(r["start_fresh"] is not None and r["final_fresh"] is not None for r in ok)
    # the reruns and the configuration found are kept; their spread is the seed noise
    assert all(r["final_fresh"] == pytest.approx(np.mean(r["final_fresh_values"])) for r in ok)
    assert all(isinstance(r["best_config"], dict) and r["best_config"] for r in ok)
    assert set(res["noise_sd"]) <= {str(r["instance"]) for r in ok}
    by_seed = {}
    for r in ok:
        by_seed.setdefault(r["seed"], set()).add(round(r["start_fresh"], 9))
    assert all(len(v) == 1 for v in by_seed.values())
    assert 0.0 <= res["agents"]["greedy"]["regret_fresh_mean"] <= 1.0
    assert "fresh" in res["paired"]["greedy_vs_random"]


def test_unknown_agent_lists_known_ones(tmp_path, tabular):
    with pytest.raises(UnknownAgentError, match="known agents: .*greedy.*tpe"):
        bench(tabular, ["greedy", "nope"], tmp_path, budget=1, seeds=1)


def test_bad_agent_setting_fails_before_any_campaign(tmp_path, tabular):
    """A policy file that does not exist is the user's to fix: one line naming the agent
    and the file, before the job spends time on the other agents' campaigns."""
    cfgs = {"policy": {"_target_": "rsi_rl.agents.sb3.PolicyAgent", "path": "missing.zip"}}
    with pytest.raises(ConfigError, match=r"^agent policy: policy file missing.zip does not"):
        bench(tabular, ["greedy", "policy"], tmp_path, budget=1, seeds=1, agent_cfgs=cfgs)
    assert not (tmp_path / "campaigns.jsonl").exists()


def test_cli_bench_unknown_agent(tmp_path, instant, capsys):
    from rsi_rl.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["bench", "agents=[nope]", f"hydra.run.dir={tmp_path}"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "unknown agent 'nope'" in err and "greedy" in err
    assert instant == []  # refused before any campaign


def test_merge_campaigns_script(tmp_path, capsys):
    """scripts/merge_campaigns.py: rows of two jobs summarised as one, agents picked per file."""
    import runpy
    from pathlib import Path

    def row(agent, best):
        return {
            "agent": agent,
            "instance": 1,
            "seed": 0,
            "start": 0.5,
            "best": best,
            "curve": [best],
            "seconds": [1.0],
        }

    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("\n".join(json.dumps(row(n, v)) for n, v in (("x", 0.9), ("y", 0.6))) + "\n")
    b.write_text(json.dumps(row("z", 0.7)) + "\n")
    script = Path(__file__).resolve().parents[1] / "scripts" / "merge_campaigns.py"
    merge = runpy.run_path(str(script))["main"]
    out = tmp_path / "m.json"
    args = ["--budget", "1", "--out", str(out), f"{a}:x", f"{b}:z"]
    merge(args)
    assert "x_vs_z: wins 1" in capsys.readouterr().out
    merged = json.loads(out.read_text())
    assert set(merged["agents"]) == {"x", "z"} and merged["agents"]["z"]["regret_mean"] > 0
    with pytest.raises(SystemExit) as exc:
        merge([*args[:-1], f"{b}:y"])
    assert exc.value.code == 2 and "has no campaigns of y" in capsys.readouterr().err
    # agent=label: two variants of one agent from two files, side by side
    b.write_text(json.dumps(row("x", 0.7)) + "\n")
    merge([*args[:-2], f"{a}:x=x_new", f"{b}:x=x_old"])
    assert "x_new_vs_x_old: wins 1" in capsys.readouterr().out


def test_oracle_env_has_the_campaigns_env_settings(tmp_path, tabular, monkeypatch, instant):
    """The oracle search that adds to ``best_known`` runs under the user's env settings
    (keep threshold, costs, sandbox limits), like the campaigns it is compared with."""
    import rsi_rl.env

    made: list[dict] = []

    class Recording(rsi_rl.env.ResearchEnv):
        def __init__(self, **kwargs):
            made.append(kwargs)
            super().__init__(**kwargs)

    monkeypatch.setattr(rsi_rl.env, "ResearchEnv", Recording)
    settings = {
        "keep_threshold": 0.5,
        "cost_per_second": 0.001,
        "invalid_penalty": 0.1,
        "sandbox": {"memory_mb": 3000, "timeout": 30.0},
    }
    bench(
        tabular,
        ["greedy"],
        tmp_path,
        budget=1,
        seeds=1,
        instances=1,
        env_kwargs=settings,
        oracle_budget=1,
        plots=False,
        remeasure_seeds=0,
    )
    assert len(made) == 2  # the campaigns' env and one oracle env
    for kwargs in made:
        assert {k: kwargs.get(k) for k in settings} == settings
    assert made[1]["budget"] == 1 and made[1]["instances"] == [10_000]


def test_cli_bench_finds_agents_of_config_dir(tmp_path, instant):
    """An agent config in ``--config-dir`` (``<dir>/agent/<name>.yaml``) is one bench knows,
    as search does, not an unknown agent."""
    import shutil

    from rsi_rl.cli import conf_dir, main

    d = tmp_path / "myconf"
    (d / "agent").mkdir(parents=True)
    shutil.copy(conf_dir() / "agent" / "random.yaml", d / "agent" / "my_random.yaml")
    run = tmp_path / "run"
    main(
        [
            "bench",
            "--config-dir",
            str(d),
            "agents=[my_random]",
            "task=tabular",
            "budget=1",
            "seeds=1",
            "remeasure_seeds=0",
            "plots=false",
            f"hydra.run.dir={run}",
        ]
    )
    data = json.loads((run / "bench.json").read_text())
    assert data["agents"]["my_random"]["campaigns"] == 1


def test_summarise_stores_each_pair_once_in_list_order():
    """Three agents make three pairs, ``a_vs_b`` with a before b, and the table shows each."""
    rows = [
        {
            "agent": a,
            "instance": 1,
            "seed": 0,
            "start": 0.5,
            "best": b,
            "curve": [b],
            "seconds": [1.0],
        }
        for a, b in (("z", 0.9), ("a", 0.7), ("m", 0.6))
    ]
    res = summarise_rows([parse_row(r) for r in rows], ["z", "a", "m"], budget=1, maximize=True)
    assert list(res.to_dict()["paired"]) == ["z_vs_a", "z_vs_m", "a_vs_m"]
    table = format_table(res)
    assert [line.split(":")[0] for line in table.splitlines() if "_vs_" in line] == [
        "z_vs_a",
        "z_vs_m",
        "a_vs_m",
    ]


def test_plot_clips_regret_band_and_titles_the_regret(tmp_path, monkeypatch):
    """The 95% band of a regret near 0 (or 1) stays within [0, 1]; the title names the regret."""
    import matplotlib.axes

    from rsi_rl.analysis.plots import plot_regret_curves

    bands, titles = [], []
    real_fill, real_title = matplotlib.axes.Axes.fill_between, matplotlib.axes.Axes.set_title

    def fill(self, x, lo, hi, **kw):
        bands.append((np.asarray(lo), np.asarray(hi)))
        return real_fill(self, x, lo, hi, **kw)

    def title(self, text, *a, **kw):
        titles.append(text)
        return real_title(self, text, *a, **kw)

    monkeypatch.setattr(matplotlib.axes.Axes, "fill_between", fill)
    monkeypatch.setattr(matplotlib.axes.Axes, "set_title", title)
    curves = [[0.0, 0.0], [0.4, 0.0], [1.0, 1.0], [0.2, 0.0]]
    path = plot_regret_curves({"x": curves, "empty": []}, tmp_path / "r.png")
    assert path is not None and path.read_bytes()[:4] == b"\x89PNG"
    ((lo, hi),) = bands  # one band: the agent without campaigns draws nothing
    assert lo.min() >= 0.0 and hi.max() <= 1.0 and lo[0] == 0.0
    assert titles[0] == "normalised regret of best-so-far vs experiments"
    assert plot_regret_curves({}, tmp_path / "none.png") is None


# --------------------------------------------------------------------------- merging folders
def _rows(agents, seeds, instances=(1, 2)):
    """Campaign rows with a curve per (agent, seed), different across agents and seeds."""
    out = []
    for a_i, agent in enumerate(agents):
        for seed in seeds:
            inst = instances[seed % len(instances)]
            curve = [0.5 + 0.05 * ((a_i + seed + k) % 4) for k in range(3)]
            curve = list(np.maximum.accumulate(curve))
            out.append(
                {"agent": agent, "instance": inst, "seed": seed, "start": 0.45 + 0.01 * seed,
                 "best": curve[-1], "curve": curve, "seconds": [1.0, 2.0, 3.0], "reference": 0.6,
                 "start_fresh": 0.5, "final_fresh": curve[-1] - 0.01,
                 "final_fresh_values": [curve[-1] - 0.02, curve[-1]]}
            )  # fmt: skip
    return out


def _folder(path, rows, agents, budget=3, direction="maximize", oracle=()):
    from rsi_rl.analysis.folders import write_campaigns

    path.mkdir(parents=True)
    write_campaigns(path / "campaigns.jsonl", [parse_row(r) for r in rows])
    if oracle:
        write_campaigns(path / "oracle.jsonl", [parse_row(r) for r in oracle])
    setup = {"task": "t", "metric": "m", "direction": direction, "agents": agents, "budget": budget}
    (path / "bench.json").write_text(json.dumps({"setup": setup}))
    return path


def test_merge_of_folders_equals_one_summary_over_all_their_rows(tmp_path):
    """Pairs split across two jobs, and agents split across two jobs: the merge is the
    summary of all the rows at once (order of rows and of folders does not matter)."""
    from rsi_rl.analysis.folders import merge_benches

    rows = _rows(["x", "y", "z"], seeds=range(6), instances=(1, 2, 3))
    whole = summarise_rows([parse_row(r) for r in rows], ["x", "y", "z"], 3, True).to_dict()
    assert set(whole["paired"]["x_vs_y"]) >= {"p_holm", "auc", "gap", "fresh", "to_reference"}
    by_seed = [
        _folder(tmp_path / f"s{i}", [r for r in rows if r["seed"] % 2 == i], ["x", "y", "z"])
        for i in (0, 1)
    ]
    by_agent = [
        _folder(tmp_path / "xy", [r for r in rows if r["agent"] != "z"], ["x", "y"]),
        _folder(tmp_path / "z", [r for r in rows if r["agent"] == "z"], ["z"]),
    ]
    for folders in (by_seed, by_agent, by_seed[::-1]):
        merged = merge_benches(folders).to_dict()
        setup = merged.pop("setup")
        assert merged == whole
        assert setup["budget"] == 3 and setup["task"] == "t" and setup["agents"] == ["x", "y", "z"]


def test_merge_takes_agents_by_name_and_counts_the_oracle(tmp_path):
    from rsi_rl.analysis.folders import BenchSource, merge_benches

    rows = _rows(["x", "y"], seeds=range(4))
    oracle = [{"agent": "_oracle", "instance": 1, "seed": 0, "start": 0.5, "best": 0.95,
               "curve": [0.95], "seconds": [1.0]}]  # fmt: skip
    a = _folder(tmp_path / "a", rows, ["x", "y"], oracle=oracle)
    stuck = [
        {**r, "best": r["start"], "curve": [r["start"]] * 3} for r in rows if r["agent"] == "y"
    ]
    b = _folder(tmp_path / "b", stuck, ["y"])
    res = merge_benches([f"{a}:x,y=y_old", BenchSource(b, {"y": "y_new"})])
    assert list(res.agents) == ["x", "y_old", "y_new"]
    assert res.best_known[1] == 0.95  # the oracle's best counts, though it is no agent
    assert [p.key for p in res.pairs] == ["x_vs_y_old", "x_vs_y_new", "y_old_vs_y_new"]
    assert res.agents["y_new"].regret_mean == 1.0  # never left the start
    assert res.setup["sources"] == [f"{a}:x,y=y_old", f"{b}:y=y_new"]


def test_merge_refuses_what_it_cannot_merge(tmp_path):
    from rsi_rl.analysis.folders import merge_benches

    rows = _rows(["x"], seeds=range(2))
    a = _folder(tmp_path / "a", rows, ["x"])
    with pytest.raises(ConfigError, match=r"agent x has a campaign on instance 1 seed 0 in both"):
        merge_benches([a, _folder(tmp_path / "b", rows, ["x"])])
    with pytest.raises(ConfigError, match=r"has budget 5; merge benches of the same budget"):
        merge_benches([a, _folder(tmp_path / "c", _rows(["y"], [0]), ["y"], budget=5)])
    with pytest.raises(ConfigError, match=r"has direction minimize"):
        merge_benches([a, _folder(tmp_path / "d", _rows(["y"], [0]), ["y"], direction="minimize")])
    with pytest.raises(ConfigError, match=r"has no campaigns of nope; it has x"):
        merge_benches([f"{a}:nope"])
    with pytest.raises(ConfigError, match=r"does not exist"):
        merge_benches([tmp_path / "missing"])
    loose = tmp_path / "loose.jsonl"  # a file without bench.json: the budget must be given
    loose.write_text((a / "campaigns.jsonl").read_text())
    with pytest.raises(ConfigError, match=r"budget of .* is unknown .* --budget"):
        merge_benches([loose])
    assert merge_benches([loose], budget=3).agents["x"].campaigns == 2
    (tmp_path / "bad.jsonl").write_text('{"agent": "x", "instance": 1}\n{"agent": "x"}\n')
    with pytest.raises(ConfigError, match=r"bad.jsonl line 1: missing seed, start, best"):
        merge_benches([tmp_path / "bad.jsonl"], budget=3)


def test_merge_of_two_bench_jobs_equals_one_job_over_both_agents(tmp_path, tabular, instant):
    """Every agent is deterministic given its (instance, seed) pair: greedy and random run
    in separate jobs and merged give bench.json's numbers of one job running both."""
    from rsi_rl.analysis.folders import merge_benches

    kw = {"budget": 3, "seeds": 3, "instances": 2, "plots": False, "remeasure_seeds": 2}
    one = bench(tabular, ["greedy", "random"], tmp_path / "both", **kw).to_dict()
    bench(tabular, ["greedy"], tmp_path / "g", **kw)
    bench(tabular, ["random"], tmp_path / "r", **kw)
    merged = merge_benches([tmp_path / "g", tmp_path / "r"]).to_dict()
    for res in (one, merged):  # the timings differ from run to run
        res.pop("setup")
        for entry in res["agents"].values():
            entry.pop("seconds_mean")
    assert merged == one
    assert set(one["agents"]) == {"greedy", "random"} and "greedy_vs_random" in one["paired"]


# ---------------------------------------------------------------------------- headline
def _truth_bench(tmp_path, agents, name="b", noise=0.03, **kw):
    """A bench of TruthToy (true values known) on a formula with seed noise ``noise``."""
    from tests.test_yardstick import TruthToy, truth

    args = {"budget": 6, "seeds": 4, "instances": 2, "plots": False, "remeasure_seeds": 0}
    args.update(endpoints=[3, 6], aa_arm=False)
    args.update(kw)
    with instant_experiments(truth, noise=noise):
        return bench(TruthToy(), agents, tmp_path / name, **args)


def test_headline_regret_is_the_incumbents_true_value_not_its_single_seed_value(tmp_path):
    """Regret at k is read on the true value of the incumbent after k experiments (replayed
    here from the records' kept flags), not on the campaign's single-seed metric."""
    from types import SimpleNamespace

    from rsi_rl.analysis.headline import read_records
    from tests.test_yardstick import MEDIAN, OPTIMUM, truth

    res = _truth_bench(tmp_path, ["random", "greedy"])
    lines = read_records(tmp_path / "b" / "records.jsonl.gz")
    true_regret: dict[str, list[float]] = {}
    seed_regret: dict[str, list[float]] = {}
    for a in ("random", "greedy"):
        for inst, seed in {(r["instance"], r["seed"]) for r in lines if r["agent"] == a}:
            rows = sorted(
                (r for r in lines if (r["agent"], r["instance"], r["seed"]) == (a, inst, seed)),
                key=lambda r: r["k"],
            )
            config = rows[0]["config"]
            for r in rows[1:4]:  # experiments 1..3
                config = r["config"] if r["kept"] else config
            value = truth(SimpleNamespace(config=config))
            assert rows[3]["truth"] == pytest.approx(value)
            # truth_run: the true value of what each experiment ran, kept or not
            for r in rows[1:]:
                assert r["truth_run"] == pytest.approx(truth(SimpleNamespace(config=r["config"])))
            true_regret.setdefault(a, []).append((OPTIMUM - value) / (OPTIMUM - MEDIAN))
            single = rows[3]["incumbent_metric"]
            seed_regret.setdefault(a, []).append((OPTIMUM - single) / (OPTIMUM - MEDIAN))
    head = res.to_dict()["headline"]
    for a in ("random", "greedy"):
        got = head["agents"][a]["regret@3"]
        assert got["n"] == 4 and got["mean"] == pytest.approx(np.mean(true_regret[a]))
        assert got["mean"] != pytest.approx(np.mean(seed_regret[a]), abs=1e-3)
    assert head["measures"] == ["regret@3", "regret@6", "auc"]
    # the AUC is the mean regret over k = 1..K of the truth curve
    rows = [json.loads(x) for x in (tmp_path / "b" / "campaigns.jsonl").read_text().splitlines()]
    aucs = [
        np.mean([(OPTIMUM - v) / (OPTIMUM - MEDIAN) for v in r["truth"]])
        for r in rows
        if r["agent"] == "greedy"
    ]
    assert head["agents"]["greedy"]["auc"]["mean"] == pytest.approx(np.mean(aucs))


def test_yardstick_is_frozen_adding_an_agent_changes_no_other_agents_regret(tmp_path):
    from rsi_rl.analysis.yardstick import compute_yardstick, write_yardstick
    from tests.test_yardstick import TruthToy

    ys = tmp_path / "ys.json"
    write_yardstick(ys, compute_yardstick(TruthToy(), [1000, 1001]), "truth_toy", "maximize")
    before = ys.read_text()
    alone = _truth_bench(tmp_path, ["random"], "alone", yardstick=ys).to_dict()
    both = _truth_bench(tmp_path, ["random", "greedy"], "both", yardstick=ys).to_dict()
    assert both["headline"]["agents"]["random"] == alone["headline"]["agents"]["random"]
    assert ys.read_text() == before  # read, never rewritten
    assert json.loads((tmp_path / "both" / "yardstick.json").read_text())["instances"]


def test_an_instance_missing_from_the_yardstick_file_stops_the_bench_first(tmp_path):
    from rsi_rl.analysis.yardstick import compute_yardstick, write_yardstick
    from tests.test_yardstick import TruthToy

    ys = tmp_path / "ys.json"
    write_yardstick(ys, compute_yardstick(TruthToy(), [1000]), "truth_toy", "maximize")
    with pytest.raises(ConfigError, match=r"^1 instance\(s\) not in .*ys.json \(1001\)"):
        _truth_bench(tmp_path, ["random"], yardstick=ys)
    assert not (tmp_path / "b" / "campaigns.jsonl").exists()


def _lines(agent, inst, seed, truths):
    return [
        {"agent": agent, "instance": inst, "seed": seed, "k": k, "truth": t}
        for k, t in enumerate(truths)
    ]


def test_holm_runs_over_every_declared_comparison_and_endpoint():
    from rsi_rl.analysis.headline import Protocol, headline
    from rsi_rl.analysis.stats import holm
    from rsi_rl.analysis.yardstick import Yardstick

    ys = Yardstick(
        "t",
        "maximize",
        {i: {"optimum": 1.0, "median": 0.0, "start": 0, "source": "x"} for i in range(8)},
    )
    rng = np.random.default_rng(3)
    lines = []
    for i in range(8):
        for agent, level in (("a", 0.8), ("b", 0.6), ("c", 0.5)):
            lines += _lines(agent, i, i, [0.1, *(level + rng.normal(0, 0.05, 2))])
    protocol = Protocol(
        task="t",
        agents=["a", "b", "c"],
        budget=2,
        endpoints=[1, 2],
        comparisons=[("a", "b", "less"), ("a", "c", "two-sided")],
    )
    h = headline(lines, ys, protocol)
    tests = [t for c in h.comparisons for t in c.tests.values()]
    assert len(tests) == 6  # 2 comparisons x (regret@1, regret@2, auc)
    assert [t.p_holm for t in tests] == pytest.approx(holm([t.p_value for t in tests]))
    assert h.power_alpha == pytest.approx(0.05 / 6)
    # a's regret is lower (its truth higher): the one-sided claim holds at every endpoint
    assert all(t.wins == 8 and t.alternative == "less" for t in h.comparisons[0].tests.values())
    assert h.comparisons[0].tests["regret@1"].p_value == pytest.approx(1 / 256)
    # the line order does not matter
    assert headline(lines[::-1], ys, protocol).to_dict() == h.to_dict()


def test_aa_arm_runs_beside_tpe_in_every_table(tmp_path):
    from rsi_rl.analysis.tables import format_headline

    res = _truth_bench(tmp_path, ["random", "tpe"], aa_arm=True, budget=4, seeds=3)
    out = res.to_dict()
    assert out["setup"]["agents"] == ["random", "tpe", "tpe_b"]
    assert ["tpe", "tpe_b", "two-sided"] in out["setup"]["comparisons"]
    assert "tpe_vs_tpe_b" in out["headline"]["comparisons"]
    assert "| tpe_b |" in format_headline(res.headline) and "tpe_b" in format_table(res)
    rows = [json.loads(x) for x in (tmp_path / "b" / "campaigns.jsonl").read_text().splitlines()]
    configs = {r["agent"]: [] for r in rows}
    for r in rows:
        configs[r["agent"]].append(r["best_config"])
    assert configs["tpe"] != configs["tpe_b"]  # another sampler seed stream
    off = _truth_bench(tmp_path, ["random", "tpe"], "off", budget=2, seeds=1, aa_arm=False)
    assert off.to_dict()["setup"]["agents"] == ["random", "tpe"]


def test_rederive_reproduces_bench_json_from_the_records_alone(tmp_path, capsys):
    import gzip

    from rsi_rl.analysis.rederive import main

    _truth_bench(tmp_path, ["random", "greedy"], comparisons=[["greedy", "random", "less"]])
    folder = tmp_path / "b"
    data = json.loads((folder / "bench.json").read_text())
    assert data["setup"]["commit"] and data["setup"]["cpu_count"] >= 1
    assert "headline" in data and (folder / "protocol.json").is_file()
    (folder / "campaigns.jsonl").unlink()  # not needed: records, yardstick and protocol are
    assert main([str(folder), "--check"]) == 0
    out = capsys.readouterr().out
    assert "every headline number matches bench.json" in out
    assert "| greedy vs random | less | regret@3 |" in out
    # one changed record changes a headline number, and --check says where
    with gzip.open(folder / "records.jsonl.gz", "rt") as fh:
        lines = fh.read().splitlines()
    row = json.loads(lines[-1])
    row["truth"] = 0.0
    with gzip.open(folder / "records.jsonl.gz", "wt") as fh:
        fh.write("\n".join([*lines[:-1], json.dumps(row)]) + "\n")
    assert main([str(folder), "--check"]) == 1
    assert "bench.json differs" in capsys.readouterr().out
    assert main([str(tmp_path)]) == 2
    assert "lacks protocol.json" in capsys.readouterr().err


def test_trained_task_regret_is_the_fresh_seed_mean_at_the_endpoints(tmp_path):
    """A task without true values: the incumbent at each endpoint is re-measured on the
    fresh seeds (the final one on the same seeds as final_fresh); no AUC is claimed."""
    from rsi_rl.analysis.headline import read_records
    from rsi_rl.analysis.yardstick import compute_yardstick, write_yardstick
    from rsi_rl.testing import ToyTask
    from tests.test_yardstick import truth

    ys = tmp_path / "ys.json"
    with instant_experiments(truth, noise=0.02):
        entries = compute_yardstick(ToyTask(), [1000], agent="greedy", budget=6)
        write_yardstick(ys, entries, "toy", "maximize")
        kw = {"budget": 4, "seeds": 2, "instances": [1000], "plots": False, "aa_arm": False}
        res = bench(
            ToyTask(),
            ["random"],
            tmp_path / "b",
            yardstick=ys,
            endpoints=[2, 4],
            remeasure_seeds=3,
            **kw,
        )
        with pytest.raises(ConfigError, match="no true values: its regret needs remeasure_seeds"):
            bench(ToyTask(), ["random"], tmp_path / "c", yardstick=ys, remeasure_seeds=0, **kw)
    head = res.to_dict()["headline"]
    assert head["measures"] == ["regret@2", "regret@4"]
    assert head["agents"]["random"]["regret@4"]["n"] == 2
    lines = read_records(tmp_path / "b" / "records.jsonl.gz")
    measured = [r for r in lines if r["truth"] is not None]
    assert sorted({r["k"] for r in measured}) == [0, 2, 4]
    assert all(len(r["truth_values"]) == 3 for r in measured)
    rows = [json.loads(x) for x in (tmp_path / "b" / "campaigns.jsonl").read_text().splitlines()]
    finals = {r["seed"]: r["final_fresh"] for r in rows}
    assert all(r["truth"] == pytest.approx(finals[r["seed"]]) for r in measured if r["k"] == 4)


def test_declared_comparisons_and_endpoints_are_checked(tmp_path):
    with pytest.raises(ConfigError, match=r"comparisons item \['tpe', 'random'\] names tpe"):
        _truth_bench(tmp_path, ["random"], comparisons=[["tpe", "random"]])
    with pytest.raises(ConfigError, match="alternative must be one of"):
        _truth_bench(tmp_path, ["random", "greedy"], comparisons=[["random", "greedy", "lower"]])
    res = _truth_bench(tmp_path, ["random"], endpoints=[2, 6, 50], seeds=1)
    assert res.to_dict()["setup"]["endpoints"] == [2, 6]  # above the budget: left out
