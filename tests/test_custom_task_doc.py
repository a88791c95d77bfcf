"""Every file and command of docs/custom_task.md runs as written, in order, in a temp folder.

Blocks tagged ``file=PATH`` are written; ``bash`` blocks run as one shell script each
(with the venv's ``rsi-rl`` and ``python`` first on PATH); untagged ``python`` blocks run
with the project folder as working directory and on ``sys.path``. ``text``, ``toml`` and
``yaml`` blocks without ``file=`` are illustrations and are not run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "custom_task.md"
BLOCK = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks() -> list[tuple[str, str, str]]:
    """(language, file or "", body) of every fenced block of the doc, in order."""
    out = []
    for lang, attrs, body in BLOCK.findall(DOC.read_text()):
        m = re.search(r"file=(\S+)", attrs)
        out.append((lang, m.group(1) if m else "", body))
    return out


def test_doc_has_files_commands_and_snippets():
    kinds = [(lang, bool(f)) for lang, f, _ in blocks()]
    assert ("python", True) in kinds and ("yaml", True) in kinds
    assert ("bash", False) in kinds and ("python", False) in kinds


@pytest.mark.slow
def test_every_command_and_snippet_of_the_doc_runs(tmp_path):
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["HYDRA_FULL_ERROR"] = "0"
    env.pop("PYTHONPATH", None)
    for i, (lang, file, body) in enumerate(blocks()):
        if file:
            path = tmp_path / file
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body)
            continue
        if lang == "bash":
            cmd = ["bash", "-euo", "pipefail", "-c", body]
        elif lang == "python":
            cmd = [sys.executable, "-c", "import sys; sys.path.insert(0, '.')\n" + body]
        else:
            continue
        out = subprocess.run(
            cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
        assert out.returncode == 0, (
            f"block {i} ({lang}) failed:\n{body}\n--- stdout\n{out.stdout}\n--- stderr\n{out.stderr}"
        )
    assert (tmp_path / "runs" / "script" / "summary.json").exists()
    assert (tmp_path / "runs" / "class" / "summary.json").exists()
