"""Optuna TPE baseline: its search space is the edit space; each trial is one experiment."""

from __future__ import annotations

import pytest

from rsi_rl.actions import REEVALUATE
from rsi_rl.agents import CampaignView, TPEAgent, make_agent
from rsi_rl.core.edits import apply_edit, start_candidate
from rsi_rl.core.errors import TaskError
from rsi_rl.core.space import CandidateSpace
from rsi_rl.core.task import CodePatch, Knob
from rsi_rl.env import ResearchEnv
from rsi_rl.search import run_campaign
from rsi_rl.testing import ToyTask, instant_experiments, instant_runs


def _tabular_score(cand) -> float:
    """A made-up accuracy (nothing here tests training): input_norm, more steps and a
    learning rate near 0.01 help."""
    c = cand.config
    value = 0.5 + 0.1 * ("input_norm" in cand.toggles) + 0.0001 * float(c.get("steps", 0))
    return value - abs(float(c.get("lr", 0.01)) - 0.01)


@pytest.fixture(autouse=True)
def _instant():
    """Every run of this module is the formula above: no sandbox starts."""
    with instant_experiments(_tabular_score):
        yield


def test_knob_reachable_values_follow_the_moves():
    lr = Knob("lr", "lr", "log", 1e-3, 1e-1, 2.0)
    vals = lr.reachable(0.01)
    assert vals == sorted(vals) and 0.01 in vals
    assert all(1e-3 - 1e-12 <= v <= 0.1 + 1e-12 for v in vals)
    batch = Knob("batch", "batch_size", "choice", choices=(16, 32, 64))
    assert batch.reachable(32) == [16, 32, 64]
    wd = Knob("wd", "weight_decay", "log", 1e-5, 1e-1, 10.0, zero_ok=True)
    assert wd.reachable(0.0)[0] == 0.0


def test_tpe_candidates_are_reachable_by_edits(tabular):
    env = ResearchEnv(task=tabular, budget=3, instances=[10_000])
    try:
        obs, _ = env.reset(seed=0)
        view = CampaignView(env, obs)
        agent = TPEAgent(seed=0)
        agent.reset(view)
        (proposal,) = agent.ask(view, 1)
        cand, desc = proposal.candidate, proposal.description
        assert proposal.kind == "tpe" and proposal.refused is None
        start = start_candidate(tabular, env.instance.start_config)
        # every value it sets is a knob value some chain of edits reaches
        for knob in tabular.knobs:
            assert cand.config[knob.key] in knob.reachable(start.config[knob.key])
        # code toggles build the same source as the edits would
        child = start
        for kind in sorted(cand.toggles):
            child, _ = apply_edit(tabular, child, kind)
        assert child.source == cand.source
        assert isinstance(desc, str)
    finally:
        env.close()


def test_tpe_campaign_spends_the_same_budget_and_is_seeded(tabular):
    env = ResearchEnv(task=tabular, budget=3, instances=[10_000])
    try:
        runs = []
        for _ in range(2):
            s = run_campaign(env, make_agent("tpe", seed=7), seed=0, instance=10_000, test=False)
            runs.append([r["config"] for r in env.log])
            assert s["experiments"] == 3 and s["agent"] == "tpe"
            assert all(r["kind"] == "tpe" for r in env.log[1:])
            kept = [r for r in env.log if r.get("kept") and r.get("split") == "val"]
            assert s["best_metric"] == kept[-1]["metric"]
        assert runs[0] == runs[1]
    finally:
        env.close()


