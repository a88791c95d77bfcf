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


def user_message(exc: BaseException) -> str:
    """One line saying what went wrong: the message of the first :class:`RsiRlError` in
    ``exc``'s chain of causes (wrappers such as Hydra's ``InstantiationException`` put it
    on a later line), else the first non-empty line of ``exc`` itself."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, RsiRlError) and str(cur).strip():
            return str(cur).strip().splitlines()[0]
        cur = cur.__cause__ or cur.__context__
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
