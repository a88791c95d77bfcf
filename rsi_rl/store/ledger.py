"""The ledger: every experiment of a run, durably, in SQLite, plus ``results.tsv``.

Each experiment is committed in its own transaction before the next one starts, so a
run killed at any point keeps everything it finished. ``results.tsv`` mirrors the ledger
in autoresearch's spirit: one tab-separated row per experiment, grep-able.

A run directory has one writer at a time: a :class:`Ledger` holds an advisory lock on
``<run_dir>/.rsi_rl.lock`` until it closes (or its process dies), and a second writer
fails at once with a line naming the first. Readers (:func:`read_ledger`) take no lock.
A ledger that is empty, truncated or not an rsi-rl SQLite ledger is reported, never
repaired or overwritten; ``results.tsv`` is derived data and is rewritten from the
ledger when it no longer matches it.

The columns of both, which fields are JSON and which are scrubbed program text, come from
:class:`~rsi_rl.core.record.ExperimentRecord` (:data:`rsi_rl.core.record.SCHEMA`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import sqlite3
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from rsi_rl.core.errors import RunDirError
from rsi_rl.core.record import SCHEMA, ExperimentRecord, as_dict
from rsi_rl.exec.redact import scrub

log = logging.getLogger("rsi_rl")

LEDGER_FILE = "ledger.sqlite"
TSV_FILE = "results.tsv"
LOCK_FILE = ".rsi_rl.lock"

_RECOVER = "start a new run directory (drop resume=/hydra.run.dir=) or restore the file from a copy"


# ---------------------------------------------------------------------------- results.tsv
def tsv_header(metric: str = "metric") -> str:
    """The header line of ``results.tsv`` (the metric column is named after the task's metric)."""
    return "\t".join(metric if col == "metric" else col for col in SCHEMA.tsv_columns) + "\n"


def tsv_line(row: Mapping[str, Any]) -> str:
    """One ``results.tsv`` line of an experiment: a record being appended or a ledger row."""
    cells = []
    for col in SCHEMA.tsv_columns:
        v = row.get(col)
        if col == "metric":
            v = "" if v is None else f"{float(v):.6f}"
        elif col == "seconds":
            v = f"{float(v or 0):.3f}"
        elif col == "kept":
            v = "kept" if v else ("reverted" if row.get("status") == "ok" else "-")
        elif v is None:
            v = ""
        cells.append(str(v).replace("\t", " ").replace("\n", " "))
    return "\t".join(cells) + "\n"


# ---------------------------------------------------------------------------- checks
def _damaged(run_dir: Path, what: str) -> RunDirError:
    return RunDirError(f"run directory {run_dir}: {LEDGER_FILE} {what}; {_RECOVER}")


def check_ledger(db: sqlite3.Connection, run_dir: Path) -> None:
    """Raise :class:`RunDirError` unless ``db`` is an intact rsi-rl ledger.

    Runs SQLite's ``PRAGMA quick_check`` and checks that the ``experiments`` table has
    the expected columns. Nothing is changed.
    """
    try:
        problems = [str(r[0]) for r in db.execute("PRAGMA quick_check").fetchall()]
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        have = {r[1] for r in db.execute("PRAGMA table_info(experiments)")}
    except sqlite3.DatabaseError as exc:
        text = str(exc)
        if "not a database" in text:
            raise _damaged(run_dir, f"is not a SQLite database ({text})") from None
        raise _damaged(run_dir, f"is damaged ({text}; truncated?)") from None
    if problems != ["ok"]:
        raise _damaged(run_dir, f"is damaged (quick_check: {problems[0]}; truncated?)")
    if "experiments" not in names:
        raise _damaged(run_dir, "has no experiments table: it is not an rsi-rl ledger")
    missing = [
        name
        for name, _ in SCHEMA.ledger_columns
        if name not in have and name not in SCHEMA.added_columns
    ]
    if missing:
        raise _damaged(
            run_dir, f"lacks the experiment column(s) {', '.join(missing)}: not an rsi-rl ledger"
        )


def _check_not_empty(path: Path, run_dir: Path) -> None:
    if path.stat().st_size == 0:
        raise _damaged(run_dir, "is empty (0 bytes), so nothing can be resumed from it")


def open_checked(run_dir: str | Path) -> sqlite3.Connection:
    """A connection to the existing, intact ledger of ``run_dir`` (see :func:`check_ledger`)."""
    run_dir = Path(run_dir)
    path = run_dir / LEDGER_FILE
    _check_not_empty(path, run_dir)
    db = sqlite3.connect(path, timeout=60.0, isolation_level=None)
    try:
        check_ledger(db, run_dir)
    except BaseException:
        db.close()
        raise
    return db


# ---------------------------------------------------------------------------- write errors
def write_failure(run_dir: Path, exc: BaseException) -> RunDirError:
    """The one-line error of a failed write into ``run_dir`` (disk full, read-only, ...)."""
    text = str(exc)
    code = getattr(exc, "errno", None)
    if code == errno.ENOSPC or "disk is full" in text or "disk full" in text:
        reason, fix = "disk is full", "free space"
    elif code in (errno.EROFS, errno.EACCES, errno.EPERM) or "readonly" in text:
        reason, fix = f"it is read-only ({text})", "make it writable"
    else:
        reason, fix = text or type(exc).__name__, "fix that"
    return RunDirError(
        f"cannot write the ledger in {run_dir}: {reason}; {fix} and resume with "
        f"resume={run_dir} — every finished experiment is kept"
    )


# ---------------------------------------------------------------------------- lock
def _holder(fh: IO[str]) -> str:
    """'pid 1234, since 10:02:11' from a lock file's content, as far as it can be read."""
    try:
        fh.seek(0)
        pid, _, since = fh.read().strip().partition(" ")
    except OSError:
        return "pid unknown"
    if not pid:
        return "pid unknown"
    try:
        started = datetime.fromisoformat(since)
        fmt = "%H:%M:%S" if started.date() == datetime.now().date() else "%Y-%m-%d %H:%M:%S"
        return f"pid {pid}, since {started.strftime(fmt)}"
    except ValueError:
        return f"pid {pid}"


def _in_use(run_dir: Path, holder: str) -> RunDirError:
    return RunDirError(
        f"run directory {run_dir} is in use by another rsi-rl run ({holder}); wait for it "
        "to finish or pick another directory (hydra.run.dir=...)"
    )


def check_not_in_use(run_dir: str | Path) -> None:
    """Raise :class:`RunDirError` if a ledger in another process (or this one) writes
    ``run_dir`` now; takes and keeps no lock, creates nothing."""
    run_dir = Path(run_dir)
    try:
        fh = open(run_dir / LOCK_FILE)  # noqa: SIM115
    except OSError:
        return  # no lock file: nobody ever wrote here
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _in_use(run_dir, _holder(fh)) from None


def lock_run_dir(run_dir: Path) -> IO[str]:
    """Take the run directory's writer lock; the open lock file holds it until closed.

    Raises:
        RunDirError: another process (or another open ledger) writes the directory, or
            the directory cannot be written.
    """
    try:
        fh = open(run_dir / LOCK_FILE, "a+")  # noqa: SIM115 - held open as the lock
    except OSError as exc:
        raise RunDirError(
            f"run directory {run_dir} is not writable ({exc.strerror or exc}); pick another "
            "directory (hydra.run.dir=...) or make it writable"
        ) from None
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fh)
        fh.close()
        raise _in_use(run_dir, holder) from None
    try:
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()} {datetime.now().isoformat(timespec='seconds')}\n")
        fh.flush()
    except OSError as exc:
        fh.close()
        raise write_failure(run_dir, exc) from None
    return fh


