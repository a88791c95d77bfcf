"""The harness clock: ``time_left()`` counts from the program's start, not the fork server's."""

from __future__ import annotations

import json
import time

import pytest

from rsi_rl import harness
from rsi_rl.core.edits import Candidate
from rsi_rl.exec.runner import Runner
from rsi_rl.exec.sandbox import SandboxLimits

PROGRAM = (
    "import json, time\n"
    "from rsi_rl import harness\n"
    "print('CLOCK ' + json.dumps({'started': time.monotonic() - harness.elapsed(), "
    "'budget': harness.budget_seconds()}))\n"
)


@pytest.fixture()
def job_dir(tmp_path, monkeypatch):
    (tmp_path / harness.JOB_FILE).write_text(
        json.dumps({"config": {}, "seed": 0, "budget_seconds": 60.0})
    )
    monkeypatch.setenv("RSI_RL_WORKDIR", str(tmp_path))
    monkeypatch.setattr(harness, "_job", None)
    return tmp_path


def test_start_clock_restarts_the_count(job_dir, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(harness, "_monotonic", lambda: now[0])
    harness.start_clock()
    now[0] += 50.0  # a long campaign in the fork server before this program
    harness.start_clock()  # the sandbox starts the program's clock
    now[0] += 4.0
    assert harness.elapsed() == pytest.approx(4.0)
    assert harness.time_left() == pytest.approx(56.0)


def test_clock_starts_on_first_job_read_when_never_started(job_dir, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(harness, "_monotonic", lambda: now[0])
    monkeypatch.setattr(harness, "_t0", None)
    now[0] += 30.0  # imported long before the program ran
    assert harness.budget_seconds() == 60.0  # first read of the job starts the clock
    now[0] += 2.0
    assert harness.time_left() == pytest.approx(58.0)


def test_time_left_counts_from_the_program_start_in_the_sandbox(light_tabular):
    """The fork server imports the harness when it starts; a program run later must count
    its budget from its own start: its clock starts after the parent asked for the run
    (the system's monotonic clock is shared with the sandbox)."""
    inst = light_tabular.make_instance(0)
    cand = Candidate(dict(inst.start_config), {"train.py": PROGRAM})
    with Runner(light_tabular, SandboxLimits(timeout=60.0, memory_mb=2048)) as runner:
        first = runner.run(inst, cand, 0)
        assert "CLOCK" in first.stdout_tail, first.message + first.stderr_tail
        asked = time.monotonic()
        res = runner.run(inst, cand, 1)
    line = next(x for x in res.stdout_tail.splitlines() if x.startswith("CLOCK "))
    clock = json.loads(line[len("CLOCK ") :])
    assert clock["budget"] == 60.0
    assert clock["started"] >= asked, clock
