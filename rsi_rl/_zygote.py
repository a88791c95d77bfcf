"""The sandbox's fork server (runs as ``python -m rsi_rl._zygote``; never import it).

It starts once per :class:`rsi_rl.sandbox.Sandbox`, imports the heavy modules a task
needs (torch, numpy, ...) without running anything in them, then forks one child per
experiment so that no experiment pays a cold ``import torch``. The protocol with the
trusted parent is JSON lines: jobs on stdin; ``ready``, ``started`` and ``exited`` events
on stdout. The zygote holds no labels and no secrets: the parent keeps those.

Process tree of one *hardened* run (Linux; see docs/sandbox.md)::

    zygote                      host namespaces; waits, then sweeps the run's cgroup
     └─ C  "monitor"            own session/process group (the parent's killpg target),
         │                      joins a per-run pids cgroup, unshares PID+mount+network
         └─ G  "init", pid 1    mounts a private /proc, hides paths, remounts every mount
             │                  read-only except the scratch dir; dies with C (PDEATHSIG)
             └─ P  program      drops all capabilities (no_new_privs), rlimits, scrubbed
                                env, seeds, runs the entry file

When P exits, G exits with its status and the kernel kills everything left in the PID
namespace (detached daemons included); when the parent kills C's group on a timeout, G
gets SIGKILL from PDEATHSIG with the same effect. The zygote then kills whatever the
cgroup still holds. What was enforced travels to the parent through a pipe the program
never holds (not through a file it could rewrite). The *plain* mode (``hardened=False``)
runs P directly in C with only the session, rlimits and network namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import json
import os
import pwd
import resource
import runpy
import signal
import sys
import time
import traceback
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_MOVE, MS_REC = 32, 1024, 2048, 4096, 8192, 16384
MS_PRIVATE, MS_RELATIME, MS_STRICTATIME = 1 << 18, 1 << 21, 1 << 24
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 1, 24, 38, 47
EXIT_OOM = 3  # the child's own exit code for an allocation failure

_libc: Any = None


def _lib() -> Any:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
    return _libc


def _err() -> str:
    return os.strerror(ctypes.get_errno())


def _mount(
    src: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
) -> None:
    enc = [None if s is None else s.encode() for s in (src, target, fstype)]
    if _lib().mount(enc[0], enc[1], enc[2], flags, None if data is None else data.encode()) != 0:
        raise OSError(ctypes.get_errno(), f"mount {target}: {_err()}")


# ---------------------------------------------------------------------- limits
def _set_limit(name: str, soft: int, hard: int | None = None) -> str:
    lim = getattr(resource, name, None)
    if lim is None:
        return "not available on this platform"
    try:
        resource.setrlimit(lim, (soft, soft if hard is None else hard))
        return f"enforced: {soft}"
    except (ValueError, OSError) as exc:
        return f"not enforced: {exc}"


def _unshare_network() -> str:
    """Plain mode: leave the host's network namespace; returns how (or why not)."""
    try:
        libc = _lib()
    except OSError as exc:  # pragma: no cover - non-glibc platforms
        return f"not enforced: {exc}"
    if libc.unshare(CLONE_NEWNET) == 0:
        return "enforced: network namespace"
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0:
        return "enforced: user+network namespace"
    return f"not enforced: unshare failed ({_err()})"


