"""Experiments through the sandbox: typed statuses for every way an inner program fails.

Each hostile program is a real candidate source run by the real fork-server sandbox; the
campaign's process must survive all of them. They need numpy only, so their runners preload
numpy only (``light_tabular``); the one run of tabular's own program has torch preloaded.
"""

from __future__ import annotations

import dataclasses
import os
import time

import pytest

from rsi_rl.core.edits import Candidate, start_candidate
from rsi_rl.exec.runner import Runner
from rsi_rl.exec.sandbox import SandboxLimits

PRELUDE = (
    "import numpy as np\nfrom rsi_rl import harness\nd = harness.data()\nn = len(d['x_eval'])\n"
)


@pytest.fixture(scope="module")
def runner(light_runner):
    return light_runner(timeout=4.0)


def _alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie awaiting its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def run_src(runner, inst, body, seed=0, timeout=None):
    """Run ``PRELUDE + body``; ``timeout`` shortens the limit for a program that only waits."""
    cand = Candidate(dict(inst.start_config), {"train.py": PRELUDE + body})
    limits = runner.limits
    if timeout is not None:
        runner.limits = dataclasses.replace(limits, timeout=timeout)
    try:
        return runner.run(inst, cand, seed)
    finally:
        runner.limits = limits


def test_real_program_ok_and_cached(inst, tabular):
    cand = start_candidate(tabular, inst.start_config)
    with Runner(tabular, SandboxLimits(timeout=30.0)) as runner:
        res = runner.run(inst, cand, 0)
        assert res.status == "ok", res.message + res.stderr_tail
        assert 0.0 <= res.metrics["val_acc"] <= 1.0
        assert res.diagnostics["loss_ratio"] > 0 and "train_acc" in res.diagnostics
        again = runner.run(inst, cand, 0)
        assert again.cached and again.metrics == res.metrics and again.seconds == res.seconds
        other_seed = runner.run(inst, cand, 1)
        assert not other_seed.cached and other_seed.status == "ok"


def test_raise_is_crash_with_stderr_tail(runner, inst):
    res = run_src(runner, inst, "raise RuntimeError('boom in the inner program')\n")
    assert res.status == "crash"
    assert "boom in the inner program" in res.stderr_tail and "boom" in res.message


def _running_with_args(*args: str) -> list[int]:
    """Pids of live (non-zombie) processes whose command line is exactly ``args``."""
    want = "\0".join(args).encode() + b"\0"
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if fh.read() == want and _alive(int(entry)):
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


def test_hang_is_timeout_and_group_is_killed(runner, inst):
    marker = "301.4159"  # a sleep nobody else runs
    body = (
        f"import subprocess, time\np = subprocess.Popen(['sleep', '{marker}'])\ntime.sleep(300)\n"
    )
    res = run_src(runner, inst, body, timeout=1.5)
    assert res.status == "timeout"
    time.sleep(0.2)
    assert _running_with_args("sleep", marker) == []


def test_unbounded_allocation_is_oom(light_tabular, inst):
    with Runner(light_tabular, SandboxLimits(timeout=60.0, memory_mb=1300)) as small:
        res = run_src(
            small, inst, "xs = []\nwhile True:\n    xs.append(bytearray(32 * 1024 * 1024))\n"
        )
    assert res.status == "oom", res.message + res.stderr_tail
    assert res.max_rss_mb < 1300


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        # no submission: garbage output is not a metric
        (
            "print('val_acc: 1.0  <- a fake metric is just garbage here')\n",
            "crash",
            "harness.submit",
        ),
        ("open('predictions.npy', 'wb').write(b'not numpy at all')\n", "crash", "unreadable"),
        ("harness.submit(np.full((n, 2), np.nan))\n", "nan", "not finite"),
        (
            "harness.log(step=1, train_loss=float('nan'))\nharness.submit(np.zeros((n, 2)))\n",
            "nan",
            "training loss",
        ),
        ("harness.submit(np.zeros((n + 1, 7)))\n", "crash", "evaluator rejected"),
        # exit code 3 (an allocation failure) is the sandbox's to give: the program's is 1
        ("import sys\nsys.exit(3)\n", "crash", "with exit code 1"),
    ],
    ids=["garbage_output", "not_numpy", "nan_predictions", "diverged_loss", "wrong_shape", "exit3"],
)
def test_a_bad_program_gets_its_status(runner, inst, body, status, message):
    res = run_src(runner, inst, body)
    assert res.status == status and message in res.message, (res.status, res.message)


