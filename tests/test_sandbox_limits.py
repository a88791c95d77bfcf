"""The sandbox's limits and its record: validated settings, a record only the trusted side
writes, the disk bound, /dev/shm, /dev/kmsg, user namespaces and CPU accounting.

Each run uses a bare fork server (no torch) and a tiny program, so the module stays fast.
Every program is safe for the host even if a defence fails: loops are bounded.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from rsi_rl.core.errors import ConfigError
from rsi_rl.exec.sandbox import ProcessResult, Sandbox, SandboxLimits

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")


# ------------------------------------------------------------------ validated settings
@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("memory_mb", -1),
        ("timeout", 0),
        ("timeout", math.nan),
        ("file_size_mb", 0),
        ("open_files", -3),
        ("processes", 0),
        ("threads", 0),
        ("cpu_seconds", 0),
        ("disk_mb", -8),
        ("memory_mb", "4096"),
        ("memory_mb", True),
        ("hardened", "yes"),
        ("hardened", 1),
        ("no_network", "false"),
        ("hidden_paths", "/etc/passwd"),
    ],
)
def test_bad_limits_are_refused_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=rf"sandbox\.{key}\b"):
        SandboxLimits(**{key: value})
    with pytest.raises(ConfigError, match=rf"sandbox\.{key}\b"):
        dataclasses.replace(SandboxLimits(), **{key: value})
    limits = SandboxLimits()
    with pytest.raises(ConfigError, match=rf"sandbox\.{key}\b"):
        setattr(limits, key, value)


def test_good_limits_are_kept():
    limits = SandboxLimits(timeout=5, cpu_seconds=None, hardened="auto", hidden_paths=["/x"])
    assert limits.timeout == 5.0 and limits.cpu_seconds is None
    assert limits.hidden_paths == ("/x",)
    assert "give e.g. sandbox.memory_mb=4096" in _message(memory_mb=-1)


def _message(**kw) -> str:
    try:
        SandboxLimits(**kw)
    except ConfigError as exc:
        return str(exc)
    return ""


@linux
def test_set_limit_never_claims_a_negative_limit():
    code = (
        "from rsi_rl.exec._zygote import _set_limit; "
        "print(_set_limit('RLIMIT_CORE', -1)); print(_set_limit('RLIMIT_NOFILE', 64, 32))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("not enforced") for line in lines), lines


# ------------------------------------------------------------------ real runs
@pytest.fixture(scope="module")
def sandbox():
    with Sandbox() as sb:
        yield sb


def _run(sandbox: Sandbox, tmp: Path, body: str, **limits) -> tuple[ProcessResult, Path]:
    work = tmp / "work"
    work.mkdir()
    (work / "main.py").write_text(textwrap.dedent(body))
    np.savez(work / "inputs.npz", x=np.zeros((400, 400)))  # 1.2 MiB: bind-mounted, not copied
    lim = SandboxLimits(**{"timeout": 20.0, "hardened": True, **limits})
    return sandbox.run(work, "main.py", 0, lim), work


def _stderr(work: Path) -> str:
    return (work / "stderr.log").read_text()


FORGE_AND_SLEEP = """
    import json, time
    forged = {"namespaces": "FORGED-BY-PROGRAM", "address_space": "FORGED-BY-PROGRAM"}
    json.dump(forged, open("sandbox.json", "w"))
    time.sleep(30)
