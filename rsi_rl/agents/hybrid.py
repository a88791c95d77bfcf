"""A meta-learned policy for the first experiments, then TPE warm-started on them.

The learned policy (:class:`~rsi_rl.agents.sb3.PolicyAgent`) improves fastest early: its
meta-learned prior sends it to good regions in a few edits, where TPE still samples
at random. Late in a campaign the policy's one-edit moves from the incumbent stall, while
a model of all experiments so far proposes whole candidates (several knobs and patches at
once). ``policy_tpe`` runs the policy for ``switch_after`` experiments and then Optuna's
TPE, told every experiment of the campaign first: the policy is TPE's initial design, an
adaptive version of meta-learned initialisation of Bayesian optimisation (Feurer et al.,
AAAI 2015). With ``bundle`` > 1 the first phase is :class:`~rsi_rl.agents.bundle.
PolicyBundleAgent` instead (the policy's best few edits per experiment).

``tpe_policy`` is the reverse order: TPE's global search for ``switch_after`` experiments,
then the policy's one-edit moves from TPE's incumbent for the rest (a learned local
refinement of a global search's result).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rsi_rl.actions import is_edit_action
from rsi_rl.agents.base import CandidateAgent
from rsi_rl.agents.bundle import PolicyBundleAgent
from rsi_rl.agents.sb3 import PolicyAgent
from rsi_rl.agents.tpe import TPEAgent, trial_value
from rsi_rl.edits import Candidate, EditSpace
from rsi_rl.errors import ConfigError, EditError


class _PolicyAndTPE(CandidateAgent):
    """A loaded policy and a TPE study that take turns by experiment count."""

    def __init__(
        self,
        path: str | Path,
        switch_after: int,
        deterministic: bool,
        tabu: bool,
        n_startup_trials: int,
        multivariate: bool,
        seed: int | None,
    ):
        super().__init__(seed)
        if int(switch_after) < 0:
            raise ConfigError(f"switch_after must be >= 0 experiments, got {switch_after}")
        self.switch_after = int(switch_after)
        self.policy = PolicyAgent(path, deterministic=deterministic, tabu=tabu, seed=seed)
        self.tpe = TPEAgent(seed=seed, n_startup_trials=n_startup_trials, multivariate=multivariate)


class PolicyTPEAgent(_PolicyAndTPE):
    """The policy for ``switch_after`` experiments, then TPE warm-started on all of them.

    Args:
        path: the policy zip (as ``agent=policy``).
        switch_after: experiments the policy runs before TPE takes over (0 = TPE from the
            start, warm-started on the baseline only; >= budget = the policy alone).
        deterministic: the policy takes its best valid action (as ``agent=policy``).
        tabu: the policy's tabu mask (as ``agent=policy``).
        n_startup_trials: TPE's random trials; the policy's experiments count towards them.
        multivariate: TPE models the knobs jointly.
        bundle: edits per experiment in the policy's phase (1 = the policy's own steps;
            > 1 = ``policy_bundle``'s candidates of that many edits).
        seed: seed of TPE (and of the policy's sampling when not deterministic).
    """

    name = "policy_tpe"

    def __init__(
        self,
        path: str | Path = "policies/tabular_maskable_ppo.zip",
        switch_after: int = 10,
        deterministic: bool = True,
        tabu: bool = True,
        n_startup_trials: int = 10,
        multivariate: bool = False,
        bundle: int = 1,
        seed: int | None = None,
    ):
        super().__init__(
            path, switch_after, deterministic, tabu, n_startup_trials, multivariate, seed
        )
        self.bundler: PolicyBundleAgent | None = None
        if isinstance(bundle, bool) or bundle != 1:  # validates it; shares the loaded policy
            self.bundler = PolicyBundleAgent(path, bundle=bundle, seed=seed, policy=self.policy)
            self.name = "policy_bundle_tpe"  # the preset conf/agent/policy_bundle_tpe.yaml
        self._seen: list[tuple[Candidate, float | None]] = []
        self._parent: Candidate | None = None
        self._proposed: Candidate | None = None  # the bundle of the experiment under way
        self._space: EditSpace | None = None
        self._names: tuple[str, ...] = ()  # the env's action names
        self._switched = False

    def reset(self, obs: np.ndarray, info: dict[str, Any]) -> None:
        self.policy.reset(obs, info)
        if self.bundler is not None:
            self.bundler.reset(obs, info)
        self.tpe.reset(obs, info)
        self._seen = []
        self._parent = None
        self._proposed = None
        self._switched = False

    def proposes(self, env: Any) -> bool:
        if env.experiments_used < self.switch_after:
            self._parent, self._space = env.incumbent, env.space  # the edit's parent
            self._names = env.action_names
            return self.bundler is not None  # a bundle is a whole candidate
        if not self._switched:
            self._switched = True
            self.tpe.warm_start(env, self._seen)
        return True

    def propose(self, env: Any) -> tuple[Candidate, str]:
        if not self._switched and self.bundler is not None:
            self._proposed, description = self.bundler.propose(env)
            return self._proposed, description
        return self.tpe.propose(env)

    def _act(self, obs: np.ndarray, mask: np.ndarray, info: dict[str, Any]) -> int:
        return self.policy.act(obs, mask, info)

    def observe(self, action: int, reward: float, obs: np.ndarray, info: dict[str, Any]) -> None:
        if self._switched:
            self.tpe.observe(action, reward, obs, info)
            return
        exp = info.get("experiment") or {}
        if self.bundler is not None:
            self.bundler.observe(action, reward, obs, info)
            if self._proposed is not None and exp.get("seed") is not None:
                self._seen.append((self._proposed, trial_value(exp)))
            self._proposed = None
            return
        self.policy.observe(action, reward, obs, info)
        space, parent = self._space, self._parent
        if space is None or parent is None or exp.get("seed") is None:
            return  # no experiment
        if not is_edit_action(action) or not self._names[action]:
            return  # a rerun on a fresh seed tells TPE nothing new; a proposal is no edit
        try:
            child, _ = space.apply(parent, self._names[action])
        except EditError:
            return
        self._seen.append((child, trial_value(exp)))


class TPEPolicyAgent(_PolicyAndTPE):
    """TPE for ``switch_after`` experiments, then the policy's edits from TPE's incumbent.

    Args:
        path: the policy zip (as ``agent=policy``).
        switch_after: experiments TPE runs before the policy takes over (0 = the policy
            alone; >= budget = TPE alone).
        deterministic: the policy takes its best valid action (as ``agent=policy``).
        tabu: the policy's tabu mask (as ``agent=policy``).
        n_startup_trials: TPE's random trials.
        multivariate: TPE models the knobs jointly.
        seed: seed of TPE (and of the policy's sampling when not deterministic).
    """

    name = "tpe_policy"

    def __init__(
        self,
        path: str | Path = "policies/tabular_maskable_ppo.zip",
        switch_after: int = 15,
        deterministic: bool = True,
        tabu: bool = True,
        n_startup_trials: int = 10,
        multivariate: bool = False,
        seed: int | None = None,
    ):
        super().__init__(
            path, switch_after, deterministic, tabu, n_startup_trials, multivariate, seed
        )

    def reset(self, obs: np.ndarray, info: dict[str, Any]) -> None:
        self.policy.reset(obs, info)
        self.tpe.reset(obs, info)

    def proposes(self, env: Any) -> bool:
        return bool(env.experiments_used < self.switch_after)

    def propose(self, env: Any) -> tuple[Candidate, str]:
        return self.tpe.propose(env)

    def _act(self, obs: np.ndarray, mask: np.ndarray, info: dict[str, Any]) -> int:
        return self.policy.act(obs, mask, info)

    def observe(self, action: int, reward: float, obs: np.ndarray, info: dict[str, Any]) -> None:
        if action < 0:  # one of TPE's whole candidates
            self.tpe.observe(action, reward, obs, info)
        else:
            self.policy.observe(action, reward, obs, info)


__all__ = ["PolicyTPEAgent", "TPEPolicyAgent"]
