"""Choose the fixed opening of the ``opening_tpe`` baseline on meta-train instances.

The opening is a short list of role-level moves (:mod:`rsi_rl.agents.opening`) played on
every instance before TPE takes over. This script chooses it greedily on the *meta-train*
instances of the given tasks, from their noise-free truth (``task.true_value(instance,
candidate)`` and ``task.truth_summary(instance)``, which the in-process landscape tasks
provide), and never looks at validation or test instances::

    .venv/bin/python scripts/choose_opening.py \\
        --tasks hpobench nb201 synth_smooth synth_rugged --instances 200 --length 3 \\
        --out policies/openings/all.json
    # leave one family out: the opening for the benchmark on nb201 never sees nb201
    .venv/bin/python scripts/choose_opening.py \\
        --tasks hpobench nb201 synth_smooth synth_rugged --exclude nb201 \\
        --out policies/openings/exclude_nb201.json

What it maximises: the mean *regret reduction* of the incumbent after the opening,
``(v_after - v_start) / (v_optimum - v_median)`` per instance (true values in the
higher-is-better direction; the yardstick of docs/benchmarks.md, so 1.0 is the whole
distance from the median config to the optimum), averaged over each task's instances and
then over tasks with equal weight. Keep-or-revert is played on the true values: a move
whose candidate is not strictly better than the incumbent is reverted. A move with
nothing to apply on an instance, or whose candidate was already run there, is skipped
at no cost, as :class:`~rsi_rl.agents.opening.OpeningAgent` does.

How it searches: the candidates are every one-part move that maps onto an edit of some
given task (:func:`~rsi_rl.agents.opening.task_moves`), plus two-part bundles of the
``--bundle-top`` best one-part moves of each step (different roles, one experiment). At
each of ``--length`` steps it appends the candidate with the largest objective (ties go
to the earlier candidate); it stops early when no candidate improves the objective.
Instances: ``--instances`` seeds spread evenly over each task's meta-train range (the
family's ``train`` range, :mod:`rsi_rl.core.families`, else the task's ``meta_train_seeds``),
so a range made of several datasets is sampled across all of them.

It prints each step's choice with the runners-up, the chosen moves and the line for
``conf/agent/opening_tpe.yaml``, and writes a JSON record with ``--out``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rsi_rl.agents.opening import Move, move_edits, parse_move, task_moves
from rsi_rl.core.edits import Candidate, EditSpace, start_candidate
from rsi_rl.core.errors import ConfigError
from rsi_rl.core.task import InnerTask, Instance

#: how the objective normalises an instance's improvement (recorded in the JSON)
NORMALISATION = (
    "per instance (v_after - v_start) / (v_optimum - v_median), true values in the "
    "higher-is-better direction (v_optimum - v_worst where the median is the optimum); "
    "mean over a task's instances, then equal-weight mean over tasks"
)


def spread_seeds(seeds: range, n: int) -> list[int]:
    """``n`` seeds spread evenly over ``seeds`` (all of them when ``n`` >= its length)."""
    if n >= len(seeds):
        return list(seeds)
    return [seeds[i * len(seeds) // n] for i in range(n)]


@dataclass
class _Instance:
    """One meta-train instance's state during the greedy search."""

    instance: Instance
    scale: float
    start: float
    incumbent: Candidate
    value: float  # the incumbent's true value (higher is better)
    ran: set[str] = field(default_factory=set)


