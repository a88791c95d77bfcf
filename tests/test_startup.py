"""Start-up stays light: the CLI and a baseline agent's search never import the heavy
libraries that only some commands need (checked in a fresh interpreter's sys.modules)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

#: libraries that only training, TPE, tracking, plots or the Ray executor need
HEAVY = (
    "stable_baselines3",
    "sb3_contrib",
    "optuna",
    "wandb",
    "matplotlib",
    "ray",
    "tensorboard",
)


def _heavy_modules_after(code: str) -> list[str]:
    """The :data:`HEAVY` top-level modules in ``sys.modules`` after running ``code``."""
    script = textwrap.dedent(code) + textwrap.dedent(
        f"""
        import json, sys
        print(json.dumps(sorted(m for m in {HEAVY!r} + ("torch",) if m in sys.modules)))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    found: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return found


def test_importing_the_cli_and_the_search_modules_loads_no_heavy_library():
    found = _heavy_modules_after(
        """
        import rsi_rl.cli, rsi_rl.agents, rsi_rl.env, rsi_rl.registry, rsi_rl.search
        rsi_rl.agents.make_agent("random", seed=0)
        rsi_rl.agents.make_agent("greedy", seed=0)
        assert "tpe" in rsi_rl.agents.AGENTS  # a lookup of the table imports nothing
        """
    )
    assert found == []


def test_a_random_search_up_to_its_last_experiment_loads_no_heavy_library(tmp_path):
    """The whole search path in the parent: Hydra, the task, the env, the ledger, the
    experiments (torch is imported by the sandbox's fork server, not here)."""
    argv = [
        "search",
        "task=tabular",
        "agent=random",
        "budget=1",
        "test=false",
        "quiet=true",
        "logger=none",
        f"hydra.run.dir={tmp_path}",
    ]
    found = _heavy_modules_after(f"import rsi_rl.cli\nrsi_rl.cli.main({argv!r})")
    assert found == []
    assert (tmp_path / "results.tsv").is_file()
