"""The ``rsi-rl`` command: search end to end, multirun, tasks, one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rsi_rl.cli import main
from rsi_rl.store.ledger import Ledger, read_ledger


def rsi_rl(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rsi_rl.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def sweep_jobs(folder: Path, *overrides: str) -> list[Path]:
    """The job folders, in order, of ``rsi-rl search -m <overrides> quiet=true`` run in
    ``folder`` (which must succeed)."""
    p = rsi_rl("search", "-m", *overrides, "quiet=true", cwd=folder, timeout=600)
    assert p.returncode == 0, p.stderr
    return sorted(lg.parent for lg in folder.glob("runs/multirun/search/*/*/*/ledger.sqlite"))


def test_search_writes_a_complete_run_directory(tmp_path):
    p = rsi_rl(
        "search", "task=tabular", "agent=greedy", "budget=4", "seed=0", "logger=csv", cwd=tmp_path
    )
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("tabular instance tabular/10000: start val_acc=")
    progress = [ln for ln in lines if ln.startswith("[")]
    assert len(progress) == 4 and all("val_acc=" in ln and "best=" in ln for ln in progress)
    assert lines[-2].startswith("done: start val_acc=") and "test test_acc=" in lines[-2]
    run_dir = Path(lines[-1].split()[2])
    assert run_dir.is_dir() and str(run_dir).startswith(str(tmp_path))
    for name in (
        "ledger.sqlite",
        "results.tsv",
        "summary.json",
        "progress.csv",
        ".hydra/config.yaml",
        "best/config.yaml",
        "best/train.py",
        "best/diff.patch",
    ):
        assert (run_dir / name).exists(), name
    rows = read_ledger(run_dir)
    assert [r["kind"] for r in rows][0] == "baseline" and rows[-1]["split"] == "test"
    assert len(rows) == 6
    summary = json.loads((run_dir / "summary.json").read_text())
    kept = [r for r in rows if r["kept"] and r["split"] == "val"]
    assert summary["experiments"] == 4 and summary["best_metric"] == kept[-1]["metric"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["task=nope"], "unknown task 'nope'; known: "),
        (["agent=foo"], "unknown agent 'foo'; known: "),
        (["budget=-3"], "budget must be a positive integer"),
        (["budget=[1"], "malformed override"),
        (["nokey=3"], "unknown config key 'nokey'"),
        (["sandbox.timeout=-1"], "timeout must be"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, args, expected):
    p = rsi_rl("search", "task=tabular", *args, cwd=tmp_path, timeout=120)
    assert p.returncode == 2
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rsi-rl: error: ") and expected in err[0], p.stderr


def test_unknown_command_and_help(tmp_path):
    p = rsi_rl("frobnicate", cwd=tmp_path)
    assert p.returncode == 2 and "unknown command 'frobnicate'" in p.stderr
    p = rsi_rl("--help", cwd=tmp_path)
    assert p.returncode == 0 and "search" in p.stdout and "tasks" in p.stdout


def test_tasks_lists_builtins(tmp_path):
    p = rsi_rl("tasks", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "digits_mlp" in p.stdout and "tabular" in p.stdout and "val_acc (maximize)" in p.stdout
    assert not list(tmp_path.iterdir())  # listing tasks leaves no run directory behind


@pytest.mark.slow
def test_multirun_sweep_writes_one_ledger_per_job(tmp_path):
    jobs = sweep_jobs(tmp_path, "task=tabular", "agent=random,greedy", "seed=0,1", "budget=2")
    names = [job.name for job in jobs]
    assert names == ["0_random_seed0", "1_random_seed1", "2_greedy_seed0", "3_greedy_seed1"]
    for job in jobs:
        assert len(read_ledger(job)) == 4  # baseline + 2 experiments + test


def test_search_config_wires_the_example_proposer(tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from rsi_rl.actions import PROPOSE
    from rsi_rl.builder import proposer_spec as _proposer
    from rsi_rl.cli import conf_dir
    from rsi_rl.env import ResearchEnv

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(config_name="search", overrides=["proposer=sample_patches"])
        assert _proposer(compose(config_name="search").proposer) is None
    GlobalHydra.instance().clear()
    spec = _proposer(cfg.proposer)
    assert spec["command"][0] == sys.executable and spec["timeout"] == 30
    env = ResearchEnv(task="digits_mlp", budget=2, proposer=spec)
    try:
        env.reset(seed=0)
        assert env.action_masks()[PROPOSE]
        _, _, _, _, info = env.step(PROPOSE)
        assert info["kind"] == "propose" and info["status"] in ("ok", "invalid")
        assert info["experiment"]["diff"] or info["experiment"]["description"]
    finally:
        env.close()


def _one_line_error(capsys, argv: list[str]) -> str:
    """Run ``rsi-rl argv`` in this process; it must exit 2 with one ``rsi-rl: error:`` line."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rsi-rl: error: "), err
    return err[0]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["search", "seed=-1"], "seed=-1: the seed must be a non-negative integer"),
        (["search", "seed=abc"], "seed=abc is not an integer; give a whole number, e.g. seed="),
        (["search", "instance=abc"], "instance=abc is not an integer or null; "),
        (["search", "instance=-7"], "held-out instances are 10000..10099"),
        (["search", "test=maybe"], "test=maybe is not a boolean; give true or false"),
        (["search", "budget=2.5"], "budget=2.5 is not an integer"),
        (["search", "budget_seconds=abc"], "budget_seconds=abc is not a float or null"),
        (["search", "quiet=[1]"], "quiet=[1] is not a boolean"),
        (["try", "edit=grad_clip", "instance=abc"], "instance=abc is not an integer or null"),
        (["try", "edit=grad_clip", "seed=-1"], "seed=-1: the seed must be a non-negative"),
        (["try", "edit=grad_clip", "baseline=abc"], "baseline=abc is not a boolean"),
        (["check-task", "instance=-7"], "instance=-7: an instance is a non-negative integer"),
        (["check-task", "instance=abc"], "instance=abc is not an integer or null"),
        (
            ["search", "env.keep_threshold=abc"],
            "env.keep_threshold=abc is not a float; give a number, e.g. env.keep_threshold=1.0",
        ),
        (["search", "env.mask_duplicates=abc"], "env.mask_duplicates=abc is not a boolean"),
        (["search", "+env.keep_treshold=2"], "env.keep_treshold is not a setting of env (it "),
        (["search", "env.cost_per_second=-1"], "env.cost_per_second=-1: must be a finite number"),
        (["bench", "env.invalid_penalty=abc"], "env.invalid_penalty=abc is not a float"),
        (["bench", "instances=abc"], "instances='abc': give null, a count n"),
        (["bench", "seeds=abc"], "seeds=abc is not an integer"),
        (["bench", "plots=abc"], "plots=abc is not a boolean"),
        (["train", "env.keep_threshold=abc"], "env.keep_threshold=abc is not a float"),
        (["train", "seed=abc"], "seed=abc is not an integer"),
        (["train", "total_steps=many"], "total_steps=many is not an integer"),
        (["train", "eval.freq=x"], "eval.freq=x is not an integer"),
        (["train", "train_instances=x"], "train_instances=x is not an integer or null"),
    ],
)
def test_bad_values_are_one_line_naming_the_key(tmp_path, capsys, monkeypatch, argv, expected):
    monkeypatch.chdir(tmp_path)
    command, *rest = argv
    assert expected in _one_line_error(capsys, [command, "task=tabular", *rest])


