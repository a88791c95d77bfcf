"""External proposers: the ``propose`` action hands the program to a user's command.

A proposer is any command (an argv list, e.g. a wrapper around a code LLM) that reads one
JSON document on stdin and prints an edit on stdout, within a time limit:

stdin (``request``)::

    {"task": "digits_mlp", "metric": "val_acc", "direction": "maximize",
     "source": {"train.py": "..."}, "config": {"lr": 0.001, ...},
     "knobs": {"lr": {"role": "learning_rate", "scale": "log", "low": 1e-05, "high": 0.3,
                      "choices": null}, ...},
     "toggles": ["grad_clip"], "incumbent_metric": 0.91, "seed": 123, "step": 4,
     "history": [{"kind": "lr_up", "status": "ok", "metric": 0.9, "kept": false,
                  "description": "...", "message": "", "diff": "..."}, ...],
     "patches_dir": "/path/to/envs/digits_mlp/patches"}

stdout: either a unified diff against ``source`` (``--- a/train.py`` ...), or a JSON object
``{"diff": "...", "config": {"lr": 0.002}, "description": "why"}`` (each key optional).

The command runs in its own session with a scrubbed environment (plus the keys the user
names in ``env_keys``, e.g. an API key) and is killed whole at ``timeout``. It is trusted
as far as the user who configured it, but its *output* is not: the edit it proposes is
trained in the same sandbox and scored by the same evaluator as every other edit. A
proposal that fails, times out, prints garbage or does not apply raises
:class:`ProposerError`; the env records it as an ``invalid`` experiment with the message.

Example:
    >>> p = Proposer([sys.executable, "-m", "rsi_rl.proposers.sample_patches"])  # doctest: +SKIP
    >>> env = ResearchEnv("digits_mlp", proposer=p)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rsi_rl.core.edits import Candidate
from rsi_rl.core.errors import ConfigError, EditError
from rsi_rl.core.patching import apply_unified_diff
from rsi_rl.core.task import InnerTask
from rsi_rl.exec.sandbox import scrubbed_env
from rsi_rl.exec.session import kill_session, start_session

#: keys of a ledger row that the proposer sees in ``history``
HISTORY_KEYS = ("step", "kind", "description", "status", "metric", "kept", "message", "diff")


class ProposerError(EditError):
    """The proposer failed, timed out, printed no usable edit, or its edit does not apply."""

    #: seconds spent asking before the failure (charged to the campaign)
    seconds: float = 0.0


@dataclass
class Proposal:
    """What a proposer returned: a diff and/or config changes, and its own description."""

    diff: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    seconds: float = 0.0


def parse_proposal(stdout: str) -> Proposal:
    """Read a proposer's stdout: a unified diff or a JSON object; raises :class:`ProposerError`."""
    text = stdout.strip()
    if not text:
        raise ProposerError("the proposer printed nothing (expected a unified diff or JSON)")
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise ProposerError(f"the proposer printed invalid JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise ProposerError("the proposer's JSON must be an object with 'diff' and/or 'config'")
        diff, config = obj.get("diff") or "", obj.get("config") or {}
        if not isinstance(diff, str) or not isinstance(config, dict):
            raise ProposerError("the proposer's 'diff' must be a string and 'config' an object")
        if not diff and not config:
            raise ProposerError("the proposer's JSON holds neither a 'diff' nor a 'config'")
        return Proposal(diff, config, str(obj.get("description") or "")[:500])
    return Proposal(diff=stdout)


def _check_config(
    task: InnerTask, config: dict[str, Any], changes: dict[str, Any]
) -> dict[str, Any]:
    out = dict(config)
    for key, value in changes.items():
        if (
            not isinstance(value, (int, float, str, bool))
            or isinstance(value, float)
            and value != value
        ):
            raise ProposerError(
                f"config {key}={value!r}: values must be plain numbers, strings or booleans"
            )
        knob = task.knob(key)
        if knob is not None:
            if knob.choices:
                if value not in knob.choices:
                    raise ProposerError(
                        f"config {key}={value!r} is not one of {list(knob.choices)}"
                    )
            elif not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ProposerError(f"config {key}={value!r} must be a number")
            elif not (value == 0 and knob.zero_ok) and not knob.low <= value <= knob.high:
                raise ProposerError(f"config {key}={value} is outside [{knob.low}, {knob.high}]")
        out[key] = value
    return out


def apply_proposal(task: InnerTask, cand: Candidate, proposal: Proposal) -> tuple[Candidate, str]:
    """The child of ``cand`` that ``proposal`` describes; raises :class:`ProposerError`."""
    source = dict(cand.source)
    if proposal.diff.strip():
        try:
            source = apply_unified_diff(source, proposal.diff)
        except EditError as exc:
            raise ProposerError(f"the proposed diff does not apply: {exc}") from None
    config = _check_config(task, cand.config, proposal.config)
    child = Candidate(config, source, cand.toggles, cand.hash, "propose")
    if child.hash == cand.hash:
        raise ProposerError("the proposal changes nothing")
    parts = [proposal.description or "external proposal"]
    if proposal.config:
        parts.append(", ".join(f"{k}={v}" for k, v in proposal.config.items()))
    return child, "proposal: " + "; ".join(parts)


class Proposer:
    """A user-configured command that proposes edits (see the module docstring).

    Args:
        command: argv list, or a string split with shell rules (never run by a shell);
            a leading ``python`` means the interpreter rsi_rl runs in.
        timeout: wall-clock seconds before the command's whole session is killed.
        env_keys: names of environment variables to pass through (e.g. an API key); the
            rest of the environment is scrubbed.
        history: how many recent ledger rows to send.
        max_output: bytes of stdout accepted.
    """

    def __init__(
        self,
        command: list[str] | tuple[str, ...] | str,
        timeout: float = 60.0,
        env_keys: list[str] | tuple[str, ...] = (),
        history: int = 20,
        max_output: int = 1 << 20,
    ):
        argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
        if not argv:
            raise ConfigError(
                "proposer.command is empty; give an argv list, e.g. [python, my_proposer.py]"
            )
        if timeout <= 0:
            raise ConfigError(f"proposer.timeout must be positive seconds, got {timeout}")
        if argv[0] in ("python", "python3"):  # the interpreter rsi_rl runs in
            argv[0] = sys.executable
        self.argv = argv
        self.timeout = float(timeout)
        self.env_keys = tuple(env_keys)
        self.history = int(history)
        self.max_output = int(max_output)
        self.calls = 0

    def __repr__(self) -> str:
        return f"Proposer({self.argv!r}, timeout={self.timeout:g})"

    def request(
        self,
        task: InnerTask,
        cand: Candidate,
        history: list[dict[str, Any]],
        seed: int,
        step: int = 0,
        incumbent_metric: float | None = None,
    ) -> dict[str, Any]:
        """The JSON document the command receives on stdin."""
        rows = []
        for row in history[-self.history :]:
            r = {k: row.get(k) for k in HISTORY_KEYS}
            r["diff"] = (r.get("diff") or "")[:4000]
            rows.append(r)
        knobs = {
            k.key: {
                "role": k.role,
                "scale": k.scale,
                "low": k.low,
                "high": k.high,
                "choices": list(k.choices) or None,
            }
            for k in task.knobs
        }
        return {
            "task": task.name,
            "metric": task.metric,
            "direction": task.direction,
            "source": dict(cand.source),
            "config": dict(cand.config),
            "knobs": knobs,
            "toggles": sorted(cand.toggles),
            "incumbent_metric": incumbent_metric,
            "history": rows,
            "seed": int(seed),
            "step": int(step),
            "patches_dir": str(Path(task.program_dir) / "patches"),
        }

    def run(self, request: dict[str, Any]) -> Proposal:
        """Run the command on ``request``; raises :class:`ProposerError` on any failure."""
        self.calls += 1
        env = scrubbed_env()
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        env.update({k: os.environ[k] for k in self.env_keys if k in os.environ})
        t0 = time.monotonic()
        try:
            proc = start_session(self.argv, env, stderr=subprocess.PIPE)
        except OSError as exc:
            raise ProposerError(
                f"cannot start the proposer {self.argv[0]!r}: {exc.strerror}"
            ) from None
        try:
            out, err = proc.communicate(json.dumps(request).encode(), timeout=self.timeout)
        except subprocess.TimeoutExpired:
            kill_session(proc.pid)
            proc.communicate()
            raise ProposerError(f"the proposer timed out after {self.timeout:g}s") from None
        finally:
            kill_session(proc.pid)  # anything it left in its session
        seconds = time.monotonic() - t0
        if proc.returncode != 0:
            tail = err.decode(errors="replace").strip().splitlines()[-1:] or [""]
            raise ProposerError(
                f"the proposer exited with status {proc.returncode}: {tail[0][:300]}"
            )
        if len(out) > self.max_output:
            raise ProposerError(f"the proposer printed {len(out)} bytes (limit {self.max_output})")
        proposal = parse_proposal(out.decode(errors="replace"))
        proposal.seconds = seconds
        return proposal

    def propose(
        self, task: InnerTask, cand: Candidate, request: dict[str, Any]
    ) -> tuple[Candidate, str, float]:
        """Ask the command for an edit of ``cand``, sending it ``request`` (the document
        :meth:`request` builds): returns (child, description, seconds)."""
        t0 = time.monotonic()
        proposal = self.run(request)
        child, description = apply_proposal(task, cand, proposal)
        return child, description, time.monotonic() - t0


def make_proposer(spec: Proposer | dict[str, Any] | list[str] | str | None) -> Proposer | None:
    """A :class:`Proposer` from a config: None, an instance, an argv list or string, or a
    mapping with ``command`` (and ``timeout``, ``env_keys``, ``history``)."""
    if spec is None or isinstance(spec, Proposer):
        return spec
    if isinstance(spec, (str, list, tuple)):
        return Proposer(list(spec) if not isinstance(spec, str) else spec)
    if hasattr(spec, "get"):
        fields = {
            k: spec[k]
            for k in ("command", "timeout", "env_keys", "history")
            if spec.get(k) is not None
        }
        if "command" not in fields:
            return None  # a proposer config group with no command: propose stays masked
        cmd = fields["command"]
        fields["command"] = cmd if isinstance(cmd, str) else [str(a) for a in cmd]
        if "env_keys" in fields:
            fields["env_keys"] = [str(k) for k in fields["env_keys"]]
        return Proposer(**fields)
    raise ConfigError(f"cannot make a proposer from {spec!r}; give proposer.command=[...]")
