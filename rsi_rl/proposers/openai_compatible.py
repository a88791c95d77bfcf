"""A code-LLM proposer for any OpenAI-compatible chat-completions endpoint.

    python -m rsi_rl.proposers.openai_compatible [--base-url URL] [--model NAME]
        [--api-key-env NAME] [--temperature T] [--max-tokens N] [--timeout S] [--attempts K]

It reads the proposer request (JSON, see :mod:`rsi_rl.proposer`) on stdin, asks the model
for ONE edit of the training program (a unified diff and/or config changes, with a short
rationale), extracts the diff from the reply (a fenced ```` ```diff ```` block, a raw diff
or a JSON object), checks that it is a unified diff of the program's own files that
applies, and prints ``{"diff": ..., "config": ..., "description": ...}``. When the reply
holds no usable edit it asks again, with the reason, up to ``--attempts`` requests in all.

Works with llama.cpp's ``llama-server``, vLLM, Ollama, LM Studio and hosted APIs: anything
that serves ``POST <base-url>/chat/completions``. Settings come from the arguments, else
from the environment (``RSI_RL_LLM_BASE_URL``, ``RSI_RL_LLM_MODEL``,
``RSI_RL_LLM_TEMPERATURE``, ``RSI_RL_LLM_MAX_TOKENS``, ``RSI_RL_LLM_TIMEOUT``; the
proposer's environment is scrubbed, so name them in the proposer's ``env_keys``).

The API key is read only from the environment variable ``--api-key-env`` names (default
``OPENAI_API_KEY``) and is sent only in the ``Authorization`` header. It is never in the
prompt, the output or an error message (every message is scrubbed with
:func:`rsi_rl.exec.redact.scrub` and the key's value replaced), and a reply that contains it is
refused. A local server needs no key. Errors (HTTP errors, no answer within ``--timeout``,
no usable diff) exit with status 1 and one line on stderr, which the campaign records as
an ``invalid`` experiment.

Example, with a local llama.cpp server::

    llama-server -m qwen2.5-coder-7b-instruct-q4_k_m.gguf --port 8080
    RSI_RL_LLM_BASE_URL=http://127.0.0.1:8080/v1 \\
        rsi-rl search task=digits_mlp proposer=openai_compatible
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from rsi_rl.core.errors import RsiRlError
from rsi_rl.core.patching import apply_unified_diff
from rsi_rl.exec.redact import REDACTED, scrub

#: prefix of the environment variables that hold the settings (``RSI_RL_LLM_BASE_URL``, ...)
ENV_PREFIX = "RSI_RL_LLM_"
DEFAULT_BASE_URL = "http://127.0.0.1:8080/v1"
#: llama.cpp's server answers any model name; Ollama and hosted APIs need a real one
DEFAULT_MODEL = "default"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"

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


class ProposerFailure(Exception):
    """One line for stderr: why no proposal came out (never holds the API key)."""


class NoEdit(ProposerFailure):
    """The model answered, but its reply holds no usable edit (worth asking again)."""


@dataclass(frozen=True)
class Settings:
    """Where and how to ask: the endpoint, the model and the limits of one proposal."""

    base_url: str = DEFAULT_BASE_URL
    model: str = DEFAULT_MODEL
    api_key_env: str = DEFAULT_KEY_ENV
    temperature: float = 0.7
    max_tokens: int = 2048
    #: seconds for the whole proposal, every request included
    timeout: float = 240.0
    #: requests in all: a reply without a usable edit is answered with the reason
    attempts: int = 2
    #: characters of program source put in the prompt (a longer program is cut, marked)
    max_source_chars: int = 60_000

    @property
    def url(self) -> str:
        base = self.base_url.rstrip("/")
        return base if base.endswith("/chat/completions") else base + "/chat/completions"


# ---------------------------------------------------------------------- the prompt
def _short(value: Any, n: int = 300) -> str:
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
            f"metric {value}, {kept}: {_short(row.get('description') or '', 160)}"
        )
        if row.get("message"):
            head += f" [{_short(row['message'], 160)}]"
        lines.append(head)
        diff = (row.get("diff") or "").strip()
        if diff:
            cut = diff if len(diff) <= diff_chars else diff[:diff_chars] + "\n... (cut)"
            lines.append("  ```diff\n" + "\n".join("  " + d for d in cut.splitlines()) + "\n  ```")
    return lines


def build_messages(request: dict[str, Any], settings: Settings | None = None) -> list[dict]:
    """The chat messages for a proposer ``request``: a system prompt and one user message
    with the task, metric, config, knobs, incumbent, recent history and the program."""
    settings = settings or Settings()
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
    left = settings.max_source_chars
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


# ---------------------------------------------------------------------- the reply
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
    return _short(prose, 300)


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
    out: dict[str, Any] = {"description": _short(description, 300)}
    if diff.strip():
        out["diff"] = diff
    if config:
        out["config"] = config
    return out


# ---------------------------------------------------------------------- the endpoint
def _content(body: dict[str, Any]) -> tuple[str, str]:
    """(text, finish_reason) of the first choice of a chat-completions answer."""
    choices = body.get("choices") if isinstance(body, dict) else None
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise ProposerFailure("the endpoint's answer has no 'choices' (is it chat-completions?)")
    message = choices[0].get("message") or {}
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):  # content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str):
        content = choices[0].get("text") if isinstance(choices[0].get("text"), str) else ""
    return content or "", str(choices[0].get("finish_reason") or "")


def _http_error(exc: urllib.error.HTTPError) -> str:
    try:
        raw = exc.read(2000).decode(errors="replace")
    except OSError:
        raw = ""
    detail = raw
    try:
        err = json.loads(raw).get("error")
        detail = err.get("message", raw) if isinstance(err, dict) else str(err or raw)
    except (ValueError, AttributeError):
        pass
    return f"HTTP {exc.code} {exc.reason}: {_short(detail, 200)}".rstrip(": ")


def chat(
    settings: Settings,
    messages: list[dict[str, Any]],
    api_key: str | None,
    timeout: float,
    seed: int | None = None,
) -> tuple[str, str]:
    """POST ``messages`` to the endpoint; returns (reply text, finish_reason).

    Raises :class:`ProposerFailure` on an HTTP error, a network error, no answer within
    ``timeout`` seconds, or an answer that is not a chat completion.
    """
    url = settings.url
    if not re.match(r"https?://", url):
        raise ProposerFailure(f"base URL {settings.base_url!r} must start with http:// or https://")
    payload: dict[str, Any] = {
        "model": settings.model,
        "messages": messages,
        "temperature": settings.temperature,
        "max_tokens": settings.max_tokens,
        "stream": False,
    }
    if seed is not None:
        payload["seed"] = int(seed)
    headers = {"Content-Type": "application/json", "User-Agent": "rsi_rl-proposer"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    req = urllib.request.Request(url, json.dumps(payload).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=max(timeout, 0.1)) as resp:  # noqa: S310
            raw = resp.read(16 << 20)
    except urllib.error.HTTPError as exc:
        raise ProposerFailure(f"{url} answered {_http_error(exc)}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise ProposerFailure(f"no answer from {url} within {settings.timeout:g}s") from None
        raise ProposerFailure(f"cannot reach {url}: {exc.reason}") from None
    except TimeoutError:
        raise ProposerFailure(f"no answer from {url} within {settings.timeout:g}s") from None
    except OSError as exc:
        raise ProposerFailure(f"cannot reach {url}: {exc}") from None
    try:
        body = json.loads(raw)
    except ValueError:
        raise ProposerFailure(f"{url} did not answer JSON: {_short(raw[:200])}") from None
    return _content(body)


def propose(
    request: dict[str, Any], settings: Settings, api_key: str | None = None
) -> dict[str, Any]:
    """Ask the model for an edit of the request's program; returns the proposal dict.

    Raises :class:`ProposerFailure` (or :class:`NoEdit` once every attempt's reply was
    refused).
    """
    messages = build_messages(request, settings)
    deadline = time.monotonic() + settings.timeout
    seed = request.get("seed")
    seed = int(seed) * 1009 + int(request.get("step") or 0) if isinstance(seed, int) else None
    failure: NoEdit | None = None
    for attempt in range(max(1, settings.attempts)):
        left = deadline - time.monotonic()
        if left <= 0:
            if failure is not None:
                raise failure
            raise ProposerFailure(f"no answer within {settings.timeout:g}s")
        reply, finish = chat(settings, messages, api_key, left, seed)
        if api_key and api_key in reply:
            raise ProposerFailure("the model's reply contains the API key; refused")
        try:
            proposal = extract_proposal(reply, request)
        except NoEdit as exc:
            cut = (
                " (the reply was cut at max_tokens; raise --max-tokens)"
                if finish == "length"
                else ""
            )
            failure = NoEdit(f"{exc}{cut}" + (f" (after {attempt + 1} replies)" if attempt else ""))
            messages = [
                *messages,
                {"role": "assistant", "content": reply},
                {
                    "role": "user",
                    "content": f"That reply cannot be used: {exc}. Reply again with ONE "
                    "```diff block that copies the context lines exactly.",
                },
            ]
            if seed is not None:
                seed += 1
            continue
        model = _short(settings.model, 40)
        proposal["description"] = _short(f"{model}: {proposal['description']}", 400)
        return proposal
    assert failure is not None
    raise failure


# ---------------------------------------------------------------------- command line
def _env(name: str, default: Any) -> Any:
    return os.environ.get(ENV_PREFIX + name, default)


def parse_settings(argv: list[str] | None = None) -> Settings:
    """:class:`Settings` from ``argv``, else the ``RSI_RL_LLM_*`` environment, else defaults."""
    doc = (__doc__ or "").splitlines()[0]
    parser = argparse.ArgumentParser(
        prog="python -m rsi_rl.proposers.openai_compatible", description=doc
    )
    parser.add_argument(
        "--base-url",
        default=_env("BASE_URL", DEFAULT_BASE_URL),
        help="endpoint root, e.g. http://127.0.0.1:8080/v1 (env RSI_RL_LLM_BASE_URL)",
    )
    parser.add_argument(
        "--model", default=_env("MODEL", DEFAULT_MODEL), help="model name (env RSI_RL_LLM_MODEL)"
    )
    parser.add_argument(
        "--api-key-env",
        default=DEFAULT_KEY_ENV,
        help="environment variable holding the API key (default OPENAI_API_KEY)",
    )
    parser.add_argument("--temperature", type=float, default=float(_env("TEMPERATURE", 0.7)))
    parser.add_argument("--max-tokens", type=int, default=int(_env("MAX_TOKENS", 2048)))
    parser.add_argument(
        "--timeout",
        type=float,
        default=float(_env("TIMEOUT", 240.0)),
        help="seconds for the whole proposal, all requests included",
    )
    parser.add_argument(
        "--attempts",
        type=int,
        default=2,
        help="requests in all: an unusable reply is answered with the reason",
    )
    parser.add_argument("--max-source-chars", type=int, default=60_000)
    args = parser.parse_args(argv)
    if args.timeout <= 0 or args.attempts < 1 or args.max_tokens < 1:
        parser.error("--timeout, --attempts and --max-tokens must be positive")
    return Settings(
        base_url=args.base_url,
        model=args.model,
        api_key_env=args.api_key_env,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        timeout=args.timeout,
        attempts=args.attempts,
        max_source_chars=args.max_source_chars,
    )


def _safe(message: str, api_key: str | None) -> str:
    """``message`` on one line, with the key and anything secret-looking redacted."""
    if api_key:
        message = message.replace(api_key, REDACTED)
    return " ".join(scrub(message).split())


def main(argv: list[str] | None = None) -> None:
    settings = parse_settings(argv)
    api_key = os.environ.get(settings.api_key_env) or None
    try:
        try:
            request = json.load(sys.stdin)
        except ValueError as exc:
            raise ProposerFailure(f"the request on stdin is not JSON ({exc})") from None
        if not isinstance(request, dict) or not isinstance(request.get("source"), dict):
            raise ProposerFailure("the request on stdin has no 'source' object")
        proposal = propose(request, settings, api_key)
    except ProposerFailure as exc:
        print(f"openai_compatible: {_safe(str(exc), api_key)}", file=sys.stderr)
        raise SystemExit(1) from None
    print(json.dumps(proposal))


if __name__ == "__main__":
    main()
