"""Task families and their instance splits: which instance seeds serve which purpose.

A *family* is a task with its instance seeds cut into three disjoint ranges:

- ``train``: meta-training (a learned agent may see these instances);
- ``val``: choosing designs (agents, settings, protocols); benches run here by default;
- ``test``: the headline only. Run a bench on ``split=test`` once, with a protocol
  written and committed beforehand; never tune anything on its numbers.

A test block serves one headline. Once its headline is out, the block moves to the
family's ``retired`` blocks, which no split returns (so neither ``rsi-rl bench
family=...`` nor :func:`split_seeds` hands them out again), and the family gets a fresh
``test`` block, declared here before any run on it. A fresh block draws its instances
the way the old one did (for a table family, from the same data sets), and no two of
train, val, test and the retired blocks may overlap.

Landscape families (``kind`` ``table`` or ``synthetic``) know every candidate's true
seed-mean value; ``trained`` families train a program per experiment, and their ``val``
range is carved from the task's meta-train seeds (``test`` is the task's held-out range).
A task's own held-out seeds (``heldout_seeds``, what a tool run without a family draws
from) are its family's first test block, so for a family with retired blocks they are
retired instances, not its current ``test``.

Example::

    >>> from rsi_rl.core.families import family, split_seeds
    >>> family("nb201").val
    range(1000, 2000)
    >>> split_seeds("synth_smooth", "test", 3)
    [21000, 21001, 21002]
    >>> family("hpobench").retired
    (range(6000, 8000),)
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
        test: instance seeds for the next headline only, never run before it.
        kind: ``table`` (a tabulated benchmark), ``synthetic`` (a formula) or ``trained``
            (each experiment trains a program); the first two have true values.
        retired: test blocks whose headline is out. No split returns them; each is used
            once, then the family's ``test`` becomes a fresh block that draws instances
            the same way.

    Raises:
        ValueError: two of train, val, test and the retired blocks overlap, or a retired
            block is not a ``range``.
    """

    name: str
    task: str
    train: range
    val: range
    test: range
    kind: Kind
    retired: tuple[range, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.retired, tuple) or not all(
            isinstance(r, range) for r in self.retired
        ):
            raise ValueError(
                f"family {self.name!r}: retired must be a tuple of ranges, got {self.retired!r}"
            )
        blocks: list[tuple[str, range]] = [(s, self.split(s)) for s in SPLITS]
        blocks += [(f"retired block {r.start}-{r.stop - 1}", r) for r in self.retired]
        for i, (a, ra) in enumerate(blocks):
            for b, rb in blocks[i + 1 :]:
                if ra and rb and max(ra.start, rb.start) < min(ra.stop, rb.stop):
                    what = f"splits {a} and {b}" if b in SPLITS else f"{a} and {b}"
                    raise ValueError(f"family {self.name!r}: {what} overlap")

    def split(self, split: str) -> range:
        """The instance seeds of ``split`` (``train``, ``val`` or ``test``; never a retired
        block)."""
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
        # table families: a block of 1,000 seeds is one data set, so a fresh test block
        # is the seeds of the retired one plus a multiple of the number of data sets x 1,000
        Family(
            "hpobench",  # data set (s // 1000) % 8: blood_transfusion, credit_g
            "hpobench",
            range(0, 4000),
            range(4000, 6000),
            range(14_000, 16_000),
            "table",
            retired=(range(6000, 8000),),
        ),
        Family(
            "nb201",  # data set (s // 1000) % 3: imagenet
            "nb201",
            range(0, 1000),
            range(1000, 2000),
            range(5000, 6000),
            "table",
            retired=(range(2000, 3000),),
        ),
        Family(
            "synth_smooth",
            "synth_smooth",
            range(0, 10_000),
            range(10_000, 11_000),
            range(21_000, 22_000),
            "synthetic",
            retired=(range(20_000, 21_000),),
        ),
        Family(
            "synth_rugged",
            "synth_rugged",
            range(0, 10_000),
            range(10_000, 11_000),
            range(21_000, 22_000),
            "synthetic",
            retired=(range(20_000, 21_000),),
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