def test_an_unusable_cache_path_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("")
    line = _one_line_error(capsys, ["search", "task=tabular", f"cache={tmp_path}/file/c.sqlite"])
    assert f"cache={tmp_path}/file/c.sqlite: cannot use it as the result cache" in line
    assert "is not a folder" in line


def test_a_run_directory_in_use_is_one_line_naming_the_writer(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    holder = Ledger(run, task="tabular", metric="val_acc")  # a search that is running
    try:
        line = _one_line_error(capsys, ["search", "task=tabular", f"hydra.run.dir={run}"])
    finally:
        holder.close()
    assert f"run directory {run} is in use by another rsi-rl run (pid {os.getpid()}, " in line
    assert "pick another directory (hydra.run.dir=...)" in line
    assert not (run / ".hydra").exists()  # failed before Hydra wrote anything there


def test_two_searches_on_one_run_directory(tmp_path):
    """The second exits 2 naming the first; the first's ledger is whole (one campaign)."""
    run = tmp_path / "run"
    args = [sys.executable, "-m", "rsi_rl.cli", "search", "task=tabular", "budget=400"]
    first = subprocess.Popen(
        [*args, "quiet=true", f"hydra.run.dir={run}"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # a suite started in the background (nohup ... &) ignores SIGINT, and a child
        # inherits that: the interrupt below must reach it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        for _ in range(600):  # until the first has recorded a proposal (at most 2 minutes)
            tsv = run / "results.tsv"
            if first.poll() is not None or (tsv.exists() and len(tsv.read_text().splitlines()) > 2):
                break
            time.sleep(0.2)
        assert first.poll() is None, first.stderr.read() if first.stderr else ""
        second = rsi_rl("search", "task=tabular", "budget=2", f"hydra.run.dir={run}", cwd=tmp_path)
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(timeout=120)
    assert second.returncode == 2
    err = second.stderr.strip().splitlines()
    assert err == [
        f"rsi-rl: error: run directory {run} is in use by another rsi-rl run "
        f"(pid {first.pid}, since {err[0].split('since ')[1].split(')')[0]}); wait for it to "
        "finish or pick another directory (hydra.run.dir=...)"
    ]
    rows = read_ledger(run)
    assert {r["campaign"] for r in rows} == {1}
    assert [r["step"] for r in rows] == list(range(len(rows)))
    assert [r["kind"] for r in rows].count("baseline") == 1
    assert len((run / "results.tsv").read_text().splitlines()) == len(rows) + 1


def test_a_read_only_run_directory_fails_before_hydra(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"mount --bind -o ro {run} {run} && ! touch {run}/x"],
        capture_output=True,
    )
    if probe.returncode != 0:
        pytest.skip("needs unshare -m and mount (root) to make a read-only directory")
    script = f'mount --bind -o ro {run} {run} && exec "$@"'
    p = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", sys.executable, "-m", "rsi_rl.cli"]
        + ["search", "task=tabular", f"hydra.run.dir={run}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        f"rsi-rl: error: run directory {run} is not writable: Read-only file system; make it "
        "writable or pick another directory (hydra.run.dir=...)"
    ]


# ---------------------------------------------------------------------------- first-use items
def test_an_agent_key_the_agent_does_not_take_names_it_and_what_it_takes(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    line = _one_line_error(capsys, ["search", "task=tabular", "agent=tpe", "+agent.sampler=x"])
    assert line == (
        "rsi-rl: error: agent tpe does not take 'sampler' (it takes: n_startup_trials, "
        "multivariate, batch_size, seed_offset, storage); fix or drop the override agent.sampler"
    )
    assert not list(tmp_path.iterdir())  # failed before Hydra made a run directory


def test_a_trainer_given_to_search_lists_search_agents_and_points_to_train(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    line = _one_line_error(capsys, ["search", "task=tabular", "agent=maskable_ppo"])
    assert line == (
        "rsi-rl: error: unknown agent 'maskable_ppo'; known: acquisition, gp, gp_ei, greedy, opening_tpe, "
        "policy, policy_tpe, random, random_search, sequence, tpe, tpe_b (maskable_ppo is an SB3 trainer: rsi-rl train "
        "trainer=maskable_ppo; to search with a trained policy use agent=policy "
        "agent.path=<policy.zip>)"
    )
    line = _one_line_error(capsys, ["search", "task=tabular", "agent=ppo"])
    assert "unknown agent 'ppo'; known: acquisition," in line and "trainer=ppo" in line
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["agent=maskable_ppo"],
            "rsi-rl train takes its SB3 algorithm as trainer=..., not agent=maskable_ppo; "
            "e.g. trainer=maskable_ppo (trainers: a2c, dqn, maskable_ppo, ppo)",
        ),
        (["-m", "agent=ppo,dqn"], "not agent=ppo; e.g. trainer=ppo"),
        (["agent=greedy"], "not agent=greedy; e.g. trainer=maskable_ppo"),
        (
            ["agent.hyperparams.n_steps=64"],
            "rsi-rl train's settings of the SB3 algorithm are trainer.*: write "
            "trainer.hyperparams.n_steps=... instead of agent.hyperparams.n_steps=...",
        ),
        (["trainer=greedy"], "unknown trainer 'greedy'; known: a2c, dqn, maskable_ppo, ppo"),
    ],
)
def test_train_takes_trainers_not_agents(tmp_path, capsys, monkeypatch, argv, expected):
    monkeypatch.chdir(tmp_path)
    assert expected in _one_line_error(capsys, ["train", *argv])
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("path", "text", "override", "expected"),
    [
        (
            "agent/mine.yaml",
            "_target_: rsi_rl.agents.sb3.build_algorithm\nalgo: ppo\n",
            "agent=mine",
            "agent=mine is an SB3 trainer: train it with `rsi-rl train trainer=...`",
        ),
        (
            "env/strict.yaml",
            "keep_threshold: high\ncost_per_second: 0.0\ninvalid_penalty: 0.0\n",
            "env=strict",
            "env.keep_threshold=high is not a float; give a number, e.g. env.keep_threshold=1.0",
        ),
    ],
)
def test_a_user_config_dir_option_is_checked_like_a_shipped_one(
    tmp_path, capsys, monkeypatch, path, text, override, expected
):
    """The checks read the composed config, so an option from --config-dir is checked too."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "conf" / path).parent.mkdir(parents=True)
    (tmp_path / "conf" / path).write_text(text)
    argv = ["search", "--config-dir", str(tmp_path / "conf"), "task=tabular", override]
    assert expected in _one_line_error(capsys, argv)


def test_an_agent_error_inside_the_job_keeps_its_cause():
    """A wrapped TypeError (not an rsi_rl error) shows its own message, not Hydra's header."""
    from hydra.utils import instantiate

    from rsi_rl.builder import error_cause as _cause

    with pytest.raises(Exception) as info:
        instantiate({"_target_": "rsi_rl.agents.TPEAgent", "sampler": "x"})
    assert "sampler" in _cause(info.value) and "Error in call" not in _cause(info.value)


