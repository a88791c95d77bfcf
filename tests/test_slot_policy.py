"""The slot policy scores every edit slot with one shared network (permuting the slots
permutes its logits, the value stays), gives masked and empty slots no probability, trains,
saves, loads and acts; the slots' evidence features read the campaign's evaluated
candidates as a model-based search would."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch as th
from omegaconf import OmegaConf

from rsi_rl.actions import (
    EVIDENCE_FEATURES,
    GLOBAL_FEATURES,
    MAX_SLOTS,
    OBSERVATION_FEATURES,
    REEVALUATE,
    SLOT_FEATURES,
)
from rsi_rl.agents.sb3 import PolicyAgent, build_algorithm, load_policy, save_policy
from rsi_rl.agents.slot_policy import SlotPolicy, split_observation
from rsi_rl.core.edits import EditSpace, start_candidate
from rsi_rl.core.errors import ConfigError
from rsi_rl.env import ResearchEnv
from rsi_rl.observation import Evidence
from rsi_rl.search import run_campaign
from rsi_rl.testing import ToyTask, instant_runs

CONF = Path(__file__).resolve().parents[1] / "conf" / "trainer" / "maskable_ppo.yaml"
TINY = {"n_steps": 64, "batch_size": 32, "n_epochs": 2, "learning_rate": 1e-3}


def _score(cand) -> float:
    """Higher with lr near 0.04 and with the patch on: something to learn."""
    return -abs(np.log10(cand.config["lr"]) + 1.4) + 0.2 * ("norm_layer" in cand.toggles)


@pytest.fixture
def env():
    env = ResearchEnv(task=ToyTask(), budget=6, instances=[1000])
    instant_runs(env, _score)
    yield env
    env.close()


def _model(env, **policy_kwargs):
    kwargs = {"net_arch": [16], "global_dim": 8, **policy_kwargs}
    return build_algorithm(
        env, "maskable_ppo", "SlotPolicy", {**TINY, "policy_kwargs": kwargs}, seed=0
    )


def _played(env) -> np.ndarray:
    """An observation a few experiments into a campaign (histories and evidence not 0)."""
    env.reset(seed=0)
    for name in ("lr_up", "norm_layer", "act:tanh"):
        obs, *_ = env.step(env.action_index(name))
    return obs


def _permuted(obs: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """``obs`` with slot ``i``'s row taken from slot ``perm[i]``."""
    glob, slots, meta = split_observation(th.as_tensor(obs[None]))
    return th.cat([glob, slots[:, perm].reshape(1, -1), meta], dim=1)[0].numpy()


def test_the_observation_splits_back_into_its_parts(env):
    obs = th.as_tensor(_played(env)[None])
    glob, slots, meta = split_observation(obs)
    assert glob.shape == (1, len(GLOBAL_FEATURES)) and meta.shape == (1, 3)
    assert slots.shape == (1, MAX_SLOTS, len(SLOT_FEATURES))
    i = env.action_index("lr_down")
    flat = OBSERVATION_FEATURES.index(f"slot{i}_position_before")
    assert slots[0, i, SLOT_FEATURES.index("position_before")] == obs[0, flat]


def test_permuting_the_slots_permutes_the_logits_and_keeps_the_value(env):
    """One network scores every slot: the order of a task's edits does not matter."""
    model = _model(env, ortho_init=False)  # larger logits than the 0.01-gain heads
    policy = model.policy
    obs = _played(env)
    perm = np.random.default_rng(0).permutation(MAX_SLOTS)  # empty slots move too
    both = th.as_tensor(np.stack([obs, _permuted(obs, perm)]))
    with th.no_grad():
        logits = policy.mlp_extractor.forward_actor(both)
        values = policy.predict_values(both)
    slots, moved = logits[0, :MAX_SLOTS], logits[1, :MAX_SLOTS]
    assert th.allclose(moved, slots[perm], atol=1e-5)
    assert th.allclose(logits[1, MAX_SLOTS:], logits[0, MAX_SLOTS:], atol=1e-5)
    assert th.allclose(values[1], values[0], atol=1e-5)
    usable = slots > -1e7  # present and valid
    assert int(usable.sum()) == int(env.action_masks()[: len(env.space)].sum())
    assert slots[usable].std() > 1e-4  # the slots are told apart, not scored alike


def test_masked_and_empty_slots_get_no_probability(env):
    policy = _model(env).policy
    obs = _played(env)
    mask = env.action_masks()
    obs_t, _ = policy.obs_to_tensor(obs)
    with th.no_grad():
        probs = policy.get_distribution(obs_t, mask[None]).distribution.probs[0].numpy()
        free = policy.get_distribution(obs_t).distribution.probs[0].numpy()
    assert probs[~mask].max() == 0.0 and probs[mask].sum() == pytest.approx(1.0, abs=1e-5)
    assert free[len(env.space) : MAX_SLOTS].max() < 1e-12  # empty slots, even unmasked
    for _ in range(20):
        action, _ = policy.predict(obs, action_masks=mask)
        assert mask[int(action)]


def test_the_policy_masks_itself_from_its_observation(env):
    """Without the env's mask, the policy's own distribution puts no mass on the slots the
    observation marks invalid (here a tabu edit, tried and reverted) nor on masked
    meta-actions, so ``predict`` without ``action_masks`` still picks valid actions."""
    policy = _model(env).policy
    obs = _played(env)
    _, slots, meta = split_observation(th.as_tensor(obs[None]))
    valid = slots[0, :, SLOT_FEATURES.index("valid")].numpy() > 0.5
    allowed = np.concatenate([valid, meta[0].numpy() > 0.5])
    env_mask = env.action_masks()
    assert (~valid[: len(env.space)]).any()  # something present but masked
    assert np.array_equal(allowed[: len(env.space)], env_mask[: len(env.space)])
    obs_t, _ = policy.obs_to_tensor(obs)
    with th.no_grad():
        free = policy.get_distribution(obs_t).distribution.probs[0].numpy()
    assert free[~allowed].sum() < 1e-6 and free[allowed].sum() == pytest.approx(1.0, abs=1e-5)
    for _ in range(20):
        action, _ = policy.predict(obs, deterministic=False)
        assert allowed[int(action)]


