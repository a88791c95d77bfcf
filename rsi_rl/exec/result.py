"""The outcome of one experiment, as the trusted side records it: :class:`ExperimentResult`.

The runner (:mod:`rsi_rl.exec.runner`), the in-process lookup
(:mod:`rsi_rl.exec.in_process`), the judge (:mod:`rsi_rl.exec.judge`) and the executors
all answer with it; the statuses it may hold are :data:`rsi_rl.exec.runner.RECORD_STATUSES`.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ExperimentResult:
    """The outcome of one run. ``metrics`` come from the trusted evaluator only."""

    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0  # charged wall-clock (original cost for cache hits)
    run_seconds: float = 0.0  # the sandboxed program alone (fork to exit)
    cpu_seconds: float = 0.0
    max_rss_mb: float = 0.0
    diagnostics: dict[str, float] = field(default_factory=dict)
    stderr_tail: str = ""
    stdout_tail: str = ""
    message: str = ""
    enforced: dict[str, Any] = field(default_factory=dict)
    cached: bool = False
    #: the sandbox itself failed (not the program): such results are never cached
    sandbox_failed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_cache(cls, hit: dict[str, Any]) -> ExperimentResult:
        """A cached result (:meth:`to_dict`) as a later run answers it: ``cached``, charged
        at its original cost."""
        return cls(**{**copy.deepcopy(hit), "cached": True})


__all__ = ["ExperimentResult"]
