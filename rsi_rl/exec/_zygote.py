"""The sandbox's fork server (runs as ``python -m rsi_rl.exec._zygote``; never import it).

It starts once per :class:`rsi_rl.exec.sandbox.Sandbox`, imports the heavy modules a task
needs (torch, numpy, ...) without running anything in them, then forks one child per
experiment so that no experiment pays a cold ``import torch``. The protocol with the
trusted parent is JSON lines: jobs on stdin; ``ready``, ``started`` and ``exited`` events
on stdout. The zygote holds no labels and no secrets: the parent keeps those.

Process tree of one *hardened* run (Linux; see docs/sandbox.md)::

    zygote                      host namespaces; waits, then sweeps the run's cgroups and
     │                          reads their CPU time
     └─ C  "monitor"            own session/process group (the parent's killpg target),
         │                      opens the logs and a directory fd of the host scratch dir,
         │                      joins the run's cgroups, unshares PID+mount+network
         └─ G  "init", pid 1    private /proc; a tmpfs of disk_mb over the scratch dir
             │                  (inputs bind-mounted read-only); hides paths; remounts
             │                  every other mount read-only; private /dev/shm; /dev/null
             │                  over /dev/kmsg; dies with C (PDEATHSIG)
             └─ P  program      drops all capabilities (no_new_privs), seccomp filter
                                against new user namespaces, rlimits, scrubbed env,
                                seeds, runs the entry file

When P exits, G kills what is left of the run, copies its regular files back to the host
scratch dir (through the fd C opened) and exits with P's status; the kernel kills
anything left in the PID namespace. When the parent kills C's group on a timeout, G gets
SIGKILL from PDEATHSIG with the same effect and nothing is copied back. The zygote then
kills whatever the cgroups still hold.

One long module on purpose: it runs as ``python -m rsi_rl.exec._zygote`` before any program,
imports only the standard library, and the steps of the process tree above are audited
together as one trust boundary.

The sandbox record (what was enforced) is written only by the trusted side, through
pipes the program never holds: P reports its limits to G and closes the pipe before the
program's first line; G forwards the record to C at once, and C to the zygote, as JSON
lines, so a run killed on timeout still has it. ``sandbox.json`` in the scratch dir is a
copy for humans that nothing trusted reads. The *plain* mode (``hardened=False``) runs P
directly in C with only the session, rlimits and network namespace; P writes its record
straight to the zygote's pipe.
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
import stat
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
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
MNT_DETACH = 2
#: files the monitor opens on the host before the run; the copy-back never overwrites them
HOST_OWNED = ("stdout.log", "stderr.log")
#: files bind-mounted writable from the host into the run's tmpfs, so that the parent reads
#: them while the program runs (``harness.report``'s file, polled by a pruner); the program
#: can write them but not replace them, and the copy-back skips them (another device)
HOST_SHARED = ("reports.jsonl",)
#: scratch files at least this large are bind-mounted read-only into the run's tmpfs
#: (e.g. inputs.npz) instead of being copied into it
BIND_MIN_BYTES = 1 << 20
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
    if soft < 0 or (hard is not None and hard < soft):  # -1 would mean "unlimited"
        return f"not enforced: invalid value {soft}"
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


class _SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


#: audit arch, unshare, clone, clone3 syscall numbers (little-endian 64-bit ABIs only)
_SYSCALLS = {"x86_64": (0xC000003E, 272, 56, 435), "aarch64": (0xC00000B7, 97, 220, 435)}
_BPF_LD_ABS, _BPF_JEQ, _BPF_JGE, _BPF_JSET, _BPF_RET = 0x20, 0x15, 0x35, 0x45, 0x06
_RET_ALLOW, _RET_ERRNO = 0x7FFF0000, 0x00050000
_X32_SYSCALL_BIT = 0x40000000
_EPERM, _ENOSYS = 1, 38


def _userns_filter(arch: int, unshare: int, clone: int, clone3: int) -> list[tuple[int, ...]]:
    """BPF: EPERM for unshare/clone with CLONE_NEWUSER, ENOSYS for clone3 (libc falls back to
    clone) and for every syscall of another ABI (i386, x32), allow the rest."""
    allow = (_BPF_RET, 0, 0, _RET_ALLOW)
    eperm = (_BPF_RET, 0, 0, _RET_ERRNO | _EPERM)
    enosys = (_BPF_RET, 0, 0, _RET_ERRNO | _ENOSYS)
    return [
        (_BPF_LD_ABS, 0, 0, 4),  # 0: seccomp_data.arch
        (_BPF_JEQ, 1, 0, arch),  # 1
        enosys,  # 2: another ABI
        (_BPF_LD_ABS, 0, 0, 0),  # 3: seccomp_data.nr
        (_BPF_JGE, 8, 0, _X32_SYSCALL_BIT),  # 4: x32 -> 13
        (_BPF_JEQ, 3, 0, unshare),  # 5 -> 9
        (_BPF_JEQ, 2, 0, clone),  # 6 -> 9
        (_BPF_JEQ, 5, 0, clone3),  # 7 -> 13
        allow,  # 8
        (_BPF_LD_ABS, 0, 0, 16),  # 9: low 32 bits of args[0] (the flags)
        (_BPF_JSET, 1, 0, CLONE_NEWUSER),  # 10
        allow,  # 11
        eperm,  # 12
        enosys,  # 13
    ]


def _block_user_namespaces() -> str:
    """P, after no_new_privs: a seccomp filter that refuses new user namespaces."""
    import platform

    numbers = _SYSCALLS.get(platform.machine())
    if numbers is None or sys.byteorder != "little":
        return f"not enforced: no seccomp filter for {platform.machine()}"
    prog = _userns_filter(*numbers)
    insns = (_SockFilter * len(prog))(*(_SockFilter(*i) for i in prog))
    fprog = _SockFprog(len(prog), insns)
    if _lib().prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        return f"not enforced: seccomp failed ({_err()})"
    return "blocked: seccomp (unshare/clone with CLONE_NEWUSER get EPERM, clone3 ENOSYS)"


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


def _umount(target: str) -> None:
    if _lib().umount2(target.encode(), MNT_DETACH) != 0:
        raise OSError(ctypes.get_errno(), f"umount {target}: {_err()}")


def _fill(src: int, dest: str, depth: int = 0) -> None:
    """Copy the host scratch dir (``src``, a directory fd) into the run's tmpfs at ``dest``.

    Files of at least :data:`BIND_MIN_BYTES` (the inputs) are bind-mounted read-only
    instead of copied, :data:`HOST_SHARED` ones writable; the monitor's log files stay on
    the host only.
    """
    for name in os.listdir(src):
        if depth == 0 and name in HOST_OWNED:
            continue
        st = os.stat(name, dir_fd=src, follow_symlinks=False)
        target = os.path.join(dest, name)
        if stat.S_ISDIR(st.st_mode) and depth < 16:
            os.mkdir(target, stat.S_IMODE(st.st_mode))
            sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=src)
            try:
                _fill(sub, target, depth + 1)
            finally:
                os.close(sub)
        elif stat.S_ISREG(st.st_mode) and (
            st.st_size >= BIND_MIN_BYTES or (depth == 0 and name in HOST_SHARED)
        ):
            shared = depth == 0 and name in HOST_SHARED
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444))
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW, dir_fd=src)
            try:
                _mount(f"/proc/self/fd/{fd}", target, None, MS_BIND)
            finally:
                os.close(fd)
            flags = MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | (0 if shared else MS_RDONLY)
            _mount(None, target, None, flags)
        elif stat.S_ISREG(st.st_mode):
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=src)
            try:
                with open(target, "xb") as out:
                    out.write(os.read(fd, st.st_size + 1))
                os.chmod(target, stat.S_IMODE(st.st_mode))
            finally:
                os.close(fd)


def _scratch_tmpfs(workdir: str, disk_mb: int) -> str:
    """Mount a tmpfs of ``disk_mb`` MiB over ``workdir`` holding its files; returns how."""
    src = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        mode = stat.S_IMODE(os.fstat(src).st_mode)
        # at most 16 files per MiB (plus 1024): the copy-back stays bounded in files too
        data = f"size={int(disk_mb)}m,nr_inodes={16 * int(disk_mb) + 1024},mode={mode:o}"
        _mount("tmpfs", workdir, "tmpfs", MS_NOSUID | MS_NODEV, data)
        try:
            _fill(src, workdir)
        except OSError:
            _umount(workdir)
            raise
    finally:
        os.close(src)
    return (
        f"enforced: scratch dir is a {int(disk_mb)} MiB tmpfs (at most {16 * int(disk_mb) + 1024} "
        "files); inputs of 1 MiB or more read-only"
    )


def _devices(disk_mb: int, enforced: dict[str, Any]) -> None:
    """A private writable /dev/shm (size-capped) and /dev/null over /dev/kmsg."""
    shm_mb = min(int(disk_mb), 256)
    if os.path.isdir("/dev/shm"):
        try:
            _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"size={shm_mb}m,mode=1777")
            enforced["dev_shm"] = f"enforced: private writable tmpfs of {shm_mb} MiB"
        except OSError as exc:
            enforced["dev_shm"] = f"not private: {exc}"
    else:
        enforced["dev_shm"] = "absent"
    if os.path.exists("/dev/kmsg"):
        try:
            _mount("/dev/null", "/dev/kmsg", None, MS_BIND)
            enforced["kmsg"] = "blocked: /dev/null mounted over /dev/kmsg"
        except OSError as exc:
            enforced["kmsg"] = f"not blocked: {exc}"
    else:
        enforced["kmsg"] = "absent"


def _gpu_nodes(lim: dict[str, Any], enforced: dict[str, Any]) -> None:
    """G, after the read-only remount: a GPU run (``devices: cuda``) gets each GPU device
    node of ``gpu_nodes`` that exists bind-mounted read-write, device access allowed; a
    CPU run gets ``/dev/null`` (an empty tmpfs for a folder such as ``/dev/dri``) over
    them. Symbolic links are left alone. Recorded as ``gpu_devices``."""
    nodes = [p for p in lim.get("gpu_nodes") or [] if os.path.exists(p) and not os.path.islink(p)]
    cuda = lim.get("devices") == "cuda"
    if not nodes:
        if cuda:
            enforced["gpu_devices"] = "not exposed: no GPU device nodes exist"
        return
    done, failed = [], []
    for path in nodes:
        folder = os.path.isdir(path)
        try:
            if cuda:
                _mount(path, path, None, MS_BIND | (MS_REC if folder else 0))
                _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_NOSUID)
            elif folder:
                _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY, "size=4k")
            else:
                _mount("/dev/null", path, None, MS_BIND)
            done.append(path)
        except OSError as exc:
            failed.append(f"{path} ({exc.strerror or exc})")
    how = "exposed read-write" if cuda else "hidden (a CPU run)"
    enforced["gpu_devices"] = (f"{how}: {', '.join(done)}" if done else f"none {how}") + (
        f"; failed: {', '.join(failed)}" if failed else ""
    )


def _filesystem(job: dict[str, Any], enforced: dict[str, Any]) -> None:
    """In G, inside the new mount namespace: private /proc, a size-capped scratch tmpfs,
    hidden paths, read-only mounts, private /dev/shm, no /dev/kmsg."""
    workdir = job["workdir"]
    disk_mb = int(job["limits"].get("disk_mb") or 1024)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    enforced["proc"] = "enforced: private /proc (only this run's processes)"
    try:
        enforced["disk"] = _scratch_tmpfs(workdir, disk_mb)
    except OSError as exc:
        enforced["disk"] = f"not enforced: {exc}"
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
    if not enforced["disk"].startswith("enforced"):
        _mount(None, workdir, None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV)
    _devices(disk_mb, enforced)
    _gpu_nodes(job["limits"], enforced)
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


# ---------------------------------------------------------------------- copy-back
def _copy_file(src: int, dst: int, name: str, left: int) -> int:
    """Copy the regular file ``name`` (at most ``left`` bytes); returns the bytes copied."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=src)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > left:
            return -1
        out = os.open(
            name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644, dir_fd=dst
        )
        copied = 0
        try:
            while copied < left:
                chunk = os.read(fd, min(1 << 20, left - copied))
                if not chunk:
                    break
                os.write(out, chunk)
                copied += len(chunk)
        finally:
            os.close(out)
        return copied
    finally:
        os.close(fd)


