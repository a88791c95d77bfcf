"""Resume after a crash: nothing finished is lost or repeated; the cache spans runs."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rsi_rl.cli import main
from rsi_rl.exec.cache import ResultCache
from rsi_rl.store.ledger import read_ledger
from rsi_rl.testing import instant_experiments


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "rsi_rl.cli", "search", *args]


def _val_rows(run_dir: Path) -> list[tuple]:
    return [
        (r["step"], r["kind"], r["candidate"], r["metric"], r["status"])
        for r in read_ledger(run_dir)
    ]


def test_result_cache_persists_across_processes(tmp_path):
    path = tmp_path / "cache.sqlite"
    key = ("tabular/1", "abc", 0, "val", 30.0, 1)
    writer = (
        "import sys; from rsi_rl.exec.cache import ResultCache; c = ResultCache(sys.argv[1]); "
        "c.put(('tabular/1', 'abc', 0, 'val', 30.0, 1), "
        "{'status': 'ok', 'metrics': {'val_acc': 0.5}}); c.close()"
    )
    subprocess.run([sys.executable, "-c", writer, str(path)], check=True, timeout=120)
    cache = ResultCache(path)
    assert cache.get(key) == {"status": "ok", "metrics": {"val_acc": 0.5}} and cache.hit_rate == 1.0
    assert cache.get((*key[:2], 1, *key[3:])) is None  # another seed
    cache.close()


def test_shared_cache_answers_a_second_campaign(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["search", "task=tabular", "budget=3", "quiet=true", "test=false"]
    args.append(f"cache={tmp_path / 'cache.sqlite'}")
    with instant_experiments(lambda cand: 0.5 + 0.1 * len(cand.toggles)) as runs:
        main([*args, f"hydra.run.dir={tmp_path / 'first'}"])
        trained = len(runs)
        main([*args, f"hydra.run.dir={tmp_path / 'second'}"])
    assert trained == 4 and len(runs) == trained  # baseline and 3 edits, then nothing
    s1, s2 = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("first", "second"))
    assert s2["cache_hits"] == 4 and s1["best_metric"] == s2["best_metric"]
    assert all(r["cached"] for r in read_ledger(tmp_path / "second"))
    assert _val_rows(tmp_path / "first") == _val_rows(tmp_path / "second")


def test_resume_requires_a_run_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["search", f"resume={tmp_path}"])
    assert exc.value.code == 2 and "not a search run directory" in capsys.readouterr().err


@pytest.mark.slow
def test_kill_at_random_points_then_resume(tmp_path):
    """SIGKILL the campaign again and again; each resume keeps the ledger consistent, and
    the final ledger equals that of a run that was never interrupted."""
    budget = 24
    args = ("task=tabular", f"budget={budget}", "seed=3", "quiet=true")
    ref_dir = tmp_path / "reference"
    t0 = time.monotonic()
    ref = subprocess.run(
        _cmd(*args, f"hydra.run.dir={ref_dir}"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    whole = time.monotonic() - t0  # the kills fall inside a run of this length, however fast
    assert ref.returncode == 0, ref.stderr
    run_dir = tmp_path / "killed"
    rng = random.Random(0)
    cmd = _cmd(*args, f"hydra.run.dir={run_dir}")
    kills = 0
    for attempt in range(30):
        proc = subprocess.Popen(
            cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        try:
            # between half the reference run and most of it, growing: start-up must fit
            proc.wait(timeout=whole * (rng.uniform(0.5, 0.9) + 0.3 * attempt))
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
        if (run_dir / "ledger.sqlite").exists():
            rows = _val_rows(run_dir)
            steps = [(s, k) for s, k, *_ in rows]
            assert len(steps) == len(set(steps)), "an experiment was recorded twice"
            assert [s for s, k in steps if k != "test"] == list(
                range(len([1 for _, k in steps if k != "test"]))
            )
        if proc.returncode == 0 and (run_dir / "summary.json").exists():
            break
        # killed before its ledger existed, the campaign starts again; else it resumes
        started = (run_dir / "ledger.sqlite").exists()
        cmd = _cmd(f"resume={run_dir}") if started else _cmd(*args, f"hydra.run.dir={run_dir}")
        time.sleep(0.2)
    assert (run_dir / "summary.json").exists(), "the campaign never finished"
    assert kills >= 1
    assert _val_rows(run_dir) == _val_rows(ref_dir)


def _run_dir_of(tmp_path: Path, *overrides: str) -> Path:
    """A search run directory as Hydra leaves it, without running the search."""
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text(
        "".join(f"- {o}\n" for o in ("task=tabular", "budget=2", "quiet=true", *overrides))
    )
    return run


def test_resume_from_an_empty_ledger_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = _run_dir_of(tmp_path)
    (run / "ledger.sqlite").write_bytes(b"")
    with pytest.raises(SystemExit) as exc:
        main(["search", f"resume={run}"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"rsi-rl: error: run directory {run}: ledger.sqlite is empty (0 bytes), so nothing can "
        "be resumed from it; start a new run directory (drop resume=/hydra.run.dir=) or "
        "restore the file from a copy"
    ]
    assert (run / "ledger.sqlite").read_bytes() == b""  # never repaired nor overwritten
    assert not (run / "results.tsv").exists()


def test_resume_rewrites_a_damaged_results_tsv(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    with instant_experiments(lambda cand: 0.5 + 0.1 * len(cand.toggles)):
        main(
            [
                "search",
                "task=tabular",
                "budget=2",
                "quiet=true",
                "test=false",
                f"hydra.run.dir={run}",
            ]
        )
        tsv = run / "results.tsv"
        good = tsv.read_text()
        tsv.write_text("".join(good.splitlines(keepends=True)[:-1]))  # a row lost by hand
        main(["search", f"resume={run}"])
    assert tsv.read_text() == good
    assert (
        "results.tsv did not match ledger.sqlite (2 rows vs 3); rewritten from the ledger"
        in (run / "search.log").read_text()
    )


class _CacheSpy:
    """The two methods of a runner that :func:`prefill` calls, recording what it gets."""

    def __init__(self):
        self.remembered: dict[tuple, object] = {}

    def cache_key(self, instance_id, cand_hash, seed, split):
        return (instance_id, cand_hash, seed, split)

    def remember(self, key, result):
        self.remembered[key] = result


def test_prefill_restores_the_last_campaigns_results_from_the_ledger(tmp_path):
    from rsi_rl.core.record import ExperimentRecord
    from rsi_rl.exec.result import ExperimentResult
    from rsi_rl.store.ledger import Ledger
    from rsi_rl.store.resume import prefill

    result = ExperimentResult(
        status="ok",
        metrics={"val_acc": 0.9},
        seconds=2.0,
        run_seconds=1.5,
        diagnostics={"loss_ratio": 0.5},
        stdout_tail="val_acc: 0.9",
        enforced={"wall_clock": "enforced"},
    )
    common = {"instance": "tabular/1", "candidate": "abc", "seed": 7, "kind": "lr_up"}
    led = Ledger(tmp_path, task="tabular")
    led.append(ExperimentRecord.from_result(result, campaign=1, step=0, **common))
    led.append(ExperimentRecord.from_result(result, campaign=2, step=0, **common))
    led.append(  # a refused action: nothing ran, nothing to replay
        ExperimentRecord(campaign=2, step=1, kind="lr_up", status="invalid", instance="tabular/1")
    )
    led.close()
    spy = _CacheSpy()
    assert prefill(spy, read_ledger(tmp_path)) == (2, 1)  # type: ignore[arg-type]
    assert spy.remembered == {("tabular/1", "abc", 7, "val"): result}