def test_a_maskable_ppo_with_the_slot_policy_trains_saves_loads_and_acts(env, tmp_path):
    model = _model(env)
    assert isinstance(model.policy, SlotPolicy)
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(256)
    assert any(not th.equal(a, b) for a, b in zip(before, model.policy.parameters(), strict=True))
    path = save_policy(model, tmp_path / "slot.zip", task="toy")
    loaded, meta = load_policy(path)
    assert isinstance(loaded.policy, SlotPolicy) and meta["algo"] == "maskable_ppo"
    obs = _played(env)
    obs_t = th.as_tensor(obs[None])
    with th.no_grad():
        a = model.policy.evaluate_actions(obs_t, th.tensor([REEVALUATE]))
        b = loaded.policy.evaluate_actions(obs_t, th.tensor([REEVALUATE]))
    for x, y in zip(a, b, strict=True):  # value, log-prob, entropy
        assert x is not None and y is not None and th.allclose(x, y)
    summary = run_campaign(env, PolicyAgent(path), seed=0, test=False)
    assert summary["experiments"] == env.budget
    kinds = {r["kind"] for r in env.log[1:]}
    assert kinds <= set(env.space.index) | {"reevaluate"} and "stop" not in kinds


def test_the_trainer_config_builds_the_slot_policy_and_mlp_still_works(env):
    cfg = OmegaConf.load(CONF)
    assert cfg.policy == "SlotPolicy"
    hyper = {**dict(cfg.hyperparams), **TINY}
    model = build_algorithm(env, cfg.algo, cfg.policy, hyper, seed=0)
    assert isinstance(model.policy, SlotPolicy)
    assert isinstance(build_algorithm(env, "maskable_ppo", "slot", TINY).policy, SlotPolicy)
    mlp = build_algorithm(env, "maskable_ppo", "MlpPolicy", TINY)
    assert not isinstance(mlp.policy, SlotPolicy)
    with pytest.raises(ConfigError, match="maskable_ppo"):
        build_algorithm(env, "dqn", "SlotPolicy")
    with pytest.raises(ValueError, match="net_arch"):
        _model(env, net_arch={"qf": [8]})


# ---------------------------------------------------------------- evidence features


def _evidence_row(evidence, space, incumbent, progress, name) -> dict[str, float]:
    children = space.children(incumbent)
    out = evidence.slot_features(space, incumbent, children, progress)[space.index[name]]
    return dict(zip(EVIDENCE_FEATURES, out, strict=True))


def test_evidence_features_read_a_hand_made_history():
    """Start at lr=0.01 (progress 0); lr=0.02 was better (+0.3), lr=0.005 worse (-0.3):
    the child that repeats the good move is predicted up, the other down."""
    space = EditSpace(ToyTask())
    start = start_candidate(space.task, ToyTask().make_instance(1000).start_config)
    up, down = space.apply(start, "lr_up")[0], space.apply(start, "lr_down")[0]
    evidence = Evidence(space)
    row = _evidence_row(evidence, space, start, 0.0, "lr_up")
    assert row == dict.fromkeys(EVIDENCE_FEATURES, 0.0)  # nothing evaluated yet
    evidence.add(start, 0.0)
    evidence.add(up, 0.3)
    evidence.add(down, -0.3)
    evidence.add(space.apply(start, "act:gelu")[0], None)  # crashed
    good = _evidence_row(evidence, space, start, 0.0, "lr_up")
    bad = _evidence_row(evidence, space, start, 0.0, "lr_down")
    assert good["model_delta"] > 0.05 > -0.05 > bad["model_delta"]
    assert good["good_ratio"] > 0.2 and bad["good_ratio"] < 0
    assert good["child_seen"] == bad["child_seen"] == 1.0
    far = _evidence_row(evidence, space, start, 0.0, "lr_max")  # lr=0.1: far from all
    assert far["child_seen"] == 0.0 and far["model_support"] < good["model_support"]
    assert abs(far["model_delta"]) < abs(good["model_delta"])
    crashed = _evidence_row(evidence, space, start, 0.0, "act:gelu")
    assert crashed["good_ratio"] < 0 and crashed["child_seen"] == 1.0
    # from the better incumbent, going back down is predicted to lose
    back = _evidence_row(evidence, space, up, 0.3, "lr_down")
    assert back["model_delta"] < -0.05
    every = evidence.slot_features(space, up, space.children(up), 0.3)
    assert np.abs(every).max() <= 1.0


def test_the_env_feeds_its_evaluations_to_the_evidence(env):
    obs = _played(env)
    assert len(env.evidence) == 4  # the baseline and three experiments
    env.step(REEVALUATE)  # another seed: not evidence of the evaluation seed
    assert len(env.evidence) == 4
    obs = env.observation()
    assert obs.min() >= -1.0 and obs.max() <= 1.0
    i = env.action_index("lr_up")
    seen = obs[OBSERVATION_FEATURES.index(f"slot{i}_child_seen")]
    child = env.child_of(i)
    assert seen == (1.0 if child is not None and env.evidence.seen(child) else 0.0)
    assert obs[OBSERVATION_FEATURES.index(f"slot{MAX_SLOTS - 1}_model_support")] == 0.0
