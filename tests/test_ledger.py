"""The ledger: durable SQLite rows and results.tsv."""

from __future__ import annotations

from rsi_rl.ledger import Ledger, read_ledger


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
    assert lines[1].split("\t")[6] == "keep" and lines[2].split("\t")[6] == "discard"
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
