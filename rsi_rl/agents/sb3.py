"""Stable-Baselines3 meta-agents: build them from Hydra configs, save and load policies.

* :func:`build_algorithm` makes a MaskablePPO (sb3-contrib), PPO, A2C or DQN model from
  an ``agent=<algo>`` config (``conf/agent/*.yaml``, instantiated with ``_partial_``).
* :func:`save_policy` writes ``policy.zip`` with an ``rsi_rl.json`` entry inside: the
  edit-space version (:data:`rsi_rl.actions.SPACE_VERSION`: edit slots, observation
  features, meta-actions), observation size and feature names it was trained with, so
  that :func:`load_policy` refuses a policy that cannot act on this version of the env and
  says which of the two differs.
* :class:`PolicyAgent` (``agent=policy agent.path=...zip``) acts with a saved policy:
  the highest-scoring *valid* action (masked logits or Q-values), deterministically by
  default; ``stop`` is masked unless ``allow_stop``. With ``bundle`` > 1 it applies its
  best few edits together as one experiment.

Example:
    >>> agent = PolicyAgent("policies/research_policy.zip")  # doctest: +SKIP
    >>> agent.reset(view)  # doctest: +SKIP
    >>> agent.ask(view, 1)  # doctest: +SKIP
    [Proposal(kind='input_norm', ...)]
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rsi_rl.actions import (
    MAX_SLOTS,
    N_ACTIONS,
    OBSERVATION_FEATURES,
    REEVALUATE,
    SPACE_VERSION,
    STOP,
    is_edit_action,
)
from rsi_rl.agents.base import Agent, Record, Tabu
from rsi_rl.agents.view import CampaignView
from rsi_rl.campaign import Proposal
from rsi_rl.core.edits import EditSpace
from rsi_rl.core.errors import ConfigError, EditError, RsiRlError

#: name of the metadata entry inside a saved policy zip
META_ENTRY = "rsi_rl.json"


class PolicyLoadError(RsiRlError, ValueError):
    """A saved policy cannot be used: missing file, other edit space or observation size."""


def algorithm_classes() -> dict[str, type[Any]]:
    """Algorithm name -> SB3 class (imports SB3 lazily)."""
    from sb3_contrib import MaskablePPO
    from stable_baselines3 import A2C, DQN, PPO

    return {"maskable_ppo": MaskablePPO, "ppo": PPO, "a2c": A2C, "dqn": DQN}


#: algorithms that sample only valid actions during training
MASKED_ALGOS: tuple[str, ...] = ("maskable_ppo",)

#: the names of :class:`~rsi_rl.agents.slot_policy.SlotPolicy` as an ``agent.policy``
SLOT_POLICY_NAMES: tuple[str, ...] = ("SlotPolicy", "slot")


def policy_class(policy: str | type[Any], algo: str = "maskable_ppo") -> str | type[Any]:
    """What SB3's constructor takes for ``policy``: the slot policy's class
    (:class:`rsi_rl.agents.slot_policy.SlotPolicy`) for ``SlotPolicy`` or ``slot``,
    anything else as given (an SB3 alias such as ``MlpPolicy``, or a class).

    Raises:
        ConfigError: the slot policy asked of another algorithm than ``maskable_ppo``.
    """
    if not isinstance(policy, str) or policy not in SLOT_POLICY_NAMES:
        return policy
    if algo != "maskable_ppo":
        raise ConfigError(
            f"policy {policy!r} is a MaskablePPO policy: use it with agent.algo=maskable_ppo, "
            f"or MlpPolicy with {algo}"
        )
    from rsi_rl.agents.slot_policy import SlotPolicy

    return SlotPolicy


def build_algorithm(
    env: Any,
    algo: str = "maskable_ppo",
    policy: str = "MlpPolicy",
    hyperparams: dict[str, Any] | None = None,
    seed: int | None = None,
    tensorboard_log: str | None = None,
    verbose: int = 0,
) -> Any:
    """Build an SB3 model of ``algo`` on ``env`` (a VecEnv of the research env).

    Args:
        env: the (vectorised) environment.
        algo: ``maskable_ppo``, ``ppo``, ``a2c`` or ``dqn``.
        policy: SB3 policy alias (``MlpPolicy``) or ``SlotPolicy`` (also ``slot``: one
            shared scorer for every edit slot, :mod:`rsi_rl.agents.slot_policy`).
        hyperparams: constructor keyword arguments of the SB3 class (``n_steps``,
            ``learning_rate``, ``policy_kwargs``, ...).
        seed: seed of the model's randomness.
        tensorboard_log: folder of TensorBoard logs, or None.
        verbose: SB3 verbosity.

    Raises:
        ConfigError: unknown algorithm or a hyperparameter the class does not take.
    """
    classes = algorithm_classes()
    if algo not in classes:
        raise ConfigError(f"unknown agent.algo {algo!r}; known: {', '.join(classes)}")
    kwargs = _plain(hyperparams or {})
    try:
        return classes[algo](
            policy_class(policy, algo),
            env,
            seed=seed,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            **kwargs,
        )
    except TypeError as exc:
        raise ConfigError(f"agent hyperparameters for {algo}: {exc}") from None


def _plain(obj: Any) -> Any:
    """OmegaConf containers -> plain dicts and lists (SB3 checks types)."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(obj, DictConfig | ListConfig):
            return OmegaConf.to_container(obj, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def policy_metadata(algo: str, obs_size: int, **extra: Any) -> dict[str, Any]:
    """The metadata saved with a policy (edit space, observation layout, algorithm)."""
    return {
        "format": 1,
        "algo": algo,
        "space_version": SPACE_VERSION,
        "n_actions": N_ACTIONS,
        "obs_size": int(obs_size),
        "observation_features": list(OBSERVATION_FEATURES),
        **extra,
    }


def algo_name(model: Any) -> str:
    """The algorithm name (``maskable_ppo``, ``ppo``, ``a2c``, ``dqn``) of an SB3 model.

    Raises:
        ConfigError: ``model`` is not one of the algorithms a policy can be loaded as.
    """
    for name, cls in algorithm_classes().items():
        if type(model) is cls:
            return name
    raise ConfigError(
        f"cannot save a {type(model).__name__} as an rsi_rl policy; known algorithms: "
        f"{', '.join(algorithm_classes())}"
    )


def save_policy(model: Any, path: str | Path, algo: str | None = None, **extra: Any) -> Path:
    """Save ``model`` to ``path`` (a .zip) with rsi_rl metadata inside; returns the path.

    This is how to save a policy trained from Python so that ``agent=policy
    agent.path=...`` (:func:`load_policy`) accepts it; a plain ``model.save(...)`` lacks
    the metadata.

    Args:
        model: a trained SB3 model (MaskablePPO, PPO, A2C or DQN) on the research env.
        path: the file to write (``.zip`` is added if missing).
        algo: the algorithm name; None: taken from ``model``'s class.
        **extra: more metadata to store (e.g. ``task="tabular"``).

    Example:
        >>> save_policy(model, "policies/mine.zip")  # doctest: +SKIP
    """
    algo = algo_name(model) if algo is None else algo
    path = Path(path)
    if path.suffix != ".zip":
        path = path.with_suffix(".zip")
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    meta = policy_metadata(algo, int(np.prod(model.observation_space.shape)), **extra)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr(META_ENTRY, json.dumps(meta, indent=2, default=str))
    return path


#: the project folder (holds ``policies/`` in a source checkout or editable install)
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def resolve_policy_path(path: str | Path) -> Path:
    """``path`` as given when it exists (or is absolute); a relative path that does not
    exist from the working directory is looked up in the project folder, so the shipped
    ``policies/research_policy.zip`` loads from any directory."""
    path = Path(path)
    if path.is_absolute() or path.exists():
        return path
    shipped = PROJECT_ROOT / path
    return shipped if shipped.is_file() else path


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The rsi_rl metadata of a saved policy.

    Raises:
        PolicyLoadError: the file is missing, not a zip, or has no rsi_rl metadata.
    """
    path = Path(path)
    if not path.is_file():
        raise PolicyLoadError(f"policy file {path} does not exist (set agent.path=...zip)")
    try:
        with zipfile.ZipFile(path) as zf:
            if META_ENTRY not in zf.namelist():
                raise PolicyLoadError(
                    f"{path} has no {META_ENTRY}: saved with plain model.save() or by an older "
                    "version; save it with rsi_rl.agents.sb3.save_policy(model, path) or "
                    "retrain it with rsi-rl train"
                )
            meta: dict[str, Any] = json.loads(zf.read(META_ENTRY).decode())
    except zipfile.BadZipFile:
        raise PolicyLoadError(f"{path} is not a policy zip file") from None
    return meta


def check_compatible(meta: dict[str, Any], path: str | Path, obs_size: int | None = None) -> None:
    """Raise :class:`PolicyLoadError` naming what differs (edit space or observation size)."""
    if meta.get("space_version") != SPACE_VERSION:
        raise PolicyLoadError(
            f"policy {path} was trained with another edit space ({_space_difference(meta)}); "
            "retrain it with rsi-rl train"
        )
    want = len(OBSERVATION_FEATURES) if obs_size is None else int(obs_size)
    if int(meta.get("obs_size", -1)) != want:
        raise PolicyLoadError(
            f"policy {path} expects observations of size {meta.get('obs_size')}, the env gives "
            f"{want} (observation features changed); retrain it with rsi-rl train"
        )


def _space_difference(meta: dict[str, Any]) -> str:
    """What differs between a policy's edit space and this one's, in a few words."""
    theirs = meta.get("space_version")
    if theirs is None:
        vocab = str(meta.get("vocab_version", "")).split(":", 1)[0]
        return f"the fixed edit vocabulary {vocab}".rstrip() + f", not {MAX_SLOTS} edit slots"
    theirs_items, ours = str(theirs).split(","), SPACE_VERSION.split(",")
    return next(
        (f"{a!r} vs {b!r}" for a, b in zip(theirs_items, ours, strict=False) if a != b),
        f"{len(theirs_items)} vs {len(ours)} entries",
    )


def load_policy(
    path: str | Path, obs_size: int | None = None, device: str = "cpu"
) -> tuple[Any, dict[str, Any]]:
    """Load a saved policy after checking its metadata; returns ``(model, metadata)``."""
    path = resolve_policy_path(path)
    meta = read_metadata(path)
    check_compatible(meta, path, obs_size)
    classes = algorithm_classes()
    algo = meta.get("algo", "maskable_ppo")
    if algo not in classes:
        raise PolicyLoadError(f"policy {path} uses unknown algorithm {algo!r}")
    model = classes[algo].load(str(path), device=device)
    return model, meta


def action_scores(model: Any, obs: np.ndarray) -> np.ndarray:
    """Per-action scores of a model for one observation: logits (PPO, A2C) or Q-values (DQN)."""
    import torch as th

    policy = model.policy
    obs_t, _ = policy.obs_to_tensor(np.asarray(obs, dtype=np.float32))
    with th.no_grad():
        if hasattr(policy, "q_net"):
            scores = policy.q_net(obs_t)
        else:
            dist = policy.get_distribution(obs_t)
            scores = dist.distribution.logits
    return np.asarray(scores.cpu().numpy()).reshape(-1)


class TabuMask(Tabu):
    """The mask a policy acts under: the env's, minus ``stop`` and exact repeats.

    An edit that was just reverted would, applied to the same incumbent, build the same
    candidate and run it on the same seed: a duplicate experiment (the runner serves it
    from its cache, charged at full cost). So once an edit fails on the incumbent it is
    masked until an experiment is kept (greedy's :class:`~rsi_rl.agents.base.Tabu`).
    ``reevaluate`` (a fresh seed) stays valid, so some action always is. ``stop`` is
    allowed exactly when ``allow_stop``, whether or not the env's mask has it.

    Training uses the env's own mask (``ResearchEnv(allow_stop=...)``): with the env's
    default ``mask_duplicates`` it already masks these repeats, so a policy acts (here,
    :class:`PolicyAgent`) under the masks it was trained with.
    """

    def __init__(self, allow_stop: bool = False, tabu: bool = True):
        super().__init__()
        self.allow_stop = allow_stop
        self.tabu = tabu

    def apply(self, mask: np.ndarray, action_names: Sequence[str]) -> np.ndarray:
        out = self.allowed(mask, action_names) if self.tabu else np.asarray(mask, bool).copy()
        out[STOP] = self.allow_stop  # always a valid action; the env may mask it
        if not out.any():
            out[REEVALUATE] = True
        return out


class PolicyAgent(Agent):
    """An agent that acts with a saved SB3 policy (``agent=policy agent.path=...zip``).

    It scores the actions on ``view.observation()`` and takes the best valid one under
    :class:`TabuMask`. With ``bundle`` = k > 1 each experiment is instead one candidate:
    the policy's k best-scoring valid edits of the incumbent, at most one per knob or
    patch (a jump and a move of one knob, or two options of a categorical knob, would
    overwrite each other), applied in score order. A reverted bundle makes its best edit
    tabu until something is kept, so the next bundle slides one edit down the ranking.

    Args:
        path: the policy zip written by ``rsi-rl train`` or :func:`save_policy`.
        deterministic: take the best valid action; otherwise sample from the masked
            softmax of the scores.
        allow_stop: let the policy end a campaign early (masked by default: with no
            compute cost, stopping never helps and a learned ``stop`` only wastes budget).
        tabu: mask edits that already failed on the incumbent (see :class:`TabuMask`).
        bundle: edits per experiment (1: the policy's own actions, one edit each).
        seed: seed of sampling when not deterministic.
    """

    name = "policy"

    def __init__(
        self,
        path: str | Path,
        deterministic: bool = True,
        allow_stop: bool = False,
        tabu: bool = True,
        bundle: int = 1,
        seed: int | None = None,
    ):
        super().__init__(seed)
        if isinstance(bundle, bool) or not isinstance(bundle, int) or bundle < 1:
            raise ConfigError(f"agent.bundle must be a positive number of edits, got {bundle!r}")
        self.bundle = bundle
        self.path = resolve_policy_path(path)
        self.model, self.meta = load_policy(self.path)
        self.deterministic = deterministic
        self.masker = TabuMask(allow_stop, tabu)
        self._bundled: tuple[str, str] | None = None  # (candidate hash, best edit) asked

    @property
    def bundle_kind(self) -> str:
        """The records' ``kind`` of a bundle (``policy_bundle``)."""
        return f"{self.name}_bundle"

    def reset(self, view: CampaignView) -> None:
        self.masker.clear()
        self._bundled = None

    def tell(self, records: Sequence[Record]) -> None:
        for record in records:
            edit = None
            if self._bundled is not None and record.get("candidate") == self._bundled[0]:
                edit = self._bundled[1]  # a bundle counts as its best edit
            self.masker.update(record, edit)

    def ask(self, view: CampaignView, n: int) -> list[Proposal]:
        allowed = self.masker.apply(view.action_masks(), view.action_names)
        scores = action_scores(self.model, view.observation())
        if self.bundle > 1:
            return [self._bundle(view, allowed, scores)]
        action = self._pick(np.where(allowed, scores, -np.inf), allowed)
        if action == STOP:
            return []
        return [view.proposal(view.action_names[action])]

    def _pick(self, scores: np.ndarray, allowed: np.ndarray) -> int:
        if self.deterministic:
            return int(np.argmax(scores))
        z = np.exp(scores - scores[allowed].max())
        return int(self.rng.choice(len(z), p=z / z.sum()))

    def ranked_edits(
        self, view: CampaignView, allowed: np.ndarray, scores: np.ndarray
    ) -> list[str]:
        """Names of the allowed edits, best score first."""
        order = np.argsort(-scores, kind="stable")
        return [view.action_names[i] for i in order if allowed[i] and is_edit_action(int(i))]

    def _bundle(self, view: CampaignView, allowed: np.ndarray, scores: np.ndarray) -> Proposal:
        space: EditSpace = view.space
        child = view.incumbent
        picked: list[str] = []
        for name in self.ranked_edits(view, allowed, scores):
            if len(picked) == self.bundle:
                break
            if space.get(name).target in {space.get(p).target for p in picked}:
                continue
            try:
                nxt, _ = space.apply(child, name)
            except EditError:  # does not compose with the edits already in the bundle
                continue
            if nxt.hash != child.hash:
                child = nxt
                picked.append(name)
        if not picked:  # every edit is tabu: measure the incumbent again
            self._bundled = None
            return view.proposal("reevaluate")
        self._bundled = (child.hash, picked[0])
        return Proposal(self.bundle_kind, child, "policy bundle: " + " + ".join(picked))


__all__ = [
    "MASKED_ALGOS",
    "PolicyAgent",
    "PolicyLoadError",
    "SLOT_POLICY_NAMES",
    "TabuMask",
    "action_scores",
    "algo_name",
    "algorithm_classes",
    "build_algorithm",
    "check_compatible",
    "load_policy",
    "policy_class",
    "policy_metadata",
    "read_metadata",
    "save_policy",
]
