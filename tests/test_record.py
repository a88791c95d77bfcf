"""The experiment record: one dataclass whose field metadata gives the ledger, TSV and trackers."""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest

import rsi_rl.store.ledger
from rsi_rl.core.record import (
    CSV_FIELDS,
    LEDGER_COLUMNS,
    RESULT_FIELDS,
    TSV_COLUMNS,
    VOLATILE_KEYS,
    ExperimentRecord,
    record_field,
    schema_of,
)
from rsi_rl.exec.result import ExperimentResult
from rsi_rl.store.ledger import Ledger, read_ledger
from rsi_rl.tracking import CSVTracker, experiment_row


def _full(**kw) -> ExperimentRecord:
    """A record with every field set, as a campaign writes it."""
    fields = {
        "campaign": 2,
        "step": 3,
        "instance": "tabular/10000",
        "parent": "p" * 12,
        "candidate": "c" * 12,
        "kind": "lr_up",
        "description": "lr 0.01 -> 0.02",
        "config": {"lr": 0.02, "layers": [8, 8]},
        "diff": "--- a/config\n+++ b/config\n",
        "seed": 1234,
        "split": "val",
        "budget_seconds": 30.0,
        "status": "ok",
        "metric": 0.875,
        "metrics": {"val_acc": 0.875},
        "kept": True,
        "incumbent_metric": 0.875,
        "best_metric": 0.875,
        "reward": 0.25,
        "seconds": 1.5,
        "seconds_used": 4.5,
        "run_seconds": 1.25,
        "cpu_seconds": 1.0,
        "max_rss_mb": 100.0,
        "cached": False,
        "diagnostics": {"loss_ratio": 0.5},
        "message": "",
        "stderr_tail": "warning: x",
        "enforced": {"wall_clock": "enforced (30s)"},
        "started_at": "2024-01-01T00:00:00.000+00:00",
        "finished_at": "2024-01-01T00:00:01.500+00:00",
        "stdout_tail": "val_acc: 0.875",
    }
    return ExperimentRecord(**{**fields, **kw})


