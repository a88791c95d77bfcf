"""The ledger: durable SQLite rows and results.tsv."""

from __future__ import annotations

import errno
import logging
import os
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from rsi_rl.core.errors import ConfigError
from rsi_rl.store.ledger import Ledger, read_ledger, write_failure


def _rec(i: int, **kw):
    return {
        "campaign": 1,
        "step": i,
        "kind": "lr_up",
        "status": "ok",
        "metric": 0.5 + i / 100,
        "kept": i % 2 == 0,
        "seconds": 0.1,
        "config": {"lr": 0.1 * i},
        "description": "lr\tup\nx",
        **kw,
    }


def test_append_read_back_and_tsv(tmp_path):
    led = Ledger(tmp_path, task="tabular", metric="val_acc")
    ids = [led.append(_rec(i)) for i in range(3)]
    led.append(_rec(3, status="crash", metric=None, kept=False))
    assert ids == [1, 2, 3]
    rows = read_ledger(tmp_path)
    assert [r["step"] for r in rows] == [0, 1, 2, 3]
    assert rows[1]["config"] == {"lr": 0.1}
    assert led.meta() == {"task": "tabular", "metric": "val_acc"}
    lines = (tmp_path / "results.tsv").read_text().splitlines()
    assert lines[0].split("\t")[:5] == ["id", "campaign", "step", "kind", "val_acc"]
    assert len(lines) == 5 and all(len(ln.split("\t")) == len(lines[0].split("\t")) for ln in lines)
    assert lines[1].split("\t")[6] == "kept" and lines[2].split("\t")[6] == "reverted"
    assert lines[4].split("\t")[5] == "crash" and lines[4].split("\t")[4] == ""
    led.close()


def test_reopen_continues_and_counts_campaigns(tmp_path):
    led = Ledger(tmp_path, task="t")
    led.append(_rec(0))
    led.close()
    led = Ledger(tmp_path, task="t")  # a resumed or second run appends to the same ledger
    assert led.next_campaign() == 2
    led.append(_rec(1, campaign=2))
    assert len(led.rows()) == 2 and len(led.rows(campaign=2)) == 1
    assert len((tmp_path / "results.tsv").read_text().splitlines()) == 3
    led.close()


def test_rows_are_committed_before_close(tmp_path):
    led = Ledger(tmp_path)
    led.append(_rec(0))
    # another reader sees the row while the writer is still open: nothing waits for close()
    assert len(read_ledger(tmp_path)) == 1
    led.close()


# ---------------------------------------------------------------------------- one writer
def test_a_second_writer_fails_naming_the_first(tmp_path):
    first = Ledger(tmp_path, task="t")
    first.append(_rec(0))
    with pytest.raises(
        ConfigError, match=rf"in use by another rsi-rl run \(pid {os.getpid()}, since"
    ):
        Ledger(tmp_path, task="t")
    assert len(read_ledger(tmp_path)) == 1  # readers take no lock
    first.close()
    again = Ledger(tmp_path, task="t")  # closing released the lock
    assert len(again.rows()) == 1
    again.close()


def test_campaign_numbers_are_reserved_once(tmp_path):
    led = Ledger(tmp_path, task="t")
    assert [led.next_campaign(), led.next_campaign()] == [1, 2]  # no row yet: still distinct
    led.close()
    led = Ledger(tmp_path, task="t")
    assert led.next_campaign() == 3
    led.close()


# ---------------------------------------------------------------------------- damage
def _truncated(path: Path) -> None:
    led = Ledger(path, task="t")
    for i in range(200):
        led.append(_rec(i, diff="x" * 2000))
    led.close()
    db = path / "ledger.sqlite"
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])


def _not_a_ledger(path: Path) -> None:
    db = sqlite3.connect(path / "ledger.sqlite")
    db.execute("CREATE TABLE other (x INTEGER)")
    db.commit()
    db.close()


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda p: (p / "ledger.sqlite").write_bytes(b""), "is empty (0 bytes)"),
        (_truncated, "is damaged"),
        (
            lambda p: (p / "ledger.sqlite").write_bytes(random.Random(0).randbytes(8192)),
            "is not a SQLite database",
        ),
        (_not_a_ledger, "has no experiments table"),
    ],
    ids=["empty", "truncated", "random_bytes", "other_database"],
)
def test_a_damaged_ledger_is_reported_never_repaired(tmp_path, damage, expected):
    damage(tmp_path)
    before = (tmp_path / "ledger.sqlite").read_bytes()
    for open_it in (lambda: Ledger(tmp_path, task="t"), lambda: read_ledger(tmp_path)):
        with pytest.raises(ConfigError) as exc:
            open_it()
        msg = str(exc.value)
        assert f"run directory {tmp_path}: ledger.sqlite {expected}" in msg
        assert "start a new run directory" in msg and "\n" not in msg
    assert (tmp_path / "ledger.sqlite").read_bytes() == before
    Ledger(tmp_path / "other", task="t").close()  # the lock was released on failure
    assert not list(tmp_path.glob(".ledger.sqlite*"))