def _copy_dir(src: int, dst: int, dev: int, state: dict[str, int], depth: int) -> None:
    for name in sorted(os.listdir(src)):
        if depth == 0 and (name in HOST_OWNED or name.startswith(".rsi_rl_stage")):
            continue
        try:
            st = os.stat(name, dir_fd=src, follow_symlinks=False)
            if st.st_dev != dev:  # a read-only input bind-mounted from the host
                continue
            if stat.S_ISDIR(st.st_mode) and depth < 16:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o755, dir_fd=dst)
                flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                sub_src = os.open(name, flags, dir_fd=src)
                try:
                    sub_dst = os.open(name, flags, dir_fd=dst)
                    try:
                        _copy_dir(sub_src, sub_dst, dev, state, depth + 1)
                    finally:
                        os.close(sub_dst)
                finally:
                    os.close(sub_src)
            elif stat.S_ISREG(st.st_mode):
                got = _copy_file(src, dst, name, state["left"])
                if got < 0:
                    state["skipped"] += 1
                else:
                    state["left"] -= got
                    state["files"] += 1
            else:
                state["skipped"] += 1  # symlinks, FIFOs, sockets, devices
        except OSError:
            state["skipped"] += 1


def _copy_back(workdir: str, host: int, disk_mb: int) -> str:
    """G, after P: copy the run's regular files from its tmpfs to the host scratch dir
    (``host``, a directory fd opened on the host before the tmpfs was mounted)."""
    src = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        state = {"left": int(disk_mb) << 20, "files": 0, "skipped": 0}
        _copy_dir(src, host, os.fstat(src).st_dev, state, 0)
    finally:
        os.close(src)
    used = (int(disk_mb) << 20) - state["left"]
    return (
        f"{state['files']} regular files ({used / 2**20:.1f} MiB) copied to the host; "
        f"{state['skipped']} other entries skipped"
    )


