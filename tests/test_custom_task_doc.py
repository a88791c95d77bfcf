"""Every file and command of docs/custom_task.md runs as written, in order, in a temp folder.

Blocks tagged ``file=PATH`` are written; ``bash`` blocks run as one shell script each
(with the venv's ``rsi-rl`` and ``python`` first on PATH); untagged ``python`` blocks run
with the project folder as working directory and on ``sys.path``. ``text``, ``toml`` and
``yaml`` blocks without ``file=`` are illustrations and are not run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_docs import fenced_blocks, run_blocks, runs_files_and_commands

DOC = Path(__file__).resolve().parents[1] / "docs" / "custom_task.md"


def blocks() -> list[tuple[str, str, str]]:
    """(language, file or "", body) of every fenced block of the doc, in order."""
    return fenced_blocks(DOC.read_text())


def test_doc_has_files_commands_and_snippets():
    assert runs_files_and_commands(blocks())


@pytest.mark.slow
def test_every_command_and_snippet_of_the_doc_runs(tmp_path):
    run_blocks(blocks(), tmp_path, env={"HYDRA_FULL_ERROR": "0"})
    assert (tmp_path / "runs" / "script" / "summary.json").exists()
    assert (tmp_path / "runs" / "class" / "summary.json").exists()
