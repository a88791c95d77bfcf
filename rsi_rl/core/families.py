"""Task families and their instance splits: which instance seeds serve which purpose.

A *family* is a task with its instance seeds cut into three disjoint ranges:

- ``train``: meta-training (a learned agent may see these instances);
- ``val``: choosing designs (agents, settings, protocols); benches run here by default;
- ``test``: the headline only. Run a bench on ``split=test`` once, with a protocol
  written and committed beforehand; never tune anything on its numbers.

Landscape families (``kind`` ``table`` or ``synthetic``) know every candidate's true
seed-mean value; ``trained`` families train a program per experiment, and their ``val``
range is carved from the task's meta-train seeds (``test`` is the task's held-out range).

Example::

    >>> from rsi_rl.core.families import family, split_seeds
    >>> family("nb201").val
    range(1000, 2000)
    >>> split_seeds("synth_smooth", "test", 3)
    [20000, 20001, 20002]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rsi_rl.core.errors import ConfigError

Kind = Literal["table", "synthetic", "trained"]
Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class Family:
    """A task (``task=<name>``) with its instance seeds split into train, val and test.

    Args:
        name: the family's name (``family=<name>`` of ``rsi-rl bench``).
        task: the registry name of its task.
        train: instance seeds for meta-training.
        val: instance seeds for choosing designs (a bench's default split).
        test: instance seeds for the headline only.
        kind: ``table`` (a tabulated benchmark), ``synthetic`` (a formula) or ``trained``
            (each experiment trains a program); the first two have true values.
    """

    name: str
    task: str
    train: range
    val: range
    test: range
    kind: Kind

    def __post_init__(self) -> None:
        ranges = [(s, self.split(s)) for s in SPLITS]
        for i, (a, ra) in enumerate(ranges):
            for b, rb in ranges[i + 1 :]:
                if ra and rb and max(ra.start, rb.start) < min(ra.stop, rb.stop):
                    raise ValueError(f"family {self.name!r}: splits {a} and {b} overlap")

    def split(self, split: str) -> range:
        """The instance seeds of ``split`` (``train``, ``val`` or ``test``)."""
        if split not in SPLITS:
            raise ConfigError(f"split={split!r} is not a split; use one of: {', '.join(SPLITS)}")
        out: range = getattr(self, split)
        return out

    @property
    def has_truth(self) -> bool:
        """Whether the family's task knows true values (a table or a formula)."""
        return self.kind in ("table", "synthetic")


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "hpobench", "hpobench", range(0, 4000), range(4000, 6000), range(6000, 8000), "table"
        ),
        Family("nb201", "nb201", range(0, 1000), range(1000, 2000), range(2000, 3000), "table"),
        Family(
            "synth_smooth",
            "synth_smooth",
            range(0, 10_000),
            range(10_000, 11_000),
            range(20_000, 21_000),
            "synthetic",
        ),
        Family(
            "synth_rugged",
            "synth_rugged",
            range(0, 10_000),
            range(10_000, 11_000),
            range(20_000, 21_000),
            "synthetic",
        ),
        Family(
            "synth_cells",
            "synth_cells",
            range(0, 10_000),
            range(10_000, 11_000),
            range(20_000, 21_000),
            "synthetic",
        ),
        Family(
            "synth_mixed",
            "synth_mixed",
            range(0, 10_000),
            range(10_000, 11_000),
            range(20_000, 21_000),
            "synthetic",
        ),
        # trained tasks: val is the top of the task's meta-train seeds, test its held-out seeds
        Family(
            "tabular",
            "tabular",
            range(0, 9000),
            range(9000, 10_000),
            range(10_000, 10_100),
            "trained",
        ),
        Family(
            "mlp2", "mlp2", range(0, 9000), range(9000, 10_000), range(10_000, 10_100), "trained"
        ),
        Family(
            "digits_mlp", "digits_mlp", range(10, 900), range(900, 1000), range(0, 10), "trained"
        ),
        Family("char_lm", "char_lm", range(10, 900), range(900, 1000), range(0, 10), "trained"),
    )
}


def family(name: str) -> Family:
    """The family ``name``; a bad name raises :class:`ConfigError` naming the known ones."""
    try:
        return FAMILIES[str(name)]
    except KeyError:
        raise ConfigError(
            f"unknown family {name!r}; known families: {', '.join(sorted(FAMILIES))}"
        ) from None


def split_seeds(name: str, split: str, n: int, offset: int = 0) -> list[int]:
    """The instance seeds ``offset .. offset + n - 1`` (in order) of family ``name``'s ``split``.

    Raises:
        ConfigError: a bad family or split name, ``n < 1``, or more seeds than the split has.
    """
    seeds = family(name).split(split)
    if int(n) < 1 or int(offset) < 0:
        raise ConfigError(f"split_seeds needs n >= 1 and offset >= 0, got n={n} offset={offset}")
    if int(offset) + int(n) > len(seeds):
        raise ConfigError(
            f"family {name} split {split} has {len(seeds)} instances; asked for {n} from "
            f"offset {offset}"
        )
    return list(seeds[int(offset) : int(offset) + int(n)])


__all__ = ["FAMILIES", "SPLITS", "Family", "Kind", "Split", "family", "split_seeds"]
