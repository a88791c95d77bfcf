"""The frozen per-instance yardstick that regret is measured against.

A yardstick file holds, per instance, the seed-mean metric of the best known candidate
(``optimum``), of a typical one (``median``) and of the start config (``start``), and
where they came from (``source``). It is computed once, before the runs it scores, and
then only read: regret never depends on which agents ran, and adding an agent to a bench
changes no other agent's numbers.

- Landscape tasks (tables, synthetic formulas) have ``truth_summary(instance)``: the
  true optimum, median and start of the instance, exact and cheap.
- Trained tasks get a long search (``agent``, ``budget`` experiments) per instance whose
  final incumbent, and the start, are re-measured on ``fresh`` seeds (at least 5); the
  optimum is the better of the two means, and the reference point ``median`` is the
  start's mean (a trained task has no tabulated median config).

Regret of a value ``v`` on an instance is ``(optimum - v) / (optimum - median)`` in the
metric's direction: 0 at the optimum, 1 at the median (above 1 worse than the median, below
0 better than the yardstick's optimum: possible for trained tasks only)::

    ys = read_yardstick("yardstick.json")
    ys.regret(6001, 0.93)

Compute one from the command line (a long search for trained tasks)::

    python -m rsi_rl.analysis.yardstick --family tabular --split val --n 10 --out ys.json
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rsi_rl.analysis.stats import TIE, improvement
from rsi_rl.core.errors import ConfigError

log = logging.getLogger("rsi_rl")

#: the file name a bench writes its yardstick under
YARDSTICK_JSON = "yardstick.json"
#: least number of fresh seeds a trained task's optimum and start are re-measured on
MIN_FRESH = 5
ENTRY_KEYS = ("optimum", "median", "start", "source")


def has_truth(task: Any) -> bool:
    """Whether ``task`` knows true values cheaply (it has ``truth_summary``)."""
    return callable(getattr(task, "truth_summary", None))


def true_value(task: Any, instance: Any, candidate: Any) -> float | None:
    """``task.true_value(instance, candidate)``; None for tasks without one (trained)."""
    fn = getattr(task, "true_value", None)
    if not callable(fn):
        return None
    v = fn(instance, candidate)
    return None if v is None else float(v)


def exhaustive_regret(
    task: Any, yardstick: Yardstick, pairs: Sequence[tuple[int, int]]
) -> list[float] | None:
    """Per ``(instance, campaign seed)`` pair, the regret of the config that is best on the
    campaign's evaluation seed (``task.best_on_seed``): what a campaign that ran every
    config, compared on that one seed, would keep.

    It is not a bound. It measures how far the single-seed objective a campaign
    optimises sits from the true one: an agent that runs few, well-chosen configs can
    end below it (picking the best of fewer noisy draws selects less on noise), and one
    that ran the true optimum would mostly keep it. None for tasks without
    ``best_on_seed`` (formulas, trained tasks)."""
    from rsi_rl.core.edits import start_candidate
    from rsi_rl.core.seeds import evaluation_seed

    best_on_seed = getattr(task, "best_on_seed", None)
    if not callable(best_on_seed):
        return None
    out: list[float] = []
    for instance, seed in pairs:
        inst = task.make_instance(int(instance))
        config = best_on_seed(inst, evaluation_seed(int(seed)))
        regret = yardstick.regret(
            int(instance), true_value(task, inst, start_candidate(task, config))
        )
        out.append(math.nan if regret is None else regret)
    return out


def _fresh_seeds(instance: int, n: int) -> list[int]:
    """The yardstick's re-measurement seeds of an instance (none a bench campaign uses)."""
    rng = np.random.default_rng([int(instance), 104_729])
    return [int(s) for s in rng.integers(1, 2**31 - 1, size=int(n))]