def test_program_cannot_fake_its_metric(runner, inst):
    # writing a metric file or printing one changes nothing: the parent scores predictions
    body = "open('metrics.json','w').write('{\"val_acc\": 1.0}')\nharness.submit(np.zeros(n))\n"
    res = run_src(runner, inst, body)
    assert res.status == "ok" and res.metrics["val_acc"] < 0.9


def test_killing_the_fork_server_is_a_crash_and_recovers(runner, inst):
    res = run_src(
        runner,
        inst,
        "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nimport time\ntime.sleep(60)\n",
        timeout=1.5,
    )
    assert res.status in ("crash", "timeout")
    ok = run_src(runner, inst, "harness.submit(np.zeros(n))\n", seed=7)
    assert ok.status == "ok", ok.message + ok.stderr_tail


def test_environment_is_scrubbed(runner, inst, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "secret-should-not-leak")
    body = "import os\nprint(sorted(os.environ))\nassert 'WANDB_API_KEY' not in os.environ\nharness.submit(np.zeros(n))\n"
    res = run_src(runner, inst, body, seed=5)
    assert res.status == "ok", res.stderr_tail
    assert "secret" not in res.stdout_tail
    assert res.enforced.get("wall_clock", "").startswith("enforced")


def test_no_leftover_processes_after_close(light_tabular, inst):
    r = Runner(light_tabular, SandboxLimits(timeout=5.0))
    assert run_src(r, inst, "harness.submit(np.zeros(n))\n", seed=3).status == "ok"
    pid = r.sandbox._proc.pid
    r.close()  # the fork server exits on its own when its stdin closes
    time.sleep(0.1)
    assert not _alive(pid)


def test_auto_hardening_only_for_foreign_code(tabular, inst):
    from rsi_rl.core.edits import apply_edit

    r = Runner(tabular, SandboxLimits(timeout=5.0))
    try:
        cand = start_candidate(tabular, inst.start_config)
        patched, _ = apply_edit(tabular, cand, "input_norm")
        foreign = Candidate(cand.config, {"train.py": cand.source["train.py"] + "\n# a proposal\n"})
        assert r.catalogue_only(cand) and r.catalogue_only(patched)
        assert not r.catalogue_only(foreign)
        assert r.limits_for(patched).hardened is False and r.limits_for(foreign).hardened is True
    finally:
        r.close()


# ------------------------------------------------------------ the scratch folder is untrusted
# In plain mode the program writes straight into the host's scratch folder, so these
# attacks reach the parent's read-back as they are; hardened mode may drop links and FIFOs
# before the parent sees them, so there only "nothing leaks, nothing hangs" is asserted.
@pytest.fixture(scope="module")
def plain(light_tabular):
    r = Runner(light_tabular, SandboxLimits(timeout=4.0, memory_mb=2048, hardened=False))
    yield r
    r.close()


def _dumped(res) -> str:
    import json

    return json.dumps(res.to_dict())


def _replace(name: str, how: str) -> str:
    """Program lines that replace ``name`` in the scratch folder by ``how`` (a statement)."""
    return f"if os.path.lexists({name!r}):\n    os.remove({name!r})\n{how}\n"


@pytest.mark.parametrize("mode", ["plain", "hardened"])
@pytest.mark.parametrize("exit_code", [0, 1])
def test_log_links_leak_nothing(runner, plain, inst, tmp_path, monkeypatch, mode, exit_code):
    secret = "fake-secret-" + os.urandom(8).hex()
    monkeypatch.setenv("FAKE_SECRET_TOKEN", secret)
    home_file = tmp_path / "netrc"
    home_file.write_text(f"machine api.wandb.ai\n  password {secret}\nHOME_FILE_MARKER\n")
    body = (
        "import os\nharness.submit(np.zeros(n))\n"
        + _replace("stderr.log", "os.symlink('/proc/self/environ', 'stderr.log')")
        + _replace("stdout.log", f"os.symlink({str(home_file)!r}, 'stdout.log')")
        + f"raise SystemExit({exit_code})\n"
    )
    res = run_src(plain if mode == "plain" else runner, inst, body, seed=11)
    dumped = _dumped(res)
    assert secret not in dumped and "HOME_FILE_MARKER" not in dumped
    assert "PATH=" not in dumped and "\\u0000" not in dumped  # nothing of /proc/self/environ
    if mode == "plain" or res.status == "invalid":
        assert res.status == "invalid" and not res.metrics
        assert "stderr.log is a symbolic link, not a regular file" in res.message, res.message
        assert "stdout.log is a symbolic link, not a regular file" in res.message, res.message
        assert res.stderr_tail == "" and res.stdout_tail == ""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["plain", "hardened"])