def _end_namespace() -> None:
    """G (pid 1): kill every other process of the run and reap them."""
    if os.getpid() != 1:  # never outside the run's own PID namespace
        return
    with contextlib.suppress(OSError):
        os.kill(-1, signal.SIGKILL)
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return
        except InterruptedError:  # pragma: no cover
            continue


def _join_cgroups(job: dict[str, Any], enforced: dict[str, Any]) -> None:
    """C: join the run's pids cgroup (and its CPU-accounting cgroup, if a separate one)."""
    path = job.get("cgroup")
    if not path:
        enforced["cgroup"] = "not enforced: no writable pids cgroup"
    else:
        try:
            with open(os.path.join(path, "cgroup.procs"), "w") as fh:
                fh.write(str(os.getpid()))
            enforced["processes"] = f"enforced: pids cgroup {path} (pids.max)"
        except OSError as exc:
            enforced["cgroup"] = f"not enforced: {exc}"
    cpu = job.get("cpu_cgroup")
    if cpu and cpu != path:
        with contextlib.suppress(OSError), open(os.path.join(cpu, "cgroup.procs"), "w") as fh:
            fh.write(str(os.getpid()))


def _reset_inherited_paths(workdir: str) -> None:
    """Point the paths the preloaded modules cached in the zygote at the run's ``workdir``.

    ``tempfile`` caches its folder on first use (torch's import and warm-up use it), so
    ``TMPDIR`` alone would leave ``tempfile.mkdtemp``, and with it ``multiprocessing``'s
    ``pymp-*`` folder that every DataLoader worker and pool needs, on the host's ``/tmp``:
    read-only in hardened mode, shared with other runs in plain mode. ``multiprocessing``
    also noted the zygote's working directory at import; a ``spawn`` or ``forkserver``
    child resolves the relative entry file (``train.py``) against it.
    """
    import tempfile

    tempfile.tempdir = workdir
    mp_process = sys.modules.get("multiprocessing.process")
    if mp_process is not None:
        mp_process.ORIGINAL_DIR = workdir  # type: ignore[attr-defined]
        mp_process.current_process()._config.pop("tempdir", None)


