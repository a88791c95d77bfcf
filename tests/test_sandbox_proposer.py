"""The ``propose`` action: an external command's edit, trained like any other."""

from __future__ import annotations

import json
import sys

import pytest

from rsi_rl.actions import PROPOSE
from rsi_rl.core.edits import start_candidate
from rsi_rl.env import ResearchEnv
from rsi_rl.proposer import Proposer, ProposerError, apply_proposal, parse_proposal
from rsi_rl.proposers import sample_patches
from rsi_rl.testing import instant_experiments

SAMPLE = [sys.executable, "-m", "rsi_rl.proposers.sample_patches"]


def test_parse_and_apply(digits):
    cand = start_candidate(digits, digits.make_instance(0).start_config)
    with pytest.raises(ProposerError, match="printed nothing"):
        parse_proposal("  ")
    with pytest.raises(ProposerError, match="invalid JSON"):
        parse_proposal("{nope")
    p = parse_proposal(json.dumps({"config": {"lr": 0.002}, "description": "faster"}))
    child, desc = apply_proposal(digits, cand, p)
    assert child.config["lr"] == 0.002 and "faster" in desc
    with pytest.raises(ProposerError, match="outside"):
        apply_proposal(digits, cand, parse_proposal(json.dumps({"config": {"lr": 5.0}})))
    with pytest.raises(ProposerError, match="changes nothing"):
        apply_proposal(
            digits, cand, parse_proposal(json.dumps({"config": {"lr": cand.config["lr"]}}))
        )


def test_sample_proposer_picks_an_applicable_patch(digits):
    p = Proposer(SAMPLE, timeout=30)
    cand = start_candidate(digits, digits.make_instance(0).start_config)
    req = p.request(digits, cand, [], seed=1)
    child, desc, seconds = p.propose(digits, cand, req)
    assert child.source != cand.source and desc.startswith("proposal:") and seconds > 0
    assert sample_patches.propose(req)["diff"]


def test_env_masks_propose_without_a_proposer_and_runs_it_with_one(tmp_path):
    """Proposals are asked, applied and recorded like any edit (training is a formula)."""
    with instant_experiments(lambda cand: 0.5):
        cmd = [sys.executable, "-c", "import sys; sys.exit(4)"]
        env = ResearchEnv("tabular", budget=6, instances=10_000, run_dir=tmp_path / "run")
        try:
            env.reset(seed=0)
            assert not env.action_masks()[PROPOSE]
        finally:
            env.close()
        # sample_patches has no patches for tabular: an offline proposer over the digits patches
        env = ResearchEnv(
            "digits_mlp", budget=6, instances=0, proposer={"command": SAMPLE, "timeout": 30}
        )
        try:
            env.reset(seed=0)
            assert env.action_masks()[PROPOSE]
            _, reward, _, _, info = env.step(PROPOSE)
            exp = info["experiment"]
            assert exp["kind"] == "propose" and exp["status"] == "ok" and exp["diff"]
            assert exp["description"].startswith("proposal:")
            # failures become invalid experiments with a message; the campaign goes on
            for command, timeout, needle in (
                (cmd, 30, "exited with status 4"),
                ([sys.executable, "-c", "import time; time.sleep(30)"], 1, "timed out"),
                (
                    [
                        sys.executable,
                        "-c",
                        "print('--- a/train.py\\n+++ b/train.py\\n@@ -1 +1 @@\\n-zz\\n+yy')",
                    ],
                    30,
                    "does not apply",
                ),
            ):
                env.proposer = Proposer(command, timeout=timeout)
                _, reward, _, _, info = env.step(PROPOSE)
                assert info["experiment"]["status"] == "invalid", info["experiment"]
                assert needle in info["experiment"]["message"] and reward <= 0
            assert env.status_counts["invalid"] == 3 and env.experiments_used == 4
        finally:
            env.close()


def test_request_lists_knobs_by_key_with_role_and_scale(digits):
    cand = start_candidate(digits, digits.make_instance(0).start_config)
    knobs = Proposer(SAMPLE).request(digits, cand, [], seed=1)["knobs"]
    assert list(knobs) == [k.key for k in digits.knobs]
    assert knobs["lr"] == {
        "role": "learning_rate",
        "scale": "log",
        "low": 1e-5,
        "high": 0.3,
        "choices": None,
    }
    assert knobs["batch_size"]["scale"] == "choice" and knobs["batch_size"]["choices"][0] == 16
    json.dumps(knobs)  # the request is JSON


def test_sampled_config_move_doubles_or_halves_a_numeric_knob(digits):
    cand = start_candidate(digits, digits.make_instance(0).start_config)
    req = Proposer(SAMPLE).request(digits, cand, [], seed=1)
    for step in range(8):
        move = sample_patches.propose({**req, "step": step}, config_move=1.0)["config"]
        ((key, value),) = move.items()
        knob = digits.knob(key)
        assert not knob.choices and value in (2 * cand.config[key], cand.config[key] / 2)
        assert knob.low <= value <= knob.high


def test_proposed_option_of_a_categorical_knob_must_be_one_of_its_choices(digits):
    from rsi_rl.core.knob import Knob

    class WithActivation(type(digits)):
        knobs = (
            *type(digits).knobs,
            Knob("act", "activation", "categorical", choices=("relu", "gelu")),
        )

    task = WithActivation()
    cand = start_candidate(task, {**task.make_instance(0).start_config, "act": "relu"})
    child, _ = apply_proposal(task, cand, parse_proposal(json.dumps({"config": {"act": "gelu"}})))
    assert child.config["act"] == "gelu"
    with pytest.raises(ProposerError, match=r"config act='swish' is not one of \['relu', 'gelu'\]"):
        apply_proposal(task, cand, parse_proposal(json.dumps({"config": {"act": "swish"}})))