def test_log_jsonl_fifo_does_not_block(runner, plain, inst, mode):
    body = (
        "import os\nharness.log(step=1, train_loss=1.0)\nharness.submit(np.zeros(n))\n"
        + _replace("log.jsonl", "os.mkfifo('log.jsonl')")
    )
    res = run_src(plain if mode == "plain" else runner, inst, body, seed=12)
    if mode == "plain" or res.status == "invalid":
        assert res.status == "invalid" and not res.metrics
        assert "log.jsonl is a FIFO, not a regular file" in res.message, res.message


@pytest.mark.timeout(60)
@pytest.mark.parametrize("target", ["/dev/zero", "predictions.npy"])
def test_log_jsonl_linked_elsewhere(plain, inst, target):
    body = "import os\nharness.submit(np.zeros(n))\n" + _replace(
        "log.jsonl", f"os.symlink({target!r}, 'log.jsonl')"
    )
    res = run_src(plain, inst, body, seed=13)
    assert res.status == "invalid" and not res.metrics
    assert "log.jsonl is a symbolic link" in res.message, res.message


@pytest.mark.parametrize("link", ["symlink", "link"])
def test_predictions_linked_to_another_file(plain, inst, link):
    body = (
        f"import os\nnp.save('other.npy', np.zeros(n))\nos.{link}('other.npy', 'predictions.npy')\n"
    )
    res = run_src(plain, inst, body, seed=14)
    assert res.status == "invalid" and not res.metrics
    assert "predictions.npy" in res.message, res.message
    again = run_src(plain, inst, body, seed=14)  # the cache never turns it into an ok
    assert again.cached and again.status == "invalid" and not again.metrics


def test_predictions_over_the_cap_are_invalid(light_tabular, inst):
    limits = SandboxLimits(timeout=4.0, hardened=False)
    with Runner(light_tabular, limits, max_predictions_mb=0.001) as r:
        res = run_src(r, inst, "harness.submit(np.zeros((n, 2)))\n", seed=16)
    assert res.status == "invalid" and not res.metrics
    assert "predictions.npy is " in res.message and "over the 1 KiB cap" in res.message


def test_plain_mode_scratch_dir_swapped_for_a_link(light_tabular, inst, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for name in ("stdout.log", "stderr.log", "log.jsonl"):
        (elsewhere / name).write_text("ELSEWHERE_MARKER\n")
    body = (
        "import os\nprint('REAL_STDOUT_MARKER', flush=True)\nharness.submit(np.zeros(n))\n"
        "wd = os.getcwd()\nos.rename(wd, wd + '_moved')\n"
        f"os.symlink({str(elsewhere)!r}, wd)\n"
    )
    limits = SandboxLimits(timeout=4.0, memory_mb=2048, hardened=False)
    with Runner(light_tabular, limits, scratch_root=tmp_path / "scratch") as r:
        res = run_src(r, inst, body, seed=15)
        assert list((tmp_path / "scratch").iterdir()) == []  # the moved folder is gone too
    assert "ELSEWHERE_MARKER" not in _dumped(res)
    assert res.status in ("ok", "invalid"), res.message
    if res.status == "ok":
        assert "REAL_STDOUT_MARKER" in res.stdout_tail
    assert sorted(p.name for p in elsewhere.iterdir()) == ["log.jsonl", "stderr.log", "stdout.log"]


def test_results_are_scrubbed_of_secrets(runner, inst):
    token = "ghp_" + "Zq" * 18
    body = (
        f"import sys\nprint('pushing with {token}')\n"
        f"print('auth failed for {token}', file=sys.stderr)\nraise SystemExit(2)\n"
    )
    res = run_src(runner, inst, body, seed=17)
    assert res.status == "crash" and "auth failed for [REDACTED]" in res.message
    assert token not in _dumped(res) and "[REDACTED]" in res.stdout_tail + res.stderr_tail


def test_a_seconds_cap_is_not_part_of_the_cache_key(light_runner):
    """Every executor keys a run alike, capped by a seconds budget or not: the key holds the
    sandbox's own limit (a run the cap stopped is never cached)."""
    runner = light_runner(timeout=4.0)
    key = runner.cache_key("tabular/0", "abc", 7, "val")
    runner.timeout_cap = 0.5
    try:
        assert runner.timeout == 0.5
        assert runner.cache_key("tabular/0", "abc", 7, "val") == key
    finally:
        runner.timeout_cap = None
