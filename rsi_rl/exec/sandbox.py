"""The sandboxed experiment runner (trusted side).

:class:`Sandbox` owns one fork server (``rsi_rl.exec._zygote``) started with a scrubbed
environment. :meth:`Sandbox.run` sends it one job (a scratch directory holding the
candidate's program, its inputs and ``job.json``), waits at most the wall-clock limit,
and kills the child's whole process group on timeout. The parent, never the program,
holds the time budget; the resource limits are applied in the child before the program
starts. See ``docs/sandbox.md`` for what is enforced on which platform.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rsi_rl.core.errors import ConfigError, SandboxError
from rsi_rl.exec.devices import checked_devices, device_env, gpu_device_nodes, resolve_devices
from rsi_rl.exec.session import kill_session, start_session

#: environment variables the sandboxed program sees (everything else is dropped)
SAFE_ENV_KEYS = ("PATH", "LANG", "LC_ALL", "TZ")
#: the sandbox record of a run that ended before the sandbox reported its limits
NOT_REPORTED = "not reported: the run ended before the sandbox reported its limits"


@dataclass
class SandboxLimits:
    """Limits of one experiment. ``timeout`` is wall-clock seconds, enforced by the parent.

    Every field is checked when it is set (at construction, by ``dataclasses.replace`` and
    by assignment): a bad value raises :class:`~rsi_rl.core.errors.ConfigError` naming the
    ``sandbox.<key>`` to fix.
    """

    timeout: float = 60.0
    cpu_seconds: float | None = None  # default: 2 x timeout x threads
    memory_mb: int = 4096  # address space
    file_size_mb: int = 256
    open_files: int = 256
    processes: int = 64
    threads: int = 1
    #: total size of the scratch dir (a size-capped tmpfs in hardened mode; see docs)
    disk_mb: int = 1024
    no_network: bool = True
    #: Linux: PID + mount namespaces, read-only filesystem but the scratch dir, private
    #: /proc, no capabilities, pids cgroup. False = the plain sandbox (rlimits, session,
    #: network namespace only). "auto" (default): hardened for any source that is not the
    #: task's own program plus its own catalogue patches (user diffs, proposals, replaced
    #: files), plain for catalogue-only candidates, whose code the task author wrote.
    hardened: bool | str = "auto"
    #: files or folders the program must not read (an empty tmpfs / /dev/null is mounted
    #: over them), e.g. a data set's source files; hardened mode only
    hidden_paths: tuple[str, ...] = ()
    #: hide the home folder of the user running rsi_rl (credentials, W&B settings), keeping
    #: the interpreter and ``sys.path`` entries under it visible; hardened mode only
    hide_home: bool = True
    #: where the program trains: ``"cpu"``, ``"cuda"`` (every GPU torch sees), ``"auto"``
    #: (``cuda`` if torch sees a GPU, checked in a fresh process, else ``cpu``) or GPU
    #: indices, e.g. ``(0, 1)``. A run gets one GPU, the first of these; the local
    #: executor gives worker i the i-th (round robin). See :mod:`rsi_rl.exec.devices`.
    devices: str | tuple[int, ...] = "cpu"
    #: GPU device nodes a hardened GPU run sees (and a hardened CPU run does not); None:
    #: those of :func:`rsi_rl.exec.devices.gpu_device_nodes` (``/dev/nvidia*``, ``/dev/dri``)
    device_nodes: tuple[str, ...] | None = None
    #: MiB of a run's declared artifacts (``InnerTask.artifacts``) copied out of its scratch
    #: dir, all files together
    artifact_mb: float = 256.0

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, _checked(name, value))


#: (unit, example) of the limits that must be positive numbers
_POSITIVE: dict[str, tuple[str, str]] = {
    "timeout": ("seconds", "60"),
    "cpu_seconds": ("CPU-seconds", "120"),
    "memory_mb": ("MiB", "4096"),
    "file_size_mb": ("MiB", "256"),
    "open_files": ("files", "256"),
    "processes": ("processes", "64"),
    "threads": ("threads", "1"),
    "disk_mb": ("MiB", "1024"),
    "artifact_mb": ("MiB", "256"),
}
_FLOATS = ("timeout", "cpu_seconds", "artifact_mb")


def _checked(name: str, value: Any) -> Any:
    """``value`` for the field ``name`` of :class:`SandboxLimits`, or a ConfigError."""
    key = f"sandbox.{name}"
    if name in _POSITIVE:
        unit, example = _POSITIVE[name]
        if name == "cpu_seconds" and value is None:
            return None
        kinds = (int, float) if name in _FLOATS else (int,)
        if isinstance(value, bool) or not isinstance(value, kinds) or not 0 < value < math.inf:
            what = "a positive number" if name in _FLOATS else "a positive whole number"
            raise ConfigError(
                f"{key} must be {what} of {unit}, got {value!r}; remove the override or "
                f"give e.g. {key}={example}"
            )
        return float(value) if name in _FLOATS else value
    if name == "hardened":
        if not (isinstance(value, bool) or value == "auto"):
            raise ConfigError(f"{key} must be true, false or auto, got {value!r}")
        return value
    if name in ("no_network", "hide_home"):
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if name == "devices":
        return checked_devices(value)
    if name in ("hidden_paths", "device_nodes"):
        if name == "device_nodes" and value is None:
            return None
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list of paths, got {value!r}")
        if not all(isinstance(p, str) and p for p in value):
            raise ConfigError(f"{key} must hold non-empty path strings, got {list(value)!r}")
        return tuple(value)
    return value


@dataclass
class ProcessResult:
    """What the sandbox observed of one run (no metric: the evaluator adds that)."""

    exit_code: int | None
    signal: int | None
    timed_out: bool
    seconds: float  # wall-clock from fork to exit
    cpu_seconds: float
    max_rss_mb: float
    enforced: dict[str, Any] = field(default_factory=dict)
    sandbox_error: str | None = None
    #: killed because the run's ``watch`` asked (e.g. a pruner), not by a limit
    stopped: bool = False


def scrubbed_env(threads: int = 1) -> dict[str, str]:
    """The environment of the sandboxed program: a few safe keys, no secrets."""
    env = {k: os.environ[k] for k in SAFE_ENV_KEYS if k in os.environ}
    env.setdefault("PATH", "/usr/bin:/bin")
    n = str(threads)
    env.update(
        {
            "HOME": "/nonexistent",
            "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            "OMP_NUM_THREADS": n,
            "MKL_NUM_THREADS": n,
            "OPENBLAS_NUM_THREADS": n,
            "WANDB_MODE": "disabled",
        }
    )
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # correctness on some CPUs
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def resolve_paths(specs: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Absolute paths of ``specs``: a path, or ``package:relative/path`` inside an
    installed package (e.g. ``sklearn.datasets:data``). Unknown packages are skipped."""
    import importlib.util

    out = []
    for spec in specs:
        module, sep, rel = str(spec).partition(":")
        if not sep or os.path.isabs(spec):
            out.append(os.path.abspath(spec))
            continue
        # the top-level package's location, then the folders below it: find_spec of a
        # dotted name would import its parents (``sklearn`` alone takes seconds)
        top, _, sub = module.partition(".")
        try:
            found = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            found = None
        roots = list(found.submodule_search_locations or []) if found else []
        below = sub.split(".") if sub else []
        out.extend(os.path.join(root, *below, rel) for root in roots[:1])
    return tuple(out)