def _unshare_all(no_network: bool) -> tuple[bool, str]:
    """Hardened mode: new PID, mount (and network) namespaces; a user namespace if needed."""
    flags = CLONE_NEWPID | CLONE_NEWNS | (CLONE_NEWNET if no_network else 0)
    try:
        libc = _lib()
    except OSError as exc:  # pragma: no cover
        return False, f"not enforced: {exc}"
    if libc.unshare(flags) == 0:
        return True, "enforced: pid+mount" + ("+network" if no_network else "") + " namespaces"
    first = _err()
    uid, gid = os.geteuid(), os.getegid()
    if libc.unshare(CLONE_NEWUSER | flags) == 0:  # unprivileged: root inside, `uid` outside
        try:
            with open("/proc/self/setgroups", "w") as fh:
                fh.write("deny")
            with open("/proc/self/uid_map", "w") as fh:
                fh.write(f"0 {uid} 1")
            with open("/proc/self/gid_map", "w") as fh:
                fh.write(f"0 {gid} 1")
        except OSError as exc:
            return False, f"not enforced: user namespace maps ({exc})"
        return True, "enforced: user+pid+mount" + ("+network" if no_network else "") + " namespaces"
    return False, f"not enforced: unshare failed ({first}; with a user namespace: {_err()})"


def _drop_capabilities() -> str:
    """Empty the bounding, ambient, effective, permitted and inheritable capability sets."""
    libc = _lib()
    for cap in range(64):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # EINVAL past the last cap: fine
    libc.prctl(PR_CAP_AMBIENT, 4, 0, 0, 0)  # PR_CAP_AMBIENT_CLEAR_ALL
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
    data = (ctypes.c_uint32 * 6)()
    if libc.capset(header, data) != 0:
        return f"not enforced: capset failed ({_err()})"
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return f"not enforced: no_new_privs failed ({_err()})"
    return "enforced: no capabilities, no_new_privs"


# ---------------------------------------------------------------------- filesystem view
def _mountinfo() -> list[tuple[str, set[str]]]:
    out = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            parts = line.split()
            point = parts[4].encode().decode("unicode_escape")
            out.append((point, set(parts[5].split(","))))
    return out


def _remount_flags(opts: set[str]) -> int:
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY
    for name, bit in (
        ("nosuid", MS_NOSUID),
        ("nodev", MS_NODEV),
        ("noexec", MS_NOEXEC),
        ("noatime", MS_NOATIME),
        ("nodiratime", MS_NODIRATIME),
        ("relatime", MS_RELATIME),
        ("strictatime", MS_STRICTATIME),
    ):
        if name in opts:
            flags |= bit
    return flags


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _hide(path: str, keep: list[str], workdir: str, n: int) -> str:
    """Mount an empty tmpfs over ``path`` (a file: /dev/null), re-exposing ``keep`` below it."""
    if os.path.isfile(path):
        _mount("/dev/null", path, None, MS_BIND)
        return "file"
    inner = sorted({k for k in keep if _under(k, path) and k != path and os.path.isdir(k)})
    inner = [k for k in inner if not any(_under(k, o) and k != o for o in inner)]  # outermost
    stages = []
    for i, k in enumerate(inner):
        stage = os.path.join(workdir, f".rsi_rl_stage{n}_{i}")
        os.mkdir(stage)
        _mount(k, stage, None, MS_BIND | MS_REC)
        stages.append((k, stage))
    _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=755")
    for k, stage in stages:
        dest = os.path.join(path, os.path.relpath(k, path))
        os.makedirs(dest, exist_ok=True)
        _mount(stage, dest, None, MS_MOVE)
        os.rmdir(stage)
    return "dir" + (f" (kept {', '.join(inner)})" if inner else "")