# ---------------------------------------------------------------------- the three processes
def _program(job: dict[str, Any], enforced: dict[str, Any], hardened: bool, report: int) -> None:
    """P: limits, environment, seeds, then the entry file. Never returns.

    What it enforced goes to ``report`` (a pipe to G in hardened mode, to the zygote in
    plain mode) as one JSON line, and the pipe is closed before the program runs.
    """
    code = 1
    try:
        lim = job["limits"]
        workdir = job["workdir"]
        if hardened:
            enforced["capabilities"] = _drop_capabilities()
            enforced["user_namespaces"] = _block_user_namespaces()
        os.environ.clear()
        os.environ.update(job["env"])
        os.environ["TMPDIR"] = workdir
        _reset_inherited_paths(workdir)
        enforced["environment"] = f"scrubbed: {sorted(job['env'])}"
        mb = 1024 * 1024
        if lim.get("memory_mb"):
            enforced["address_space"] = _set_limit("RLIMIT_AS", int(lim["memory_mb"]) * mb)
        elif lim.get("devices") == "cuda":
            enforced["address_space"] = (
                "not enforced: a GPU run (CUDA reserves far more address space than it uses)"
            )
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
        os.write(report, (json.dumps(enforced) + "\n").encode())
        os.close(report)  # before the program runs: it never holds the trusted pipe
        # a copy for humans only: nothing trusted reads it (the program may rewrite it)
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
        if "rsi_rl.harness" in sys.modules:  # preloaded: its clock must start now, not at import
            sys.modules["rsi_rl.harness"].start_clock()
        runpy.run_path(job["entry"], run_name="__main__")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if code == EXIT_OOM:
            code = 1  # the program may not claim an OOM for itself
    except MemoryError as exc:
        _print_error(exc, str(job.get("workdir") or os.getcwd()))
        code = EXIT_OOM
    except BaseException as exc:  # noqa: BLE001 - everything the program raises is a crash
        code = EXIT_OOM if "can't allocate memory" in str(exc) else 1
        _print_error(exc, str(job.get("workdir") or os.getcwd()))
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code & 0xFF)


