"""SB3 meta-agents: saved policies carry their edit-space version and observation size;
they act greedily with masks (one edit, or their best few bundled in one experiment), and a
policy trained on one task acts on another (transfer), whatever its knobs."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from rsi_rl.actions import (
    MAX_SLOTS,
    META_ACTIONS,
    N_ACTIONS,
    OBSERVATION_FEATURES,
    REEVALUATE,
    SPACE_VERSION,
    STOP,
)
from rsi_rl.agents import CampaignView
from rsi_rl.agents.sb3 import (
    META_ENTRY,
    PolicyAgent,
    PolicyLoadError,
    TabuMask,
    action_scores,
    build_algorithm,
    load_policy,
    read_metadata,
    resolve_policy_path,
    save_policy,
)
from rsi_rl.campaign import Proposal
from rsi_rl.core.edits import apply_edit
from rsi_rl.core.errors import ConfigError, user_message
from rsi_rl.env import ResearchEnv
from rsi_rl.search import run_campaign
from rsi_rl.testing import ToyTask, instant_experiments, instant_runs, untrained_policy

SHIPPED = Path(__file__).resolve().parents[1] / "policies" / "research_policy.zip"

TINY = {"n_steps": 8, "batch_size": 8, "n_epochs": 1, "policy_kwargs": {"net_arch": [8]}}


@pytest.fixture(scope="module", autouse=True)
def _instant():
    """How policies load and act is tested here, not training: every run is a made-up
    score (input_norm and more steps help), and no sandbox starts."""

    def score(cand) -> float:
        return 0.5 + 0.1 * ("input_norm" in cand.toggles) + 1e-4 * cand.config.get("steps", 0)

    with instant_experiments(score):
        yield


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory):
    """A MaskablePPO trained for a few steps on tabular (budget 3)."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from rsi_rl.meta.train import make_env_fn

    vec = DummyVecEnv([make_env_fn("tabular", 3, "train", {})])
    model = build_algorithm(vec, "maskable_ppo", hyperparams=TINY, seed=0)
    model.learn(16)
    vec.close()
    return save_policy(
        model, tmp_path_factory.mktemp("pol") / "policy.zip", "maskable_ppo", task="tabular"
    )


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    """A policy of today's layout with random weights (for how agents act, not how well)."""
    return untrained_policy(tmp_path_factory.mktemp("untrained") / "policy.zip")


def _rewrite_meta(src, dst, drop=(), **changes):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.namelist():
            data = zin.read(item)
            if item == META_ENTRY:
                meta = json.loads(data)
                meta.update(changes)
                for key in drop:
                    meta.pop(key, None)
                data = json.dumps(meta).encode()
            zout.writestr(item, data)


def test_saved_policy_has_metadata(tiny_policy):
    meta = read_metadata(tiny_policy)
    assert meta["space_version"] == SPACE_VERSION and meta["n_actions"] == N_ACTIONS
    assert "vocab_version" not in meta
    assert meta["obs_size"] == len(OBSERVATION_FEATURES)
    assert meta["algo"] == "maskable_ppo" and meta["task"] == "tabular"


def test_mismatching_edit_space_or_obs_size_is_named(tiny_policy, tmp_path):
    other = tmp_path / "space.zip"
    _rewrite_meta(tiny_policy, other, space_version=SPACE_VERSION.replace("slots=", "slots=1"))
    v = SPACE_VERSION.split(":", 1)[0]
    with pytest.raises(
        PolicyLoadError, match=rf"edit space \('{v}:slots=196' vs '{v}:slots=96'\); retrain"
    ):
        PolicyAgent(other)
    bad_obs = tmp_path / "obs.zip"
    _rewrite_meta(tiny_policy, bad_obs, obs_size=7)
    with pytest.raises(PolicyLoadError, match="observations of size 7"):
        PolicyAgent(bad_obs)
    with pytest.raises(PolicyLoadError, match="does not exist"):
        PolicyAgent(tmp_path / "missing.zip")


def test_a_policy_of_the_old_fixed_vocabulary_is_refused_in_one_line(tiny_policy, tmp_path):
    """A policy saved before edit slots (``vocab_version``, no ``space_version``) cannot act
    on today's actions; loading it fails in one line that names the fix."""
    old = tmp_path / "old.zip"
    _rewrite_meta(
        tiny_policy,
        old,
        drop=("space_version",),
        vocab_version="v2:lr_up,lr_down,batch_up",
        n_actions=88,
    )
    with pytest.raises(PolicyLoadError) as info:
        PolicyAgent(old)
    assert (
        user_message(info.value)
        == str(info.value)
        == (
            f"policy {old} was trained with another edit space (the fixed edit vocabulary v2, "
            "not 96 edit slots); retrain it with rsi-rl train"
        )
    )


