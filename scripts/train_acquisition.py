"""Train the acquisition agent's scorer across landscape families (meta-train instances only).

Two steps:

    # 1. per family: campaigns on its meta-train instances, each pool's features and
    #    every sampled candidate's true improvement over the incumbent
    .venv/bin/python scripts/train_acquisition.py collect --family nb201 --campaigns 300
    # 2. a scorer trained on every family but one (leave-one-family-out), or on all
    .venv/bin/python scripts/train_acquisition.py fit --exclude nb201
    .venv/bin/python scripts/train_acquisition.py fit
    # where in a campaign a scorer's choices beat a random candidate's (collected rows)
    .venv/bin/python scripts/train_acquisition.py picks --family nb201 \
        --scorer policies/acquisition/lofo_nb201.npz

``collect`` runs the acquisition agent (``--scorer``, default the unlearned ``gp_ei``)
with ``--explore`` chance of a uniformly chosen pool candidate, K = ``--budget``
experiments, on instances spread over the family's ``train`` split (for a table family,
over its data sets), and keeps per experiment ``--rows`` pool candidates (the chosen one
among them) with their features (:data:`rsi_rl.agents.acquisition_features.FEATURES`) and
their target: the share of the incumbent's remaining regret that running it would close,
``max(0, true value - incumbent's true value) / (optimum - incumbent's true value)``
(signed so that higher is better; 0 where the incumbent is the optimum). Within one
experiment every candidate has the same incumbent, so ranking by this share is ranking
by true improvement; the share keeps experiments with a poor incumbent (whose gains
would be many optimum-to-median spans) from drowning the others. Beside it, each row
keeps the share the candidate *does* close once the campaign's keep rule has judged it
on the evaluation seed (``fit --target keep``: 0 where it would be reverted, negative
where a worse candidate would be kept on a lucky draw). ``--n-uniform``/``--n-local``
set the pools, as ``scripts/acquisition_val.py`` does for acting.

``fit`` trains a ReLU perceptron (two hidden layers of ``--hidden``), each family weighted
alike, and writes its weights as ``.npz`` (``policies/acquisition/lofo_<F>.npz`` or
``acquisition.npz``), which ``agent=acquisition agent.scorer=<file>`` reads. Its loss
(``--loss``) is by default listwise: per experiment, the cross-entropy of the softmax of
the ratings of its candidates against the softmax of their targets (temperature
``--tau``), so the scorer learns which candidate to run rather than every candidate's
gain (most targets are 0); ``mse`` regresses the targets row by row instead.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("hpobench", "nb201", "synth_smooth", "synth_rugged")
#: landscape families to collect from beyond the benchmark's (never held out by ``fit``)
EXTRA_FAMILIES = ("synth_cells", "synth_mixed")
#: the families the shipped scorers are fitted on (``fit``'s default)
TRAIN_FAMILIES = (*FAMILIES, "synth_cells")
DATA = ROOT / "runs" / "acquisition"
OUT = ROOT / "policies" / "acquisition"
#: instance seeds of a table family's data set: one block of this many per data set
BLOCK = 1000


def train_instances(family: str, n: int) -> list[int]:
    """``n`` instances of the family's train split, spread over its blocks of seeds (a
    table family's data sets), in round-robin order."""
    from rsi_rl.core.families import family as get_family

    seeds = get_family(family).split("train")
    blocks = [seeds[i : i + BLOCK] for i in range(0, len(seeds), BLOCK)]
    out: list[int] = []
    for i in range(n):
        block = blocks[i % len(blocks)]
        out.append(int(block[(i // len(blocks)) % len(block)]))
    return out


def _on_points(agent: Any, value: Any) -> Any:
    """``value(candidate)`` of a point of ``agent``'s space, cached per point."""
    cache: dict[tuple[int, ...], float] = {}

    def of(point: tuple[int, ...]) -> float:
        if point not in cache:
            cand, _ = agent.space.candidate(agent.enc.params(point), "collect")
            cache[point] = value(cand)
        return cache[point]

    return of


def _truth_of(task: Any, instance: Any, agent: Any, sign: float) -> Any:
    """The signed true value of a point of ``agent``'s space on ``instance`` (cached)."""
    from rsi_rl.analysis.yardstick import true_value

    def truth(cand: Any) -> float:
        v = true_value(task, instance, cand)
        return -np.inf if v is None else sign * float(v)

    return _on_points(agent, truth)


def _eval_of(task: Any, instance: Any, agent: Any, seed: int) -> Any:
    """The score (higher is better) of a point of ``agent``'s space on the campaign's
    evaluation seed ``seed``: what the keep rule compares (cached)."""

    def score(cand: Any) -> float:
        metrics, _ = task.lookup(instance, cand, seed, "val")
        return float(task.score(metrics[task.metric]))

    return _on_points(agent, score)


def collect(
    family: str,
    campaigns: int,
    budget: int,
    explore: float,
    scorer: str,
    rows: int,
    seed0: int,
    offset: int = 0,
    tag: str = "",
    n_uniform: int = 64,
    n_local: int = 32,
) -> Path:
    from rsi_rl.agents.acquisition import AcquisitionAgent
    from rsi_rl.analysis.bench_campaign import run_one
    from rsi_rl.builder import make_env
    from rsi_rl.core.families import family as get_family
    from rsi_rl.core.registry import make_task

    task = make_task(get_family(family).task)
    sign = 1.0 if task.direction == "maximize" else -1.0
    instances = train_instances(family, offset + campaigns)[offset:]
    env = make_env(task, budget, instances, {"executor": "serial"})
    rng = np.random.default_rng(seed0)
    xs, ys, ys_keep, groups, steps = [], [], [], [], []
    n_steps = 0
    t0 = time.monotonic()
    try:
        for c, inst in enumerate(instances):
            trace: list[dict[str, Any]] = []
            agent = AcquisitionAgent(
                seed=seed0 + c,
                scorer=scorer,
                n_uniform=n_uniform,
                n_local=n_local,
                explore=explore,
                trace=trace,
            )
            run_one(env, agent, seed0 + c, inst, reference=False)
            assert env.instance is not None
            summary = task.truth_summary(env.instance)
            optimum = sign * float(summary["optimum"])
            truth = _truth_of(task, env.instance, agent, sign)
            score = _eval_of(task, env.instance, agent, env.eval_seed)
            for step in trace:
                n = len(step["points"])
                keep = rng.choice(n, size=min(rows, n), replace=False)
                if step["pick"] not in keep:
                    keep[0] = step["pick"]
                base = truth(step["incumbent"])
                gap = optimum - base
                bar = task.score(step["incumbent_metric"]) + env.keep_threshold * step["noise"]
                for i in keep:
                    point = step["points"][i]
                    gain = truth(point) - base
                    ok = np.isfinite(gain) and gain > 0 and gap > 1e-12
                    xs.append(step["x"][i])
                    ys.append(min(1.0, gain / gap) if ok else 0.0)
                    kept = np.isfinite(gain) and gap > 1e-12 and score(point) > bar
                    ys_keep.append(float(np.clip(gain / gap, -1.0, 1.0)) if kept else 0.0)
                    groups.append(c)
                    steps.append(n_steps)
                n_steps += 1
            if (c + 1) % 50 == 0:
                print(
                    f"{family}: {c + 1} campaigns, {time.monotonic() - t0:.0f} s", file=sys.stderr
                )
    finally:
        env.close()
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"{family}{'.' + tag if tag else ''}.npz"
    np.savez_compressed(
        path,
        x=np.asarray(xs, np.float32),
        y=np.asarray(ys, np.float32),
        y_keep=np.asarray(ys_keep, np.float32),
        campaign=np.asarray(groups, np.int32),
        step=np.asarray(steps, np.int32),
    )
    print(
        f"{family}: {len(ys)} rows from {campaigns} campaigns in "
        f"{time.monotonic() - t0:.0f} s -> {path}",
        file=sys.stderr,
    )
    return path


def picks(x: np.ndarray, y: np.ndarray, step: np.ndarray, pred: np.ndarray) -> str:
    """Mean target of the row each rule picks per experiment (among its sampled rows): the
    model's, the unlearned expected improvement's, a random row's and the best row's."""
    from rsi_rl.agents.acquisition_features import FEATURES

    ei = x[:, FEATURES.index("gp_ei_short")]
    out = {"model": [], "gp_ei": [], "random": [], "best": []}
    for s in np.unique(step):
        rows = np.flatnonzero(step == s)
        out["model"].append(y[rows[pred[rows].argmax()]])
        out["gp_ei"].append(y[rows[ei[rows].argmax()]])
        out["random"].append(y[rows].mean())
        out["best"].append(y[rows].max())
    return ", ".join(f"{k} {np.mean(v):.4f}" for k, v in out.items())


#: the stages of a campaign :func:`picks_by_stage` reports (experiments k, from 1)
STAGES = ((1, 2), (3, 5), (6, 10), (11, 20))


def picks_by_stage(family: str, scorer: str) -> str:
    """:func:`picks` of ``scorer`` on all of a family's collected rows, per stage of the
    campaign (:data:`STAGES`): where in a campaign a scorer's choices beat a random
    candidate's. For a leave-one-family-out scorer on its held-out family: how much of
    what it learned elsewhere carries over, first experiments apart."""
    from rsi_rl.agents.acquisition import Scorer

    data = load(family, None)
    pred = Scorer(scorer)(data["x"].astype(np.float64))
    # experiment k of its campaign: rows and steps come in order, campaign by campaign
    campaigns, first_row = np.unique(data["campaign"], return_index=True)
    first_step = data["step"][first_row][np.searchsorted(campaigns, data["campaign"])]
    k = data["step"] - first_step + 1
    lines = []
    for lo, hi in STAGES:
        rows = (k >= lo) & (k <= hi)
        if not rows.any():
            continue  # campaigns shorter than this stage
        got = picks(data["x"][rows], data["y"][rows], data["step"][rows], pred[rows])
        lines.append(f"{family} k {lo}-{hi}: {got}")
    return "\n".join(lines)


#: the targets ``fit`` can train on: ``gain``, the share of the incumbent's remaining
#: regret a candidate would close; ``keep``, the share it does close once the campaign's
#: keep rule has judged it on the evaluation seed (0 if reverted, negative if a worse
#: candidate is kept on a lucky draw)
TARGETS = ("gain", "keep")


def load(family: str, extra: str | None, target: str = "gain") -> dict[str, np.ndarray]:
    """A family's collected rows, with those of ``<family>.<extra>.npz`` appended (their
    campaign numbers moved past the first file's); ``y`` is the ``target``'s column."""
    data = _rows(DATA / f"{family}.npz", target)
    more = DATA / f"{family}.{extra}.npz"
    if extra and more.is_file():
        add = _rows(more, target)
        add["campaign"] = add["campaign"] + data["campaign"].max() + 1
        add["step"] = add["step"] + data["step"].max() + 1
        data = {k: np.concatenate([data[k], add[k]]) for k in data}
    return data


def _rows(path: Path, target: str) -> dict[str, np.ndarray]:
    """One collected file, its ``y`` the ``target``'s column."""
    data = dict(np.load(path))
    if target == "keep":
        if "y_keep" not in data:
            raise SystemExit(f"{path} has no keep targets; collect it again")
        data["y"] = data["y_keep"]
    data.pop("y_keep", None)
    return data


#: the listwise loss's temperature on the target (a share of the gap: in [0, 1] for
#: ``gain``, in [-1, 1] for ``keep``)
LISTWISE_TAU = 0.1


def _grouped(parts: list[dict[str, np.ndarray]], mean: np.ndarray, std: np.ndarray) -> Any:
    """The rows of each experiment (one ``step``) side by side, for the listwise loss:
    standardised features ``(G, R, d)``, targets ``(G, R)``, a mask of real rows and a
    weight per experiment (each family weighted alike). Experiments whose sampled
    candidates all have target 0 say nothing about ranking and are left out."""
    import torch

    xs, ys, ms, ws = [], [], [], []
    width = max(int(np.unique(p["step"], return_counts=True)[1].max()) for p in parts)
    for p in parts:
        _, first, count = np.unique(p["step"], return_index=True, return_counts=True)
        keep = [(a, c) for a, c in zip(first, count, strict=True) if p["y"][a : a + c].any()]
        g = len(keep)
        x = np.zeros((g, width, p["x"].shape[1]), np.float32)
        y = np.zeros((g, width), np.float32)
        m = np.zeros((g, width), bool)
        for i, (a, c) in enumerate(keep):
            x[i, :c] = (p["x"][a : a + c] - mean) / std
            y[i, :c] = p["y"][a : a + c]
            m[i, :c] = True
        xs.append(x)
        ys.append(y)
        ms.append(m)
        ws.append(np.full(g, 1.0 / max(1, g), np.float32))
    w = np.concatenate(ws)
    w *= len(w) / w.sum()
    return tuple(torch.from_numpy(np.concatenate(a)) for a in (xs, ys, ms)) + (torch.from_numpy(w),)


def _train(
    data: tuple[Any, ...],
    loss_kind: str,
    hidden: int,
    epochs: int,
    seed: int,
    tau: float = LISTWISE_TAU,
) -> Any:
    """One perceptron (two hidden ReLU layers of ``hidden``) fitted by Adam for ``epochs``
    passes: ``mse``, weighted mean squared error on rows ``(x, y, w)`` in batches of 1,024
    rows; ``listwise``, on experiments ``(x, y, mask, w)`` (:func:`_grouped`) in batches of
    64, the cross-entropy of the rating's softmax over an experiment's candidates against
    the target's (temperature ``tau``): what matters is which candidate the
    agent runs, not how well every rating matches its target."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    xt, yt = data[0], data[1]
    d = xt.shape[-1]
    model = nn.Sequential(
        nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1)
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch = 64 if loss_kind == "listwise" else 1024
    t0 = time.monotonic()
    for epoch in range(epochs):
        perm = torch.randperm(len(yt))
        total = 0.0
        for i in range(0, len(perm), batch):
            idx = perm[i : i + batch]
            if loss_kind == "listwise":
                mask, wt = data[2][idx], data[3][idx]
                score = model(xt[idx])[..., 0].masked_fill(~mask, -1e9)
                target = torch.softmax((yt[idx] / tau).masked_fill(~mask, -1e9), dim=1)
                loss = (wt * -(target * torch.log_softmax(score, dim=1)).sum(dim=1)).mean()
            else:
                pred = model(xt[idx])[:, 0]
                loss = (data[2][idx] * (pred - yt[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        print(
            f"epoch {epoch + 1}: loss {total / len(yt):.5f} ({time.monotonic() - t0:.0f} s)",
            file=sys.stderr,
        )
    return model


def fit(
    families: list[str],
    hidden: int,
    epochs: int,
    out: Path,
    seed: int,
    extra: str | None = None,
    loss: str = "listwise",
    tau: float = LISTWISE_TAU,
    target: str = "gain",
) -> None:
    """Fit a perceptron on the families' rows (``loss``: see :func:`_train`; ``target``:
    see :data:`TARGETS`) and write it as a scorer file."""
    import torch

    torch.set_num_threads(1)
    loaded = [load(f, extra, target) for f in families]
    # the last tenth of each family's campaigns is held out for the picks check below
    held = [p["campaign"] >= 0.9 * (p["campaign"].max() + 1) for p in loaded]
    parts = [{k: v[~h] for k, v in p.items()} for p, h in zip(loaded, held, strict=True)]
    x = np.concatenate([p["x"] for p in parts]).astype(np.float32)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    if loss == "listwise":
        data = _grouped(parts, mean, std)
    else:  # rows, each family weighted alike
        y = np.concatenate([p["y"] for p in parts]).astype(np.float32)
        w = np.concatenate([np.full(len(p["y"]), 1.0 / len(p["y"]), np.float32) for p in parts])
        w *= len(w) / w.sum()
        data = (torch.from_numpy((x - mean) / std), torch.from_numpy(y), torch.from_numpy(w))
    model = _train(data, loss, hidden, epochs, seed, tau)
    with torch.no_grad():
        for fam, p, h in zip(families, loaded, held, strict=True):
            xh = torch.from_numpy(((p["x"][h] - mean) / std).astype(np.float32))
            pred = model(xh)[:, 0].numpy()
            print(
                f"{fam} held out: {picks(p['x'][h], p['y'][h], p['step'][h], pred)}",
                file=sys.stderr,
            )
    save_scorer(model, mean, std, out)
    print(f"{len(x)} rows of {', '.join(families)} -> {out}", file=sys.stderr)


def save_scorer(model: Any, mean: np.ndarray, std: np.ndarray, out: Path) -> None:
    """A perceptron (``torch`` ``Sequential`` of Linear/ReLU) as the scorer file that
    :class:`rsi_rl.agents.acquisition.Scorer` reads, with its feature mean and std."""
    from torch import nn

    from rsi_rl.agents.acquisition_features import FEATURES

    layers = [m for m in model if isinstance(m, nn.Linear)]
    arrays = {f"w{i}": m.weight.detach().numpy().T.copy() for i, m in enumerate(layers)}
    arrays |= {f"b{i}": m.bias.detach().numpy().copy() for i, m in enumerate(layers)}
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, mean=mean, std=std, features=np.asarray(FEATURES), **arrays)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--family", required=True, choices=FAMILIES + EXTRA_FAMILIES)
    c.add_argument("--campaigns", type=int, default=300)
    c.add_argument("--budget", type=int, default=20)
    c.add_argument("--explore", type=float, default=0.3)
    c.add_argument("--scorer", default="gp_ei")
    c.add_argument("--rows", type=int, default=40, help="pool candidates kept per experiment")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--offset", type=int, default=0, help="skip this many train instances")
    c.add_argument("--tag", default="", help="write <family>.<tag>.npz")
    c.add_argument("--n-uniform", type=int, default=64, help="uniform draws per pool")
    c.add_argument("--n-local", type=int, default=32, help="perturbations per pool")
    q = sub.add_parser("picks", help="a scorer's choices against random, per campaign stage")
    q.add_argument("--family", required=True, choices=FAMILIES + EXTRA_FAMILIES)
    q.add_argument("--scorer", required=True, help="a scorer file, or gp_ei")
    f = sub.add_parser("fit")
    f.add_argument("--exclude", default=None, choices=FAMILIES)
    f.add_argument(
        "--families",
        nargs="+",
        default=list(TRAIN_FAMILIES),
        choices=FAMILIES + EXTRA_FAMILIES,
        help="the families to train on (less --exclude)",
    )
    f.add_argument("--hidden", type=int, default=64)
    f.add_argument("--epochs", type=int, default=8)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--extra", default=None, help="also read <family>.<extra>.npz")
    f.add_argument("--loss", default="listwise", choices=["listwise", "mse"])
    f.add_argument("--tau", type=float, default=LISTWISE_TAU, help="the listwise temperature")
    f.add_argument("--target", default="gain", choices=TARGETS, help="what the scorer learns")
    f.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.cmd == "picks":
        print(picks_by_stage(args.family, args.scorer))
        return
    if args.cmd == "collect":
        collect(
            args.family,
            args.campaigns,
            args.budget,
            args.explore,
            args.scorer,
            args.rows,
            args.seed,
            args.offset,
            args.tag,
            args.n_uniform,
            args.n_local,
        )
    else:
        fams = [x for x in args.families if x != args.exclude]
        out = args.out or OUT / (f"lofo_{args.exclude}.npz" if args.exclude else "acquisition.npz")
        fit(
            fams,
            args.hidden,
            args.epochs,
            out,
            args.seed,
            args.extra,
            args.loss,
            args.tau,
            args.target,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
