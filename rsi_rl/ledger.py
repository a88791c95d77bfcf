"""The ledger: every experiment of a run, durably, in SQLite, plus ``results.tsv``.

Each experiment is committed in its own transaction before the next one starts, so a
run killed at any point keeps everything it finished. ``results.tsv`` mirrors the ledger
in autoresearch's spirit: one tab-separated row per experiment, grep-able.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "INTEGER PRIMARY KEY AUTOINCREMENT"),
    ("campaign", "INTEGER"),
    ("step", "INTEGER"),
    ("instance", "TEXT"),
    ("parent", "TEXT"),
    ("candidate", "TEXT"),
    ("kind", "TEXT"),
    ("description", "TEXT"),
    ("config", "TEXT"),
    ("diff", "TEXT"),
    ("seed", "INTEGER"),
    ("split", "TEXT"),
    ("budget_seconds", "REAL"),
    ("status", "TEXT"),
    ("metric", "REAL"),
    ("metrics", "TEXT"),
    ("kept", "INTEGER"),
    ("incumbent_metric", "REAL"),
    ("best_metric", "REAL"),
    ("reward", "REAL"),
    ("seconds", "REAL"),
    ("run_seconds", "REAL"),
    ("cpu_seconds", "REAL"),
    ("max_rss_mb", "REAL"),
    ("cached", "INTEGER"),
    ("diagnostics", "TEXT"),
    ("message", "TEXT"),
    ("stderr_tail", "TEXT"),
    ("enforced", "TEXT"),
    ("started_at", "TEXT"),
    ("finished_at", "TEXT"),
)
JSON_COLUMNS = {"config", "metrics", "diagnostics", "enforced"}
TSV_COLUMNS = (
    "id",
    "campaign",
    "step",
    "kind",
    "metric",
    "status",
    "kept",
    "seconds",
    "candidate",
    "description",
)


class Ledger:
    """An append-only experiment record in ``<run_dir>/ledger.sqlite`` and ``results.tsv``.

    Several processes may append to one ledger (WAL mode, busy timeout).
    """

    def __init__(self, run_dir: str | Path, task: str = "", metric: str = "metric"):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / "ledger.sqlite"
        self.tsv_path = self.run_dir / "results.tsv"
        self.metric_name = metric
        self._db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        cols = ", ".join(f"{name} {kind}" for name, kind in COLUMNS)
        self._db.execute(f"CREATE TABLE IF NOT EXISTS experiments ({cols})")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        if task:
            self.set_meta("task", task)
            self.set_meta("metric", metric)
        if not self.tsv_path.exists():
            self.tsv_path.write_text("\t".join(TSV_COLUMNS).replace("metric", metric, 1) + "\n")

    def set_meta(self, key: str, value: Any) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            (key, json.dumps(value, default=str)),
        )

    def meta(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self._db.execute("SELECT key, value FROM meta")}

    def next_campaign(self) -> int:
        row = self._db.execute("SELECT MAX(campaign) FROM experiments").fetchone()
        return int(row[0] or 0) + 1

    def find(self, campaign: int, step: int, split: str, kind: str) -> int | None:
        """Id of an already recorded experiment (a resumed run replays it), or None."""
        row = self._db.execute(
            "SELECT id FROM experiments WHERE campaign = ? AND step = ? AND split = ? AND kind = ?",
            (campaign, step, split, kind),
        ).fetchone()
        return int(row[0]) if row else None

    def append(self, record: dict[str, Any]) -> int:
        """Commit one experiment record; returns its ledger id.

        A record already in the ledger (same campaign, step, split and kind: a resumed run
        replaying its history) is not written twice; its existing id is returned.
        """
        if record.get("campaign") is not None and record.get("step") is not None:
            found = self.find(
                record["campaign"],
                record["step"],
                record.get("split", "val"),
                record.get("kind", ""),
            )
            if found is not None:
                return found
        names = [n for n, _ in COLUMNS if n != "id" and n in record]
        values = [
            json.dumps(record[n], default=str) if n in JSON_COLUMNS else record[n] for n in names
        ]
        cur = self._db.execute(
            f"INSERT INTO experiments ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
            values,
        )
        rid = int(cur.lastrowid or 0)
        row = {**record, "id": rid}
        cells = []
        for col in TSV_COLUMNS:
            v = row.get(col, "")
            if col == "metric":
                v = "" if v is None else f"{float(v):.6f}"
            elif col == "seconds":
                v = f"{float(v or 0):.3f}"
            elif col == "kept":
                v = "keep" if v else ("discard" if row.get("status") == "ok" else "-")
            cells.append(str(v).replace("\t", " ").replace("\n", " "))
        with open(self.tsv_path, "a") as fh:
            fh.write("\t".join(cells) + "\n")
        return rid

    def rows(self, campaign: int | None = None) -> list[dict[str, Any]]:
        """All experiments (of one campaign), oldest first, JSON columns decoded."""
        q = (
            "SELECT * FROM experiments"
            + (" WHERE campaign = ?" if campaign is not None else "")
            + " ORDER BY id"
        )
        cur = self._db.execute(q, () if campaign is None else (campaign,))
        names = [d[0] for d in cur.description]
        out = []
        for values in cur.fetchall():
            row = dict(zip(names, values, strict=False))
            for n in JSON_COLUMNS:
                if row.get(n):
                    row[n] = json.loads(row[n])
            out.append(row)
        return out

    def close(self) -> None:
        self._db.close()


def read_ledger(run_dir: str | Path) -> list[dict[str, Any]]:
    """Rows of the ledger in ``run_dir`` (read-only helper for reports and tests)."""
    path = Path(run_dir) / "ledger.sqlite"
    if not path.exists():
        raise FileNotFoundError(f"no ledger.sqlite in {run_dir}")
    led = Ledger.__new__(Ledger)
    led._db = sqlite3.connect(path, timeout=60.0)
    try:
        return led.rows()
    finally:
        led._db.close()