def test_a_record_written_to_the_ledger_reads_back_equal(tmp_path):
    rec = _full()
    led = Ledger(tmp_path, task="tabular", metric="val_acc")
    rid = led.append(rec)
    led.close()
    (row,) = read_ledger(tmp_path)
    # the ledger assigns the id; the campaign's running total is not a column
    assert ExperimentRecord.from_row(row) == dataclasses.replace(rec, id=rid, seconds_used=None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.metric = 1.0  # type: ignore[misc]


def test_the_derived_lists_keep_the_ledger_and_tsv_layout():
    assert [n for n, _ in LEDGER_COLUMNS] == [
        "id", "campaign", "step", "instance", "parent", "candidate", "kind", "description",
        "config", "diff", "seed", "split", "budget_seconds", "status", "metric", "metrics",
        "kept", "incumbent_metric", "best_metric", "reward", "seconds", "run_seconds",
        "cpu_seconds", "max_rss_mb", "cached", "diagnostics", "message", "stderr_tail",
        "enforced", "started_at", "finished_at", "stdout_tail",
    ]  # fmt: skip
    assert TSV_COLUMNS == (
        "id", "campaign", "step", "kind", "metric", "status", "kept", "seconds", "candidate",
        "description",
    )  # fmt: skip
    assert set(VOLATILE_KEYS) == {
        "started_at", "finished_at", "cached", "enforced", "stderr_tail", "stdout_tail",
        "campaign",
    }  # fmt: skip
    # every result field is one the runner's result takes
    assert set(RESULT_FIELDS) <= {f.name for f in dataclasses.fields(ExperimentResult)}


def test_results_tsv_lines_follow_the_tsv_columns(tmp_path):
    led = Ledger(tmp_path, task="tabular", metric="val_acc")
    led.append(_full())
    led.append(_full(step=4, status="crash", metric=None, kept=False, description="a\tb"))
    led.close()
    lines = (tmp_path / "results.tsv").read_text().splitlines()
    assert lines == [
        "id\tcampaign\tstep\tkind\tval_acc\tstatus\tkept\tseconds\tcandidate\tdescription",
        f"1\t2\t3\tlr_up\t0.875000\tok\tkept\t1.500\t{'c' * 12}\tlr 0.01 -> 0.02",
        f"2\t2\t4\tlr_up\t\tcrash\t-\t1.500\t{'c' * 12}\ta b",
    ]


@dataclasses.dataclass(frozen=True, kw_only=True)
class _WithGpu(ExperimentRecord):
    gpu_seconds: float | None = record_field(sql="REAL", added=True, tsv=10, csv=True)


def test_a_field_added_with_metadata_reaches_the_ledger_and_tsv(tmp_path, monkeypatch):
    schema = schema_of(_WithGpu)
    assert schema.ledger_columns[-1] == ("gpu_seconds", "REAL")
    assert schema.tsv_columns[-1] == "gpu_seconds" and "gpu_seconds" in schema.added_columns
    assert schema.csv_fields[-1] == "gpu_seconds"
    Ledger(tmp_path, task="tabular").close()  # an older ledger, without the column
    monkeypatch.setattr(rsi_rl.store.ledger, "SCHEMA", schema)
    led = Ledger(tmp_path, task="tabular")  # gains the column
    led.append(_WithGpu(**_full().to_dict(), gpu_seconds=0.5))
    led.close()
    (row,) = read_ledger(tmp_path)
    assert _WithGpu.from_row(row).gpu_seconds == 0.5
    header, line = (tmp_path / "results.tsv").read_text().splitlines()
    assert header.endswith("\tgpu_seconds") and line.endswith("\t0.5")


def test_bad_positions_fail_naming_the_fix():
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Clash(ExperimentRecord):
        extra: str | None = record_field(sql="TEXT", tsv=3)

    with pytest.raises(TypeError, match=r"tsv positions .* fix the tsv= of its fields"):
        schema_of(Clash)


def test_an_old_ledger_without_stdout_tail_still_reads(tmp_path):
    led = Ledger(tmp_path, task="tabular")
    led.append(_full())
    led.close()
    db = sqlite3.connect(tmp_path / "ledger.sqlite")
    db.execute("ALTER TABLE experiments DROP COLUMN stdout_tail")  # as written before it existed
    db.commit()
    db.close()
    (row,) = read_ledger(tmp_path)
    assert "stdout_tail" not in row
    rec = ExperimentRecord.from_row(row)
    assert rec.stdout_tail is None and rec.metric == 0.875 and rec.kept is True


def test_from_row_decodes_raw_columns_and_needs_kind_and_status():
    rec = ExperimentRecord.from_row(
        {"kind": "baseline", "status": "ok", "kept": 1, "cached": 0, "config": '{"lr": 1}',
         "metrics": None, "unknown_column": "ignored"}
    )  # fmt: skip
    assert rec.kept is True and rec.cached is False and rec.config == {"lr": 1}
    assert rec.metrics == {} and rec.split == "val"
    with pytest.raises(ValueError, match="lacks status"):
        ExperimentRecord.from_row({"kind": "lr_up"})


def test_result_fields_round_trip_through_the_runner_result():
    result = ExperimentResult(
        status="ok", metrics={"val_acc": 0.5}, seconds=2.0, stdout_tail="x", cached=True
    )
    rec = ExperimentRecord.from_result(result, kind="lr_up", metric=0.5)
    assert rec.status == "ok" and rec.metrics == {"val_acc": 0.5} and rec.cached is True
    assert ExperimentResult(**rec.result_fields()) == result
    sparse = ExperimentRecord(kind="stop", status="stopped")
    assert ExperimentResult(**sparse.result_fields()) == ExperimentResult(status="stopped")


def test_to_dict_without_volatile_fields_is_what_a_rerun_reproduces():
    a = _full(id=7).to_dict(volatile=False)
    b = _full(campaign=9, started_at="later", stderr_tail="other", cached=True).to_dict(
        volatile=False
    )
    assert a == b and "id" not in a and not set(VOLATILE_KEYS) & set(a)
    rec = _full()
    d = rec.to_dict()
    d["config"]["lr"] = 99.0  # a copy: the frozen record keeps its value
    assert rec.config["lr"] == 0.02


def test_trackers_take_a_record_or_its_dict(tmp_path):
    rec = _full(diff="x" * 50)
    assert experiment_row(rec, max_diff=10) == experiment_row(rec.to_dict(), max_diff=10)
    row = experiment_row(rec)
    assert row["edit"] == rec.description and row["kept"] is True and row["metric"] == 0.875
    tracker = CSVTracker()
    tracker.start(tmp_path, {})
    tracker.log_experiment(rec, {"seconds_used": 4.5})
    tracker.finish()
    header, line = (tmp_path / "progress.csv").read_text().splitlines()
    assert header.split(",") == list(CSV_FIELDS)
    assert line == "3,lr_up,ok,0.875,True,0.875,0.875,0.25,1.5,4.5"