def test_policy_paths_resolve_from_any_working_directory(tmp_path, monkeypatch):
    """The default ``agent.path`` is relative to the project, not to where rsi-rl runs."""
    monkeypatch.chdir(tmp_path)
    path = resolve_policy_path("policies/research_policy.zip")
    assert path == SHIPPED and path.is_file()
    assert resolve_policy_path("elsewhere/none.zip") == Path("elsewhere/none.zip")


def test_agent_config_error_names_the_cause_in_one_line():
    """Hydra wraps an agent's error in InstantiationException, the reason on a later line;
    the CLI's one-line message is the rsi_rl error underneath."""
    from hydra.utils import instantiate

    from rsi_rl.core.errors import user_message

    with pytest.raises(Exception) as info:
        instantiate({"_target_": "rsi_rl.agents.sb3.PolicyAgent", "path": "missing.zip"})
    assert "does not exist" not in str(info.value).splitlines()[0]
    assert user_message(info.value) == (
        "policy file missing.zip does not exist (set agent.path=...zip)"
    )
    assert user_message(ValueError("\n first line\nsecond")) == "first line"


def test_unknown_algo_is_a_config_error():
    with pytest.raises(ConfigError, match="known: maskable_ppo"):
        build_algorithm(None, "sac")


class _FixedView:
    """What a policy reads of a view, fixed: a zero observation and a given mask."""

    def __init__(self, mask: np.ndarray):
        self.mask = mask
        self.action_names = tuple(f"e{i}" for i in range(MAX_SLOTS)) + META_ACTIONS

    def observation(self) -> np.ndarray:
        return np.zeros(len(OBSERVATION_FEATURES), dtype=np.float32)

    def action_masks(self) -> np.ndarray:
        return self.mask.copy()

    def proposal(self, name: str) -> Proposal:
        return Proposal(name)


def test_policy_acts_greedily_with_masks(policy):
    agent = PolicyAgent(policy, seed=0)
    mask = np.zeros(N_ACTIONS, dtype=bool)
    mask[[5, STOP]] = True
    agent.reset(_FixedView(mask))  # type: ignore[arg-type]
    assert agent.ask(_FixedView(mask), 1) == [Proposal("e5")]  # type: ignore[arg-type]
    full = _FixedView(np.ones_like(mask))
    a1, a2 = agent.ask(full, 1), agent.ask(full, 1)  # type: ignore[arg-type]
    assert a1 == a2 and a1[0].kind != "stop"


def test_a_policy_that_may_stop_ends_the_campaign(policy):
    agent = PolicyAgent(policy, allow_stop=True, tabu=False, seed=0)
    only_stop = np.zeros(N_ACTIONS, dtype=bool)
    only_stop[STOP] = True
    assert agent.ask(_FixedView(only_stop), 1) == []  # type: ignore[arg-type]


def test_tabu_mask_blocks_repeats_until_a_keep():
    m = TabuMask()
    names = _FixedView(np.ones(N_ACTIONS, dtype=bool)).action_names
    full = np.ones(N_ACTIONS, dtype=bool)
    m.update({"kind": "e0", "kept": False})
    assert not m.apply(full, names)[0] and not m.apply(full, names)[STOP]
    m.update({"kind": "reevaluate", "kept": False})
    assert m.apply(full, names)[REEVALUATE]
    m.update({"kind": "e1", "kept": True})
    assert m.apply(full, names)[0]
    only = np.zeros_like(full)
    only[0] = True
    m.update({"kind": "e0", "kept": False})
    assert m.apply(only, names)[REEVALUATE]  # something is always valid
    assert TabuMask(tabu=False).apply(only, names)[0]


def test_transfer_tabular_policy_acts_on_digits(tiny_policy, digits):
    """Trained on tabular, the policy loads and runs a campaign on digits_mlp."""
    env = ResearchEnv(task=digits, budget=1, instances=[0])
    try:
        s = run_campaign(env, PolicyAgent(tiny_policy), seed=0, instance=0, test=False)
        assert s["experiments"] == 1 and s["task"] == "digits_mlp"
        kind = env.log[-1]["kind"]
        assert kind in digits.edit_names() or kind == "reevaluate"
    finally:
        env.close()


def test_policy_acts_on_any_knobs_of_a_task(policy):
    """The policy acts on a task with two knobs of one role and categorical knobs: its
    edits are the task's own, by name, and the tabu mask never repeats a reverted one."""
    env = ResearchEnv(task=ToyTask(), budget=12, instances=[1000])
    instant_runs(env, lambda c: 0.5)  # nothing improves: every edit is reverted
    try:
        run_campaign(env, PolicyAgent(policy), seed=0, test=False)
        kinds = [r["kind"] for r in env.log[1:] if r["kind"] != "reevaluate"]
    finally:
        env.close()
    assert kinds and set(kinds) <= set(env.space.index)
    assert len(kinds) == len(set(kinds))  # no reverted edit twice


# ---------------------------------------------------------------------------- bundles
def _bundle_picks(description: str) -> list[str]:
    return description.removeprefix("policy bundle: ").split(" + ")


