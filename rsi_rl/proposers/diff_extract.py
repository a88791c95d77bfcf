"""The LLM proposer's reading of a model's reply: the edit it proposes, checked.

:func:`extract_proposal` finds the diff and config changes in a chat reply (a JSON object,
fenced ```` ```diff ```` blocks or a raw diff; reasoning skipped), recounts the diff's hunk
lengths (:func:`recount_hunks`: models miscount them), checks the config against the
task's knobs and the diff against the program's source, and raises :class:`NoEdit`, saying
what was wrong, when the reply holds no usable edit.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rsi_rl.core.errors import RsiRlError
from rsi_rl.core.patching import apply_unified_diff
from rsi_rl.proposers.prompt import short


class ProposerFailure(Exception):
    """One line for stderr: why no proposal came out (never holds the API key)."""


class NoEdit(ProposerFailure):
    """The model answered, but its reply holds no usable edit (worth asking again)."""


_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_THINK = re.compile(r"<think>.*?(?:</think>|\Z)", re.S | re.I)
_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@(.*)$")


def _looks_like_diff(text: str) -> bool:
    return bool(
        re.search(r"^--- \S", text, re.M)
        and re.search(r"^\+\+\+ \S", text, re.M)
        and re.search(r"^@@ ", text, re.M)
    )


def _raw_diff(text: str) -> str:
    """The diff in unfenced ``text``: from the first ``---``/``+++`` header on."""
    lines = text.splitlines()
    for i, line in enumerate(lines[:-1]):
        if line.startswith("--- ") and lines[i + 1].startswith("+++ "):
            start = i - 1 if i and lines[i - 1].startswith("diff --git") else i
            return "\n".join(lines[start:])
    return ""


def recount_hunks(diff: str) -> str:
    """``diff`` with each ``@@`` header's line counts recomputed from the hunk's body.

    Models often miscount the lengths in ``@@ -a,b +c,d @@``; the applier relies on them
    to find where a hunk ends. The body (context, ``-`` and ``+`` lines) is what counts,
    and it still has to match the source exactly. A hunk ends at the next ``@@``, file
    header, or a line that is no diff line; trailing blank lines of the diff are dropped.
    """
    lines = diff.strip("\n").splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = _HUNK.match(lines[i])
        if m is None:
            out.append(lines[i])
            i += 1
            continue
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            line = lines[j]
            if line.startswith("@@") or line.startswith("diff --git"):
                break
            if line.startswith("--- ") and j + 1 < len(lines) and lines[j + 1].startswith("+++ "):
                break
            if line and line[0] not in " +-\\":
                break
            body.append(line if line else " ")  # an empty context line lost its space
            j += 1
        old = sum(1 for b in body if b[0] in " -")
        new = sum(1 for b in body if b[0] in " +")
        out.append(f"@@ -{m.group(1)},{old} +{m.group(2)},{new} @@{m.group(3)}")
        out.extend(body)
        i = j
    return "\n".join(out) + "\n"


def _json_objects(reply: str, blocks: list[tuple[str, str]]) -> list[tuple[dict[str, Any], bool]]:
    """JSON objects in the reply: (object, whether it is the whole reply)."""
    found = []
    texts = [(reply.strip(), True)] + [(b, False) for lang, b in blocks if lang in ("json", "")]
    for text, whole in texts:
        text = text.strip()
        if not text.startswith("{"):
            continue
        try:
            obj = json.loads(text)
        except ValueError:
            continue
        if isinstance(obj, dict):
            found.append((obj, whole))
    return found


def _description(reply: str) -> str:
    prose = _FENCE.sub(" ", reply)
    prose = re.sub(r"(?m)^(?:--- |\+\+\+ |@@ |diff --git ).*$", " ", prose)
    return short(prose, 300)


def _check_config(config: Any, request: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(config, dict):
        raise NoEdit("the reply's 'config' is not a JSON object")
    knobs = request.get("knobs") or {}
    current = request.get("config") or {}
    for key, value in config.items():
        if key not in knobs and key not in current:
            raise NoEdit(f"config key {key!r} is not a knob of this task ({', '.join(knobs)})")
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise NoEdit(f"config {key}={value!r} must be a plain number or string")
        spec = knobs.get(key) or {}
        if spec.get("choices"):
            if value not in spec["choices"]:
                raise NoEdit(f"config {key}={value!r} is not one of {spec['choices']}")
        elif spec and isinstance(value, (int, float)):
            low, high = spec.get("low"), spec.get("high")
            if low is not None and high is not None and not low <= value <= high:
                raise NoEdit(f"config {key}={value} is outside [{low}, {high}]")
    return config


def extract_proposal(reply: str, request: dict[str, Any]) -> dict[str, Any]:
    """The proposal in a model's ``reply``: ``{"diff", "config", "description"}``.

    Reads, in this order, a JSON object (the whole reply or a ```` ```json ```` block) with
    ``diff``/``config``/``description``; fenced blocks that hold a unified diff (one per
    file at most); a raw diff. Reasoning (``<think>...</think>``) is skipped. The diff's
    hunk counts are recomputed (:func:`recount_hunks`) and it must apply to the request's
    source. Raises :class:`NoEdit` saying what was wrong.
    """
    reply = _THINK.sub("", reply or "")
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(reply)]
    diff, description = "", ""
    config: Any = {}
    json_reply = False  # the whole reply was the JSON object: no prose to describe it
    for obj, whole in _json_objects(reply, blocks):
        if "diff" in obj or "config" in obj:
            json_reply = whole
            if isinstance(obj.get("diff"), str) and obj["diff"].strip():
                diff = obj["diff"]
            config = obj.get("config") or config
            description = str(obj.get("description") or obj.get("rationale") or "")
            break
    if not diff:
        seen: set[str] = set()
        parts = []
        for lang, body in blocks:
            if lang in ("diff", "patch", "udiff") or _looks_like_diff(body):
                files = set(re.findall(r"(?m)^\+\+\+ (?:b/)?(\S+)", body))
                if files and not files & seen:
                    seen |= files
                    parts.append(body.strip("\n"))
        diff = "\n".join(parts) or _raw_diff(reply if not blocks else _FENCE.sub("", reply))
    config = _check_config(config, request)
    if not diff.strip() and not config:
        raise NoEdit(
            "the reply holds no unified diff (expected a ```diff block with '--- a/<file>', "
            "'+++ b/<file>' and '@@' lines) and no config change"
        )
    if diff.strip():
        diff = recount_hunks(diff)
        try:
            apply_unified_diff(dict(request.get("source") or {}), diff)
        except RsiRlError as exc:
            raise NoEdit(f"the model's diff does not apply: {exc}") from None
    if not description and not json_reply:
        description = _description(reply)
    out: dict[str, Any] = {"description": short(description, 300)}
    if diff.strip():
        out["diff"] = diff
    if config:
        out["config"] = config
    return out


__all__ = ["NoEdit", "ProposerFailure", "extract_proposal", "recount_hunks"]
