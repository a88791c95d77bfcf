"""The docs hold together: links resolve, figures are cited, pages describe what is true now.

Fast checks read README.md and docs/*.md only. The slow test runs the "Writing your own
agent" example of docs/agents.md as written (files tagged ``file=PATH`` are written, then
every ``python`` and ``bash`` block of that section runs, in order, in a temp folder).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FIGURES = DOCS / "figures"
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
BLOCK = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
NOTEBOOK = re.compile(r"\b(session|issue)s? \d+\b", re.IGNORECASE)


def pages() -> list[Path]:
    """README.md and every page under docs/."""
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def prose(path: Path) -> str:
    """The page without its fenced code blocks (links inside code are not links)."""
    return FENCE.sub("", path.read_text())


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Anchors of every heading of a markdown page."""
    return {slug(m) for m in re.findall(r"^#{1,6} (.+)$", prose(path), re.MULTILINE)}


def relative_links(path: Path) -> list[str]:
    return [t for t in LINK.findall(prose(path)) if not re.match(r"[a-z]+:", t)]


def broken_links(path: Path) -> list[str]:
    """Relative links of ``path`` whose file, or heading for ``#anchor``, does not exist."""
    bad = []
    for target in relative_links(path):
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists():
            bad.append(f"{target} (no file {dest})")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{target} (no heading #{anchor} in {dest.name})")
    return bad


def test_slug_matches_github_anchors():
    assert slug("Resume and cache (issue 7)") == "resume-and-cache-issue-7"
    assert slug("`policy_tpe`: the policy as TPE's initial design") == (
        "policy_tpe-the-policy-as-tpes-initial-design"
    )
    assert (
        slug("How much 40 pairs can resolve (A/A test)") == "how-much-40-pairs-can-resolve-aa-test"
    )


def test_broken_links_are_detected(tmp_path):
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other\n\n## A section\n")
    page.write_text(
        "# Page\n[ok](other.md#a-section) [here](#page) [web](https://example.com)\n"
        "[gone](missing.md) [bad anchor](other.md#nope) ![img](figures/none.png)\n"
        "```\n[in code](not_a_link.md)\n```\n"
    )
    bad = broken_links(page)
    assert len(bad) == 3
    assert any("missing.md" in b for b in bad) and any("#nope" in b for b in bad)
    assert any("none.png" in b for b in bad)


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    assert broken_links(page) == []


def test_readme_points_at_every_docs_page():
    linked = {t.partition("#")[0] for t in relative_links(ROOT / "README.md")}
    missing = [p.name for p in sorted(DOCS.glob("*.md")) if f"docs/{p.name}" not in linked]
    assert missing == []


def test_every_figure_is_cited_by_a_page():
    text = "\n".join(p.read_text() for p in pages())
    uncited = [
        f.name
        for f in sorted(FIGURES.iterdir())
        if not re.search(rf"\b{re.escape(f.name)}\b", text)
    ]
    assert uncited == [], "cite these in a page or `git rm` them"


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.name)
def test_pages_describe_the_present_not_rounds_of_work(page):
    assert NOTEBOOK.findall(page.read_text()) == []


def fenced_blocks(text: str) -> list[tuple[str, str, str]]:
    """(language, file or "", body) of every fenced block of ``text``, in order."""
    out = []
    for lang, attrs, body in BLOCK.findall(text):
        m = re.search(r"file=(\S+)", attrs)
        out.append((lang, m.group(1) if m else "", body))
    return out


def run_blocks(
    blocks: list[tuple[str, str, str]], folder: Path, env: dict[str, str] | None = None
) -> list[str]:
    """Run a doc's blocks in order in ``folder``, as a reader would: a block tagged
    ``file=PATH`` is written there, a ``bash`` block runs as one shell script, a ``python``
    block runs with ``folder`` as working directory and on ``sys.path`` (the venv's
    ``rsi-rl`` and ``python`` first on PATH, ``env`` added); other blocks are
    illustrations. Returns the stdout of each block run; one that fails fails the test."""
    run_env = {**os.environ, **(env or {})}
    run_env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + run_env.get("PATH", "")
    run_env.pop("PYTHONPATH", None)
    outputs = []
    for i, (lang, file, body) in enumerate(blocks):
        if file:
            (folder / file).parent.mkdir(parents=True, exist_ok=True)
            (folder / file).write_text(body)
            continue
        if lang == "bash":
            cmd = ["bash", "-euo", "pipefail", "-c", body]
        elif lang == "python":
            cmd = [sys.executable, "-c", "import sys; sys.path.insert(0, '.')\n" + body]
        else:
            continue
        out = subprocess.run(
            cmd, cwd=folder, env=run_env, capture_output=True, text=True, timeout=600
        )
        assert out.returncode == 0, (
            f"block {i} ({lang}) failed:\n{body}\n--- stdout\n{out.stdout}\n--- stderr\n{out.stderr}"
        )
        outputs.append(out.stdout)
    return outputs


def agent_example() -> list[tuple[str, str, str]]:
    """The blocks of agents.md's "Writing your own agent"."""
    text = (DOCS / "agents.md").read_text()
    start = text.index("## Writing your own agent")
    end = text.index("\n## ", start + 1)
    return fenced_blocks(text[start:end])


def runs_files_and_commands(blocks: list[tuple[str, str, str]]) -> bool:
    """Whether ``blocks`` write a Python and a YAML file and run a shell command and a
    Python snippet (what a runnable example of the docs holds)."""
    kinds = {(lang, bool(f)) for lang, f, _ in blocks}
    return {("python", True), ("yaml", True), ("bash", False), ("python", False)} <= kinds


def test_agent_example_has_its_files_and_commands():
    assert runs_files_and_commands(agent_example())


@pytest.mark.slow
def test_agent_example_runs_as_written(tmp_path):
    outputs = run_blocks(agent_example(), tmp_path)
    assert "input_norm" in outputs[0]  # the agent's first edit
    assert (tmp_path / "runs" / "jump_first" / "ledger.sqlite").exists()
    assert (tmp_path / "runs" / "jump_first_cli" / "summary.json").exists()
    assert "jump_first" in outputs[-1] and "greedy" in outputs[-1]
