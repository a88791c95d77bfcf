"""rsi_rl: recursive self-improvement of ML models by reinforcement learning.

``import rsi_rl`` registers the Gymnasium environment ``rsi_rl/Research-v0``::

    import gymnasium as gym
    import rsi_rl  # noqa: F401

    env = gym.make("rsi_rl/Research-v0", task="digits_mlp", budget=20)
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

__version__ = "0.1.0"
ENV_ID = "rsi_rl/Research-v0"

if ENV_ID not in registry:
    register(id=ENV_ID, entry_point="rsi_rl.env:ResearchEnv")

__all__ = ["ENV_ID", "__version__"]