def test_help_lists_search_agents_and_trainers_without_torch(tmp_path):
    from rsi_rl.cli import usage

    text = usage()
    lines = text.splitlines()
    first = next(i for i, ln in enumerate(lines) if ln.startswith("agents (search, bench"))
    search_line = lines[first] + " " + lines[first + 1]  # the list wraps onto an indented line
    train_line = next(ln for ln in text.splitlines() if ln.startswith("trainers (train"))
    assert "greedy" in search_line and "sequence" in search_line
    assert "maskable_ppo" not in search_line
    assert train_line.split("):", 1)[1].split() == ["a2c,", "dqn,", "maskable_ppo,", "ppo"]
    assert "rsi-rl train task=tabular trainer=maskable_ppo" in text
    assert all(len(ln) <= 100 for ln in text.splitlines())
    code = "import sys; from rsi_rl.cli import usage; usage(); print('torch' in sys.modules)"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert p.stdout.strip() == "False", p.stderr


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(capsys, flag):
    from importlib.metadata import version

    main([flag])
    assert capsys.readouterr().out == f"rsi-rl {version('rsi-rl')}\n"


def test_shell_completion_install_is_hydras_script_for_rsi_rl(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main(["search", "-sc", "install=bash"])
    out = capsys.readouterr().out
    assert "hydra_bash_completion()" in out
    assert out.rstrip().endswith("complete -o nospace -o default -F hydra_bash_completion rsi-rl")


def test_shell_completion_queries_complete_commands_then_overrides(tmp_path, capsys, monkeypatch):
    """What the installed function runs: ``rsi-rl -sc query=bash`` with the line so far."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COMP_LINE", "rsi-rl se")
    main(["-sc", "query=bash"])
    assert capsys.readouterr().out.split() == ["search"]
    monkeypatch.setenv("COMP_LINE", "rsi-rl search agent=")
    main(["-sc", "query=bash"])
    assert {"agent=greedy", "agent=tpe"} <= set(capsys.readouterr().out.split())
    assert not list(tmp_path.iterdir())


def test_online_wandb_without_a_key_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    for var in ("WANDB_API_KEY", "NETRC", "WANDB_MODE"):
        monkeypatch.delenv(var, raising=False)
    line = _one_line_error(
        capsys, ["search", "task=tabular", "budget=1", "logger=wandb", "logger.mode=online"]
    )
    assert "logger.mode=online needs a W&B API key" in line and "wandb login" in line
    assert "logger.mode=offline" in line


def test_tasks_puts_the_edits_on_wrapped_indented_lines(tmp_path):
    p = rsi_rl("tasks", cwd=tmp_path)  # a subprocess: its Hydra logging config stays there
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    head = next(ln for ln in lines if ln.startswith("tabular "))
    assert head.split() == ["tabular", "built-in", "val_acc", "(maximize),", "trusted", "evaluator"]
    body = lines[lines.index(head) + 1 :]
    body = body[: next(i for i, ln in enumerate(body) if not ln.startswith(" "))]
    assert body[0].startswith("    ") and " edits. knobs: lr (learning_rate, log)," in body[0]
    assert any(ln.startswith("    patches: ") for ln in body)
    assert all(len(ln) <= 100 for ln in lines)
    assert all(ln.count("(") == ln.count(")") for ln in body)  # no item cut across lines


def test_progress_line_never_cuts_a_number():
    from types import SimpleNamespace

    from rsi_rl.search import format_progress

    env = SimpleNamespace(
        task=SimpleNamespace(metric="val_loss"), budget=20, experiments_used=3, incumbent_metric=1.0
    )
    desc = "tpe: lr=0.003, batch=128, n_embd=64, n_layer=4, dropout=0.1"
    record = {"kind": "tpe", "description": desc, "metric": 1.0, "status": "ok", "kept": True}
    line = format_progress(env, record)  # type: ignore[arg-type]
    shown = line.split("tpe", 1)[1].strip().split("  val_loss")[0].strip()
    assert shown == "tpe: lr=0.003, batch=128, n_embd=64,…"
    assert "n_embd=6 " not in line


def test_a_family_bench_names_its_run_directory_after_the_family(tmp_path, monkeypatch):
    """``rsi-rl bench family=F`` runs F's task whatever the task group says; its run
    directory is named after F (a task bench keeps the task's name)."""
    monkeypatch.chdir(tmp_path)
    common = ["seeds=1", "budget=1", "agents=[random_search]", "aa_arm=false", "plots=false"]
    main(["bench", "family=synth_smooth", "remeasure_seeds=0", *common])
    main(["bench", "task=synth_rugged", "remeasure_seeds=0", *common])
    names = sorted(p.name.split("_", 1)[1] for p in tmp_path.glob("runs/bench/*/*"))
    assert names == ["synth_rugged", "synth_smooth"]
