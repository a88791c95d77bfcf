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
        import rsi_rl.cli, rsi_rl.agents, rsi_rl.env, rsi_rl.core.registry, rsi_rl.search
        rsi_rl.agents.make_agent("random", seed=0)
        rsi_rl.agents.make_agent("greedy", seed=0)
        assert "tpe" in rsi_rl.agents.AGENTS  # a lookup of the table imports nothing
        """
    )
    assert found == []


def test_a_random_search_loads_no_heavy_library_and_starts_one_fork_server(tmp_path):
    """The whole search path in the parent: Hydra, the task, the env, the ledger, the
    experiments (torch is imported by the sandbox's fork server, not here). The server
    started ahead, while Hydra sets up the job, is the one the search's sandbox adopts."""
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
    found = _heavy_modules_after(
        f"""
        import subprocess
        import rsi_rl.cli, rsi_rl.exec.sandbox

        started, ahead, real = [], [], subprocess.Popen

        class Counting(real):
            def __init__(self, args, *a, **k):
                started.extend(["server"] if "rsi_rl.exec._zygote" in args else [])
                super().__init__(args, *a, **k)

        def start_ahead(*a, real_start_ahead=rsi_rl.exec.sandbox.start_ahead):
            real_start_ahead(*a)
            ahead.append(len(rsi_rl.exec.sandbox._AHEAD))

        subprocess.Popen, rsi_rl.exec.sandbox.start_ahead = Counting, start_ahead
        rsi_rl.cli.main({argv!r})
        assert (started, ahead, rsi_rl.exec.sandbox._AHEAD) == (["server"], [1], {{}}), (started, ahead)
        """
    )
    assert found == []
    assert (tmp_path / "results.tsv").is_file()