class _Family:
    """A task's instances, with a cache of true values."""

    def __init__(self, task: InnerTask, seeds: Sequence[int]):
        self.task = task
        self.space: EditSpace = task.edit_space()
        self.cache: dict[tuple[int, str], float] = {}
        self.states: list[_Instance] = []
        self.flat: list[int] = []  # seeds whose landscape has no scale (left out)
        for seed in seeds:
            inst = task.make_instance(int(seed))
            start = start_candidate(task, inst.start_config)
            truth = task.truth_summary(inst)  # type: ignore[attr-defined]
            optimum = task.score(float(truth["optimum"]))
            scale = optimum - task.score(float(truth["median"]))
            if scale <= 0:
                scale = optimum - task.score(float(truth["worst"]))
            if not scale > 0:
                self.flat.append(int(seed))
                continue
            v0 = self.value(inst, start)
            self.states.append(_Instance(inst, scale, v0, start, v0, {start.hash}))

    def value(self, inst: Instance, cand: Candidate) -> float:
        key = (inst.seed, cand.hash)
        if key not in self.cache:
            raw = self.task.true_value(inst, cand)
            if raw is None:
                raise ConfigError(
                    f"task {self.task.name!r} has no true value for instance {inst.seed}; the "
                    "opening is chosen on landscape tasks whose truth is known"
                )
            self.cache[key] = self.task.score(float(raw))
        return self.cache[key]

    def outcome(self, state: _Instance, move: Move) -> tuple[Candidate, Candidate, float] | None:
        """After ``move`` on ``state``: the candidate run, the incumbent and its value
        (keep-or-revert on true values); None when the move is skipped there."""
        found = move_edits(self.space, state.incumbent, move)
        if found is None or found[0].hash in state.ran:
            return None
        child = found[0]
        v = self.value(state.instance, child)
        if v > state.value:
            return child, child, v
        return child, state.incumbent, state.value

    def gain(self, move: Move | None) -> tuple[float, float, float]:
        """Mean regret reduction over the instances after ``move`` (None: as they are),
        the fraction of instances where it was kept and where it was skipped."""
        total = kept = skipped = 0.0
        for s in self.states:
            out = None if move is None else self.outcome(s, move)
            if out is None:
                skipped += move is not None
                v = s.value
            else:
                v = out[2]
                kept += out[1] is out[0]
            total += (v - s.start) / s.scale
        n = max(1, len(self.states))
        return total / n, kept / n, skipped / n

    def play(self, move: Move) -> None:
        for s in self.states:
            out = self.outcome(s, move)
            if out is not None:
                s.ran.add(out[0].hash)
                s.incumbent, s.value = out[1], out[2]


def _objective(families: Mapping[str, _Family], move: Move | None) -> tuple[float, dict[str, Any]]:
    per_task = {}
    for name, fam in families.items():
        gain, kept, skipped = fam.gain(move)
        per_task[name] = {"gain": gain, "kept": kept, "skipped": skipped}
    mean = sum(t["gain"] for t in per_task.values()) / max(1, len(per_task))
    return mean, per_task


def choose_opening(
    tasks: Mapping[str, InnerTask],
    instances: int = 200,
    length: int = 3,
    bundle_top: int = 6,
    runners_up: int = 5,
    log: Any = None,
    ranges: Mapping[str, range] | None = None,
) -> dict[str, Any]:
    """Choose an opening of up to ``length`` moves on the tasks' meta-train instances.

    Args:
        tasks: name -> task; each must provide ``true_value(instance, candidate)`` and
            ``truth_summary(instance)`` (``optimum``, ``median``, ``worst``).
        instances: meta-train seeds per task, spread over its range.
        length: moves in the opening (fewer when no move helps any more).
        bundle_top: two-part bundles of this many best one-part moves are candidates
            too (0: no bundles).
        runners_up: how many runners-up each step records.
        log: a stream for progress lines (None: silent).
        ranges: name -> the meta-train seeds to draw from (default: the task's own,
            ``task.instance_seeds("train")``).

    Returns:
        The JSON record: ``moves``, ``yaml`` (the preset's line), ``steps`` (each with
        its objective, per-task gains, kept and skipped fractions and runners-up),
        ``tasks``, ``seeds`` and ``normalisation``.

    Raises:
        ConfigError: no task, a task without ``true_value``/``truth_summary``, or no
            instance with a scale.
    """
    if not tasks:
        raise ConfigError("no task to choose the opening on; give --tasks")
    for name, task in tasks.items():
        if not callable(getattr(task, "truth_summary", None)):
            raise ConfigError(
                f"task {name!r} has no true_value/truth_summary; the opening is chosen on "
                "landscape tasks whose truth is known"
            )
    t0 = time.perf_counter()
    ranges = {n: (ranges or {}).get(n) or t.instance_seeds("train") for n, t in tasks.items()}
    seeds = {n: spread_seeds(ranges[n], instances) for n in tasks}
    families = {n: _Family(t, seeds[n]) for n, t in tasks.items()}
    for name, fam in families.items():
        if not fam.states:
            raise ConfigError(f"task {name!r}: no meta-train instance has a nonzero scale")
    singles: list[str] = []
    for fam in families.values():
        singles.extend(m for m in task_moves(fam.space) if m not in singles)
    single_moves = [parse_move(m) for m in singles]
    if log:
        print(
            f"{len(single_moves)} one-part moves over {len(tasks)} task(s), "
            f"{sum(len(f.states) for f in families.values())} instances",
            file=log,
        )
    chosen: list[Move] = []
    steps: list[dict[str, Any]] = []
    current, _ = _objective(families, None)
    for step in range(int(length)):
        scored = [(_objective(families, m), m) for m in single_moves]
        top = sorted(range(len(scored)), key=lambda i: -scored[i][0][0])[: max(0, bundle_top)]
        bundles = []
        for i, j in itertools.combinations(sorted(top), 2):
            a, b = single_moves[i], single_moves[j]
            if a.parts[0].role != b.parts[0].role:
                bundles.append(Move(a.parts + b.parts))
        scored += [(_objective(families, m), m) for m in bundles]
        order = sorted(range(len(scored)), key=lambda i: -scored[i][0][0])  # stable: ties
        (best_value, per_task), best = scored[order[0]]
        if not best_value > current + 1e-12:
            if log:
                print(f"step {step + 1}: no move improves the objective; stopping", file=log)
            break
        for fam in families.values():
            fam.play(best)
        chosen.append(best)
        steps.append(
            {
                "move": str(best),
                "objective": best_value,
                "improvement": best_value - current,
                "per_task": per_task,
                "runners_up": [
                    {"move": str(scored[i][1]), "objective": scored[i][0][0]}
                    for i in order[1 : 1 + runners_up]
                ],
            }
        )
        if log:
            print(
                f"step {step + 1}: {best}  objective {best_value:.4f} (+{best_value - current:.4f})"
                "  runners-up: "
                + ", ".join(f"{scored[i][1]} {scored[i][0][0]:.4f}" for i in order[1:4]),
                file=log,
            )
        current = best_value
    moves = [str(m) for m in chosen]
    return {
        "moves": moves,
        "yaml": yaml_line(moves),
        "objective": current,
        "steps": steps,
        "tasks": list(tasks),
        "seeds": {
            n: {
                "rule": f"{len(s)} seeds spread evenly over the meta-train range",
                "range": [
                    tasks[n].instance_seeds("train").start,
                    tasks[n].instance_seeds("train").stop,
                ],
                "count": len(families[n].states),
                "flat": families[n].flat,
            }
            for n, s in seeds.items()
        },
        "normalisation": NORMALISATION,
        "candidates": {"one_part": len(single_moves), "bundle_top": int(bundle_top)},
        "seconds": round(time.perf_counter() - t0, 1),
    }


