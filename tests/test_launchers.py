"""Hydra launchers for sweeps: SLURM through submitit (``conf/hydra/launcher/slurm.yaml``)."""

from __future__ import annotations

import importlib.util

import pytest

from rsi_rl import cli
from rsi_rl.store.ledger import read_ledger
from tests.test_cli import sweep_jobs

SUBMITIT = importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is not None
needs_submitit = pytest.mark.skipif(
    not SUBMITIT, reason="hydra-submitit-launcher is not installed (pip install 'rsi-rl[slurm]')"
)


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """The one line ``rsi-rl <argv>`` writes on stderr before it exits with status 2."""
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


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
    err = one_line_error(capsys, ["search", "-m", "hydra/launcher=slurm", "seed=0,1"])
    assert "pip install 'rsi-rl[slurm]'" in err


def test_unknown_launcher_is_one_line(capsys):
    err = one_line_error(capsys, ["search", "-m", "hydra/launcher=nope", "seed=0,1"])
    assert "unknown hydra/launcher 'nope'; known: basic" in err


@needs_submitit
def test_slurm_without_srun_is_one_line(monkeypatch, capsys):
    monkeypatch.setattr(cli.shutil, "which", lambda name: None)
    err = one_line_error(capsys, ["search", "-m", "hydra/launcher=slurm", "seed=0,1"])
    assert "no `srun`" in err


@needs_submitit
@pytest.mark.slow
def test_submitit_local_sweep_writes_one_ledger_per_job(tmp_path):
    overrides = ["task=tabular", "agent=random", "budget=2", "seed=0,1"]
    jobs = sweep_jobs(tmp_path, "hydra/launcher=submitit_local", *overrides)
    assert [job.name for job in jobs] == ["0_random_seed0", "1_random_seed1"]
    for job in jobs:
        assert len(read_ledger(job)) == 4  # baseline + 2 experiments + test
    assert list(tmp_path.glob("runs/multirun/search/*/*/.submitit"))  # submitit ran the jobs
