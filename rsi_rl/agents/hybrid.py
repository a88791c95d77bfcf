"""A meta-learned policy for the first experiments, then TPE warm-started on them.

The learned policy (:class:`~rsi_rl.agents.sb3.PolicyAgent`) improves fastest early: its
meta-learned prior sends it to good regions in a few edits, where TPE still samples
at random. Late in a campaign the policy's one-edit moves from the incumbent stall, while
a model of all experiments so far proposes whole candidates (several knobs and patches at
once). ``policy_tpe`` runs the policy for ``switch_after`` experiments and then Optuna's
TPE, told every experiment of the campaign first: the policy is TPE's initial design, an
adaptive version of meta-learned initialisation of Bayesian optimisation (Feurer et al.,
AAAI 2015).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from rsi_rl.agents.base import CandidateAgent
from rsi_rl.agents.sb3 import PolicyAgent
from rsi_rl.agents.tpe import TPEAgent
from rsi_rl.edits import Candidate, apply_edit
from rsi_rl.errors import ConfigError, EditError
from rsi_rl.vocab import META_KINDS, VOCABULARY


class PolicyTPEAgent(CandidateAgent):
    """The policy for ``switch_after`` experiments, then TPE warm-started on all of them.

    Args:
        path: the policy zip (as ``agent=policy``).
        switch_after: experiments the policy runs before TPE takes over (0 = TPE from the
            start, warm-started on the baseline only; >= budget = the policy alone).
        deterministic: the policy takes its best valid action (as ``agent=policy``).
        tabu: the policy's tabu mask (as ``agent=policy``).
        n_startup_trials: TPE's random trials; the policy's experiments count towards them.
        multivariate: TPE models the knobs jointly.
        seed: seed of TPE (and of the policy's sampling when not deterministic).
    """

    name: ClassVar[str] = "policy_tpe"

    def __init__(
        self,
        path: str | Path = "policies/tabular_maskable_ppo.zip",
        switch_after: int = 10,
        deterministic: bool = True,
        tabu: bool = True,
        n_startup_trials: int = 10,
        multivariate: bool = False,
        seed: int | None = None,
    ):
        super().__init__(seed)
        if int(switch_after) < 0:
            raise ConfigError(f"switch_after must be >= 0 experiments, got {switch_after}")
        self.switch_after = int(switch_after)
        self.policy = PolicyAgent(path, deterministic=deterministic, tabu=tabu, seed=seed)
        self.tpe = TPEAgent(seed=seed, n_startup_trials=n_startup_trials, multivariate=multivariate)
        self._seen: list[tuple[Candidate, float | None]] = []
        self._parent: Candidate | None = None
        self._task: Any = None
        self._switched = False

    def reset(self, obs: np.ndarray, info: dict[str, Any]) -> None:
        self.policy.reset(obs, info)
        self.tpe.reset(obs, info)
        self._seen = []
        self._parent = None
        self._switched = False

    def proposes(self, env: Any) -> bool:
        if env.experiments_used < self.switch_after:
            self._parent, self._task = env.incumbent, env.task  # the edit's parent
            return False
        if not self._switched:
            self._switched = True
            self.tpe.warm_start(env, self._seen)
        return True

    def propose(self, env: Any) -> tuple[Candidate, str]:
        return self.tpe.propose(env)

    def _act(self, obs: np.ndarray, mask: np.ndarray, info: dict[str, Any]) -> int:
        return self.policy.act(obs, mask, info)

    def observe(self, action: int, reward: float, obs: np.ndarray, info: dict[str, Any]) -> None:
        if self._switched:
            self.tpe.observe(action, reward, obs, info)
            return
        self.policy.observe(action, reward, obs, info)
        exp = info.get("experiment") or {}
        kind = VOCABULARY[action] if 0 <= action < len(VOCABULARY) else None
        if kind is None or kind in META_KINDS or self._parent is None or exp.get("seed") is None:
            return  # a rerun on a fresh seed (or no experiment) tells TPE nothing new
        try:
            child, _ = apply_edit(self._task, self._parent, kind)
        except EditError:
            return
        ok = exp.get("status") == "ok" and exp.get("metric") is not None
        self._seen.append((child, float(exp["metric"]) if ok else None))


__all__ = ["PolicyTPEAgent"]