def yaml_line(moves: Sequence[str]) -> str:
    """The ``moves:`` line of ``conf/agent/opening_tpe.yaml`` for ``moves``."""
    return "moves: [" + ", ".join(json.dumps(m) for m in moves) + "]"


def _train_ranges(names: Sequence[str]) -> dict[str, range]:
    """The ``train`` range of each name that is a family (:mod:`rsi_rl.core.families`)."""
    try:
        from rsi_rl.core.families import FAMILIES
    except ImportError:  # a checkout without families: the tasks' own ranges
        return {}
    return {n: FAMILIES[n].train for n in names if n in FAMILIES}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from rsi_rl.core.errors import RsiRlError
    from rsi_rl.core.registry import make_task

    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--tasks", nargs="+", required=True, help="task names (meta-train)")
    ap.add_argument("--exclude", nargs="*", default=[], help="tasks to leave out (held out)")
    ap.add_argument("--instances", type=int, default=200, help="meta-train instances per task")
    ap.add_argument("--length", type=int, default=3, help="moves in the opening")
    ap.add_argument("--bundle-top", type=int, default=6, help="bundle the N best moves in pairs")
    ap.add_argument("--out", type=Path, help="write the JSON record here")
    args = ap.parse_args(argv)
    try:
        unknown = sorted(set(args.exclude) - set(args.tasks))
        if unknown:
            raise ConfigError(f"--exclude {' '.join(unknown)}: not among --tasks")
        names = [t for t in args.tasks if t not in set(args.exclude)]
        tasks = {n: make_task(n) for n in names}
        out = choose_opening(
            tasks,
            args.instances,
            args.length,
            args.bundle_top,
            log=sys.stderr,
            ranges=_train_ranges(names),
        )
    except RsiRlError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    out["excluded"] = list(args.exclude)
    print("moves:", " ".join(out["moves"]) or "(none)")
    for name in out["tasks"]:
        final = out["steps"][-1]["per_task"][name]["gain"] if out["steps"] else 0.0
        print(f"  {name}: regret reduction {final:.4f}")
    print(out["yaml"])
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    main()
