"""Reproduce the shipped policy ``policies/tabular_maskable_ppo.zip``.

Meta-trains MaskablePPO on meta-train instances of the ``tabular`` family with the settings
below (the same code path as ``rsi-rl train``), then copies the final policy into
``policies/``. The shipped file is two stages (docs/agents.md; 48 + 22 minutes on the
2-core reference machine, shared with other jobs)::

    .venv/bin/python scripts/train_policy.py                  # stage 1: the settings below
    .venv/bin/python scripts/train_policy.py resume=policies/tabular_maskable_ppo.zip \
        total_steps=15360 train_instances=null                # stage 2: all instances
    .venv/bin/python scripts/train_policy.py total_steps=2000 out=/tmp/p.zip   # a quick try

Extra arguments are Hydra overrides of ``conf/train.yaml``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: the settings of the shipped policy (see docs/agents.md)
SHIPPED = [
    "task=tabular",
    "trainer=maskable_ppo",
    "budget=20",
    "total_steps=10240",  # 40 PPO updates of 4 x 64 steps
    "train_instances=50",
    "n_envs=4",
    "seed=0",
    "trainer.hyperparams.n_steps=64",
    "trainer.hyperparams.batch_size=64",
    "trainer.hyperparams.learning_rate=1e-3",
    "trainer.hyperparams.gamma=0.95",
    "trainer.hyperparams.ent_coef=0.005",
    "eval.freq=0",
    "checkpoint_freq=1000",
    "progress=false",
    f"out={ROOT / 'policies' / 'tabular_maskable_ppo.zip'}",
]


def main(argv: list[str]) -> None:
    from hydra import compose, initialize_config_dir

    from rsi_rl.cli import conf_dir
    from rsi_rl.train import train

    run_dir = ROOT / "runs" / "train_policy" / time.strftime("%Y-%m-%d_%H-%M-%S")
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose("train", overrides=SHIPPED + argv)
    print(f"training into {run_dir}", flush=True)
    train(cfg, run_dir)


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main(sys.argv[1:])
