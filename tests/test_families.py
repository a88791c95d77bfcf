"""Task families: disjoint train/val/test instance splits, seeds drawn from them, one-line
errors for bad names."""

from __future__ import annotations

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
    assert family("nb201").test == range(2000, 3000)
    for name in ("synth_smooth", "synth_rugged", "synth_cells", "synth_mixed"):
        f = family(name)
        assert (f.train, f.val, f.test) == (
            range(0, 10_000),
            range(10_000, 11_000),
            range(20_000, 21_000),
        )
        assert f.has_truth and f.kind == "synthetic"


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
        seen = [set(f.train), set(f.val), set(f.test)]
        assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    with pytest.raises(ValueError, match="overlap"):
        type(family("nb201"))("x", "x", range(0, 10), range(5, 20), range(30, 40), "table")


def test_synthetic_task_declares_the_same_val_split():
    cls = _task_class("synth_smooth")
    assert cls.val_seeds == family("synth_smooth").val
    assert cls.heldout_seeds == family("synth_smooth").test


def test_split_seeds():
    assert split_seeds("nb201", "val", 3) == [1000, 1001, 1002]
    assert split_seeds("nb201", "test", 2, offset=10) == [2010, 2011]
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