def _traceback_lines(te: traceback.TracebackException, workdir: str) -> list[str]:
    """A compact traceback of ``te`` and its chain, as the record's stderr tail needs it.

    The sandbox's own frames (this module, ``runpy``) are left out; frames of the
    program's files keep their source line, library frames show only where they are. So
    the tail (the last ~2 kB of stderr that a record keeps) still reaches back to the
    first error, such as a DataLoader worker's own message before the parent's traceback.
    """
    if getattr(te, "exceptions", None):  # an ExceptionGroup: Python's own format shows its members
        return list(te.format())
    lines: list[str] = []
    if te.__cause__ is not None:
        lines += _traceback_lines(te.__cause__, workdir)
        lines.append("\nThe above exception was the direct cause of the following exception:\n\n")
    elif te.__context__ is not None and not te.__suppress_context__:
        lines += _traceback_lines(te.__context__, workdir)
        lines.append("\nDuring handling of the above exception, another exception occurred:\n\n")
    frames = [
        f for f in te.stack if f.filename != __file__ and not f.filename.startswith("<frozen runpy")
    ]
    if frames:
        lines.append("Traceback (most recent call last):\n")
    for f in frames:
        lines.append(f'  File "{f.filename}", line {f.lineno}, in {f.name}\n')
        own = not os.path.isabs(f.filename) or f.filename.startswith(workdir + os.sep)
        if own and f.line:
            lines.append(f"    {f.line.strip()}\n")
    lines += list(te.format_exception_only())
    return lines


def _print_error(exc: BaseException, workdir: str) -> None:
    """Print the program's uncaught ``exc`` to stderr, whatever its signal handlers do.

    A handler the program installed may fire while the traceback prints and raise its own
    exception (torch's DataLoader raises from ``SIGCHLD`` when a worker dies), which would
    leave stderr without the error that ended the run; the program's handlers go first.
    """
    for _ in range(3):  # a handler already due may still fire once while they are removed
        try:
            for signum in signal.valid_signals():
                with contextlib.suppress(OSError, ValueError):
                    if callable(signal.getsignal(signum)):
                        signal.signal(signum, signal.SIG_DFL)
            te = traceback.TracebackException(type(exc), exc, exc.__traceback__, compact=True)
            sys.stderr.write("".join(_traceback_lines(te, workdir)))
            return
        except BaseException:  # noqa: BLE001, S112 - raised by a handler: print again
            continue