def _filesystem(job: dict[str, Any], enforced: dict[str, Any]) -> None:
    """In G, inside the new mount namespace: private /proc, hidden paths, read-only mounts."""
    workdir = job["workdir"]
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    enforced["proc"] = "enforced: private /proc (only this run's processes)"
    _mount(workdir, workdir, None, MS_BIND)
    hidden: dict[str, str] = {}
    keep = [p for p in sys.path if p and os.path.isabs(p)]
    keep += [sys.prefix, sys.base_prefix, workdir, os.path.dirname(os.path.abspath(sys.executable))]
    targets = list(job["limits"].get("hidden_paths") or [])
    if job["limits"].get("hide_home", True):
        home = pwd.getpwuid(os.getuid()).pw_dir
        if home and home != "/" and os.path.isdir(home):
            targets.insert(0, home)
    for n, path in enumerate(targets):
        if not os.path.exists(path):
            hidden[path] = "absent"
            continue
        try:
            hidden[path] = "hidden: " + _hide(path, keep, workdir, n)
        except OSError as exc:
            hidden[path] = f"not hidden: {exc}"
    enforced["hidden_paths"] = hidden
    failed = []
    for point, opts in _mountinfo():
        if _under(point, workdir) or "ro" in opts:
            continue
        try:
            _mount(None, point, None, _remount_flags(opts))
        except OSError:
            failed.append(point)
    _mount(None, workdir, None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV)
    probe = os.path.join(os.path.dirname(workdir.rstrip("/")) or "/", ".rsi_rl_probe")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT, 0o600)
        os.close(fd)
        os.unlink(probe)
        enforced["filesystem"] = f"not enforced: {probe} was writable"
    except OSError:
        enforced["filesystem"] = f"enforced: read-only except {workdir}" + (
            f" (could not remount {failed})" if failed else ""
        )


def _join_cgroup(path: str | None, enforced: dict[str, Any]) -> None:
    if not path:
        enforced["cgroup"] = "not enforced: no writable pids cgroup"
        return
    try:
        with open(os.path.join(path, "cgroup.procs"), "w") as fh:
            fh.write(str(os.getpid()))
        enforced["processes"] = f"enforced: pids cgroup {path} (pids.max)"
    except OSError as exc:
        enforced["cgroup"] = f"not enforced: {exc}"


# ---------------------------------------------------------------------- the three processes
def _program(
    job: dict[str, Any], enforced: dict[str, Any], hardened: bool, report: int = -1
) -> None:
    """P: limits, environment, seeds, then the entry file. Never returns.

    What it enforced goes to ``report`` (a pipe to G), closed before the program runs.
    """
    code = 1
    try:
        lim = job["limits"]
        workdir = job["workdir"]
        if hardened:
            enforced["capabilities"] = _drop_capabilities()
        os.environ.clear()
        os.environ.update(job["env"])
        os.environ["TMPDIR"] = workdir
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
            nproc = _set_limit("RLIMIT_NPROC", int(lim["processes"]))
            if os.geteuid() == 0 and "cgroup" not in str(enforced.get("processes")):
                nproc = "not enforced: RLIMIT_NPROC does not bind root and no pids cgroup"
            enforced.setdefault("processes", nproc)
        enforced["core_dumps"] = _set_limit("RLIMIT_CORE", 0)
        if report >= 0:
            os.write(report, json.dumps(enforced).encode())
            os.close(report)
        with open("sandbox.json", "w") as fh:  # for humans; the parent trusts the pipe
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
            os._exit(code & 0xFF)


