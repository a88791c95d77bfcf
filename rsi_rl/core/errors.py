"""Error hierarchy of rsi_rl.

Every user-facing error derives from :class:`RsiRlError`; the CLI prints its message as
one line (``rsi-rl: error: ...``) and exits with status 2, without a traceback. Messages
name the key, file or value to change.
"""

from __future__ import annotations


class RsiRlError(Exception):
    """Base class of all rsi_rl errors that a user can fix."""


class ConfigError(RsiRlError, ValueError):
    """A configuration value or override is invalid (names the key to fix)."""


class RunDirError(ConfigError):
    """A run directory cannot be used: another run writes it, its ledger is damaged, or it
    cannot be written (read-only, disk full)."""


class UnknownTaskError(ConfigError):
    """A task name does not resolve to a built-in, plugin or ``_target_`` task."""


class UnknownAgentError(ConfigError):
    """An agent name is not known."""


class EditError(RsiRlError):
    """An edit cannot be applied to a candidate (out of bounds, patch does not match)."""


class PatchError(EditError):
    """A source patch does not apply; the message shows the text that did not match."""


class SandboxError(RsiRlError):
    """The sandbox itself (not the inner program) failed, e.g. the fork server died."""


class TaskError(RsiRlError):
    """An inner task is malformed (bad catalogue, missing program file, ...)."""


def fixable_cause(exc: BaseException) -> RsiRlError | None:
    """The first :class:`RsiRlError` in ``exc``'s chain of causes (``exc`` included), if any:
    wrappers such as Hydra's ``InstantiationException`` hide it behind their own type."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, RsiRlError):
            return cur
        cur = cur.__cause__ or cur.__context__
    return None


def user_message(exc: BaseException) -> str:
    """One line saying what went wrong: the message of the first :class:`RsiRlError` in
    ``exc``'s chain of causes (Hydra puts it on a later line of its own message), else the
    first non-empty line of ``exc`` itself."""
    cause = fixable_cause(exc)
    text = str(cause if cause is not None and str(cause).strip() else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
