"""The learned policy's best few edits, applied together in one experiment.

A policy acts one edit per experiment: its meta-learned ranking of edits is good, but
spending one experiment per edit stalls where several knobs and patches must change
together. ``policy_bundle`` reads the same policy's scores over the valid edits of the
incumbent and builds one candidate from its ``bundle`` best, at most one per knob or patch
(a jump and a move of the same knob, or two settings of a categorical knob, would
overwrite each other), applied in order of score. It runs as one experiment through
``env.try_candidate`` under the same budget and keep-or-revert rule as every agent. The
best-scored edit of a reverted bundle is tabu until something is kept (as the policy's own
reverted edit is), so the next bundle slides one edit down the ranking. With ``bundle=1``
each proposal is the edit ``agent=policy`` would pick from the same observation; the
campaign can still differ from the policy's, because a whole candidate is not counted in
the env's per-edit history, which is part of the observation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rsi_rl.actions import is_edit_action
from rsi_rl.agents.base import CandidateAgent
from rsi_rl.agents.sb3 import PolicyAgent, action_scores
from rsi_rl.edits import Candidate, EditSpace
from rsi_rl.errors import ConfigError, EditError


def edit_group(space: EditSpace, name: str) -> str:
    """The part of a candidate edit ``name`` changes: its knob's key or its patch's name."""
    return space.get(name).target


class PolicyBundleAgent(CandidateAgent):
    """The policy's ``bundle`` best-scoring valid edits of the incumbent as one candidate.

    Args:
        path: the policy zip (as ``agent=policy``).
        bundle: edits per experiment (1 = the policy's own best edit each time).
        seed: unused by the deterministic ranking; kept for the agent interface.
        policy: a loaded :class:`PolicyAgent` to rank with instead of loading ``path``
            (``policy_tpe bundle=...`` shares its own).
    """

    name = "policy_bundle"

    def __init__(
        self,
        path: str | Path = "policies/tabular_maskable_ppo.zip",
        bundle: int = 3,
        seed: int | None = None,
        policy: PolicyAgent | None = None,
    ):
        super().__init__(seed)
        if isinstance(bundle, bool) or not isinstance(bundle, int) or bundle < 1:
            raise ConfigError(f"bundle must be a positive number of edits, got {bundle!r}")
        self.bundle = bundle
        # ``policy``: an already loaded policy to rank with (its masker is this agent's)
        self.policy = policy or PolicyAgent(path, deterministic=True, tabu=True, seed=seed)
        self._obs: np.ndarray | None = None
        self._last: list[int] = []

    def reset(self, obs: np.ndarray, info: dict[str, Any]) -> None:
        self.policy.masker.reset()
        self._obs, self._last = obs, []

    def ranked_edits(self, env: Any) -> list[str]:
        """Names of the incumbent's valid edits (tabu removed), best policy score first."""
        assert self._obs is not None, "reset() first"
        allowed = self.policy.masker.apply(env.action_masks())
        scores = action_scores(self.policy.model, self._obs)
        order = np.argsort(-scores, kind="stable")
        return [env.action_names[i] for i in order if allowed[i] and is_edit_action(i)]

    def propose(self, env: Any) -> tuple[Candidate, str]:
        space: EditSpace = env.space
        child: Candidate = env.incumbent
        picked: list[str] = []
        groups: set[str] = set()
        for name in self.ranked_edits(env):
            if len(picked) == self.bundle:
                break
            group = edit_group(space, name)
            if group in groups:
                continue
            try:
                nxt, _ = space.apply(child, name)
            except EditError:  # does not compose with the edits already in the bundle
                continue
            if nxt.hash == child.hash:
                continue
            child, groups = nxt, groups | {group}
            picked.append(name)
        self._last = [env.action_index(name) for name in picked]
        if not picked:  # every edit is tabu: rerun the incumbent (a repeat, charged)
            return env.incumbent, "policy bundle: no untried edit"
        return child, "policy bundle: " + " + ".join(picked)

    def observe(self, action: int, reward: float, obs: np.ndarray, info: dict[str, Any]) -> None:
        self._obs = obs
        if self._last:  # the policy's own tabu rule, on the bundle's best edit
            self.policy.masker.update(self._last[0], info)


__all__ = ["PolicyBundleAgent", "edit_group"]