def compute_yardstick(
    task: Any,
    instances: Sequence[int],
    agent: str = "tpe",
    budget: int = 200,
    fresh: int = MIN_FRESH,
    env_kwargs: dict[str, Any] | None = None,
) -> dict[int, dict[str, Any]]:
    """The yardstick of ``instances`` of ``task`` (a name, ``_target_`` mapping or task).

    Tasks with ``truth_summary`` read it; the others run a long search of ``agent`` with
    ``budget`` experiments per instance and re-measure its final incumbent and the start on
    ``fresh`` (>= 5) seeds (see the module docstring).

    Returns:
        instance seed -> ``{"optimum", "median", "start", "source"}``.
    """
    from rsi_rl.core.registry import make_task

    task_obj: Any = make_task(task)
    if has_truth(task_obj):
        out: dict[int, dict[str, Any]] = {}
        for seed in instances:
            s = task_obj.truth_summary(task_obj.make_instance(int(seed)))
            out[int(seed)] = {
                "optimum": float(s["optimum"]),
                "median": float(s["median"]),
                "start": float(s["start"]),
                "source": "truth_summary",
            }
        return out
    if int(fresh) < MIN_FRESH:
        raise ConfigError(f"fresh={fresh}: a trained task's yardstick needs >= {MIN_FRESH} seeds")
    return {
        int(seed): _searched(task_obj, int(seed), agent, int(budget), int(fresh), env_kwargs)
        for seed in instances
    }


def _searched(
    task: Any, seed: int, agent: str, budget: int, fresh: int, env_kwargs: dict[str, Any] | None
) -> dict[str, Any]:
    """A trained task's entry: a long search, its final incumbent and the start re-measured."""
    from rsi_rl.agents import make_agent
    from rsi_rl.builder import make_env
    from rsi_rl.core.edits import start_candidate
    from rsi_rl.search import run_campaign

    env = make_env(task, budget, [seed], dict(env_kwargs or {}))
    try:
        run_campaign(env, make_agent(agent, seed=0), seed=0, instance=seed, test=False)
        assert env.instance is not None
        start = start_candidate(task, env.instance.start_config)
        means = []
        for cand in (start, env.incumbent):
            vals = [
                float(r.metrics[task.metric])
                for s in _fresh_seeds(seed, fresh)
                if (r := env.runner.run(env.instance, cand, s)).status == "ok"
            ]
            if not vals:
                raise ConfigError(f"instance {seed}: no fresh-seed rerun succeeded")
            means.append(float(np.mean(vals)))
    finally:
        env.close()
    maximize = task.direction == "maximize"
    best = means[1] if improvement(means[1], means[0], maximize) > 0 else means[0]
    return {
        "optimum": best,
        "median": means[0],
        "start": means[0],
        "source": f"search:{agent}:{budget}+fresh:{fresh}",
    }


@dataclass(frozen=True)
class Yardstick:
    """A yardstick file's contents: per instance, optimum, median, start and source."""

    task: str
    direction: str
    entries: dict[int, dict[str, Any]]
    path: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"

    def entry(self, instance: int) -> dict[str, Any]:
        """The entry of ``instance``; a missing one is refused in one line."""
        try:
            return self.entries[int(instance)]
        except KeyError:
            where = self.path or "the yardstick"
            raise ConfigError(
                f"instance {instance} is not in {where}; compute its yardstick before scoring "
                "it (python -m rsi_rl.analysis.yardstick), never from the runs being scored"
            ) from None

    def regret(self, instance: int, value: float | None) -> float | None:
        """Normalised regret of metric ``value`` on ``instance`` (None: no value, or an
        instance whose optimum equals its median)."""
        e = self.entry(instance)
        if value is None or not math.isfinite(value):
            return None
        span = improvement(e["optimum"], e["median"], self.maximize)
        if span <= TIE:
            return None
        return float(improvement(e["optimum"], value, self.maximize) / span)

    def check(self, instances: Sequence[int]) -> None:
        """Refuse (one line) if any of ``instances`` has no entry."""
        missing = [int(i) for i in instances if int(i) not in self.entries]
        if missing:
            shown = ", ".join(map(str, missing[:5])) + (" ..." if len(missing) > 5 else "")
            raise ConfigError(
                f"{len(missing)} instance(s) not in {self.path or 'the yardstick'} ({shown}); "
                "compute their yardstick first (python -m rsi_rl.analysis.yardstick)"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "direction": self.direction,
            **({"meta": self.meta} if self.meta else {}),
            "instances": {str(k): self.entries[k] for k in sorted(self.entries)},
        }


def write_yardstick(
    path: str | Path,
    entries: dict[int, dict[str, Any]],
    task: str,
    direction: str,
    meta: dict[str, Any] | None = None,
) -> Yardstick:
    """Write ``entries`` (from :func:`compute_yardstick`) as a yardstick JSON file."""
    entries = {int(k): dict(v) for k, v in entries.items()}
    ys = Yardstick(task, direction, entries, str(path), dict(meta or {}))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(ys.to_dict(), indent=2) + "\n")
    return ys