def test_seed_offset_is_another_draw_on_the_same_campaign(tabular):
    """seed_offset moves only the sampler's seed: the campaign (instance, evaluation seed,
    baseline) is the same, the proposals are another draw; offset 0 is the default."""
    env = ResearchEnv(task=tabular, budget=2, instances=[10_000])
    try:
        runs = {}
        for offset in (0, 1000):
            for name in ("random_search", "tpe"):
                agent = make_agent(name, seed=3, seed_offset=offset)
                assert agent.sampler_seed == 3 + offset
                run_campaign(env, agent, seed=0, instance=10_000, test=False)
                runs[name, offset] = [(r["config"], r["seed"]) for r in env.log]
        default = make_agent("tpe", seed=3)
        assert default.sampler_seed == 3
        for name in ("random_search", "tpe"):
            a, b = runs[name, 0], runs[name, 1000]
            assert a[0] == b[0]  # the same baseline run on the same evaluation seed
            assert a[1][1] == b[1][1]  # experiments on that seed too
            assert [c for c, _ in a[1:]] != [c for c, _ in b[1:]]  # other proposals
    finally:
        env.close()


def test_random_search_draws_whole_candidates_seeded(tabular):
    """random_search: seeded, one experiment per trial, candidates from TPE's space that
    change several knobs and toggles at once (not one edit), and never a model."""
    env = ResearchEnv(task=tabular, budget=4, instances=[10_000])
    try:
        runs = []
        for _ in range(2):
            agent = make_agent("random_search", seed=3)
            s = run_campaign(env, agent, seed=0, instance=10_000, test=False)
            assert s["experiments"] == 4 and s["agent"] == "random_search"
            assert all(r["kind"] == "random_search" for r in env.log[1:])
            runs.append([(r["config"], tuple(r.get("toggles") or ())) for r in env.log])
            start = env.log[0]["config"]
            changed = [sum(r["config"][k] != start[k] for k in start) for r in env.log[1:]]
            assert max(changed) >= 2  # whole candidates, not single edits
            assert agent.study.sampler.__class__.__name__ == "RandomSampler"
        assert runs[0] == runs[1]
    finally:
        env.close()


def test_try_candidate_keeps_only_a_clear_improvement(tabular):
    env = ResearchEnv(task=tabular, budget=2, instances=[10_000], keep_threshold=1e6)
    try:
        env.reset(seed=0)
        child, _ = apply_edit(tabular, env.incumbent, "input_norm")
        _, reward, term, trunc, info = env.try_candidate(child, "input norm", "jump")
        assert info["experiment"]["kind"] == "jump" and not info["experiment"]["kept"]
        assert reward == pytest.approx(0.0) and not term and not trunc
        assert env.experiments_used == 1
    finally:
        env.close()


def test_env_masks_duplicate_experiments(tabular):
    """Toggling input_norm again rebuilds a candidate already trained on this seed (its
    parent if kept, itself if reverted): masked, since it would teach nothing."""
    env = ResearchEnv(task=tabular, budget=3, instances=[10_000])
    try:
        env.reset(seed=0)
        a = env.action_index("input_norm")
        assert env.action_masks()[a]
        env.step(a)
        assert not env.action_masks()[a]
        assert env.action_masks()[REEVALUATE]
    finally:
        env.close()


def _random_params(space, rng):
    """A parameter set drawn uniformly from a space's distributions."""
    params = {}
    for name, dist in space.distributions.items():
        if hasattr(dist, "choices"):
            params[name] = dist.choices[int(rng.integers(len(dist.choices)))]
        else:
            params[name] = int(rng.integers(dist.low, dist.high + 1))
    return params


@pytest.mark.parametrize("which", ["tabular", "toy"])
def test_candidate_space_round_trips_parameters(tabular, which):
    """TPE's parameters <-> candidates: every parameter set builds a candidate whose
    parameters read back unchanged, values and types (lattice index, categorical option
    of any type, patch toggle)."""
    import numpy as np

    task = tabular if which == "tabular" else ToyTask()
    space = CandidateSpace(task, task.make_instance(task.heldout_seeds[0]).start_config)
    assert set(space.distributions) == {k.key for k in task.knobs} | {p.name for p in task.patches}
    rng = np.random.default_rng(0)
    for _ in range(30):
        params = _random_params(space, rng)
        cand, desc = space.candidate(params, "tpe")
        back = space.params_of(cand)
        assert back == params and desc
        assert [type(v) for v in back.values()] == [type(v) for v in params.values()]
    assert space.params_of(space.start) == space.params_of(
        space.candidate(space.params_of(space.start), "x")[0]
    )