"""


@linux
def test_timed_out_hardened_run_keeps_the_trusted_record(sandbox, tmp_path):
    res, _ = _run(sandbox, tmp_path, FORGE_AND_SLEEP, timeout=1.5)
    assert res.timed_out
    assert "FORGED" not in json.dumps(res.enforced)
    assert res.enforced["namespaces"].startswith("enforced")
    assert res.enforced["address_space"].startswith("enforced")
    assert res.enforced["user_namespaces"].startswith("blocked")


@linux
@pytest.mark.parametrize("timeout", [1.5, 20.0])
def test_plain_run_keeps_the_trusted_record(sandbox, tmp_path, timeout):
    body = FORGE_AND_SLEEP if timeout < 5 else FORGE_AND_SLEEP.replace("time.sleep(30)", "")
    res, _ = _run(sandbox, tmp_path, body, timeout=timeout, hardened=False)
    assert res.timed_out == (timeout < 5) and res.exit_code in (None, 0)
    assert "FORGED" not in json.dumps(res.enforced)
    assert res.enforced["address_space"].startswith("enforced")
    assert res.enforced["disk"].startswith("not enforced")


@linux
def test_disk_is_bounded_in_total(sandbox, tmp_path):
    res, work = _run(
        sandbox,
        tmp_path,
        """
        for i in range(40):  # 40 MiB at most if no bound held
            with open(f"f{i}.bin", "wb") as fh:
                fh.write(b"x" * (1 << 20))
        """,
        disk_mb=8,
    )
    assert res.exit_code == 1 and "No space left on device" in _stderr(work)
    written = sum(p.stat().st_size for p in work.glob("f*.bin"))
    assert 0 < written <= 8 << 20
    assert res.enforced["disk"].startswith("enforced")


@linux
def test_hardened_run_returns_its_files_and_reads_its_inputs(sandbox, tmp_path):
    res, work = _run(
        sandbox,
        tmp_path,
        """
        import os, numpy as np
        x = np.load("inputs.npz")["x"]
        try:
            open("inputs.npz", "r+b").write(b"garbage")
        except OSError as exc:
            print("INPUTS_READ_ONLY", exc)
        os.makedirs("ckpt")
        open("ckpt/state.txt", "w").write("step 3")
        os.symlink("/etc/passwd", "link")
        os.mkfifo("fifo")
        np.save("predictions.npy", np.full(3, x.shape[0], dtype=np.float32))
        """,
    )
    assert res.exit_code == 0, _stderr(work)
    assert np.load(work / "predictions.npy").tolist() == [400.0] * 3
    assert (work / "ckpt" / "state.txt").read_text() == "step 3"
    assert "INPUTS_READ_ONLY" in (work / "stdout.log").read_text()
    assert np.load(work / "inputs.npz")["x"].shape == (400, 400)
    assert not (work / "link").exists() and not (work / "link").is_symlink()
    assert not (work / "fifo").exists()


@linux
def test_dev_shm_is_private_and_writable(sandbox, tmp_path):
    res, work = _run(
        sandbox,
        tmp_path,
        """
        import multiprocessing
        lock = multiprocessing.Lock()  # a POSIX semaphore in /dev/shm
        with lock:
            pass
        with open("/dev/shm/rsi_rl_probe", "wb") as fh:
            fh.write(b"x" * 1024)
        with multiprocessing.Pool(2) as pool:
            assert pool.map(abs, [-1, -2]) == [1, 2]
        """,
    )
    assert res.exit_code == 0, _stderr(work)
    assert res.enforced["dev_shm"].startswith("enforced")
    assert not Path("/dev/shm/rsi_rl_probe").exists()


@linux
def test_kmsg_is_blocked(sandbox, tmp_path):
    res, work = _run(
        sandbox,
        tmp_path,
        """
        import os
        same = os.stat("/dev/kmsg").st_rdev == os.stat("/dev/null").st_rdev
        print("KMSG_IS_DEVNULL", same)
        try:
            with open("/dev/kmsg", "w") as fh:
                fh.write("rsi_rl sandbox test: this line must reach no kernel log\\n")
        except OSError as exc:
            print("KMSG_REFUSED", exc)
        """,
    )
    assert res.exit_code == 0, _stderr(work)
    assert res.enforced["kmsg"].startswith("blocked")
    assert "KMSG_IS_DEVNULL True" in (work / "stdout.log").read_text()


@linux
def test_user_namespaces_are_blocked_but_processes_and_threads_work(sandbox, tmp_path):
    res, work = _run(
        sandbox,
        tmp_path,
        """
        import ctypes, errno, os, subprocess, threading
        libc = ctypes.CDLL(None, use_errno=True)
        got = libc.unshare(0x10000000)  # CLONE_NEWUSER
        print("UNSHARE", got, errno.errorcode.get(ctypes.get_errno()))
        out = subprocess.run(["/bin/echo", "SUBPROCESS_OK"], capture_output=True, text=True)
        print(out.stdout.strip())
        t = threading.Thread(target=print, args=("THREAD_OK",))
        t.start(); t.join()
        pid = os.fork()
        if pid == 0:
            os._exit(7)
        print("FORK_OK", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
        """,
    )
    out = (work / "stdout.log").read_text()
    assert res.exit_code == 0, _stderr(work)
    assert "UNSHARE -1 EPERM" in out
    assert "SUBPROCESS_OK" in out and "THREAD_OK" in out and "FORK_OK 7" in out
    assert res.enforced["user_namespaces"].startswith("blocked: seccomp")


@linux
def test_cpu_of_a_timed_out_run_counts_its_children(sandbox, tmp_path):
    """The forked child notes its own CPU time as it spins; the run's record counts at
    least that much, though the parent only slept."""
    res, work = _run(
        sandbox,
        tmp_path,
        """
        import os, time
        if os.fork() == 0:
            end, noted = time.time() + 30, 0.0  # bounded: 30 s at most if the kill failed
            while time.time() < end:
                if time.process_time() > noted + 0.1:
                    noted = time.process_time()
                    print("CHILD_CPU", noted, flush=True)
            os._exit(0)
        time.sleep(30)
        """,
        timeout=3.0,
    )
    assert res.timed_out
    noted = re.findall(r"^CHILD_CPU (\S+)\n", (work / "stdout.log").read_text(), re.MULTILINE)
    child_cpu = float(noted[-1]) if noted else 0.0  # the last complete line
    assert child_cpu > 0 and res.cpu_seconds >= child_cpu, res.enforced.get("cpu_accounting")
