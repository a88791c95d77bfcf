"""Judging a finished run: the diagnostics of its log (the runs themselves are judged in
test_runner.py, through the real sandbox)."""

from __future__ import annotations

import pytest

from rsi_rl.exec.judge import diagnostics_from_log


def test_diagnostics_from_log():
    d = diagnostics_from_log(
        [{"train_loss": 2.0}, {"train_loss": 1.0}, {"train_loss": 0.5}, {"train_acc": 0.9}]
    )
    assert d["loss_ratio"] == pytest.approx(0.25) and d["slope"] < 0 and d["train_acc"] == 0.9
    assert diagnostics_from_log([{"train_loss": float("inf")}])["diverged"] == 1.0
    assert diagnostics_from_log([]) == {"diverged": 0.0}
