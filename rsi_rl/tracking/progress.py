"""Progress of a long command: a tqdm bar on a terminal, periodic log lines otherwise."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

#: seconds between two progress lines when stderr is not a terminal
PROGRESS_SECONDS = 30.0


def _duration(seconds: float) -> str:
    """``1h02m``, ``3m05s`` or ``42s``."""
    s = max(0, int(round(seconds)))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


class LogProgress:
    """Progress as log lines, for output that is not a terminal (nohup, SLURM, CI logs).

    The same interface as the tqdm bar that :func:`progress_bar` returns on a terminal
    (``update``, ``set_postfix``, ``close``, a context manager). One line every
    ``interval`` seconds of progress and one at the end, e.g.::

        rsi-rl: bench 12/40 campaigns (30%), 0.21 campaigns/s, elapsed 57s, ETA 2m13s

    Args:
        total: number of units (``None``: unknown, no percentage or ETA).
        desc: label at the start of the line.
        unit: unit name.
        interval: seconds between two lines.
        initial: units already done (a resumed run); the rate counts only new ones.
        stream: where lines go (default: stderr at the time of writing).
        clock: seconds counter (``time.monotonic``; tests pass a fake one).
    """

    def __init__(
        self,
        total: int | None,
        desc: str = "",
        unit: str = "it",
        interval: float = PROGRESS_SECONDS,
        initial: int = 0,
        stream: TextIO | None = None,
        clock: Any = time.monotonic,
    ):
        self.total, self.desc, self.unit = total, desc, unit
        self.interval = float(interval)
        self.n = self.initial = int(initial)
        self.postfix = ""
        self._stream, self._clock = stream, clock
        self._t0 = self._last = clock()
        self._closed = False

    def update(self, n: int = 1) -> None:
        """Count ``n`` more units; write a line when ``interval`` seconds have passed."""
        self.n += int(n)
        now = self._clock()
        if now - self._last >= self.interval:
            self._write(now)

    def set_postfix(self, ordered_dict: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        """Extra ``key=value`` items at the end of the next lines (as tqdm's)."""
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_postfix_str(self, text: str = "") -> None:
        """Extra text at the end of the next lines (as tqdm's)."""
        self.postfix = str(text)

    def line(self, now: float | None = None) -> str:
        """The progress line at time ``now`` (default: the clock's)."""
        now = self._clock() if now is None else now
        elapsed = max(0.0, now - self._t0)
        done = self.n - self.initial
        rate = done / elapsed if elapsed > 0 else None
        units = self.unit if self.unit in ("it", "") or self.unit.endswith("s") else f"{self.unit}s"
        head = f"{self.desc} " if self.desc else ""
        if self.total:
            text = f"{head}{self.n}/{self.total} {units} ({100 * self.n / self.total:.0f}%)"
        else:
            text = f"{head}{self.n} {units}"
        text += f", {rate:.3g} {units}/s" if rate else ""
        text += f", elapsed {_duration(elapsed)}"
        if self.total and self.n < self.total:
            eta = (self.total - self.n) / rate if rate else None
            text += f", ETA {_duration(eta)}" if eta is not None else ", ETA ?"
        return text + (f", {self.postfix}" if self.postfix else "")

    def _write(self, now: float) -> None:
        self._last = now
        stream = self._stream or sys.stderr
        print(f"rsi-rl: {self.line(now)}", file=stream, flush=True)

    def close(self) -> None:
        """Write the last line (once)."""
        if not self._closed:
            self._closed = True
            self._write(self._clock())

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_bar(
    total: int | None,
    desc: str = "",
    unit: str = "it",
    enabled: bool | None = None,
    initial: int = 0,
    interval: float | None = None,
) -> Any:
    """Progress of a long command: a tqdm bar on a terminal, log lines otherwise.

    On a terminal (stderr is a TTY): a tqdm bar with rate and ETA. Otherwise (nohup,
    SLURM, CI): a :class:`LogProgress` that writes one line with done/total, rate and ETA
    every ``interval`` seconds and one at the end.

    Args:
        total: number of steps (``None``: unknown).
        desc: label.
        unit: unit name (``experiment``, ``step``, ``campaign``).
        enabled: ``True``: always the tqdm bar; ``False``: nothing at all; ``None``: the
            bar on a terminal, log lines otherwise.
        initial: steps already done (a resumed run).
        interval: seconds between two log lines; ``None``: ``$RSI_RL_PROGRESS_SECONDS``,
            else 30.

    Use as ``with progress_bar(n, "bench", "campaign") as bar: ... bar.update(1)``.
    """
    from tqdm.auto import tqdm

    if enabled is None and not sys.stderr.isatty():
        if interval is None:
            interval = float(os.environ.get("RSI_RL_PROGRESS_SECONDS") or PROGRESS_SECONDS)
        return LogProgress(total, desc, unit, interval=interval, initial=initial)
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        initial=initial,
        disable=enabled is False,
        dynamic_ncols=True,
        leave=False,
    )
