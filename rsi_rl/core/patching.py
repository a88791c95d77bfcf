"""Unified diffs as code edits: a small, dependency-free applier with exact context matching.

A user edit is a unified diff (``diff -u``, ``git diff``) against the task's program. Every
hunk must match the source exactly (context and removed lines, at any offset); a hunk that
does not match raises :class:`~rsi_rl.core.errors.PatchError` showing its first lines, so the
user sees at once what to fix. No fuzz: an edit that applies "approximately" would train a
different program than the one the ledger records.

Patch files a task carries (``<program_dir>/patches/*.diff``) name their edit in a header
line before the first ``---`` (``# kind:`` is read the same way as ``# name:``)::

    # name: label_smoothing
    # description: label smoothing 0.1 on the cross-entropy loss
    --- a/train.py
    +++ b/train.py
    @@ -60,1 +60,1 @@
    -loss_fn = nn.CrossEntropyLoss()
    +loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)

Without a ``# name:`` line the name is the file name's stem up to the first ``.`` (so
``warmup.long.diff`` is called ``warmup``). ``rsi-rl try edit=<name>`` and the example
proposer apply patch files by that name; they are user edits, not part of the task's edit
space (:class:`rsi_rl.core.edits.EditSpace`), which holds the task's declared patches.

Example:
    >>> src = {"train.py": "a = 1\\nb = 2\\n"}
    >>> diff = "--- a/train.py\\n+++ b/train.py\\n@@ -2 +2 @@\\n-b = 2\\n+b = 3\\n"
    >>> apply_unified_diff(src, diff)["train.py"]
    'a = 1\\nb = 3\\n'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from rsi_rl.core.errors import PatchError

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass
class Hunk:
    """One ``@@`` block: ``old`` lines (context and removals) become ``new`` lines."""

    old_start: int
    old: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    header: str = ""

    def preview(self, n: int = 4) -> str:
        """The header and first ``n`` lines of what the hunk expects, for error messages."""
        lines = [self.header] + [f" {line.rstrip(chr(10))}" for line in self.old[:n]]
        return " | ".join(lines)


@dataclass
class FilePatch:
    """The hunks of one file of a diff."""

    path: str
    hunks: list[Hunk] = field(default_factory=list)


@dataclass
class PatchFile:
    """A diff file a task carries: its edit's ``name``, ``description`` and diff text."""

    name: str
    description: str
    text: str
    path: Path | None = None


def _strip_prefix(name: str) -> str:
    name = name.split("\t", 1)[0].strip()
    if name.startswith(("a/", "b/")):
        name = name[2:]
    return name


def parse_unified_diff(text: str) -> list[FilePatch]:
    """Parse a unified diff into file patches; raises :class:`PatchError` if malformed."""
    lines = text.splitlines(keepends=True)
    files: list[FilePatch] = []
    cur: FilePatch | None = None
    hunk: Hunk | None = None
    left_old = left_new = 0
    last = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("\\") and hunk is not None:  # "\ No newline at end of file"
            for target in (
                (hunk.old,) if last == "-" else (hunk.new,) if last == "+" else (hunk.old, hunk.new)
            ):
                if target:
                    target[-1] = target[-1].rstrip("\r\n")
        elif hunk is not None and (left_old > 0 or left_new > 0):
            tag, body = line[:1], line[1:]
            if tag == " " or line in ("\n", "\r\n"):
                body = body if tag == " " else "\n"
                hunk.old.append(body)
                hunk.new.append(body)
                left_old -= 1
                left_new -= 1
            elif tag == "-":
                hunk.old.append(body)
                left_old -= 1
            elif tag == "+":
                hunk.new.append(body)
                left_new -= 1
            else:
                raise PatchError(
                    f"malformed diff: unexpected line {line.rstrip()!r} inside {hunk.header}"
                )
            last = tag
        elif line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            new_name = _strip_prefix(lines[i + 1][4:])
            old_name = _strip_prefix(line[4:])
            cur = FilePatch(new_name if new_name != "/dev/null" else old_name)
            files.append(cur)
            hunk = None
            i += 2
            continue
        elif line.startswith("@@"):
            m = _HUNK.match(line)
            if m is None or cur is None:
                raise PatchError(
                    f"malformed diff: hunk header {line.rstrip()!r} without a --- / +++ file header"
                )
            left_old = int(m.group(2)) if m.group(2) is not None else 1
            left_new = int(m.group(4)) if m.group(4) is not None else 1
            hunk = Hunk(int(m.group(1)), header="@@" + line.split("@@")[1] + "@@")
            cur.hunks.append(hunk)
        i += 1
    if hunk is not None and (left_old > 0 or left_new > 0):
        raise PatchError(
            f"malformed diff: hunk {hunk.header} of {cur.path if cur else '?'} is truncated"
        )
    if not files or not any(f.hunks for f in files):
        raise PatchError(
            "the diff holds no hunks (expected '--- a/file', '+++ b/file', '@@ ... @@' lines)"
        )
    return files


