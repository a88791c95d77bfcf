"""The OpenAI-compatible proposer against a local fake chat-completions server.

The fake server (``http.server`` in a thread on 127.0.0.1, a random port) records each
request and answers with canned completions; nothing leaves the machine and nothing
trains (``instant_experiments``).
"""

from __future__ import annotations

import difflib
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from rsi_rl.actions import PROPOSE
from rsi_rl.core.edits import start_candidate
from rsi_rl.core.patching import apply_unified_diff
from rsi_rl.env import ResearchEnv
from rsi_rl.proposer import Proposer, ProposerError
from rsi_rl.proposers import openai_compatible as oc
from rsi_rl.proposers.diff_extract import NoEdit, extract_proposal
from rsi_rl.proposers.prompt import build_messages
from rsi_rl.store.ledger import read_ledger
from rsi_rl.testing import instant_experiments

#: an API key in no well-known token format, under a name the redactor does not know: only
#: the proposer's own care keeps it out of every output
KEY = "zq7-local-cred-3f9a1c5be27d"
KEY_ENV = "LLM_PROXY_CRED"
MODULE = [sys.executable, "-m", "rsi_rl.proposers.openai_compatible"]
OLD, NEW = "loss_fn = nn.CrossEntropyLoss()", "loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)"


def smoothing_diff(source: str, context: int = 3) -> str:
    """A real diff of digits_mlp's train.py: label smoothing on the loss."""
    assert OLD in source
    new = source.replace(OLD, NEW)
    return "".join(
        difflib.unified_diff(
            source.splitlines(True), new.splitlines(True), "a/train.py", "b/train.py", n=context
        )
    )


def completion(content: str, finish: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish,
            }
        ],
    }


