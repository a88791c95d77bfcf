"""Commands run in a session of their own: started with pipes, no inherited descriptors and
the environment the caller gives, and killed whole (the process group, whatever the
command left in it). The sandbox's fork server and an external proposer start this way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess


def start_session(argv: list[str], env: dict[str, str], stderr: int) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session (its own process group) with ``env`` only, stdin and
    stdout piped, ``stderr`` as given (``subprocess.PIPE`` or ``DEVNULL``) and every other
    descriptor of this process closed."""
    return subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=env,
        start_new_session=True,
        close_fds=True,
    )


def kill_session(pid: int) -> None:
    """SIGKILL the process group ``pid`` leads; nothing if it is gone already (or not ours)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


__all__ = ["kill_session", "start_session"]