def read_yardstick(path: str | Path) -> Yardstick:
    """Read a yardstick file; a missing or malformed one raises ConfigError in one line."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"yardstick {p} does not exist; compute it first")
    try:
        data = json.loads(p.read_text())
        entries = {}
        for k, v in data["instances"].items():
            missing = [key for key in ENTRY_KEYS if key not in v]
            if missing:
                raise ValueError(f"instance {k} lacks {', '.join(missing)}")
            entries[int(k)] = {key: v[key] for key in ENTRY_KEYS}
        return Yardstick(
            str(data["task"]), str(data["direction"]), entries, str(p), data.get("meta") or {}
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"yardstick {p} is malformed ({exc}); write it with write_yardstick"
        ) from None


def bench_yardstick(
    task: Any,
    pool: list[int],
    path: str | Path | None,
    run_dir: Path,
    family: str | None,
    split: str,
) -> Yardstick | None:
    """The yardstick of a bench in ``run_dir`` over the instances ``pool`` (of ``family``'s
    ``split``, if any): read from ``path`` (default: the run directory's
    yardstick.json) if it exists; else computed when the task knows its true values
    (written to ``path``, or to the run directory); else None. A copy goes into the run
    directory, beside the records it scores."""
    target = run_dir / YARDSTICK_JSON
    if path is None and target.is_file():  # computed once (an earlier job in this folder)
        path = target
    if path is not None and Path(path).is_file():
        ys = read_yardstick(path)
        if ys.task != task.name:
            raise ConfigError(f"yardstick {path} is of task {ys.task}, the bench runs {task.name}")
    elif has_truth(task):
        meta = {"family": family, "split": split}
        entries = compute_yardstick(task, pool)
        ys = write_yardstick(
            Path(path) if path else target, entries, task.name, task.direction, meta
        )
        log.info(f"yardstick of {len(pool)} instances written to {ys.path}")
    elif path is not None:
        raise ConfigError(
            f"yardstick {path} does not exist and task {task.name} has no true values; compute "
            "it first (python -m rsi_rl.analysis.yardstick --family ... --out ...)"
        )
    else:
        return None
    ys.check(pool)
    if Path(ys.path).resolve() != target.resolve():
        write_yardstick(target, ys.entries, ys.task, ys.direction, ys.meta)
    return ys


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rsi_rl.analysis.yardstick``: compute and write a yardstick file."""
    from rsi_rl.core.families import family, split_seeds

    ap = argparse.ArgumentParser(prog="python -m rsi_rl.analysis.yardstick", description=__doc__)
    ap.add_argument("--family", required=True, help="a family of rsi_rl.core.families")
    ap.add_argument("--split", default="val", help="train, val or test (default val)")
    ap.add_argument("--n", type=int, default=10, help="instances, from the split's first")
    ap.add_argument("--offset", type=int, default=0)
    ap.add_argument("--agent", default="tpe", help="trained tasks: the long search's agent")
    ap.add_argument("--budget", type=int, default=200, help="trained tasks: its experiments")
    ap.add_argument("--fresh", type=int, default=MIN_FRESH, help="trained tasks: fresh seeds")
    ap.add_argument("--out", required=True, help="the JSON file to write")
    args = ap.parse_args(argv)
    try:
        fam = family(args.family)
        seeds = split_seeds(fam.name, args.split, args.n, args.offset)
        if Path(args.out).exists():
            raise ConfigError(f"{args.out} exists; a yardstick is computed once, then only read")
        from rsi_rl.core.registry import make_task

        task = make_task(fam.task)
        entries = compute_yardstick(task, seeds, args.agent, args.budget, args.fresh)
        meta = {"family": fam.name, "split": args.split, "agent": args.agent}
        write_yardstick(args.out, entries, task.name, task.direction, meta)
    except ConfigError as exc:
        print(f"yardstick: error: {exc}", file=sys.stderr)
        return 2
    print(f"yardstick of {len(seeds)} instances of {fam.name}/{args.split} in {args.out}")
    return 0


__all__ = [
    "MIN_FRESH",
    "YARDSTICK_JSON",
    "Yardstick",
    "bench_yardstick",
    "compute_yardstick",
    "exhaustive_regret",
    "has_truth",
    "main",
    "read_yardstick",
    "true_value",
    "write_yardstick",
]

if __name__ == "__main__":
    raise SystemExit(main())