def _init(job: dict[str, Any], enforced: dict[str, Any], out: int) -> None:
    """G: pid 1 of the run's PID namespace. Sets up the filesystem, runs P, reports. Never returns."""
    try:
        # if C is killed (timeout), G dies, and with it the namespace; had C died before
        # this line, the zygote's cgroup sweep kills G instead
        _lib().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        enforced["pid_namespace"] = "enforced: program runs under pid 1 of its own namespace"
        try:
            _filesystem(job, enforced)
        except OSError as exc:
            enforced["filesystem"] = f"not enforced: {exc}"
        os.chdir(job["workdir"])  # the bind mount, not the read-only directory below it
        pr, pw = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(out)
            os.close(pr)
            _program(job, enforced, hardened=True, report=pw)
        os.close(pw)
        while True:
            try:
                _, status = os.waitpid(pid, 0)
                break
            except ChildProcessError:
                status = 1 << 8
                break
            except InterruptedError:  # pragma: no cover
                continue
        with contextlib.suppress(OSError, ValueError):
            enforced.update(json.loads(os.read(pr, 1 << 20) or b"{}"))
        report = {
            "enforced": enforced,
            "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        }
        os.write(out, json.dumps(report).encode())
    finally:
        os._exit(0)  # the kernel now kills everything left in this PID namespace


def _monitor(job: dict[str, Any], report_fd: int) -> None:
    """C: runs in the forked zygote child; never returns."""
    try:
        _lib().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # dies with the zygote
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
        os.closerange(3, report_fd)
        os.closerange(report_fd + 1, 4096)
        sys.stdout = os.fdopen(1, "w", buffering=1)
        sys.stderr = os.fdopen(2, "w", buffering=1)
        for default in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(default, signal.SIG_DFL)
        lim = job["limits"]
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        enforced: dict[str, Any] = {"process_group": "enforced: own session", "cwd": workdir}
        hardened = bool(lim.get("hardened", True))
        ok = False
        if hardened:
            _join_cgroup(job.get("cgroup"), enforced)
            want_net = bool(lim.get("no_network", True)) and not _NET_ISOLATED
            ok, how = _unshare_all(want_net)
            enforced["namespaces"] = how
            enforced["network"] = (
                ("enforced: network namespace" if ok else "not enforced: " + how)
                if want_net
                else _network_note(lim)
            )
        if not ok:  # plain mode, or namespaces unavailable: run the program in this process
            if not hardened:
                if lim.get("no_network", True) and not _NET_ISOLATED:
                    enforced["network"] = _unshare_network()
                else:
                    enforced["network"] = _network_note(lim)
            enforced["pid_namespace"] = "not enforced"
            enforced["filesystem"] = "not enforced: the program may write wherever its user may"
            os.close(report_fd)
            _program(job, enforced, hardened=False)
        r, w = os.pipe()
        me = os.getpid()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.close(report_fd)
            _init(job, enforced, w)
        os.close(w)
        chunks = []
        while True:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        _, status = os.waitpid(pid, 0)
        report: dict[str, Any] = {}
        with contextlib.suppress(ValueError):
            report = json.loads(b"".join(chunks) or b"{}")
        os.write(report_fd, json.dumps(report.get("enforced", enforced)).encode())
        os.close(report_fd)
        sig = report.get("signal")
        if not report:  # G was killed (e.g. by a sweep), or failed before running P
            if not os.WIFSIGNALED(status):
                print("rsi_rl sandbox: the namespace init ended without a report", file=sys.stderr)
                os._exit(1)
            sig = int(os.WTERMSIG(status))
        if sig:
            if sig not in (signal.SIGKILL, signal.SIGSTOP):
                signal.signal(sig, signal.SIG_DFL)
            os.kill(me, sig)
            time.sleep(1)
            os._exit(128 + sig)
        os._exit(int(report.get("exit_code") or 0))
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
        os._exit(1)


# ---------------------------------------------------------------------- cgroups
def _pids_cgroup_root() -> str | None:
    """A writable pids-controller hierarchy (cgroup v1 ``pids`` or v2 with ``pids``)."""
    try:
        with open("/proc/self/mounts") as fh:
            mounts = [line.split() for line in fh]
    except OSError:
        return None
    for _, point, fstype, opts, *_ in mounts:
        if fstype == "cgroup" and "pids" in opts.split(","):
            return point if os.access(point, os.W_OK) else None
    for _, point, fstype, *_ in mounts:
        if fstype == "cgroup2":
            try:
                with open(os.path.join(point, "cgroup.controllers")) as fh:
                    if "pids" in fh.read().split() and os.access(point, os.W_OK):
                        return point
            except OSError:
                continue
    return None


def _make_cgroup(root: str | None, name: str, max_pids: int) -> str | None:
    if root is None or max_pids <= 0:
        return None
    path = os.path.join(root, "rsi_rl", name)
    try:
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "pids.max"), "w") as fh:
            fh.write(str(max_pids))
        return path
    except OSError:
        return None