def test_a_hand_edited_results_tsv_is_rewritten_from_the_ledger(tmp_path, caplog):
    led = Ledger(tmp_path, task="t", metric="val_acc")
    for i in range(3):
        led.append(_rec(i))
    led.close()
    tsv = tmp_path / "results.tsv"
    good = tsv.read_text()
    lines = good.splitlines(keepends=True)
    tsv.write_text(lines[0] + lines[1] + lines[2].replace("kept", "reverted"))
    with caplog.at_level(logging.WARNING, logger="rsi_rl"):
        Ledger(tmp_path, task="t", metric="val_acc").close()
    assert tsv.read_text() == good
    assert [r.getMessage() for r in caplog.records] == [
        "results.tsv did not match ledger.sqlite (2 rows vs 3); rewritten from the ledger"
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rsi_rl"):
        Ledger(tmp_path, task="t", metric="val_acc").close()  # in step: nothing to say
    assert not caplog.records and tsv.read_text() == good


# ---------------------------------------------------------------------------- failed writes
def test_a_full_disk_is_one_line_and_keeps_the_ledger(tmp_path):
    led = Ledger(tmp_path, task="t")
    led.append(_rec(0))
    tsv = tmp_path / "results.tsv"
    tsv.unlink()
    tsv.symlink_to("/dev/full")  # every write there fails with ENOSPC
    with pytest.raises(ConfigError) as exc:
        led.append(_rec(1))
    assert str(exc.value) == (
        f"cannot write the ledger in {tmp_path}: disk is full; free space and resume with "
        f"resume={tmp_path} — every finished experiment is kept"
    )
    led.close()
    assert [r["step"] for r in read_ledger(tmp_path)] == [0, 1]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (sqlite3.OperationalError("database or disk is full"), ": disk is full; free space"),
        (
            sqlite3.OperationalError("attempt to write a readonly database"),
            ": it is read-only (attempt to write a readonly database); make it writable",
        ),
        (OSError(errno.EROFS, "Read-only file system"), ": it is read-only"),
    ],
)
def test_write_failures_name_the_cause_and_resume(tmp_path, error, expected):
    msg = str(write_failure(tmp_path, error))
    assert msg.startswith(f"cannot write the ledger in {tmp_path}{expected}")
    assert msg.endswith(f"resume with resume={tmp_path} — every finished experiment is kept")


def _read_only_mount(path: Path) -> list[str]:
    """A command prefix that runs its command with ``path`` mounted read-only."""
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"mount --bind -o ro {path} {path} && ! touch {path}/x"],
        capture_output=True,
    )
    if probe.returncode != 0:
        pytest.skip("needs unshare -m and mount (root) to make a read-only directory")
    return ["unshare", "-m", "sh", "-c", f'mount --bind -o ro {path} {path} && exec "$@"', "sh"]


def test_a_read_only_run_directory_is_one_line(tmp_path):
    Ledger(tmp_path, task="t").close()
    code = "from rsi_rl.store.ledger import Ledger; Ledger(__import__('sys').argv[1], task='t')"
    p = subprocess.run(
        [*_read_only_mount(tmp_path), sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert p.returncode != 0
    last = p.stderr.strip().splitlines()[-1]
    assert (
        last.startswith("rsi_rl.core.errors.RunDirError: run directory ") and "not writable" in last
    )


def test_program_text_is_scrubbed_of_secrets_before_it_is_stored(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_SECRET_TOKEN", "hunter2-very-secret")
    led = Ledger(tmp_path, task="tabular", metric="val_acc")
    leak = "FAKE_SECRET_TOKEN=hunter2-very-secret\x00HOME=/root"
    led.append(_rec(0, message=leak[:40], stderr_tail=leak, stdout_tail="key hunter2-very-secret"))
    led.close()
    (row,) = read_ledger(tmp_path)
    for col in ("message", "stderr_tail", "stdout_tail"):
        assert "hunter2" not in row[col] and "REDACTED" in row[col], (col, row[col])


def test_meta_holds_the_metric_direction_and_stdout_is_kept(tmp_path):
    led = Ledger(tmp_path, task="char_lm", metric="val_loss", direction="minimize")
    led.append(_rec(0, stdout_tail="val_loss: 1.25"))
    assert led.meta()["direction"] == "minimize"
    led.close()
    assert read_ledger(tmp_path)[0]["stdout_tail"] == "val_loss: 1.25"


def test_a_ledger_without_the_stdout_column_gains_it(tmp_path):
    led = Ledger(tmp_path, task="tabular", metric="val_acc")
    led.append(_rec(0))
    led.close()
    db = sqlite3.connect(tmp_path / "ledger.sqlite")
    db.execute("ALTER TABLE experiments DROP COLUMN stdout_tail")  # as written before it existed
    db.commit()
    db.close()
    assert "stdout_tail" not in read_ledger(tmp_path)[0]  # readers do without it
    led = Ledger(tmp_path, task="tabular", metric="val_acc")
    led.append(_rec(1, stdout_tail="done"))
    led.close()
    rows = read_ledger(tmp_path)
    assert [r["stdout_tail"] for r in rows] == [None, "done"]
