"""Fine-tune an acquisition scorer by policy gradient on the campaign's own endpoint.

The scorers of ``scripts/train_acquisition.py`` learn, experiment by experiment, which
pool candidate has the largest true gain: a one-step target that knows neither the
keep rule nor the rest of the campaign. This script treats the scorer as a policy over
the pool (a softmax of its ratings at temperature ``--temperature``) and fine-tunes it by
REINFORCE on the campaign's endpoint, on meta-train instances of the training families
only: the return of a campaign is minus the mean of its true regret at K and its
normalised area under the regret curve (the headline's endpoints), the baseline is the
mean return of the batch's campaigns on the same family, and advantages are scaled by
their standard deviation. Acting stays greedy (the highest rating); only training
samples.

    # the scorer trained without nb201, fine-tuned on the other training families
    .venv/bin/python scripts/finetune_acquisition.py --exclude nb201 \\
        --scorer policies/acquisition/lofo_nb201.npz --out runs/finetune/lofo_nb201.npz
    # then, on validation pairs:
    .venv/bin/python scripts/acquisition_val.py --every 1 --arms acq --scorer-dir runs/finetune
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: sampled campaigns per instance and seed; their mean return is each one's baseline
ROLLOUTS = 2
sys.path.insert(0, str(ROOT / "scripts"))
from train_acquisition import TRAIN_FAMILIES, save_scorer, train_instances  # noqa: E402


def sampled_scorer(
    model: Any, mean: np.ndarray, std: np.ndarray, temperature: float, seed: int
) -> Any:
    """A scorer whose ratings are a torch copy's plus Gumbel noise at ``temperature``, so
    the agent's argmax samples the softmax of the ratings (0: greedy)."""
    import torch

    from rsi_rl.agents.acquisition import Scorer

    rng = np.random.default_rng(seed)

    class Sampled(Scorer):
        def __call__(self, x: np.ndarray) -> np.ndarray:
            h = ((x - mean) / std).astype(np.float32)
            with torch.no_grad():
                s = model(torch.from_numpy(h))[:, 0].numpy().astype(np.float64)
            if temperature > 0:
                s = s / temperature + rng.gumbel(size=len(s))
            out: np.ndarray = s
            return out

    return Sampled()


def load_model(path: Path) -> tuple[Any, np.ndarray, np.ndarray]:
    """A scorer file as a torch perceptron (its weights), with its feature mean and std."""
    import torch
    from torch import nn

    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    layers = []
    for i in range(3):
        w, b = arrays[f"w{i}"], arrays[f"b{i}"]
        lin = nn.Linear(w.shape[0], w.shape[1])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w.T.copy()))
            lin.bias.copy_(torch.from_numpy(b.copy()))
        layers += [lin, nn.ReLU()] if i < 2 else [lin]
    return nn.Sequential(*layers), arrays["mean"], arrays["std"]


def campaign_return(row: Any, summary: dict[str, float], sign: float) -> float:
    """Minus the mean of the true regret at K and the mean regret over the curve."""
    opt, med = sign * summary["optimum"], sign * summary["median"]
    span = max(opt - med, 1e-12)
    regrets = [(opt - sign * v) / span for v in row.truth]
    return -0.5 * (regrets[-1] + float(np.mean(regrets)))


def main(argv: list[str]) -> None:
    import torch

    from rsi_rl.agents.acquisition import AcquisitionAgent
    from rsi_rl.analysis.bench_campaign import run_one
    from rsi_rl.builder import make_env
    from rsi_rl.core.families import family as get_family
    from rsi_rl.core.registry import make_task

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exclude", required=True, help="the held-out family")
    ap.add_argument("--scorer", type=Path, required=True, help="the scorer to start from")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--iterations", type=int, default=40)
    ap.add_argument("--per-family", type=int, default=4, help="instances per family per batch")
    ap.add_argument("--temperature", type=float, default=0.05)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--budget", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    model, mean, std = load_model(args.scorer)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    families = [f for f in TRAIN_FAMILIES if f != args.exclude]
    n_inst = args.iterations * args.per_family
    setups = []
    for fam in families:
        task = make_task(get_family(fam).task)
        insts = train_instances(fam, n_inst + 2000)[2000:]  # not the collected campaigns'
        env = make_env(task, args.budget, insts, {"executor": "serial"})
        setups.append((fam, task, insts, env, 1.0 if task.direction == "maximize" else -1.0))
    t0 = time.monotonic()
    try:
        for it in range(args.iterations):
            episodes: list[tuple[str, list[np.ndarray], list[int], float]] = []
            adv_list: list[float] = []
            for fam, task, insts, env, sign in setups:
                for j in range(args.per_family):
                    c = it * args.per_family + j
                    pair = []
                    for r in range(ROLLOUTS):  # same instance and seed, other samples
                        scorer = sampled_scorer(
                            model, mean, std, args.temperature, (args.seed * 1_000_003 + c) * 7 + r
                        )
                        trace: list[dict[str, Any]] = []
                        agent = AcquisitionAgent(seed=args.seed + c, scorer=scorer, trace=trace)
                        row = run_one(env, agent, args.seed + c, insts[c], reference=False)
                        assert env.instance is not None
                        ret = campaign_return(row, task.truth_summary(env.instance), sign)
                        pools = [((t["x"] - mean) / std).astype(np.float32) for t in trace]
                        picks = [int(t["pick"]) for t in trace]
                        pair.append((fam, pools, picks, ret))
                    base = float(np.mean([e[3] for e in pair]))  # the instance's own baseline
                    episodes += pair
                    adv_list += [e[3] - base for e in pair]
            rets = np.array([e[3] for e in episodes])
            adv = np.asarray(adv_list)
            adv /= adv.std() + 1e-8
            loss = torch.zeros(())
            for (_, pools, picks, _), a in zip(episodes, adv, strict=True):
                for h, p in zip(pools, picks, strict=True):
                    logits = model(torch.from_numpy(h))[:, 0] / args.temperature
                    loss = loss - float(a) * torch.log_softmax(logits, dim=0)[p]
            loss = loss / len(episodes)
            opt.zero_grad()
            loss.backward()
            opt.step()
            per = {
                f: float(rets[[i for i, e in enumerate(episodes) if e[0] == f]].mean())
                for f, *_ in setups
            }
            print(
                f"iteration {it + 1}: mean return {rets.mean():.4f} "
                + " ".join(f"{f} {v:.3f}" for f, v in per.items())
                + f" ({time.monotonic() - t0:.0f} s)",
                file=sys.stderr,
            )
    finally:
        for *_, env, _ in setups:
            env.close()
    save_scorer(model, mean, std, args.out)
    print(f"-> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