class FakeServer:
    """A chat-completions endpoint: ``replies`` answer the requests in turn (the last
    repeats); each is a reply text, or ``(status, body)`` for an HTTP error, or a number
    of seconds to sleep before answering."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.replies: list[Any] = ["no reply configured"]
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                reply = server.replies[min(len(server.requests), len(server.replies)) - 1]
                status, payload = 200, None
                if isinstance(reply, (int, float)):
                    time.sleep(reply)
                    reply = "late"
                if isinstance(reply, tuple):
                    status, payload = reply
                else:
                    payload = completion(reply)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[FakeServer]:
    s = FakeServer()
    yield s
    s.close()


@pytest.fixture
def with_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)


def llm(server: FakeServer, *extra: str) -> list[str]:
    return [
        *MODULE,
        "--base-url",
        server.url,
        "--model",
        "test-coder",
        "--api-key-env",
        KEY_ENV,
        *extra,
    ]


@pytest.fixture(scope="module")
def cand(digits):
    return start_candidate(digits, digits.make_instance(0).start_config)


@pytest.fixture(scope="module")
def request_doc(digits, cand) -> dict[str, Any]:
    history = [
        {"step": 1, "kind": "lr_up", "description": "lr x2", "status": "ok", "metric": 0.93,
         "kept": True, "message": "", "diff": ""},
        {"step": 2, "kind": "propose", "description": "proposal: wider", "status": "crash",
         "metric": None, "kept": False, "message": "program ended", "diff": "--- a/train.py\n+++ b/train.py\n"},
    ]  # fmt: skip
    return Proposer(MODULE).request(digits, cand, history, seed=3, step=3, incumbent_metric=0.93)


# ---------------------------------------------------------------------- the prompt and reply
def test_prompt_holds_the_request(request_doc):
    system, user = build_messages(request_doc)
    text = user["content"]
    assert system["role"] == "system" and "unified diff" in system["content"]
    assert OLD in text and "val_acc" in text and "maximize" in text
    assert "lr (learning_rate): log range [1e-05, 0.3]" in text
    assert "0.93" in text and "step 1: lr_up -> ok, metric 0.93, kept" in text
    assert "step 2: propose -> crash" in text and "program ended" in text


def test_reply_forms_are_read(request_doc):
    source = request_doc["source"]["train.py"]
    diff = smoothing_diff(source)
    fenced = f"Label smoothing regularises the logits.\n\n```diff\n{diff}```\n"
    raw = f"Label smoothing.\n{diff}"
    as_json = json.dumps({"diff": diff, "description": "smooth labels", "config": {"lr": 0.002}})
    with_config = fenced + '\n```json\n{"config": {"epochs": 40}}\n```\n'
    thinking = "<think>maybe --- a/x\n+++ b/x\n@@ -1 +1 @@ nonsense</think>\n" + fenced
    for reply in (fenced, raw, as_json, with_config, thinking):
        out = extract_proposal(reply, request_doc)
        assert (
            out["diff"]
            and NEW in apply_unified_diff(request_doc["source"], out["diff"])["train.py"]
        )
    assert extract_proposal(fenced, request_doc)["description"].startswith("Label smoothing")
    assert extract_proposal(as_json, request_doc)["config"] == {"lr": 0.002}
    assert extract_proposal(with_config, request_doc)["config"] == {"epochs": 40}
    config_only = extract_proposal('{"config": {"lr": 0.01}}', request_doc)
    assert config_only == {"config": {"lr": 0.01}, "description": ""}


def test_miscounted_hunks_are_recounted(request_doc):
    diff = smoothing_diff(request_doc["source"]["train.py"])
    header = next(line for line in diff.splitlines() if line.startswith("@@"))
    broken = diff.replace(header, "@@ -1,2 +1,9 @@")  # the body is right, the counts are not
    out = extract_proposal(f"```diff\n{broken}```", request_doc)
    assert NEW in apply_unified_diff(request_doc["source"], out["diff"])["train.py"]


@pytest.mark.parametrize(
    ("reply", "needle"),
    [
        ("I would raise the learning rate a bit.", "holds no unified diff"),
        ("```diff\n--- a/model.py\n+++ b/model.py\n@@ -1 +1 @@\n-a\n+b\n```", "does not have"),
        (
            "```diff\n--- a/train.py\n+++ b/train.py\n@@ -1 +1 @@\n-nope\n+yes\n```",
            "does not apply",
        ),
        ('{"config": {"lr": 5.0}}', "outside [1e-05, 0.3]"),
        ('{"config": {"eval_labels": 1}}', "not a knob"),
    ],
)
def test_unusable_replies_say_why(request_doc, reply, needle):
    with pytest.raises(NoEdit, match=re.escape(needle)):
        extract_proposal(reply, request_doc)


# ---------------------------------------------------------------------- end to end
def test_proposer_returns_the_models_diff(server, with_key, digits, cand):
    diff = smoothing_diff(cand.source["train.py"])
    server.replies = [f"Smooth the labels to regularise.\n```diff\n{diff}```"]
    proposer = Proposer(llm(server, "--temperature", "0.2"), timeout=30, env_keys=[KEY_ENV])
    request = proposer.request(digits, cand, [], seed=5, incumbent_metric=0.9)
    child, description, seconds = proposer.propose(digits, cand, request)
    assert NEW in child.source["train.py"] and child.parent == cand.hash and seconds > 0
    assert description.startswith("proposal: test-coder: Smooth the labels")
    (req,) = server.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["Authorization"] == f"Bearer {KEY}"
    body = req["body"]
    assert body["model"] == "test-coder" and body["temperature"] == 0.2 and body["stream"] is False
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert OLD in body["messages"][1]["content"]
    assert KEY not in json.dumps(body)  # the key travels in the header only


def _propose(proposer, task, cand):
    """The proposer's edit of ``cand`` with an empty history, seed 1."""
    return proposer.propose(task, cand, proposer.request(task, cand, [], seed=1))


def test_no_key_no_authorization_header(server, monkeypatch, digits, cand):
    monkeypatch.delenv(KEY_ENV, raising=False)
    server.replies = [f"```diff\n{smoothing_diff(cand.source['train.py'])}```"]
    _propose(Proposer(llm(server), timeout=30, env_keys=[KEY_ENV]), digits, cand)
    assert "Authorization" not in server.requests[0]["headers"]


def test_a_reply_without_a_diff_is_asked_again_then_refused(server, with_key, digits, cand):
    server.replies = ["Try a bigger model.", "Still no diff, sorry."]
    proposer = Proposer(llm(server), timeout=30, env_keys=[KEY_ENV])
    with pytest.raises(ProposerError, match="holds no unified diff.*after 2 replies"):
        _propose(proposer, digits, cand)
    assert len(server.requests) == 2
    follow_up = server.requests[1]["body"]["messages"]
    assert follow_up[-2] == {"role": "assistant", "content": "Try a bigger model."}
    assert "cannot be used" in follow_up[-1]["content"]
    # a repaired second reply is used
    server.requests.clear()
    server.replies = ["no diff here", f"```diff\n{smoothing_diff(cand.source['train.py'])}```"]
    child, _, _ = _propose(proposer, digits, cand)
    assert NEW in child.source["train.py"] and len(server.requests) == 2


