"""scrub(): secrets out of program output, ordinary training logs untouched."""

from __future__ import annotations

import pytest

from rsi_rl.exec.redact import REDACTED, scrub

HEX40 = "0123456789abcdef0123456789abcdef01234567"


def test_secret_env_values_are_redacted_at_call_time(monkeypatch):
    monkeypatch.setenv("FAKE_SECRET_TOKEN", "tok-9f8e7d6c5b")
    monkeypatch.setenv("MY_db_Password", "hunter2hunter2")
    monkeypatch.setenv("HARMLESS_VALUE", "visible-value")
    monkeypatch.setenv("SHORT_KEY", "abc")  # too short to redact blindly
    text = "got tok-9f8e7d6c5b and hunter2hunter2 and visible-value and abc"
    assert scrub(text) == f"got {REDACTED} and {REDACTED} and visible-value and abc"
    monkeypatch.setenv("FAKE_SECRET_TOKEN", "rotated-value-1")
    assert scrub("now rotated-value-1") == f"now {REDACTED}"


def test_environ_dump_and_export_pairs():
    dump = f"PATH=/usr/bin\x00WANDB_API_KEY={HEX40}\x00HOME=/root\x00AWS_SECRET_ACCESS_KEY=wJalr/XUtnFEMI\x00"
    out = scrub(dump)
    assert HEX40 not in out and "wJalr" not in out
    assert "PATH=/usr/bin\x00" in out and "HOME=/root" in out
    assert scrub("export GH_AUTH=abcdef1234") == f"export GH_AUTH={REDACTED}"
    assert scrub('{"api_key": "abcdefghij"}') == f'{{"api_key": "{REDACTED}"}}'


@pytest.mark.parametrize(
    "token",
    [
        f"local-{HEX40}",
        "sk-proj-abcdefghijklmnopqrstuvwx",
        "ghp_" + "a1" * 18,
        "gho_" + "B2" * 18,
        "github_pat_" + "x" * 30,
        "AKIAABCDEFGHIJKLMNOP",
        "xoxb-123456789012-abcdef",
        "hf_" + "abcdefghij" * 3 + "abcd",
    ],
)
def test_token_formats(token):
    assert scrub(f"printed {token} here") == f"printed {REDACTED} here"


def test_wandb_key_bearer_and_netrc():
    assert HEX40 not in scrub(f"wandb: using api key {HEX40}")
    assert scrub("Authorization: Bearer eyJhbGciOi.abc") == f"Authorization: Bearer {REDACTED}"
    netrc = f"machine api.wandb.ai\n  login user\n  password {HEX40}\n"
    assert HEX40 not in scrub(netrc) and "login user" in scrub(netrc)


def test_training_output_is_untouched():
    log = (
        "step 100 | loss 0.3421 | val_acc 0.9123 | lr 1.0e-03\n"
        "max_tokens=512 n_tokens=1000000 tokenizer=sentencepiece author=someone\n"
        "Traceback (most recent call last):\n"
        '  File "/tmp/rsi_rl_scratch_ab12/exp00001_deadbeef_val/train.py", line 3\n'
        f"git commit {HEX40}\n"
        "keyboard interrupt ignored; task-specific risk-averse setting\n"
    )
    assert scrub(log) == log
    assert scrub("") == ""
