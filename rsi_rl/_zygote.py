"""The sandbox's fork server (runs as ``python -m rsi_rl._zygote``; never import it).

It starts once per :class:`rsi_rl.sandbox.Sandbox`, imports the heavy modules a task
needs (torch, numpy, ...) without running anything in them, then forks one child per
experiment so that no experiment pays a cold ``import torch``. The protocol with the
trusted parent is JSON lines: jobs on stdin; ``ready``, ``started`` and ``exited`` events
on stdout. The zygote holds no labels and no secrets: the parent keeps those.

Each child, before it runs the program: starts its own session and process group (the
parent kills the whole group), enters its scratch directory, redirects stdout/stderr to
files, replaces the environment with the scrubbed one it was given, sets resource limits
(address space, CPU seconds, file size, open files, processes, no core dumps), leaves the
network namespace where the platform allows, seeds ``random``/numpy/torch, and records
which of these were enforced in ``sandbox.json``.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import resource
import runpy
import signal
import sys
import traceback

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
EXIT_OOM = 3  # the child's own exit code for an allocation failure


def _unshare_network() -> str:
    """Leave the host's network namespace; returns how (or why not)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError as exc:  # pragma: no cover - non-glibc platforms
        return f"not enforced: {exc}"
    if libc.unshare(CLONE_NEWNET) == 0:
        return "enforced: network namespace"
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0:
        return "enforced: user+network namespace"
    return f"not enforced: unshare failed ({os.strerror(ctypes.get_errno())})"


def _set_limit(name: str, soft: int, hard: int | None = None) -> str:
    lim = getattr(resource, name, None)
    if lim is None:
        return "not available on this platform"
    try:
        resource.setrlimit(lim, (soft, soft if hard is None else hard))
        return f"enforced: {soft}"
    except (ValueError, OSError) as exc:
        return f"not enforced: {exc}"


def _child(job: dict) -> None:
    """Runs in the forked child; never returns."""
    code = 1
    try:
        os.setsid()
        workdir = job["workdir"]
        os.chdir(workdir)
        out = os.open("stdout.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        err = os.open("stderr.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        for fd in (out, err, devnull):
            os.close(fd)
        os.closerange(3, 1024)
        sys.stdout = os.fdopen(1, "w", buffering=1)
        sys.stderr = os.fdopen(2, "w", buffering=1)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

        lim = job["limits"]
        enforced: dict[str, str] = {"process_group": "enforced: own session", "cwd": workdir}
        enforced["network"] = _unshare_network() if lim.get("no_network", True) else "allowed"
        os.environ.clear()
        os.environ.update(job["env"])
        enforced["environment"] = f"scrubbed: {sorted(job['env'])}"
        mb = 1024 * 1024
        if lim.get("memory_mb"):
            enforced["address_space"] = _set_limit("RLIMIT_AS", int(lim["memory_mb"]) * mb)
        if lim.get("cpu_seconds"):
            cpu = int(lim["cpu_seconds"])
            enforced["cpu_seconds"] = _set_limit("RLIMIT_CPU", cpu, cpu + 2)
        if lim.get("file_size_mb"):
            enforced["file_size"] = _set_limit("RLIMIT_FSIZE", int(lim["file_size_mb"]) * mb)
        if lim.get("open_files"):
            enforced["open_files"] = _set_limit("RLIMIT_NOFILE", int(lim["open_files"]))
        if lim.get("processes"):
            enforced["processes"] = _set_limit("RLIMIT_NPROC", int(lim["processes"]))
            if os.geteuid() == 0:
                enforced["processes"] = "not enforced: RLIMIT_NPROC does not bind root"
        enforced["core_dumps"] = _set_limit("RLIMIT_CORE", 0)
        with open("sandbox.json", "w") as fh:
            json.dump(enforced, fh)

        seed = int(job["seed"])
        import random

        random.seed(seed)
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed(seed % 2**32)
        if "torch" in sys.modules:
            torch = sys.modules["torch"]
            torch.manual_seed(seed)
            torch.set_num_threads(int(job.get("threads", 1)))
        os.environ["RSI_RL_WORKDIR"] = workdir
        sys.argv = [job["entry"]]
        sys.path.insert(0, workdir)
        runpy.run_path(job["entry"], run_name="__main__")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if code == EXIT_OOM:
            code = 1  # the program may not claim an OOM for itself
    except MemoryError:
        traceback.print_exc()
        code = EXIT_OOM
    except BaseException as exc:  # noqa: BLE001 - everything the program raises is a crash
        traceback.print_exc()
        code = EXIT_OOM if "can't allocate memory" in str(exc) else 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _warm_torch() -> None:
    """Pay torch's lazy first-use costs (optimizer and autograd set-up, ~1 s) once, here.

    Runs single-threaded so that no thread pool exists when the zygote forks.
    """
    import torch
    import torch.optim.swa_utils  # noqa: F401

    torch.set_num_threads(1)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4), torch.nn.GELU())
    for opt in (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD):
        o = opt(model.parameters(), lr=1e-3)
        loss = torch.nn.functional.cross_entropy(model(torch.randn(8, 4)), torch.zeros(8, dtype=torch.long))
        o.zero_grad()
        loss.backward()
        o.step()


def main() -> None:
    preload = json.loads(sys.argv[1]) if len(sys.argv) > 1 else []
    events = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints of preloaded modules must not corrupt the protocol
    failed = []
    for module in preload:
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001
            failed.append(f"{module}: {exc}")
    if "torch" in sys.modules:
        try:
            _warm_torch()
        except Exception as exc:  # noqa: BLE001
            failed.append(f"torch warm-up: {exc}")
    events.write(json.dumps({"event": "ready", "pid": os.getpid(), "preload_failed": failed}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        pid = os.fork()
        if pid == 0:
            events.close()
            _child(job)
        events.write(json.dumps({"event": "started", "pid": pid}) + "\n")
        _, status, ru = os.wait4(pid, 0)
        try:
            os.killpg(pid, signal.SIGKILL)  # whatever the program left in its group
        except (ProcessLookupError, PermissionError):
            pass
        events.write(
            json.dumps(
                {
                    "event": "exited",
                    "pid": pid,
                    "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                    "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                    "cpu_seconds": ru.ru_utime + ru.ru_stime,
                    "max_rss_mb": ru.ru_maxrss / 1024.0,
                }
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
