"""The ``suggest`` meta-action: TPE fitted to the campaign's own experiments."""

from __future__ import annotations

import numpy as np

from rsi_rl.agents import make_agent
from rsi_rl.agents.sb3 import TabuMask
from rsi_rl.edits import start_candidate
from rsi_rl.env import OBSERVATION_FEATURES, ResearchEnv
from rsi_rl.suggest import CandidateSpace, Suggester
from rsi_rl.vocab import KIND_INDEX, META_KINDS, VOCAB_VERSION, VOCABULARY

SUGGEST = KIND_INDEX["suggest"]


def test_suggest_is_a_meta_action_of_vocabulary_v3():
    assert "suggest" in META_KINDS and VOCAB_VERSION.startswith("v3:")
    assert "tries_suggest" in OBSERVATION_FEATURES and "mask_suggest" in OBSERVATION_FEATURES
    assert len(OBSERVATION_FEATURES) == 259 and len(VOCABULARY) == 57


def test_space_round_trips_parameters(tabular):
    inst = tabular.make_instance(10_000)
    space = CandidateSpace(tabular, inst.start_config)
    rng = np.random.default_rng(0)
    for _ in range(20):
        params = {
            k: int(rng.integers(len(space.values[k])))
            if k in space.values
            else bool(rng.random() < 0.5)
            for k in space.distributions
        }
        cand, desc = space.candidate(params, "suggest")
        assert space.params_of(cand) == params
        assert desc


def test_suggester_models_the_campaign(tabular):
    """Told that low learning rates win, TPE's proposals move to low learning rates."""
    inst = tabular.make_instance(10_000)
    sugg = Suggester(tabular, inst.start_config, seed=0, n_startup_trials=5)
    space = sugg.space
    n_lr = len(space.values["lr"])
    rng = np.random.default_rng(1)
    seen: dict[str, float | None] = {}
    for _ in range(30):
        params = {
            k: int(rng.integers(len(space.values[k])))
            if k in space.values
            else bool(rng.random() < 0.5)
            for k in space.distributions
        }
        cand, _ = space.candidate(params, "x")
        value = 1.0 - params["lr"] / n_lr  # maximize: the lowest lr is best
        sugg.tell(cand, value)
        seen[cand.hash] = value
    picks = []
    for _ in range(10):
        cand, _ = sugg.ask(seen)
        assert cand.hash not in seen  # never a repeat of a run experiment
        p = space.params_of(cand)["lr"]
        picks.append(p)
        sugg.tell(cand, 1.0 - p / n_lr)
        seen[cand.hash] = 1.0 - p / n_lr
    assert np.mean(picks) < 0.35 * (n_lr - 1), picks  # uniform would average 0.5


def test_suggest_step_trains_a_whole_candidate(tabular):
    env = ResearchEnv(task=tabular, budget=4, instances=[10_000], timeout=5.0)
    try:
        obs, _ = env.reset(seed=0)
        assert env.action_masks()[SUGGEST]
        start = start_candidate(tabular, env.instance.start_config)
        hashes = set()
        for _ in range(4):
            obs, reward, _, trunc, info = env.step(SUGGEST)
            exp = info["experiment"]
            assert exp["kind"] == "suggest" and exp["status"] in ("ok", "timeout")
            for knob in tabular.knobs:  # on the lattice the edits walk
                assert exp["config"][knob.key] in knob.reachable(start.config[knob.key])
            hashes.add(exp["candidate"])
        assert trunc and len(hashes) == 4  # four distinct proposals
        i = OBSERVATION_FEATURES.index("tries_suggest")
        assert obs[i] == 1.0  # 4 tries of a budget of 4
    finally:
        env.close()


def _suggestions(tabular, actions: list[str]) -> list[str]:
    env = ResearchEnv(task=tabular, budget=len(actions), instances=[10_001], timeout=5.0)
    try:
        env.reset(seed=3)
        out = []
        for kind in actions:
            _, _, _, _, info = env.step(KIND_INDEX[kind])
            out.append(info["experiment"]["candidate"])
        return out
    finally:
        env.close()


def test_suggestions_are_deterministic_per_campaign(tabular):
    """Same campaign, same experiments -> same proposals (what resume relies on)."""
    actions = ["lr_up", "suggest", "width_max", "suggest", "suggest"]
    assert _suggestions(tabular, actions) == _suggestions(tabular, actions)


def test_baselines_and_tabu_leave_suggest_alone():
    mask = np.ones(len(VOCABULARY), dtype=bool)
    for name in ("random", "greedy"):
        agent = make_agent(name, seed=0)
        agent.reset(np.zeros(len(OBSERVATION_FEATURES)), {})
        picks = {agent.act(np.zeros(len(OBSERVATION_FEATURES)), mask, {}) for _ in range(300)}
        assert SUGGEST not in picks, name
    tabu = TabuMask()
    tabu.update(SUGGEST, {"experiment": {"kind": "suggest", "kept": False}})
    assert tabu.apply(mask)[SUGGEST]  # each suggest proposes afresh: never tabu