def test_candidate_space_categorical_knobs_are_their_options():
    from optuna.distributions import CategoricalDistribution, IntDistribution

    task = ToyTask()
    space = CandidateSpace(task, task.make_instance(1000).start_config)
    assert space.distributions["act"] == CategoricalDistribution(["relu", "tanh", "gelu"])
    assert space.distributions["mix"] == CategoricalDistribution(["auto", 2, 0.5, False])
    assert space.distributions["width"] == IntDistribution(0, 2)  # ordinal: an index
    assert space.distributions["norm_layer"] == CategoricalDistribution([False, True])
    params = {**space.params_of(space.start), "act": "gelu", "mix": False, "norm_layer": True}
    cand, desc = space.candidate(params, "tpe")
    assert cand.config["act"] == "gelu" and cand.config["mix"] is False
    assert cand.toggles == {"norm_layer"} and cand.source["train.py"] == "use_norm = True\n"
    assert desc == "act=gelu mix=False +norm_layer"
    # a start value the knob does not list is still a point of the space
    odd = CandidateSpace(task, {**task.make_instance(1000).start_config, "act": "swish"})
    assert odd.values["act"] == ["relu", "tanh", "gelu", "swish"]
    assert odd.params_of(odd.start)["act"] == "swish"


def test_candidate_space_refuses_a_patch_named_like_a_knob():
    class Clash(ToyTask):
        patches = (CodePatch("act", "clash", (("use_norm = False", "use_norm = True"),)),)

    with pytest.raises(TaskError, match="patch 'act' is named like a knob"):
        CandidateSpace(Clash(), Clash().make_instance(1000).start_config)


def _toy_score(cand):
    """Best with act=gelu, mix=0.5 and both learning rates high."""
    c = cand.config
    return (
        0.3
        + 0.2 * (c["act"] == "gelu")
        + 0.1 * (c["mix"] == 0.5)
        + 0.05 * (c["lr"] >= 0.05)
        + 0.05 * (c["head_lr"] >= 0.05)
    )


@pytest.mark.parametrize("name", ["tpe", "random_search", "gp"])
def test_whole_candidate_agents_search_the_whole_space(name):
    """TPE, random search and GP set every knob of a role and every categorical knob, to
    values of the space, and model a categorical knob by its options."""
    from optuna.distributions import CategoricalDistribution

    task = ToyTask()
    env = ResearchEnv(task=task, budget=30, instances=[1000])
    instant_runs(env, _toy_score)
    try:
        # GP refits its process at every ask: a few model-based asks are enough here
        kwargs = {"tpe": {"n_startup_trials": 6}, "gp": {"n_startup_trials": 26}}.get(name, {})
        agent = make_agent(name, seed=0, **kwargs)
        summary = run_campaign(env, agent, seed=0, test=False)
        configs = [r["config"] for r in env.log[1:]]
        patched = ["use_norm = True" in r["diff"] for r in env.log[1:]]
    finally:
        env.close()
    assert len(configs) == 30 and all(r["kind"] == name for r in env.log[1:])
    for key in ("lr", "head_lr", "act", "mix", "width"):
        assert len({c[key] for c in configs}) >= 2, key  # every knob is searched
    assert {c["act"] for c in configs} == {"relu", "tanh", "gelu"}
    assert {repr(c["mix"]) for c in configs} <= {"'auto'", "2", "0.5", "False"}
    lr = task.knob("lr")
    assert all(c["lr"] in lr.reachable(0.01) for c in configs)
    assert any(patched)  # the patch is searched too
    last = agent.study.trials[-1]
    assert (
        agent.study.sampler.__class__.__name__
        == {
            "tpe": "TPESampler",
            "random_search": "RandomSampler",
            "gp": "GPSampler",
        }[name]
    )
    assert isinstance(last.distributions["act"], CategoricalDistribution)
    assert last.params["act"] in ("relu", "tanh", "gelu")
    assert summary["best_metric"] > summary["start_metric"]


