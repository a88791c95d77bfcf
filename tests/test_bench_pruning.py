"""scripts/bench_pruning.py: pairs of a pruned and an unpruned bench, savings and regret."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from rsi_rl.analysis.folders import write_campaigns
from rsi_rl.analysis.results import Campaign


@pytest.fixture(scope="module")
def bp(script) -> Any:
    return script("bench_pruning")


def _campaign(instance: int, seconds: float, final: float, pruned: int = 0) -> Campaign:
    """A 2-experiment campaign on (instance, seed = instance), start 0.5 on fresh seeds."""
    return Campaign(
        agent="tpe",
        instance=instance,
        seed=instance,
        start=0.5,
        best=final,
        curve=[0.5, final],
        seconds=[seconds / 2, seconds],
        statuses={"ok": 2 - pruned, "pruned": pruned},
        start_fresh=0.5,
        final_fresh=final,
        final_fresh_values=[final],
    )


def _folder(path: Path, rows: list[Campaign]) -> Path:
    path.mkdir()
    write_campaigns(path / "campaigns.jsonl", rows)
    setup = {"task": "toy", "budget": 2, "direction": "maximize", "agents": ["tpe"]}
    (path / "bench.json").write_text(json.dumps({"setup": setup}))
    return path


def test_savings_is_one_minus_the_ratio_of_sums(bp):
    saved, lo, hi = bp.savings_ci([10.0, 30.0], [5.0, 15.0], n_boot=200)
    assert saved == pytest.approx(0.5)
    assert lo == pytest.approx(0.5) and hi == pytest.approx(0.5)  # every pair saves half
    saved, lo, hi = bp.savings_ci([10.0, 10.0, 10.0], [10.0, 5.0, 0.0], n_boot=2000)
    assert saved == pytest.approx(0.5) and lo < 0.5 < hi
    with pytest.raises(ValueError, match="pairs"):
        bp.savings_ci([1.0], [1.0, 2.0])


def test_script_pairs_the_arms_and_judges_the_target(bp, tmp_path, capsys):
    # unpruned: 10 s a campaign, final 1.0 (the best); pruned: 4 s, final 0.9 or 1.0
    off = _folder(tmp_path / "off", [_campaign(i, 10.0, 1.0) for i in range(4)])
    on = _folder(
        tmp_path / "on", [_campaign(i, 4.0, 0.9 if i == 0 else 1.0, pruned=1) for i in range(4)]
    )
    out, tsv = tmp_path / "s.json", tmp_path / "pairs.tsv"
    bp.main([str(off), str(on), "--out", str(out), "--tsv", str(tsv), "--margin", "0.5"])
    data = json.loads(out.read_text())
    s = data["summary"]
    assert s["pairs"] == 4 and s["pruned_runs"] == 4
    assert s["savings"] == pytest.approx(0.6)
    assert s["seconds_unpruned"] == pytest.approx(40.0)
    # regret on fresh seeds: (1.0 - 0.9) / (1.0 - 0.5) = 0.2 on the first pair, else 0
    assert [p["regret_on"] for p in data["pairs"]] == pytest.approx([0.2, 0.0, 0.0, 0.0])
    assert s["regret_diff_mean"] == pytest.approx(0.05)
    assert s["final_metric_diff_mean"] == pytest.approx(-0.025)  # pruned - unpruned, in units
    assert s["regret_wins_ties_losses"] == [0, 3, 1]
    assert s["non_inferior"] and s["target_met"]
    assert len(tsv.read_text().splitlines()) == 5
    assert "| `toy` | 4 |" in capsys.readouterr().out


def test_a_regret_ci_past_the_margin_misses_the_target(bp):
    rows = [
        bp.PairRow(i, i, 10.0, 2.0, 0.0, 0.6, 1.0, 0.7, 3, 0, 0) for i in range(5)
    ]  # large savings, but every pair is 0.6 worse
    s = bp.summarise_pairs(rows, margin=0.10, n_boot=200)
    assert s["savings"] == pytest.approx(0.8)
    assert not s["non_inferior"] and not s["target_met"]
    assert s["regret_diff_ci95"] == pytest.approx([0.6, 0.6])


def test_pairs_without_fresh_regret_are_left_out_of_the_regret_check(bp):
    rows = [
        bp.PairRow(0, 0, 10.0, 5.0, None, None, None, None, 1, 0, 0),
        bp.PairRow(1, 1, 10.0, 5.0, 0.1, 0.1, 0.9, 0.9, 1, 0, 0),
    ]
    s = bp.summarise_pairs(rows, n_boot=200)
    assert s["pairs"] == 2 and s["regret_pairs"] == 1
    assert s["regret_diff_mean"] == 0.0 and s["non_inferior"]
    assert math.isnan(bp.PairRow(0, 0, 0.0, 0.0, None, None, None, None, 0, 0, 0).savings)


def test_folders_without_shared_pairs_are_an_error(bp, tmp_path):
    off = _folder(tmp_path / "off", [_campaign(0, 10.0, 1.0)])
    on = _folder(tmp_path / "on", [_campaign(1, 4.0, 1.0)])
    with pytest.raises(SystemExit):
        bp.main([str(off), str(on)])
