"""A code-LLM proposer for any OpenAI-compatible chat-completions endpoint.

    python -m rsi_rl.proposers.openai_compatible [--base-url URL] [--model NAME]
        [--api-key-env NAME] [--temperature T] [--max-tokens N] [--timeout S] [--attempts K]

It reads the proposer request (JSON, see :mod:`rsi_rl.proposer`) on stdin, asks the model
for ONE edit of the training program (a unified diff and/or config changes, with a short
rationale), extracts the diff from the reply (a fenced ```` ```diff ```` block, a raw diff
or a JSON object), checks that it is a unified diff of the program's own files that
applies, and prints ``{"diff": ..., "config": ..., "description": ...}``. When the reply
holds no usable edit it asks again, with the reason, up to ``--attempts`` requests in all.
This module is the HTTP client and the command line; the prompt is built by
:mod:`rsi_rl.proposers.prompt` and the reply read by :mod:`rsi_rl.proposers.diff_extract`.

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

from rsi_rl.exec.redact import REDACTED, scrub
from rsi_rl.proposers.diff_extract import NoEdit, ProposerFailure, extract_proposal
from rsi_rl.proposers.prompt import MAX_SOURCE_CHARS, build_messages, short

#: prefix of the environment variables that hold the settings (``RSI_RL_LLM_BASE_URL``, ...)
ENV_PREFIX = "RSI_RL_LLM_"
DEFAULT_BASE_URL = "http://127.0.0.1:8080/v1"
#: llama.cpp's server answers any model name; Ollama and hosted APIs need a real one
DEFAULT_MODEL = "default"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"


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
    max_source_chars: int = MAX_SOURCE_CHARS

    @property
    def url(self) -> str:
        base = self.base_url.rstrip("/")
        return base if base.endswith("/chat/completions") else base + "/chat/completions"


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
    return f"HTTP {exc.code} {exc.reason}: {short(detail, 200)}".rstrip(": ")


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
        raise ProposerFailure(f"{url} did not answer JSON: {short(raw[:200])}") from None
    return _content(body)


def propose(
    request: dict[str, Any], settings: Settings, api_key: str | None = None
) -> dict[str, Any]:
    """Ask the model for an edit of the request's program; returns the proposal dict.

    Raises :class:`ProposerFailure` (or :class:`NoEdit` once every attempt's reply was
    refused).
    """
    messages = build_messages(request, settings.max_source_chars)
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
        model = short(settings.model, 40)
        proposal["description"] = short(f"{model}: {proposal['description']}", 400)
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
    parser.add_argument("--max-source-chars", type=int, default=MAX_SOURCE_CHARS)
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


__all__ = ["Settings", "chat", "main", "parse_settings", "propose"]

if __name__ == "__main__":
    main()