def _small_task(tabular):
    """Tabular with two knobs (lr, batch size) and no code edits: a 60-point space."""

    class SmallTabular(type(tabular)):
        knobs = type(tabular).knobs[:2]
        patches = ()

    return SmallTabular()


def _fake_runs(env, timeouts):
    """Replace the env's runner by an instant fake: configs matching ``timeouts`` time out,
    the others score higher the larger their batch size."""
    from rsi_rl.exec.result import ExperimentResult

    def run(instance, cand, seed, split="val"):
        if timeouts(cand.config):
            return ExperimentResult(status="timeout", seconds=10.0, message="killed")
        acc = 0.5 + 0.01 * cand.config["batch_size"] / 32 - abs(cand.config["lr"] - 0.01)
        return ExperimentResult(status="ok", metrics={"val_acc": acc}, seconds=1.0)

    env.runner.run = run


@pytest.mark.parametrize("batch_size", [1, 3])
def test_tpe_never_reruns_a_candidate_and_learns_from_timeouts(tabular, batch_size):
    """A region that always times out (here: large batches, which also score best) must
    not be proposed again and again: every candidate of a campaign is new, and a timeout is
    told to the study as a bad value, not as a failure TPE would ignore."""
    task = _small_task(tabular)
    env = ResearchEnv(task=task, budget=30, instances=[10_000])
    try:
        _fake_runs(env, lambda cfg: cfg["batch_size"] > 64)
        agent = make_agent("tpe", seed=0, n_startup_trials=5, batch_size=batch_size)
        run_campaign(env, agent, seed=0, instance=10_000, test=False)
        hashes = [r["candidate"] for r in env.log]
        timed_out = [r for r in env.log if r["status"] == "timeout"]
        study = agent.study
    finally:
        env.close()
    assert len(hashes) == 31 and len(set(hashes)) == len(hashes)  # no candidate twice
    assert timed_out  # the region was tried...
    failed = [t for t in study.trials if t.params.get("batch_size", 0) >= 3 and t.value is not None]
    assert failed and all(t.value <= env.start_metric for t in failed)  # ...and told as bad
    assert len(timed_out) < 15


@pytest.mark.parametrize("name", ["tpe", "random_search", "gp"])
def test_an_agent_config_with_storage_persists_each_campaigns_study(name, tmp_path):
    """``agent.storage=sqlite:///...``: each campaign's study is kept in the database,
    under its own name (a second campaign of the same name gets ``-2``), with every
    experiment of the campaign as a complete trial."""
    import optuna
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from rsi_rl.confpaths import conf_dir

    url = f"sqlite:///{tmp_path / 'studies.db'}"
    cfg = OmegaConf.load(conf_dir() / "agent" / f"{name}.yaml")
    cfg.storage = url
    for _ in range(2):
        env = ResearchEnv(task=ToyTask(), budget=4, instances=[1000])
        instant_runs(env, _toy_score)
        try:
            run_campaign(env, instantiate(cfg, seed=3), seed=0, test=False)
            configs = [dict(r["config"]) for r in env.log]
        finally:
            env.close()
    studies = sorted(optuna.get_all_study_summaries(url), key=lambda s: s.study_name)
    assert [s.study_name for s in studies] == [
        f"{name}-toy-toy/1000-c1-s3",
        f"{name}-toy-toy/1000-c1-s3-2",
    ]
    study = optuna.load_study(study_name=studies[1].study_name, storage=url)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) == 5  # the start and the four experiments
    space = CandidateSpace(ToyTask(), ToyTask().make_instance(1000).start_config)
    assert [space.candidate(t.params, "x")[0].config for t in done] == configs


def test_gp_refuses_a_batch_in_one_line():
    """GP has no liar for a batch's asks: batch_size > 1 is a ConfigError naming the fix."""
    from rsi_rl.core.errors import ConfigError

    with pytest.raises(ConfigError, match="one experiment at a time"):
        make_agent("gp", seed=0, batch_size=2)
    assert make_agent("gp", seed=0).batch_size == 1