def _sweep_cgroup(path: str | None) -> int:
    """Kill every process left in the run's cgroup, then remove it; returns how many."""
    if not path:
        return 0
    killed = 0
    for _ in range(200):
        try:
            with open(os.path.join(path, "cgroup.procs")) as fh:
                pids = [int(p) for p in fh.read().split()]
        except OSError:
            break
        if not pids:
            break
        for p in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(p, signal.SIGKILL)
                killed += 1
        time.sleep(0.005)
    with contextlib.suppress(OSError):
        os.rmdir(path)
    return killed


# ---------------------------------------------------------------------- server loop
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
        loss = torch.nn.functional.cross_entropy(
            model(torch.randn(8, 4)), torch.zeros(8, dtype=torch.long)
        )
        o.zero_grad()
        loss.backward()
        o.step()


#: True once the fork server itself left the host's network namespace: every run inherits
#: that namespace (no interfaces but a down loopback), so none pays for its own.
_NET_ISOLATED = False
_NET_HOW = ""


def _network_note(lim: dict[str, Any]) -> str:
    if not lim.get("no_network", True):
        return (
            "allowed" if not _NET_ISOLATED else f"{_NET_HOW} (the fork server's; cannot be lifted)"
        )
    return f"{_NET_HOW} (the fork server's, inherited)"


def _isolate_fork_server(no_network: bool) -> None:
    """Tie the fork server's life to the parent's; leave the network once for all runs."""
    global _NET_ISOLATED, _NET_HOW
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        _lib().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the prctl took effect
        os._exit(1)
    if no_network:  # only where it needs no user namespace; else each run unshares its own
        with contextlib.suppress(OSError, AttributeError):
            if _lib().unshare(CLONE_NEWNET) == 0:
                _NET_ISOLATED, _NET_HOW = True, "enforced: network namespace"


def main() -> None:
    preload = json.loads(sys.argv[1]) if len(sys.argv) > 1 else []
    no_network = len(sys.argv) <= 2 or sys.argv[2] != "network"
    events = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints of preloaded modules must not corrupt the protocol
    failed = []
    for module in ["rsi_rl.harness", *preload]:
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001
            failed.append(f"{module}: {exc}")
    if "torch" in sys.modules:
        try:
            _warm_torch()
        except Exception as exc:  # noqa: BLE001
            failed.append(f"torch warm-up: {exc}")
    cg_root = _pids_cgroup_root()
    _isolate_fork_server(no_network)
    events.write(
        json.dumps({"event": "ready", "pid": os.getpid(), "preload_failed": failed}) + "\n"
    )
    n = 0
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        n += 1
        lim = job["limits"]
        cgroup = None
        if lim.get("hardened", True):
            cgroup = _make_cgroup(cg_root, f"{os.getpid()}_{n}", int(lim.get("processes") or 0))
        job["cgroup"] = cgroup
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            events.close()
            os.close(r)
            _monitor(job, w)
        os.close(w)
        events.write(json.dumps({"event": "started", "pid": pid}) + "\n")
        _, status, ru = os.wait4(pid, 0)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # whatever the program left in its group
        swept = _sweep_cgroup(cgroup)
        os.set_blocking(r, False)
        try:
            raw = os.read(r, 1 << 20)
        except (BlockingIOError, OSError):
            raw = b""
        os.close(r)
        try:
            enforced = json.loads(raw) if raw else {}
        except ValueError:
            enforced = {}
        if swept:
            enforced["swept"] = f"killed {swept} processes left in the cgroup"
        events.write(
            json.dumps(
                {
                    "event": "exited",
                    "pid": pid,
                    "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                    "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                    "cpu_seconds": ru.ru_utime + ru.ru_stime,
                    "max_rss_mb": ru.ru_maxrss / 1024.0,
                    "enforced": enforced,
                }
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
