"""Task families: disjoint train/val/test instance splits and retired test blocks, seeds
drawn from them, one-line errors for bad names."""

from __future__ import annotations

import doctest
import importlib

import pytest

from rsi_rl.core.errors import ConfigError
from rsi_rl.core.families import FAMILIES, family, split_seeds
from rsi_rl.core.registry import BUILTIN_TASKS


def _task_class(name: str):
    module, _, cls = BUILTIN_TASKS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def test_landscape_splits_are_the_declared_ranges():
    assert family("hpobench").split("val") == range(4000, 6000)
    assert family("hpobench").test == range(14_000, 16_000)
    assert family("hpobench").retired == (range(6000, 8000),)
    assert family("nb201").test == range(5000, 6000)
    assert family("nb201").retired == (range(2000, 3000),)
    for name in ("synth_smooth", "synth_rugged", "synth_cells", "synth_mixed"):
        f = family(name)
        assert (f.train, f.val) == (range(0, 10_000), range(10_000, 11_000))
        assert f.has_truth and f.kind == "synthetic"
    for name in ("synth_smooth", "synth_rugged"):
        assert family(name).test == range(21_000, 22_000)
        assert family(name).retired == (range(20_000, 21_000),)
    for name in ("synth_cells", "synth_mixed"):
        assert family(name).test == range(20_000, 21_000) and family(name).retired == ()


@pytest.mark.parametrize("name", ["hpobench", "nb201"])
def test_a_fresh_table_test_block_draws_the_retired_blocks_data_sets(name):
    from rsi_rl.core.registry import make_task

    f = family(name)
    task = make_task(f.task)
    old = [task.dataset_of(s) for r in f.retired for s in r]
    new = [task.dataset_of(s) for s in f.test]
    assert len(new) == len(f.retired[0]) and sorted(new) == sorted(old)
    for s in (f.test.start, f.test.stop - 1):  # the task makes these instances
        assert task.make_instance(s).info["dataset"] == task.dataset_of(s)


def test_no_split_returns_a_retired_block():
    for f in FAMILIES.values():
        for r in f.retired:
            for s in ("train", "val", "test"):
                assert not set(r) & set(f.split(s)), (f.name, s, r)
    with pytest.raises(ConfigError, match="not a split"):
        family("hpobench").split("retired")
    with pytest.raises(ConfigError, match=r"^family nb201 split test has 1000 instances"):
        split_seeds("nb201", "test", 1001)


def test_a_family_refuses_a_retired_block_that_overlaps_a_split_or_another():
    cls = type(family("nb201"))
    splits = (range(0, 10), range(10, 20), range(30, 40))
    assert cls("x", "x", *splits, "table", retired=(range(20, 30),)).retired == (range(20, 30),)
    for retired, what in [
        ((range(35, 45),), "test and retired block 35-44"),
        ((range(5, 6),), "train and retired block 5-5"),
        ((range(40, 50), range(45, 55)), "retired block 40-49 and retired block 45-54"),
    ]:
        with pytest.raises(ValueError, match=f"^family 'x': {what} overlap$"):
            cls("x", "x", *splits, "table", retired=retired)
    with pytest.raises(ValueError, match="retired must be a tuple of ranges"):
        cls("x", "x", *splits, "table", retired=range(40, 50))  # type: ignore[arg-type]


def test_module_examples():
    from rsi_rl.core import families

    assert doctest.testmod(families).failed == 0


@pytest.mark.parametrize("name", ["tabular", "mlp2", "digits_mlp", "char_lm"])
def test_trained_families_carve_val_from_meta_train_and_test_is_held_out(name):
    f = family(name)
    cls = _task_class(f.task)
    meta = cls.meta_train_seeds
    assert f.kind == "trained" and not f.has_truth
    assert f.test == cls.heldout_seeds
    for r in (f.train, f.val):
        assert r.start >= meta.start and r.stop <= meta.stop


def test_every_family_names_a_registered_task_and_splits_are_disjoint():
    for f in FAMILIES.values():
        assert f.task in BUILTIN_TASKS
        seen = [set(f.train), set(f.val), set(f.test), *(set(r) for r in f.retired)]
        for i, a in enumerate(seen):
            assert not any(a & b for b in seen[i + 1 :]), f.name
    with pytest.raises(ValueError, match="overlap"):
        type(family("nb201"))("x", "x", range(0, 10), range(5, 20), range(30, 40), "table")


@pytest.mark.parametrize(
    "name", ["hpobench", "nb201", "synth_smooth", "synth_rugged", "synth_cells", "synth_mixed"]
)
def test_landscape_task_declares_the_same_splits(name):
    """The task's own ranges are its family's train, val and first test block (retired once
    its headline is out), so a tool run without a family never draws the current test."""
    f = family(name)
    cls = _task_class(f.task)
    assert (cls.meta_train_seeds, cls.val_seeds) == (f.train, f.val)
    assert cls.heldout_seeds == (f.retired[0] if f.retired else f.test)


def test_split_seeds():
    assert split_seeds("nb201", "val", 3) == [1000, 1001, 1002]
    assert split_seeds("nb201", "test", 2, offset=10) == [5010, 5011]
    assert split_seeds("hpobench", "test", 2, offset=1000) == [15_000, 15_001]
    with pytest.raises(ConfigError, match="has 1000 instances; asked for 5 from offset 998"):
        split_seeds("nb201", "train", 5, offset=998)
    with pytest.raises(ConfigError, match=r"^split='heldout' is not a split; use one of: train"):
        split_seeds("nb201", "heldout", 1)


def test_bad_family_name_is_one_line_naming_the_known_ones():
    with pytest.raises(ConfigError) as exc:
        family("nb210")
    msg = str(exc.value)
    assert msg.startswith("unknown family 'nb210'; known families: char_lm, digits_mlp, hpobench")
    assert "\n" not in msg


def test_bench_refuses_a_bad_family_and_a_task_not_of_the_family(tmp_path):
    from rsi_rl.analysis.bench import bench

    with pytest.raises(ConfigError, match="^unknown family 'nope'"):
        bench("synth_smooth", ["random"], tmp_path, budget=1, seeds=1, family="nope")
    with pytest.raises(ConfigError, match="^family nb201 runs task nb201, not synth_smooth"):
        bench("synth_smooth", ["random"], tmp_path, budget=1, seeds=1, family="nb201")
    with pytest.raises(
        ConfigError, match=r"instances \[5\] are not in family synth_smooth split val"
    ):
        bench(
            "synth_smooth",
            ["random"],
            tmp_path,
            budget=1,
            seeds=1,
            family="synth_smooth",
            instances=[5],
        )


def test_bench_refuses_retired_test_instances_in_one_line(tmp_path):
    from rsi_rl.analysis.bench import bench

    with pytest.raises(ConfigError) as exc:
        bench(
            "nb201",
            ["random"],
            tmp_path,
            budget=1,
            seeds=1,
            family="nb201",
            split="test",
            instances=[2000, 5000, 9000],
        )
    msg = str(exc.value)
    assert msg == (
        "instances [2000, 9000] are not in family nb201 split test (5000-5999); [2000] are in "
        "its retired test blocks (2000-2999); pick instances of the split, or another split"
    )
    with pytest.raises(ConfigError, match=r"^instances \[2000\] are not in family nb201 split val"):
        bench("nb201", ["random"], tmp_path, budget=1, seeds=1, family="nb201", instances=[2000])
