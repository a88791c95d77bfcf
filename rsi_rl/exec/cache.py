"""Result cache: identical (instance, candidate, seed, split, limits) is looked up, not retrained.

Within one runner the cache lives in memory. With a path (``cache_path=...``, Hydra
``cache=...``) it is also an SQLite file shared across campaigns, agents and processes, so
meta-training, benchmarks and resumed runs never pay twice for the same experiment. A hit
is charged the original experiment's seconds, so caching never changes an agent's budget.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from rsi_rl.core.errors import ConfigError

CacheKey = tuple[str, str, int, str, float, int]


def key_string(key: CacheKey) -> str:
    return json.dumps(list(key), separators=(",", ":"))


class ResultCache:
    """In-memory cache with an optional SQLite file behind it (safe across processes).

    Only results the sandbox judged (not sandbox failures) are stored.
    """

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else None
        self._mem: dict[CacheKey, dict[str, Any]] = {}
        self._db: sqlite3.Connection | None = None
        self.hits = 0
        self.misses = 0
        if self.path is not None:
            self._db = self._open(self.path)

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        """Open (or create) the cache file; a path that cannot be used fails in one line.

        Raises:
            ConfigError: the folder cannot be made, the file cannot be written, or it is
                not an SQLite database.
        """
        db: sqlite3.Connection | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, timeout=60.0, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, result TEXT)")
        except (OSError, sqlite3.Error) as exc:
            if db is not None:
                db.close()
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            parent = path.parent
            while not parent.exists() and parent != parent.parent:
                parent = parent.parent
            if not parent.is_dir():
                reason = f"{parent} is not a folder"
            raise ConfigError(
                f"cache={path}: cannot use it as the result cache ({reason}); pick a writable "
                "file path (e.g. cache=runs/cache.sqlite) or drop cache="
            ) from None
        return db

    def get(self, key: CacheKey) -> dict[str, Any] | None:
        hit = self._mem.get(key)
        if hit is None and self._db is not None:
            row = self._db.execute(
                "SELECT result FROM results WHERE key = ?", (key_string(key),)
            ).fetchone()
            if row is not None:
                hit = json.loads(row[0])
                self._mem[key] = hit
        if hit is None:
            self.misses += 1
        else:
            self.hits += 1
        return hit

    def put(self, key: CacheKey, result: dict[str, Any]) -> None:
        self._mem[key] = result
        if self._db is not None:
            self._db.execute(
                "INSERT OR REPLACE INTO results (key, result) VALUES (?, ?)",
                (key_string(key), json.dumps(result, default=str)),
            )

    def clear(self) -> None:
        """Forget everything in memory and stop reading the file (fresh runs from now on)."""
        self._mem.clear()
        if self._db is not None:
            self._db.close()
            self._db = None

    def __len__(self) -> int:
        return len(self._mem)

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