def _send(fd: int, message: dict[str, Any]) -> None:
    os.write(fd, (json.dumps(message) + "\n").encode())


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except InterruptedError:  # pragma: no cover
            continue
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _wait(pid: int) -> int:
    while True:
        try:
            return os.waitpid(pid, 0)[1]
        except ChildProcessError:
            return 1 << 8
        except InterruptedError:  # pragma: no cover
            continue


def _init(job: dict[str, Any], enforced: dict[str, Any], out: int, host: int) -> None:
    """G: pid 1 of the run's PID namespace. Sets up the filesystem, runs P, reports. Never returns.

    Two JSON lines go to C on ``out``: ``{"enforced": ...}`` as soon as P has applied its
    limits (before the program starts, so a run killed on timeout still has its record),
    then the copy-back and P's exit status. ``host`` is a directory fd of the host scratch
    dir, opened before the namespaces existed: the copy-back writes through it.
    """
    try:
        # if C is killed (timeout), G dies, and with it the namespace; had C died before
        # this line, the zygote's cgroup sweep kills G instead
        _lib().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        enforced["pid_namespace"] = "enforced: program runs under pid 1 of its own namespace"
        try:
            _filesystem(job, enforced)
        except OSError as exc:
            enforced["filesystem"] = f"not enforced: {exc}"
        os.chdir(job["workdir"])  # the run's tmpfs (or bind mount), not the directory below it
        pr, pw = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(out)
            os.close(pr)
            os.close(host)
            _program(job, enforced, hardened=True, report=pw)
        os.close(pw)
        with contextlib.suppress(ValueError):  # P closes its end before the program runs
            enforced.update(json.loads(_read_all(pr) or b"{}"))
        os.close(pr)
        _send(out, {"enforced": enforced})
        status = _wait(pid)
        final: dict[str, Any] = {}
        if str(enforced.get("disk", "")).startswith("enforced"):
            _end_namespace()
            try:
                disk_mb = int(job["limits"].get("disk_mb") or 1024)
                final["copy_back"] = _copy_back(job["workdir"], host, disk_mb)
            except OSError as exc:
                final["copy_back"] = f"failed: {exc}"
        _send(
            out,
            {
                "enforced": final,
                "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            },
        )
    finally:
        os._exit(0)  # the kernel now kills everything left in this PID namespace


def _relay(r: int, report_fd: int) -> dict[str, Any]:
    """C: forward each ``enforced`` G sends to the zygote at once; returns G's last line."""
    buf, last = b"", {}
    while True:
        try:
            chunk = os.read(r, 65536)
        except InterruptedError:  # pragma: no cover
            continue
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            with contextlib.suppress(ValueError):
                message = json.loads(line)
                if isinstance(message, dict):
                    _send(report_fd, dict(message.get("enforced") or {}))
                    last = message
        if not chunk:
            return last


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
            host = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY)  # before any namespace
            _join_cgroups(job, enforced)
            want_net = bool(lim.get("no_network", True)) and not _NET_ISOLATED
            ok, how = _unshare_all(want_net)
            enforced["namespaces"] = how
            enforced["network"] = (
                ("enforced: network namespace" if ok else "not enforced: " + how)
                if want_net
                else _network_note(lim)
            )
            if not ok:
                os.close(host)
        if not ok:  # plain mode, or namespaces unavailable: run the program in this process
            if not hardened:
                if lim.get("no_network", True) and not _NET_ISOLATED:
                    enforced["network"] = _unshare_network()
                else:
                    enforced["network"] = _network_note(lim)
            enforced["pid_namespace"] = "not enforced"
            enforced["filesystem"] = "not enforced: the program may write wherever its user may"
            enforced["disk"] = "not enforced: only each file's size (file_size_mb)"
            _program(job, enforced, hardened=False, report=report_fd)
        r, w = os.pipe()
        me = os.getpid()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.close(report_fd)
            _init(job, enforced, w, host)
        os.close(w)
        os.close(host)
        report = _relay(r, report_fd)
        status = _wait(pid)
        os.close(report_fd)
        sig = report.get("signal")
        if "exit_code" not in report:  # G was killed (e.g. by a sweep), or failed before P
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
def _v1_root(controller: str) -> tuple[str | None, list[list[str]]]:
    """The writable cgroup v1 hierarchy of ``controller`` (None: none, or not writable),
    and, only when no v1 hierarchy holds ``controller``, the mounts to look further in
    (``/proc/self/mounts``, split; empty if unreadable)."""
    try:
        with open("/proc/self/mounts") as fh:
            mounts = [line.split() for line in fh]
    except OSError:
        return None, []
    for _, point, fstype, opts, *_ in mounts:
        if fstype == "cgroup" and controller in opts.split(","):
            return (point if os.access(point, os.W_OK) else None), []
    return None, mounts