def _find(lines: list[str], block: list[str], hint: int) -> list[int]:
    """Positions where ``block`` occurs in ``lines``, nearest to ``hint`` first."""
    if not block:
        return [min(max(hint, 0), len(lines))]
    n = len(block)
    hits = [i for i in range(len(lines) - n + 1) if lines[i : i + n] == block]
    return sorted(hits, key=lambda i: abs(i - hint))


def apply_unified_diff(source: dict[str, str], diff: str) -> dict[str, str]:
    """Apply ``diff`` to ``source`` (file name -> text); returns the new source dict.

    Each hunk's context and removed lines must occur exactly (at any offset; the one
    nearest the stated line wins, after the previous hunk). A file the diff names that the
    program lacks, or a hunk that does not match, raises :class:`PatchError`.
    """
    out = dict(source)
    for fp in parse_unified_diff(diff):
        if fp.path not in out:
            known = ", ".join(sorted(out))
            raise PatchError(
                f"the diff edits {fp.path!r}, which the program does not have (files: {known})"
            )
        lines = out[fp.path].splitlines(keepends=True)
        pos = 0
        shift = 0
        for hunk in fp.hunks:
            hint = max(hunk.old_start - 1 + shift, pos)
            hits = [i for i in _find(lines, hunk.old, hint) if i >= pos]
            if not hits:
                raise PatchError(f"hunk does not match {fp.path}: {hunk.preview()}")
            at = hits[0]
            lines[at : at + len(hunk.old)] = hunk.new
            pos = at + len(hunk.new)
            shift += len(hunk.new) - len(hunk.old)
        out[fp.path] = "".join(lines)
    return out


def read_patch_file(path: str | Path) -> PatchFile:
    """Read a ``.diff`` file and its name (``# name:`` or ``# kind:`` header, else the
    file-name stem)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise PatchError(f"cannot read patch file {p}: {exc.strerror}") from None
    name = p.name.split(".", 1)[0]
    description = f"patch {p.name}"
    header = "name"
    for line in text.splitlines():
        if line.startswith("--- "):
            break
        m = re.match(r"#\s*(name|kind|description)\s*:\s*(.+)", line)
        if m and m.group(1) == "description":
            description = m.group(2).strip()
        elif m:
            name, header = m.group(2).strip(), m.group(1)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise PatchError(
            f"patch file {p}: name {name!r} is not an identifier (fix its '# {header}:' line)"
        )
    return PatchFile(name, description, text, p)


def task_patch_files(program_dir: str | Path) -> list[PatchFile]:
    """The ``patches/*.diff`` files of a task's program folder, sorted by name."""
    folder = Path(program_dir) / "patches"
    return [read_patch_file(p) for p in sorted(folder.glob("*.diff"))] if folder.is_dir() else []
