"""Meta-train the transfer policy: the slot policy across task families.

Trains MaskablePPO with the permutation-invariant slot policy on the meta-train instances
of several families at once (``rsi-rl train tasks=[...]``, the same code path), with
validation on their validation instances. ``--exclude F`` leaves family F out, for the
leave-one-family-out benchmark (docs/benchmarks.md)::

    .venv/bin/python scripts/train_transfer.py                      # all four: policies/research_policy.zip
    .venv/bin/python scripts/train_transfer.py --exclude nb201      # policies/transfer/lofo_nb201.zip
    .venv/bin/python scripts/train_transfer.py --steps 20000 --out /tmp/p.zip   # a quick try

Extra arguments after ``--`` are Hydra overrides of ``conf/train.yaml``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: the in-process families the transfer policy trains on (rsi_rl/core/families.py)
FAMILIES = ("hpobench", "nb201", "synth_smooth", "synth_rugged")

#: the settings of the shipped transfer policies (see docs/agents.md)
SETTINGS = [
    "trainer=maskable_ppo",
    "trainer.policy=SlotPolicy",
    "budget=20",
    "n_envs=8",
    "subproc=false",  # in-process tasks: the envs are cheap, the batch of 8 is not
    "trainer.hyperparams.n_steps=128",
    "trainer.hyperparams.batch_size=256",
    "trainer.hyperparams.n_epochs=4",
    "trainer.hyperparams.learning_rate=3e-4",
    "trainer.hyperparams.gamma=0.99",
    "trainer.hyperparams.ent_coef=0.01",
    "~trainer.hyperparams.policy_kwargs",
    "eval.freq=20480",
    "eval.episodes=40",
    "checkpoint_freq=20480",
    "tensorboard=true",
]


def main(argv: list[str]) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES))
    parser.add_argument("--exclude", default=None, help="a family left out (LOFO)")
    parser.add_argument("--steps", type=int, default=200_000, help="env steps (experiments)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="copy the policy here")
    args, overrides = parser.parse_known_args(argv)
    overrides = [o for o in overrides if o != "--"]
    families = [f for f in args.families if f != args.exclude]
    if args.exclude is not None and len(families) == len(args.families):
        parser.error(f"--exclude {args.exclude}: not one of {args.families}")
    name = f"lofo_{args.exclude}" if args.exclude else "all"
    shipped = ROOT / "policies" / "research_policy.zip"  # the policy agent=policy loads
    out = args.out or str(
        shipped if not args.exclude else ROOT / "policies" / "transfer" / f"{name}.zip"
    )

    from hydra import compose, initialize_config_dir

    from rsi_rl.cli import conf_dir
    from rsi_rl.meta.train import train

    run_dir = ROOT / "runs" / "train_transfer" / f"{time.strftime('%Y-%m-%d_%H-%M-%S')}_{name}"
    settings = [
        *SETTINGS,
        f"tasks=[{','.join(families)}]",
        f"task={families[0]}",
        f"total_steps={args.steps}",
        f"seed={args.seed}",
        f"out={out}",
    ]
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose("train", overrides=settings + overrides)
    print(f"training on {families} into {run_dir}", flush=True)
    return train(cfg, run_dir)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main(sys.argv[1:])