def _pids_cgroup_root() -> str | None:
    """A writable pids-controller hierarchy (cgroup v1 ``pids`` or v2 with ``pids``)."""
    root, mounts = _v1_root("pids")
    if root is not None:
        return root
    for _, point, fstype, *_ in mounts:
        if fstype == "cgroup2":
            try:
                with open(os.path.join(point, "cgroup.controllers")) as fh:
                    if "pids" in fh.read().split() and os.access(point, os.W_OK):
                        return point
            except OSError:
                continue
    return None


def _cpuacct_root() -> str | None:
    """A writable cgroup v1 hierarchy with the ``cpuacct`` controller, if any."""
    return _v1_root("cpuacct")[0]


def _make_cgroup(root: str | None, name: str, max_pids: int = 0) -> str | None:
    """A cgroup ``rsi_rl/<name>`` under ``root``; with ``max_pids``, its ``pids.max``."""
    if root is None:
        return None
    path = os.path.join(root, "rsi_rl", name)
    try:
        os.makedirs(path, exist_ok=True)
        if max_pids > 0:
            with open(os.path.join(path, "pids.max"), "w") as fh:
                fh.write(str(max_pids))
        return path
    except OSError:
        with contextlib.suppress(OSError):
            os.rmdir(path)
        return None


def _cgroup_cpu_seconds(path: str | None) -> float | None:
    """CPU time used by every process that was in the cgroup (v2 ``cpu.stat``, v1
    ``cpuacct.usage``), or None where neither is readable."""
    if not path:
        return None
    try:
        with open(os.path.join(path, "cpu.stat")) as fh:
            for line in fh:
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) / 1e6
    except (OSError, ValueError):
        pass
    try:
        with open(os.path.join(path, "cpuacct.usage")) as fh:
            return int(fh.read()) / 1e9
    except (OSError, ValueError):
        return None


def _sweep_cgroup(path: str | None) -> int:
    """Kill every process left in the run's cgroup; returns how many."""
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
    return killed


def _remove_cgroup(path: str | None) -> None:
    if path:
        with contextlib.suppress(OSError):
            os.rmdir(path)


def _read_report(r: int) -> dict[str, Any]:
    """The zygote: merge the JSON lines the run's trusted side wrote (C, G or P before
    the program started); empty if none arrived."""
    os.set_blocking(r, False)
    raw = b""
    while True:
        try:
            chunk = os.read(r, 1 << 20)
        except (BlockingIOError, OSError):
            break
        if not chunk:
            break
        raw += chunk
    enforced: dict[str, Any] = {}
    for line in raw.split(b"\n"):
        with contextlib.suppress(ValueError):
            part = json.loads(line) if line.strip() else {}
            if isinstance(part, dict):
                enforced.update(part)
    return enforced


# ---------------------------------------------------------------------- server loop
def _warm_torch() -> None:
    """Pay torch's lazy first-use costs (optimizer and autograd set-up, ~1 s) once, here.

    Runs single-threaded so that no thread pool exists when the zygote forks.
    """
    import torch
    import torch.optim.swa_utils  # noqa: F401

    torch.set_num_threads(1)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4), torch.nn.GELU())
    with _cuda_unavailable(torch):
        for opt in (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD):
            o = opt(model.parameters(), lr=1e-3)
            loss = torch.nn.functional.cross_entropy(
                model(torch.randn(8, 4)), torch.zeros(8, dtype=torch.long)
            )
            o.zero_grad()
            loss.backward()
            o.step()


