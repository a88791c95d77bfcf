"""OpeningAgent: role-level moves map onto a task's own edits (several knobs of a role in
one experiment, categorical options, patches, bundles); moves with nothing to apply cost
nothing; the opening hands over to TPE, which is told its records; the chooser script
picks the best opening from a known formula on meta-train instances."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from rsi_rl.agents import AGENTS, OpeningAgent, SequenceAgent, TPEAgent, make_agent
from rsi_rl.agents.opening import move_edits, parse_move, task_moves
from rsi_rl.confpaths import conf_dir
from rsi_rl.core.edits import Candidate, start_candidate
from rsi_rl.core.errors import ConfigError
from rsi_rl.core.task import Instance
from rsi_rl.env import ResearchEnv
from rsi_rl.search import run_campaign
from rsi_rl.testing import ToyTask, instant_runs

ROOT = Path(__file__).resolve().parents[1]


def _chooser() -> Any:
    spec = importlib.util.spec_from_file_location(
        "choose_opening", ROOT / "scripts/choose_opening.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("choose_opening", module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def toy() -> tuple[ToyTask, Candidate]:
    task = ToyTask()
    return task, start_candidate(task, task.make_instance(1000).start_config)


def _apply(toy, move: str, cand: Candidate | None = None):
    task, start = toy
    return move_edits(task.edit_space(), cand or start, move)


# --------------------------------------------------------------------- descriptors


def test_a_role_with_two_knobs_moves_both_in_one_candidate(toy):
    child, names, _ = _apply(toy, "learning_rate:down")
    assert names == ["lr_down", "head_lr_down"]
    assert child.config["lr"] == child.config["head_lr"] == pytest.approx(0.005)
    assert child.config["act"] == "relu" and child.config["width"] == 16
    child, names, _ = _apply(toy, "lr:max")  # an alias, a jump of each knob
    assert names == ["lr_max", "head_lr_max"]


def test_a_knob_that_cannot_move_is_left_the_others_still_move(toy):
    task, start = toy
    at_min = Candidate({**start.config, "lr": 0.00125}, start.source)  # lr's lowest value
    child, names, _ = _apply(toy, "learning_rate:down", at_min)
    assert names == ["head_lr_down"] and child.config["lr"] == 0.00125


def test_categorical_options_patches_and_bundles(toy):
    assert _apply(toy, "activation:tanh")[1] == ["act:tanh"]
    assert _apply(toy, "activation:relu") is None  # already relu: nothing to apply
    assert _apply(toy, "activation:swish")[1] == ["act:tanh"]  # not an option: first other
    assert _apply(toy, "activation:set")[1] == ["act:tanh"]
    assert _apply(toy, "other:2")[0].config["mix"] == 2  # options compared as text
    assert _apply(toy, "other:False")[0].config["mix"] is False
    child, names, _ = _apply(toy, "+normalization")
    assert names == ["norm_layer"] and "norm_layer" in child.toggles
    assert _apply(toy, "-normalisation") is None  # off already
    assert _apply(toy, "-normalisation", child)[1] == ["norm_layer"]
    child, names, _ = _apply(toy, "width:max+learning_rate:down")
    assert names == ["width_max", "lr_down", "head_lr_down"] and child.config["width"] == 32
    child, names, _ = _apply(toy, "width:max++normalisation")
    assert names == ["width_max", "norm_layer"]
    assert _apply(toy, "width:hi") is None  # 16 is already the lattice point nearest 2/3
    assert _apply(toy, "depth:up") is None  # no knob of that role
    assert _apply(toy, "activation:up") is None  # a categorical knob has no steps


def test_grammar_canonical_spelling_and_errors():
    assert str(parse_move("lr:down + normalization:on")) == "learning_rate:down++normalisation"
    assert str(parse_move("+norm+width:hi")) == "+normalisation+width:hi"
    assert str(parse_move("-regularizer")) == "-regulariser"
    for bad, message in [
        ("", "empty"),
        ("lr", "needs ROLE:ARG"),
        ("speed:up", "not a role"),
        ("lr:down+learning_rate:up", "twice"),
        ("lr:down+", "ends with"),
        ("width:", "nothing after"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_move(bad)
    with pytest.raises(ConfigError, match="agent.moves must be a non-empty list"):
        OpeningAgent([])
    with pytest.raises(ConfigError, match="agent.moves must be a non-empty list"):
        make_agent("opening", seed=0)


def test_task_moves_lists_every_role_level_move(toy):
    moves = task_moves(toy[0].edit_space())
    assert moves[:6] == [f"learning_rate:{a}" for a in ("down", "up", "min", "lo", "hi", "max")]
    assert {"activation:relu", "activation:tanh", "other:2", "other:False", "width:max"} <= set(
        moves
    )
    assert moves[-2:] == ["+normalisation", "-normalisation"]
    assert len(moves) == len(set(moves))


# --------------------------------------------------------------------- in a campaign


def _metric(c: Candidate) -> float:
    """Lower learning rates help, tanh hurts, the norm layer helps."""
    return (
        0.5
        - 0.01 * c.config["lr"] / 0.01
        - 0.05 * (c.config["act"] == "tanh")
        + 0.1 * ("norm_layer" in c.toggles)
    )


def _env(budget: int) -> ResearchEnv:
    env = ResearchEnv(task=ToyTask(), budget=budget, instances=[1000])
    instant_runs(env, _metric)
    return env


def test_the_opening_hands_over_to_tpe_which_is_told_its_records():
    opening = OpeningAgent(["depth:up", "learning_rate:down", "activation:tanh", "+norm"])
    tpe = TPEAgent(n_startup_trials=2)
    agent = SequenceAgent([(opening, 3), (tpe, None)], seed=0)
    env = _env(budget=6)
    try:
        summary = run_campaign(env, agent, seed=0, test=False)
    finally:
        env.close()
    recs = [r for r in env.log if r["split"] == "val"]
    assert summary["experiments"] == 6
    # depth:up has nothing to apply: skipped, not charged; lr is two knobs: one experiment
    assert [r["kind"] for r in recs[1:]] == [
        "opening",
        "act:tanh",
        "norm_layer",
        "tpe",
        "tpe",
        "tpe",
    ]
    assert [r["kept"] for r in recs[1:4]] == [True, False, True]
    # cumulative on the incumbent: the norm layer is added to the halved rates, not to tanh
    assert recs[3]["config"]["lr"] == pytest.approx(0.005) and recs[3]["config"]["act"] == "relu"
    done = [t for t in tpe.study.trials if t.state.name == "COMPLETE"]
    assert len(done) == 1 + 3 + 3  # the start, the opening's three, TPE's own
    for trial, record in zip(done[1:4], recs[1:4], strict=True):
        assert trial.value == pytest.approx(record["metric"])
        assert tpe.space.candidate(trial.params, "check")[0].hash == record["candidate"]
    assert not {r["candidate"] for r in recs[:4]} & {r["candidate"] for r in recs[4:]}


def test_moves_with_nothing_to_apply_or_a_known_result_cost_nothing():
    # width:hi changes nothing on ToyTask; the second tanh is the reverted candidate again
    opening = OpeningAgent(["width:hi", "activation:tanh", "activation:tanh", "depth:up"])
    agent = SequenceAgent([(opening, 3), (make_agent("greedy"), None)], seed=0)
    env = _env(budget=4)
    try:
        run_campaign(env, agent, seed=0, test=False)
    finally:
        env.close()
    kinds = [r["kind"] for r in env.log[1:]]
    assert kinds[0] == "act:tanh" and len(kinds) == 4
    assert agent.stage == 1  # the opening stopped after one experiment; greedy ran three


def test_preset_is_opening_then_tpe():
    assert "opening" in AGENTS
    cfg = OmegaConf.load(conf_dir() / "agent" / "opening_tpe.yaml")
    agent = instantiate(cfg, seed=0)
    assert isinstance(agent, SequenceAgent) and agent.name == "opening_tpe"
    assert [type(a).__name__ for a in agent.agents] == ["OpeningAgent", "TPEAgent"]
    assert [q for _, q in agent.stages] == [3, None]
    opening = agent.agents[0]
    assert isinstance(opening, OpeningAgent) and 1 <= len(opening.moves) <= 3


# --------------------------------------------------------------------- the chooser


class _Landscape(ToyTask):
    """ToyTask with a known truth: the norm layer is worth ``norm``, gelu ``gelu``, and a
    learning rate above its lowest value, 0.00125, costs a little."""

    name = "landscape"
    meta_train_seeds = range(0, 40)
    norm, gelu = 0.3, 0.05

    def make_instance(self, seed: int) -> Instance:
        inst = super().make_instance(seed)
        inst.start_config["lr"] = 0.01 if seed % 2 else 0.02
        return inst

    def true_value(self, instance: Instance, cand: Candidate) -> float:
        c = cand.config
        return (
            0.5
            + self.norm * ("norm_layer" in cand.toggles)
            + self.gelu * (c["act"] == "gelu")
            - 0.01 * abs(math.log2(c["lr"] / 0.00125))
        )

    def truth_summary(self, instance: Instance) -> dict[str, float]:
        return {"optimum": 0.85, "median": 0.45, "worst": 0.3, "start": 0.48}


class _GeluLandscape(_Landscape):
    name = "gelu_landscape"
    norm, gelu = 0.0, 0.6


def test_chooser_picks_the_obviously_best_moves():
    chooser = _chooser()
    out = chooser.choose_opening({"landscape": _Landscape()}, instances=10, length=3, bundle_top=0)
    assert out["moves"][:2] == ["+normalisation", "activation:gelu"]
    assert out["moves"][2] == "learning_rate:min"  # the best rate is the lowest
    step = out["steps"][0]
    assert step["objective"] == pytest.approx(0.3 / 0.4)  # regret reduction of the norm layer
    assert step["per_task"]["landscape"]["kept"] == 1.0
    assert out["yaml"] == 'moves: ["+normalisation", "activation:gelu", "learning_rate:min"]'
    # with bundles, the two best moves go together in one experiment
    out = chooser.choose_opening({"landscape": _Landscape()}, instances=10, length=1)
    assert out["moves"] == ["activation:gelu++normalisation"]
    assert out["steps"][0]["objective"] == pytest.approx(0.35 / 0.4)


def test_chooser_weights_tasks_equally_and_leaves_out_the_excluded(monkeypatch, tmp_path):
    chooser = _chooser()
    import rsi_rl.core.registry

    fakes = {"a": _Landscape, "b": _GeluLandscape}
    monkeypatch.setattr(rsi_rl.core.registry, "make_task", lambda name: fakes[name]())
    args = ["--tasks", "a", "b", "--instances", "6", "--length", "1", "--bundle-top", "0"]
    both = chooser.main([*args, "--out", str(tmp_path / "all.json")])
    assert both["moves"] == ["activation:gelu"]  # (0.05 + 0.6) / 2 beats 0.3 / 2
    assert json.loads((tmp_path / "all.json").read_text())["moves"] == ["activation:gelu"]
    held_out = chooser.main([*args, "--exclude", "b"])
    assert held_out["moves"] == ["+normalisation"] and held_out["tasks"] == ["a"]
    assert held_out["excluded"] == ["b"]
    assert chooser.spread_seeds(range(0, 4000), 4) == [0, 1000, 2000, 3000]