# ---------------------------------------------------------------------------- ledger
class Ledger:
    """An append-only experiment record in ``<run_dir>/ledger.sqlite`` and ``results.tsv``.

    A ledger opened here is the run directory's only writer until :meth:`close`; campaign
    numbers are reserved atomically all the same (:meth:`next_campaign`). The metadata
    holds the task, its metric and the metric's direction (``minimize``/``maximize``);
    program text (message, stderr and stdout tails) is scrubbed of secrets before it is
    stored (:func:`rsi_rl.exec.redact.scrub`).

    Raises:
        RunDirError: the directory is in use by another run, its ledger is damaged, or
            it cannot be written.
    """

    def __init__(
        self,
        run_dir: str | Path,
        task: str = "",
        metric: str = "metric",
        direction: str | None = None,
    ):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LEDGER_FILE
        self.tsv_path = self.run_dir / TSV_FILE
        self.metric_name = metric
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_failure(self.run_dir, exc) from None
        self._lock: IO[str] | None = lock_run_dir(self.run_dir)
        try:
            existed = self.path.exists()
            if not existed:
                self._create()
            self._db = open_checked(self.run_dir)
            with self._writing():
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS campaigns "
                    "(campaign INTEGER PRIMARY KEY, pid INTEGER, started_at TEXT)"
                )
                have = {r[1] for r in self._db.execute("PRAGMA table_info(experiments)")}
                for name, kind in SCHEMA.ledger_columns:
                    if name in SCHEMA.added_columns and name not in have:
                        self._db.execute(f"ALTER TABLE experiments ADD COLUMN {name} {kind}")
                if task:
                    self.set_meta("task", task)
                    self.set_meta("metric", metric)
                    if direction is not None:
                        self.set_meta("direction", direction)
                self.metric_name = str(self.meta().get("metric", metric))
                self._sync_tsv(warn=existed)
        except BaseException:
            self.close()
            raise

    def _create(self) -> None:
        """Create an empty ledger under a temporary name, then move it in place, so that a
        ``ledger.sqlite`` that exists always has its tables."""
        tmp = self.run_dir / f".{LEDGER_FILE}.{os.getpid()}.tmp"
        cols = ", ".join(f"{name} {kind}" for name, kind in SCHEMA.ledger_columns)
        with self._writing():
            db = sqlite3.connect(tmp, isolation_level=None)
            try:
                db.execute(f"CREATE TABLE IF NOT EXISTS experiments ({cols})")
                db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            finally:
                db.close()
            os.replace(tmp, self.path)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Turn a failed write (disk full, read-only, ...) into one :class:`RunDirError`."""
        try:
            yield
        except (sqlite3.OperationalError, OSError) as exc:
            raise write_failure(self.run_dir, exc) from None

    def _sync_tsv(self, warn: bool) -> None:
        """Rewrite ``results.tsv`` from the ledger if it differs (a warning says so)."""
        rows = self.rows()
        want = tsv_header(self.metric_name) + "".join(tsv_line(r) for r in rows)
        try:
            have = self.tsv_path.read_text(errors="replace")
        except FileNotFoundError:
            have = None
        if have == want:
            return
        if warn and (have is not None or rows):
            n = 0 if have is None else max(0, len(have.splitlines()) - 1)
            log.warning(
                f"{TSV_FILE} did not match {LEDGER_FILE} ({n} rows vs {len(rows)}); "
                "rewritten from the ledger"
            )
        tmp = self.tsv_path.with_name(f".{TSV_FILE}.{os.getpid()}.tmp")
        tmp.write_text(want)
        os.replace(tmp, self.tsv_path)

    def set_meta(self, key: str, value: Any) -> None:
        with self._writing():
            self._db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                (key, json.dumps(value, default=str)),
            )

    def meta(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self._db.execute("SELECT key, value FROM meta")}

    def next_campaign(self) -> int:
        """Reserve and return the next campaign number (atomic across processes)."""
        with self._writing():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT MAX(n) FROM (SELECT MAX(campaign) AS n FROM experiments "
                    "UNION ALL SELECT MAX(campaign) FROM campaigns)"
                ).fetchone()
                number = int(row[0] or 0) + 1
                self._db.execute(
                    "INSERT INTO campaigns (campaign, pid, started_at) VALUES (?, ?, ?)",
                    (number, os.getpid(), datetime.now().isoformat(timespec="seconds")),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return number

    def find(self, campaign: int, step: int, split: str, kind: str) -> int | None:
        """Id of an already recorded experiment (a resumed run replays it), or None."""
        row = self._db.execute(
            "SELECT id FROM experiments WHERE campaign = ? AND step = ? AND split = ? AND kind = ?",
            (campaign, step, split, kind),
        ).fetchone()
        return int(row[0]) if row else None

    def append(self, record: ExperimentRecord | Mapping[str, Any]) -> int:
        """Commit one experiment record; returns its ledger id.

        ``record`` is an :class:`~rsi_rl.core.record.ExperimentRecord` (its ``id`` is not
        stored: the ledger assigns one) or a mapping of its fields; fields the ledger does
        not store (``seconds_used``) are left out. A record already in the ledger (same
        campaign, step, split and kind: a resumed run replaying its history) is not
        written twice; its existing id is returned.

        Raises:
            RunDirError: the ledger or ``results.tsv`` cannot be written (disk full,
                read-only); every experiment committed before is kept.
        """
        fields = as_dict(record)
        if fields.get("campaign") is not None and fields.get("step") is not None:
            found = self.find(
                fields["campaign"],
                fields["step"],
                fields.get("split") or "val",
                fields.get("kind") or "",
            )
            if found is not None:
                return found
        for name in SCHEMA.program_text_fields:
            if isinstance(fields.get(name), str):
                fields[name] = scrub(fields[name])
        names = [n for n, _ in SCHEMA.ledger_columns if n != "id" and n in fields]
        values = [
            json.dumps(fields[n], default=str) if n in SCHEMA.json_fields else fields[n]
            for n in names
        ]
        with self._writing():
            cur = self._db.execute(
                f"INSERT INTO experiments ({', '.join(names)}) "
                f"VALUES ({', '.join('?' for _ in names)})",
                values,
            )
            rid = int(cur.lastrowid or 0)
            with open(self.tsv_path, "a") as fh:
                fh.write(tsv_line({**fields, "id": rid}))
        return rid

    def rows(self, campaign: int | None = None) -> list[dict[str, Any]]:
        """All experiments (of one campaign), oldest first, JSON columns decoded."""
        return _rows(self._db, campaign)

    def close(self) -> None:
        """Close the database and release the run directory's lock (idempotent)."""
        db = getattr(self, "_db", None)
        if db is not None:
            db.close()
            self._db = None  # type: ignore[assignment]
        lock = getattr(self, "_lock", None)
        if lock is not None:
            lock.close()  # closing the file releases the flock
            self._lock = None


def _rows(db: sqlite3.Connection, campaign: int | None = None) -> list[dict[str, Any]]:
    q = (
        "SELECT * FROM experiments"
        + (" WHERE campaign = ?" if campaign is not None else "")
        + " ORDER BY id"
    )
    cur = db.execute(q, () if campaign is None else (campaign,))
    names = [d[0] for d in cur.description]
    out = []
    for values in cur.fetchall():
        row = dict(zip(names, values, strict=False))
        for n in SCHEMA.json_fields:
            if row.get(n):
                row[n] = json.loads(row[n])
        out.append(row)
    return out


def read_ledger(run_dir: str | Path) -> list[dict[str, Any]]:
    """Rows of the ledger in ``run_dir`` (read-only: takes no lock, writes nothing).

    Raises:
        FileNotFoundError: ``run_dir`` has no ledger.
        RunDirError: the ledger is empty, truncated or not an rsi-rl ledger.
    """
    path = Path(run_dir) / LEDGER_FILE
    if not path.exists():
        raise FileNotFoundError(f"no {LEDGER_FILE} in {run_dir}")
    db = open_checked(run_dir)
    try:
        return _rows(db)
    finally:
        db.close()