def test_bundle_is_the_policys_best_edits_one_per_knob(tabular, policy):
    env = ResearchEnv(task=tabular, budget=3, instances=[10_000])
    try:
        agent = PolicyAgent(policy, bundle=3, seed=0)
        obs, _ = env.reset(seed=0, options={"instance": 10_000})
        view = CampaignView(env, obs)
        agent.reset(view)
        allowed = agent.masker.apply(view.action_masks(), view.action_names)
        ranked = agent.ranked_edits(view, allowed, action_scores(agent.model, obs))
        (proposal,) = agent.ask(view, 1)
        assert proposal.kind == "policy_bundle"
        picked = _bundle_picks(proposal.description)
        assert len(picked) == 3 and len({env.space.get(k).target for k in picked}) == 3
        # the first pick is the policy's own choice; the others follow in score order
        assert picked[0] == ranked[0]
        assert [ranked.index(k) for k in picked] == sorted(ranked.index(k) for k in picked)
        # the candidate is the incumbent with exactly those edits applied in order
        cand = env.incumbent
        for kind in picked:
            cand, _ = apply_edit(tabular, cand, kind)
        assert cand.hash == proposal.candidate.hash
    finally:
        env.close()


def test_a_reverted_bundle_makes_its_best_edit_tabu(policy):
    env = ResearchEnv(task=ToyTask(), budget=12, instances=[1000])
    instant_runs(env, lambda c: 0.5 + 0.1 * (c.config["act"] == "gelu"))
    try:
        summary = run_campaign(env, PolicyAgent(policy, bundle=2, seed=0), seed=0, test=False)
    finally:
        env.close()
    recs = env.log[1:]
    assert summary["experiments"] == 12 and summary["agent"] == "policy"
    tabu: set[str] = set()
    for rec in recs:
        if rec["kind"] == "reevaluate":
            continue
        assert rec["kind"] == "policy_bundle"
        pick = _bundle_picks(rec["description"])
        assert not tabu & set(pick)  # no edit tabu since the last keep is in the bundle
        tabu = set() if rec["kept"] else tabu | {pick[0]}
    assert sum(not r["kept"] for r in recs) > 0  # the rule was exercised


def test_bad_bundle_size(policy):
    with pytest.raises(ConfigError, match="agent.bundle must be a positive number"):
        PolicyAgent(policy, bundle=0)


def test_bundle_sets_one_option_per_categorical_knob(policy):
    """On a task with two learning-rate knobs and categorical knobs, a bundle changes each
    knob at most once (two settings of ``act`` would overwrite each other), and both
    learning-rate knobs can be in one bundle."""
    env = ResearchEnv(task=ToyTask(), budget=8, instances=[1000])
    instant_runs(env, lambda c: 0.5)
    try:
        agent = PolicyAgent(policy, bundle=26, seed=0)  # as many as the edits
        obs, _ = env.reset(seed=0)
        view = CampaignView(env, obs)
        agent.reset(view)
        (proposal,) = agent.ask(view, 1)
    finally:
        env.close()
    groups = [env.space.get(k).target for k in _bundle_picks(proposal.description)]
    assert len(groups) == len(set(groups))
    assert set(groups) == {"lr", "head_lr", "act", "mix", "width", "norm_layer"}
    start = env.log[0]["config"]
    assert sum(proposal.candidate.config[k] != start[k] for k in start) == 5


def _shipped_is_current() -> bool:
    try:
        return "space_version" in read_metadata(SHIPPED)
    except PolicyLoadError:
        return False


@pytest.mark.skipif(
    not _shipped_is_current(),
    reason="the shipped policy predates the open edit space; retrain it with rsi-rl train",
)
def test_shipped_policy_matches_this_edit_space():
    """`make demo` and conf/agent/policy.yaml use the shipped policy: it must load here
    (an edit-space change without retraining it fails this test, not the demo)."""
    model, meta = load_policy(SHIPPED)
    assert meta["space_version"] == SPACE_VERSION
    assert meta["obs_size"] == len(OBSERVATION_FEATURES)
    assert model.action_space.n == N_ACTIONS


def test_a_plain_sb3_save_is_refused_naming_save_policy(tiny_policy, tmp_path):
    """A policy saved from Python with ``model.save`` lacks the metadata; the error names
    the function that writes it, and a model saved with that function loads."""
    model, _ = load_policy(tiny_policy)
    model.save(tmp_path / "plain.zip")
    with pytest.raises(PolicyLoadError) as info:
        PolicyAgent(tmp_path / "plain.zip")
    assert "rsi_rl.agents.sb3.save_policy(model, path)" in str(info.value)
    saved = save_policy(model, tmp_path / "mine.zip")  # the algorithm from the model's class
    assert read_metadata(saved)["algo"] == "maskable_ppo"
    assert PolicyAgent(saved).meta["algo"] == "maskable_ppo"
