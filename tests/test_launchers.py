"""Hydra launchers for sweeps: SLURM through submitit (``conf/hydra/launcher/slurm.yaml``)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from rsi_rl import cli
from rsi_rl.store.ledger import read_ledger

SUBMITIT = importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is not None
needs_submitit = pytest.mark.skipif(
    not SUBMITIT, reason="hydra-submitit-launcher is not installed (pip install 'rsi-rl[slurm]')"
)


def rsi_rl(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rsi_rl.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_slurm_launcher_config_is_on_the_search_path():
    assert (cli.conf_dir() / "hydra" / "launcher" / "slurm.yaml").is_file()
    assert "slurm" in cli.launcher_options()


@needs_submitit
@pytest.mark.parametrize("app", ["search", "bench", "train"])
def test_slurm_launcher_composes(app):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(cli.conf_dir()), version_base="1.3"):
            cfg = compose(
                config_name=app,
                overrides=["hydra/launcher=slurm", "hydra.launcher.partition=cpu"],
                return_hydra_config=True,
            )
    finally:
        GlobalHydra.instance().clear()
    launcher = cfg.hydra.launcher  # the plugin's launcher, with the user's override
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert launcher.partition == "cpu"


def test_missing_launcher_plugin_is_one_line_naming_the_extra(monkeypatch, capsys):
    monkeypatch.setattr(cli, "launcher_options", lambda extra_dirs=(): ["basic", "slurm"])
    with pytest.raises(SystemExit) as exc:
        cli.main(["search", "-m", "hydra/launcher=slurm", "seed=0,1"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'rsi-rl[slurm]'" in err[0], err


def test_unknown_launcher_is_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["search", "-m", "hydra/launcher=nope", "seed=0,1"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown hydra/launcher 'nope'; known: basic" in err[0], err


@needs_submitit
def test_slurm_without_srun_is_one_line(monkeypatch, capsys):
    monkeypatch.setattr(cli.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit) as exc:
        cli.main(["search", "-m", "hydra/launcher=slurm", "seed=0,1"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no `srun`" in err[0], err


@needs_submitit
@pytest.mark.slow
def test_submitit_local_sweep_writes_one_ledger_per_job(tmp_path):
    p = rsi_rl(
        "search",
        "-m",
        "hydra/launcher=submitit_local",
        "task=tabular",
        "agent=random",
        "budget=2",
        "seed=0,1",
        "quiet=true",
        cwd=tmp_path,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr
    ledgers = sorted(tmp_path.glob("runs/multirun/search/*/*/*/ledger.sqlite"))
    assert sorted(lg.parent.name for lg in ledgers) == ["0_random_seed0", "1_random_seed1"]
    for lg in ledgers:
        assert len(read_ledger(lg.parent)) == 4  # baseline + 2 experiments + test
    assert list(tmp_path.glob("runs/multirun/search/*/*/.submitit"))  # submitit ran the jobs
