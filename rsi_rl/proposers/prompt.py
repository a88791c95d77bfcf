"""The prompt of the LLM proposer: a proposer request as chat messages.

:func:`build_messages` turns the request :mod:`rsi_rl.proposer` writes (task, metric,
config and knobs, incumbent, recent history, the program's source) into a system prompt
that says what to reply with and one user message; :mod:`rsi_rl.proposers.diff_extract`
reads the reply and :mod:`rsi_rl.proposers.openai_compatible` sends both.
"""

from __future__ import annotations

import json
from typing import Any

#: characters of program source put in the prompt (a longer program is cut, marked)
MAX_SOURCE_CHARS = 60_000

SYSTEM_PROMPT = """\
You are an ML research engineer improving a training program by small, careful edits. \
Each edit you propose is trained under a fixed time budget in a sandbox, and a trusted \
evaluator outside the program scores its predictions on held-out data: printed or logged \
metrics, the budget and the evaluation are outside your reach, so only a better model helps.

Reply with:
1. Two or three sentences: what you change and why you expect the metric to improve.
2. Exactly ONE unified diff against the files shown, in a ```diff block, with \
'--- a/<file>' and '+++ b/<file>' headers and '@@' hunks whose context and '-' lines copy \
the current source exactly (same indentation). Keep the edit small and focused.
3. Optionally, config changes in a ```json block: {"config": {"<knob>": <value>}}, each \
value within the knob's range (or one of its choices). A reply may be config-only.

Do not repeat an edit the history shows was already tried."""


def short(value: Any, n: int = 300) -> str:
    """``value`` on one line, cut to ``n`` characters (marked ``...``)."""
    text = " ".join(str(value).split())
    return text if len(text) <= n else text[: n - 3] + "..."


def _history_lines(history: list[dict[str, Any]], diff_chars: int = 800) -> list[str]:
    lines = []
    for row in history:
        metric = row.get("metric")
        value = f"{metric:.6g}" if isinstance(metric, (int, float)) else "-"
        kept = "kept" if row.get("kept") else "reverted"
        head = (
            f"- step {row.get('step', '?')}: {row.get('kind', '?')} -> {row.get('status', '?')}, "
            f"metric {value}, {kept}: {short(row.get('description') or '', 160)}"
        )
        if row.get("message"):
            head += f" [{short(row['message'], 160)}]"
        lines.append(head)
        diff = (row.get("diff") or "").strip()
        if diff:
            cut = diff if len(diff) <= diff_chars else diff[:diff_chars] + "\n... (cut)"
            lines.append("  ```diff\n" + "\n".join("  " + d for d in cut.splitlines()) + "\n  ```")
    return lines


def build_messages(
    request: dict[str, Any], max_source_chars: int = MAX_SOURCE_CHARS
) -> list[dict[str, Any]]:
    """The chat messages for a proposer ``request``: a system prompt and one user message
    with the task, metric, config, knobs, incumbent, recent history and the program (its
    first ``max_source_chars`` characters; a longer program is cut, marked)."""
    direction = request.get("direction", "maximize")
    parts = [
        f"Task: {request.get('task', '?')}. Metric: {request.get('metric', '?')} "
        f"({'higher' if direction == 'maximize' else 'lower'} is better; {direction}).",
    ]
    incumbent = request.get("incumbent_metric")
    if isinstance(incumbent, (int, float)):
        parts.append(f"Best so far (the incumbent you edit): {incumbent:.6g}.")
    parts.append(
        "Current config (the program reads it with harness.config()):\n```json\n"
        + json.dumps(request.get("config") or {}, indent=1, sort_keys=True)
        + "\n```"
    )
    knobs = request.get("knobs") or {}
    if knobs:
        rows = []
        for key, k in knobs.items():
            span = (
                f"one of {k['choices']}"
                if k.get("choices")
                else f"{k.get('scale', '')} range [{k.get('low')}, {k.get('high')}]"
            )
            rows.append(f"- {key} ({k.get('role', 'other')}): {span}")
        parts.append("Config knobs you may change:\n" + "\n".join(rows))
    if request.get("toggles"):
        parts.append(f"Catalogue patches already applied: {', '.join(request['toggles'])}.")
    history = request.get("history") or []
    if history:
        parts.append("Recent experiments, oldest first:\n" + "\n".join(_history_lines(history)))
    else:
        parts.append("No experiments yet besides the start.")
    left = max_source_chars
    for name, text in sorted((request.get("source") or {}).items()):
        shown = text if len(text) <= left else text[: max(left, 0)] + "\n# ... (cut)\n"
        left -= len(shown)
        parts.append(f"File {name}:\n```python\n{shown.rstrip()}\n```")
    parts.append(
        "Propose ONE edit that should improve the metric: rationale, one ```diff block, "
        "optionally a ```json config block."
    )
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "\n\n".join(parts)},
    ]


__all__ = ["MAX_SOURCE_CHARS", "SYSTEM_PROMPT", "build_messages", "short"]