@contextlib.contextmanager
def _cuda_unavailable(torch: Any) -> Any:
    """Within: ``torch.cuda.is_available()`` and ``torch.accelerator.is_available()`` say
    False without asking the driver. Adam's ``step`` asks (its graph-capture check); on a
    CUDA build the answer costs a ``cuInit``, after which no forked child can use CUDA."""
    saved = []
    for module in (getattr(torch, "cuda", None), getattr(torch, "accelerator", None)):
        if module is not None and hasattr(module, "is_available"):
            saved.append((module, module.is_available))
            module.is_available = lambda: False
    try:
        yield
    finally:
        for module, original in saved:
            module.is_available = original


def _cuda_state() -> dict[str, bool]:
    """Whether the preload initialised CUDA here (``initialized``) or poisoned the fork
    (``fork_poisoned``: a forked child could not initialise it). Calls nothing that
    initialises CUDA: ``is_initialized`` reads a flag, and the fork check runs in a child."""
    torch = sys.modules.get("torch")
    if torch is None or not hasattr(torch, "cuda"):
        return {"initialized": False, "fork_poisoned": False}
    initialized = bool(torch.cuda.is_initialized())
    in_bad_fork = getattr(torch._C, "_cuda_isInBadFork", None)  # CUDA builds only
    poisoned = False
    if in_bad_fork is not None:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.write(w, b"1" if in_bad_fork() else b"0")
            os._exit(0)
        os.close(w)
        poisoned = _read_all(r) == b"1"
        os.close(r)
        _wait(pid)
    return {"initialized": initialized, "fork_poisoned": poisoned}


def _preload(modules: list[str]) -> list[str]:
    """Import ``rsi_rl.harness`` and ``modules`` and warm torch up (never CUDA); returns
    what failed, as ``"module: error"`` lines."""
    failed = []
    for module in ["rsi_rl.harness", *modules]:
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001
            failed.append(f"{module}: {exc}")
    if "torch" in sys.modules:
        try:
            _warm_torch()
        except Exception as exc:  # noqa: BLE001
            failed.append(f"torch warm-up: {exc}")
    return failed


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
    failed = _preload(preload)
    cuda = _cuda_state()
    cg_root = _pids_cgroup_root()
    cg_v2 = cg_root is not None and os.path.exists(os.path.join(cg_root, "cgroup.controllers"))
    cpu_root = None if cg_v2 else _cpuacct_root()
    _isolate_fork_server(no_network)
    events.write(
        json.dumps({"event": "ready", "pid": os.getpid(), "preload_failed": failed, "cuda": cuda})
        + "\n"
    )
    n = 0
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        n += 1
        lim = job["limits"]
        cgroup = cpu_cgroup = None
        if lim.get("hardened", True):
            name = f"{os.getpid()}_{n}"
            cgroup = _make_cgroup(cg_root, name, int(lim.get("processes") or 0))
            cpu_cgroup = cgroup if cg_v2 else _make_cgroup(cpu_root, name)
        job["cgroup"], job["cpu_cgroup"] = cgroup, cpu_cgroup
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
        if cpu_cgroup != cgroup:
            swept += _sweep_cgroup(cpu_cgroup)
        cpu = ru.ru_utime + ru.ru_stime
        cg_cpu = _cgroup_cpu_seconds(cpu_cgroup)
        _remove_cgroup(cgroup)
        if cpu_cgroup != cgroup:
            _remove_cgroup(cpu_cgroup)
        enforced = _read_report(r)
        os.close(r)
        if swept:
            enforced["swept"] = f"killed {swept} processes left in the cgroup"
        if enforced:
            enforced["cpu_accounting"] = (
                f"cgroup {cpu_cgroup}: every process of the run"
                if cg_cpu is not None
                else "rusage of the run's process and the children it waited for"
            )
        events.write(
            json.dumps(
                {
                    "event": "exited",
                    "pid": pid,
                    "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                    "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                    "cpu_seconds": max(cpu, cg_cpu or 0.0),
                    "max_rss_mb": ru.ru_maxrss / 1024.0,
                    "enforced": enforced,
                }
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