#: fork servers started by :func:`start_ahead`, by command line and environment
_AHEAD: dict[str, subprocess.Popen[bytes]] = {}


def start_ahead(preload: tuple[str, ...] | list[str], limits: SandboxLimits) -> None:
    """Start the fork server that a ``Sandbox(preload, limits)`` of this process will need,
    before that Sandbox exists: the first such Sandbox adopts it instead of starting its
    own, so that the server's imports overlap the caller's set-up. One that no Sandbox
    adopts is killed at exit."""
    sandbox = Sandbox(preload, limits)
    cmd, env = sandbox._server()
    key = json.dumps([cmd, env], sort_keys=True)
    if key in _AHEAD:
        return
    sandbox.spawn()
    assert sandbox._proc is not None
    _AHEAD[key], sandbox._proc = sandbox._proc, None  # it belongs to the Sandbox adopting it


@atexit.register
def _kill_ahead() -> None:
    for proc in _AHEAD.values():
        kill_session(proc.pid)
        proc.wait()
    _AHEAD.clear()


class Sandbox:
    """A warm fork server that runs one program at a time under limits.

    Args:
        preload: modules the fork server imports once (e.g. ``("numpy", "torch")``).
        limits: default limits of each run.

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self, preload: tuple[str, ...] | list[str] = (), limits: SandboxLimits | None = None
    ):
        self.preload = list(preload)
        self.limits = limits or SandboxLimits()
        self._proc: subprocess.Popen[bytes] | None = None
        self._buf = b""
        self._ready = False
        self.restarts = 0
        #: the fork server's CUDA state after its preload (``initialized``, ``fork_poisoned``)
        self.server_cuda: dict[str, bool] = {}

    # ------------------------------------------------------------ fork server
    def _server(self) -> tuple[list[str], dict[str, str]]:
        """The fork server's command line and environment."""
        env = scrubbed_env(self.limits.threads)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        # the server never touches a GPU: none is visible to it, and an availability check
        # a preloaded module makes asks NVML rather than initialising CUDA (see _zygote)
        env.update({"CUDA_VISIBLE_DEVICES": "", "PYTORCH_NVML_BASED_CUDA_CHECK": "1"})
        network = "no-network" if self.limits.no_network else "network"
        return [sys.executable, "-m", "rsi_rl.exec._zygote", json.dumps(self.preload), network], env

    def spawn(self) -> None:
        """Start the fork server without waiting for it: its imports (``preload``) overlap
        the caller's work until :meth:`start` (or the first run) waits for it. A server
        :func:`start_ahead` started with the same command line and environment is adopted."""
        if self._proc is not None and self._proc.poll() is None:
            return
        cmd, env = self._server()
        ahead = _AHEAD.pop(json.dumps([cmd, env], sort_keys=True), None)
        if ahead is not None and ahead.poll() is None:
            self._proc = ahead
        else:
            self._proc = start_session(cmd, env, stderr=subprocess.DEVNULL)
        self._buf = b""
        self._ready = False

    def start(self) -> None:
        """Start the fork server if it is not running and wait until it can fork."""
        self.spawn()
        if self._ready:
            return
        ready = self._read_event(timeout=120.0)
        if ready is None or ready.get("event") != "ready":
            self.close()
            raise SandboxError(
                "the sandbox fork server did not start (python -m rsi_rl.exec._zygote)"
            )
        self.server_cuda = {k: bool(v) for k, v in (ready.get("cuda") or {}).items()}
        self._ready = True

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if not self._ready:  # still importing: it holds no experiment
                kill_session(proc.pid)
            if proc.stdin:
                proc.stdin.close()
            proc.wait(timeout=5)
        except (subprocess.TimeoutExpired, OSError):
            kill_session(proc.pid)
            proc.wait()
        finally:
            if proc.stdout:
                proc.stdout.close()

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        with contextlib.suppress(Exception):
            self.close()

    def _read_event(self, timeout: float) -> dict[str, Any] | None:
        """Next JSON event from the fork server, or None on timeout/EOF."""
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return {"event": "eof"}
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        try:
            event: dict[str, Any] = json.loads(line)
        except json.JSONDecodeError:
            return {"event": "garbage", "line": line[:200].decode(errors="replace")}
        return event

    # ------------------------------------------------------------ one run
    def run(
        self,
        workdir: Path,
        entry: str,
        seed: int,
        limits: SandboxLimits | None = None,
        watch: Callable[[], bool] | None = None,
        watch_every: float = 0.5,
    ) -> ProcessResult:
        """Run ``entry`` (a file in ``workdir``) in a forked child under ``limits``.

        ``watch``, if given, is called in this process about every ``watch_every`` seconds
        while the child runs; when it returns True the child's process group is killed
        and the result says ``stopped`` (not ``timed_out``). It must return quickly.
        """
        lim = limits or self.limits
        gpus = resolve_devices(lim.devices)
        gpu = gpus[0] if gpus else None
        self.start()
        assert self._proc is not None and self._proc.stdin is not None
        if gpu is not None and any(self.server_cuda.values()):
            raise SandboxError(
                "a module the sandbox's fork server preloads "
                f"({', '.join(self.preload) or 'rsi_rl.harness'}) initialised CUDA, which "
                "does not survive the fork of each run: remove it from the task's `preload` "
                "or stop it from touching torch.cuda at import"
            )
        cpu = lim.cpu_seconds or max(2.0, 2.0 * lim.timeout * lim.threads)
        nodes = gpu_device_nodes() if lim.device_nodes is None else lim.device_nodes
        job = {
            "workdir": str(Path(workdir).resolve()),
            "entry": entry,
            "seed": int(seed),
            "threads": lim.threads,
            "env": {**scrubbed_env(lim.threads), **device_env(gpu)},
            "limits": {
                # CUDA reserves far more address space than it uses: RLIMIT_AS would fail
                # its initialisation, so a GPU run has no address-space limit
                "memory_mb": lim.memory_mb if gpu is None else None,
                "cpu_seconds": int(cpu + 0.999),
                "file_size_mb": lim.file_size_mb,
                "open_files": lim.open_files,
                "processes": lim.processes,
                "disk_mb": lim.disk_mb,
                "no_network": lim.no_network,
                "hardened": lim.hardened,
                "hidden_paths": [str(p) for p in lim.hidden_paths],
                "hide_home": lim.hide_home,
                "devices": "cpu" if gpu is None else "cuda",
                "gpu_nodes": [str(p) for p in nodes],
            },
        }
        try:
            self._proc.stdin.write((json.dumps(job) + "\n").encode())
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return self._lost("the fork server died before the run started")
        started = self._read_event(timeout=30.0)
        if not started or started.get("event") != "started":
            return self._lost("the fork server did not start the run")
        pid = int(started["pid"])
        t0 = time.monotonic()
        event, stopped = None, False
        while event is None and not stopped:
            left = t0 + lim.timeout - time.monotonic()
            if left <= 0:
                break
            event = self._read_event(timeout=min(left, watch_every) if watch else left)
            stopped = event is None and watch is not None and watch()
        timed_out = event is None and not stopped
        if event is None:
            kill_session(pid)
            event = self._read_event(timeout=30.0)
        seconds = time.monotonic() - t0
        if not event or event.get("event") != "exited":
            kill_session(pid)
            res = self._lost("the fork server died during the run (killed by the program?)")
            res.seconds, res.timed_out = seconds, timed_out
            return res
        # only the trusted side writes this record (see rsi_rl.exec._zygote); the program's
        # scratch dir, sandbox.json included, is never read for it
        enforced: dict[str, Any] = dict(event.get("enforced") or {})
        if not enforced:
            enforced = {"record": NOT_REPORTED}
        enforced["wall_clock"] = f"enforced by parent: {lim.timeout}s"
        return ProcessResult(
            exit_code=event.get("exit_code"),
            signal=event.get("signal"),
            timed_out=timed_out,
            seconds=seconds,
            cpu_seconds=float(event.get("cpu_seconds", 0.0)),
            max_rss_mb=float(event.get("max_rss_mb", 0.0)),
            enforced=enforced,
            stopped=stopped,
        )

    def _lost(self, why: str) -> ProcessResult:
        """The fork server is gone: restart it on the next run and report a crash."""
        self.restarts += 1
        self.close()
        return ProcessResult(None, None, False, 0.0, 0.0, 0.0, sandbox_error=why)