def test_errors_are_one_line_and_never_show_the_key(
    server, with_key, request_doc, monkeypatch, capsys
):
    leak = {"error": {"message": f"invalid api key {KEY} (header: Bearer {KEY})"}}
    diff = smoothing_diff(request_doc["source"]["train.py"])
    cases: list[tuple[Any, list[str], str]] = [
        ((401, leak), [], "HTTP 401"),
        ((500, {"error": "overloaded"}), [], "HTTP 500"),
        (3.0, ["--timeout", "0.5"], "within 0.5s"),
        ((200, {"object": "error"}), [], "no 'choices'"),
        (f"Here is the key: {KEY}\n```diff\n{diff}```", [], "contains the API key"),
    ]
    for reply, extra, needle in cases:
        server.replies = [reply]
        monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(request_doc)))
        with pytest.raises(SystemExit) as exit_:
            oc.main(llm(server, "--attempts", "1", *extra)[3:])
        out, err = capsys.readouterr()
        assert exit_.value.code == 1 and out == "" and len(err.strip().splitlines()) == 1, err
        assert needle in err and err.startswith("openai_compatible: ") and KEY not in err
    # the same through the command line, as the proposer runs it
    server.replies = [(401, leak)]
    proc = subprocess.run(
        llm(server),
        input=json.dumps(request_doc),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, KEY_ENV: KEY},
    )
    assert proc.returncode == 1 and "HTTP 401" in proc.stderr
    assert KEY not in proc.stderr + proc.stdout
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(request_doc)))
    with pytest.raises(SystemExit):
        oc.main(["--base-url", "http://127.0.0.1:9/v1", "--api-key-env", KEY_ENV])
    assert "cannot reach http://127.0.0.1:9/v1/chat/completions" in capsys.readouterr().err


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("RSI_RL_LLM_BASE_URL", "http://localhost:11434/v1/")
    monkeypatch.setenv("RSI_RL_LLM_MODEL", "qwen2.5-coder:7b")
    monkeypatch.setenv("RSI_RL_LLM_MAX_TOKENS", "999")
    s = oc.parse_settings([])
    assert s.url == "http://localhost:11434/v1/chat/completions"
    assert (s.model, s.max_tokens, s.api_key_env) == ("qwen2.5-coder:7b", 999, "OPENAI_API_KEY")
    assert oc.parse_settings(["--model", "m"]).model == "m"  # arguments win


def test_env_campaign_records_the_llms_edit(server, with_key, tmp_path):
    """A campaign's ``propose`` step asks the model, trains its edit (instantly here) and
    keeps it; the ledger records the diff and the model, and never the key."""
    score: Callable[[Any], float] = lambda c: 0.9 if NEW in c.source["train.py"] else 0.5  # noqa: E731
    with instant_experiments(score):
        env = ResearchEnv(
            "digits_mlp",
            budget=4,
            instances=0,
            run_dir=tmp_path / "run",
            proposer={"command": llm(server), "timeout": 30, "env_keys": [KEY_ENV]},
        )
        try:
            env.reset(seed=0)
            source = env.task.source()["train.py"]
            server.replies = [f"Label smoothing.\n```diff\n{smoothing_diff(source)}```"]
            assert env.action_masks()[PROPOSE]
            _, reward, _, _, info = env.step(PROPOSE)
            exp = info["experiment"]
            assert exp["kind"] == "propose" and exp["status"] == "ok" and exp["kept"], exp
            assert NEW in exp["diff"] and exp["description"].startswith("proposal: test-coder:")
            assert reward > 0
            server.replies = ["no idea"]  # the next ask sees the kept edit in its history
            _, _, _, _, info = env.step(PROPOSE)
            assert info["experiment"]["status"] == "invalid"
            assert "holds no unified diff" in info["experiment"]["message"]
            prompt = server.requests[1]["body"]["messages"][1]["content"]
            assert "propose -> ok, metric 0.9, kept" in prompt
            assert "label_smoothing=0.05" in prompt  # the incumbent's source
        finally:
            env.close()
    rows = read_ledger(tmp_path / "run")
    assert [r["kind"] for r in rows][-2:] == ["propose", "propose"]
    dump = json.dumps(rows, default=str) + (tmp_path / "run" / "results.tsv").read_text()
    assert KEY not in dump


def test_the_shipped_config_makes_this_proposer():
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from rsi_rl.cli import conf_dir
    from rsi_rl.proposer import make_proposer

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            cfg = compose(config_name="search", overrides=["proposer=openai_compatible"])
    finally:
        GlobalHydra.instance().clear()
    proposer = make_proposer(cfg.proposer)
    assert proposer is not None and proposer.argv == MODULE
    assert {"OPENAI_API_KEY", "RSI_RL_LLM_BASE_URL", "RSI_RL_LLM_MODEL"} <= set(proposer.env_keys)
    assert proposer.timeout > oc.Settings().timeout  # the command outlives its own requests
