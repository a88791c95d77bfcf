"""A policy that scores every edit slot with the same weights (``policy: SlotPolicy``).

The research env's observation (:mod:`rsi_rl.actions`) is a flat vector: global campaign
features, one row of :data:`~rsi_rl.actions.SLOT_FEATURES` per edit slot, the
meta-actions' mask. A plain ``MlpPolicy`` gives each slot position its own weights, so it
learns *where* the good edits of its training tasks sit, and acts poorly on a task whose
edits fill the slots in another order or number. :class:`SlotPolicy` reads the vector back
into its parts and scores the slots as a set:

* **context**: the global features and the meta-actions' mask, through one layer
  (``global_dim`` units);
* **slot encoder**: one MLP (``net_arch``), shared by all slots, on each slot's row joined
  with the context; a linear head turns each slot's embedding into that edit's logit, so
  permuting the slots permutes the logits the same way (equivariance);
* **its own mask**: a slot the observation marks empty or not ``valid`` (an invalid,
  duplicate or tabu edit), and a meta-action whose ``mask_*`` feature is 0, gets the
  logit of a masked action, so the policy's own distribution, before any mask
  MaskablePPO applies, puts no probability on what the env would refuse, and
  ``predict(obs)`` without ``action_masks`` acts validly. MaskablePPO applies the same
  mask, so acting and training are the same as without it;
* **pooled head**: the mean and the max of the embeddings over the present slots, joined
  with the context, through one layer: the logits of ``reevaluate``, ``propose`` and
  ``stop`` (actor) or the value (critic), invariant to the slots' order and number.

The actor and the critic have encoders of their own (``net_arch=dict(pi=[...],
vf=[...])`` sizes them apart). In SB3's terms the features extractor flattens (identity),
the ``mlp_extractor`` is :class:`SlotExtractor` whose actor latent *is* the action logits,
and ``action_net`` is the identity; masking, sampling, ``evaluate_actions``,
``predict_values`` and saving are MaskablePPO's own.

Example:
    >>> from sb3_contrib import MaskablePPO  # doctest: +SKIP
    >>> model = MaskablePPO(SlotPolicy, env, policy_kwargs={"net_arch": [64]})  # doctest: +SKIP

or ``rsi-rl train trainer=maskable_ppo trainer.policy=SlotPolicy``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from rsi_rl.actions import (
    GLOBAL_FEATURES,
    MAX_SLOTS,
    META_ACTIONS,
    N_ACTIONS,
    OBSERVATION_FEATURES,
    SLOT_FEATURES,
)

#: the logit of an empty or masked action (as sb3-contrib masks one)
EMPTY_LOGIT = -1e8
_N_GLOBAL, _N_SLOT, _N_META = len(GLOBAL_FEATURES), len(SLOT_FEATURES), len(META_ACTIONS)
_PRESENT = SLOT_FEATURES.index("present")
_VALID = SLOT_FEATURES.index("valid")


def split_observation(obs: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
    """A batch of flat observations ``(B, len(OBSERVATION_FEATURES))`` as its global
    features ``(B, G)``, slot rows ``(B, MAX_SLOTS, len(SLOT_FEATURES))`` and meta-actions'
    mask ``(B, len(META_ACTIONS))``."""
    end = _N_GLOBAL + MAX_SLOTS * _N_SLOT
    slots = obs[:, _N_GLOBAL:end].reshape(obs.shape[0], MAX_SLOTS, _N_SLOT)
    return obs[:, :_N_GLOBAL], slots, obs[:, end:]


class SlotEncoder(nn.Module):
    """Context, shared slot encoder and pooled head of one network (actor or critic).

    Args:
        widths: hidden layers of the slot encoder (may be empty).
        global_dim: units of the context layer.
        activation_fn: the activation of every layer.
    """

    def __init__(self, widths: list[int], global_dim: int, activation_fn: type[nn.Module]):
        super().__init__()
        self.context = nn.Sequential(nn.Linear(_N_GLOBAL + _N_META, global_dim), activation_fn())
        layers: list[nn.Module] = []
        dim = _N_SLOT + global_dim
        for width in widths:
            layers += [nn.Linear(dim, int(width)), activation_fn()]
            dim = int(width)
        self.slot = nn.Sequential(*layers)
        #: the size of a slot's embedding and of the pooled head's output
        self.dim = dim
        self.pooled = nn.Sequential(nn.Linear(2 * dim + global_dim, dim), activation_fn())

    def forward(self, obs: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """(slot embeddings ``(B, MAX_SLOTS, dim)``, pooled ``(B, dim)``, present ``(B,
        MAX_SLOTS)`` as bool) of a batch of flat observations."""
        glob, slots, meta = split_observation(obs)
        ctx = self.context(th.cat([glob, meta], dim=1))
        present = slots[..., _PRESENT] > 0.5
        h = self.slot(th.cat([slots, ctx[:, None, :].expand(-1, MAX_SLOTS, -1)], dim=2))
        weight = present.to(h.dtype)[..., None]
        count = weight.sum(dim=1)
        mean = (h * weight).sum(dim=1) / count.clamp(min=1.0)
        top = h.masked_fill(~present[..., None], float("-inf")).amax(dim=1)
        top = th.where(count > 0, top, th.zeros_like(top))  # a task with no edits
        return h, self.pooled(th.cat([mean, top, ctx], dim=1)), present


class SlotExtractor(nn.Module):
    """The ``mlp_extractor`` of :class:`SlotPolicy`: the actor's latent is the
    :data:`~rsi_rl.actions.N_ACTIONS` action logits (edit slots, then meta-actions), the
    critic's the pooled embedding (``latent_dim_vf`` units) that ``value_net`` reads.

    Args:
        pi: slot-encoder widths of the actor.
        vf: slot-encoder widths of the critic.
        global_dim: units of the context layers.
        activation_fn: the activation of every layer.
    """

    def __init__(
        self, pi: list[int], vf: list[int], global_dim: int, activation_fn: type[nn.Module]
    ):
        super().__init__()
        self.actor = SlotEncoder(pi, global_dim, activation_fn)
        self.critic = SlotEncoder(vf, global_dim, activation_fn)
        self.slot_logit = nn.Linear(self.actor.dim, 1)
        self.meta_logits = nn.Linear(self.actor.dim, _N_META)
        self.latent_dim_pi = N_ACTIONS
        self.latent_dim_vf = self.critic.dim

    def forward(self, features: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        return self.forward_actor(features), self.forward_critic(features)

    def forward_actor(self, features: th.Tensor) -> th.Tensor:
        h, pooled, present = self.actor(features)
        _, slots, meta = split_observation(features)
        usable = present & (slots[..., _VALID] > 0.5)
        slot = self.slot_logit(h).squeeze(-1).masked_fill(~usable, EMPTY_LOGIT)
        meta_logits = self.meta_logits(pooled).masked_fill(meta < 0.5, EMPTY_LOGIT)
        return th.cat([slot, meta_logits], dim=1)

    def forward_critic(self, features: th.Tensor) -> th.Tensor:
        return self.critic(features)[1]


class SlotPolicy(MaskableActorCriticPolicy):
    """MaskablePPO's actor-critic policy with a shared, permutation-equivariant slot
    encoder (see the module docs).

    Args:
        observation_space: the research env's ``Box`` of ``len(OBSERVATION_FEATURES)``.
        action_space: ``Discrete(N_ACTIONS)``.
        lr_schedule: the learning-rate schedule (SB3 passes it).
        net_arch: hidden widths of the slot encoder, for actor and critic alike (a list),
            or ``dict(pi=[...], vf=[...])``; default ``[64, 64]``.
        global_dim: units of the layer that embeds the global features and meta mask.
        activation_fn: the activation of every layer.
        ortho_init: orthogonal initialisation (the heads' gains: 0.01 for the logits, 1
            for the value), as SB3's policies do.
        **kwargs: the rest of :class:`MaskableActorCriticPolicy`'s arguments (optimizer,
            features extractor, ...).

    Raises:
        ValueError: the spaces are not the research env's, or ``net_arch`` is malformed.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        global_dim: int = 32,
        activation_fn: type[nn.Module] = nn.Tanh,
        ortho_init: bool = True,
        **kwargs: Any,
    ):
        want = (len(OBSERVATION_FEATURES),)
        if not isinstance(observation_space, spaces.Box) or observation_space.shape != want:
            raise ValueError(
                f"SlotPolicy reads the research env's flat observation of shape {want}, got "
                f"{observation_space}; use MlpPolicy for another env"
            )
        if not isinstance(action_space, spaces.Discrete) or int(action_space.n) != N_ACTIONS:
            raise ValueError(
                f"SlotPolicy scores the research env's Discrete({N_ACTIONS}) actions, "
                f"got {action_space}"
            )
        self.global_dim = int(global_dim)
        if net_arch is None:
            net_arch = [64, 64]
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=net_arch,
            activation_fn=activation_fn,
            ortho_init=ortho_init,
            **kwargs,
        )

    def _widths(self) -> tuple[list[int], list[int]]:
        arch = self.net_arch
        if isinstance(arch, dict):
            unknown = set(arch) - {"pi", "vf"}
            if unknown:
                raise ValueError(f"SlotPolicy net_arch takes keys pi and vf, not {unknown}")
            return list(arch.get("pi", [])), list(arch.get("vf", []))
        if isinstance(arch, list | tuple) and all(isinstance(w, int) for w in arch):
            return list(arch), list(arch)
        raise ValueError(
            f"SlotPolicy net_arch must be a list of slot-encoder widths or dict(pi=..., "
            f"vf=...), got {arch!r}"
        )

    def _build_mlp_extractor(self) -> None:
        pi, vf = self._widths()
        extractor = SlotExtractor(pi, vf, self.global_dim, self.activation_fn)
        # SB3 types the attribute as its MlpExtractor; SlotExtractor has the same interface
        self.mlp_extractor = extractor.to(self.device)  # type: ignore[assignment]

    def _build(self, lr_schedule: Schedule) -> None:
        """The slot networks, the value head and the optimizer (the logits come straight
        from :class:`SlotExtractor`: ``action_net`` is the identity)."""
        self._build_mlp_extractor()
        self.action_net = nn.Identity()
        self.value_net = nn.Linear(self.mlp_extractor.latent_dim_vf, 1)
        if self.ortho_init:
            extractor = self.mlp_extractor
            assert isinstance(extractor, SlotExtractor)
            for module, gain in (
                (extractor, np.sqrt(2)),
                (extractor.slot_logit, 0.01),
                (extractor.meta_logits, 0.01),
                (self.value_net, 1.0),
            ):
                module.apply(partial(self.init_weights, gain=gain))
        self.optimizer = self.optimizer_class(
            self.parameters(),
            lr=lr_schedule(1),  # type: ignore[call-arg]
            **self.optimizer_kwargs,
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(global_dim=self.global_dim)
        return data


__all__ = ["EMPTY_LOGIT", "SlotEncoder", "SlotExtractor", "SlotPolicy", "split_observation"]
