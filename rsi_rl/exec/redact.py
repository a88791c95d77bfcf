"""Secret scrubbing: a second line of defence for text that came from an untrusted program.

The sandbox scrubs the program's environment and the runner refuses links out of the
scratch directory; still, whatever text ends up in a record (a log tail, a message) passes
through :func:`scrub` first, which replaces with ``[REDACTED]``:

- the values of this process's environment variables whose names look secret (they
  contain KEY, TOKEN, SECRET, PASSWORD, PASSWD, CREDENTIAL or AUTH, in any case; values
  of at least 6 characters that are not plain numbers), read at call time;
- ``NAME=value`` (or ``NAME: value``) pairs whose NAME looks secret, as in a
  ``/proc/self/environ`` dump (NUL-separated), a shell ``export`` or a config dump;
- well-known token formats: W&B API keys (40 hex digits near "wandb", or ``local-``
  keys), ``sk-...``, GitHub (``ghp_``, ``gho_``, ..., ``github_pat_``), AWS access key
  ids, Slack (``xox?-``), Hugging Face (``hf_``), ``Bearer`` tokens, netrc passwords and
  PEM private keys.

Ordinary training output (numbers, losses, paths, ``max_tokens=512``) is left alone.
"""

from __future__ import annotations

import functools
import os
import re

REDACTED = "[REDACTED]"
#: words that make an environment variable's name look secret (matched case-insensitively)
SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH")
MIN_VALUE_LENGTH = 6

_NUMBER = re.compile(r"[+-]?[0-9][0-9_.,eE+-]*")
# a name segment (split on _ - .) that ends in a secret word: API_KEY, GH-TOKEN, oauth,
# AUTH; not max_tokens, author or keyboard
_SECRET_SEGMENT = r"[A-Za-z0-9]*(?:key|token|secret|secrets|password|passwd|pwd|credentials?|auth)"
_NAME = r"[A-Za-z_][A-Za-z0-9_.-]*"
_PAIR = re.compile(
    rf"""(?ix)
    (?<![A-Za-z0-9_.-])
    (?P<name>(?:{_NAME}[_.-])?{_SECRET_SEGMENT})   # the name ends in a secret segment
    (?P<sep>["']?\s*[=:]\s*["']?)                  # = or :, optionally quoted
    (?P<value>[^\s\x00"',;]{{{MIN_VALUE_LENGTH},}})
    """
)
_TOKENS = re.compile(
    r"""(?x)
    (?<![A-Za-z0-9])(?:
        local-[0-9a-f]{40}                                  # W&B local server key
      | sk-[A-Za-z0-9_-]{20,}                               # OpenAI-style
      | gh[pousr]_[A-Za-z0-9]{30,}                          # GitHub tokens
      | github_pat_[A-Za-z0-9_]{22,}
      | (?:AKIA|ASIA)[0-9A-Z]{16}                           # AWS access key id
      | xox[baprs]-[A-Za-z0-9-]{10,}                        # Slack
      | hf_[A-Za-z0-9]{30,}                                 # Hugging Face
    )(?![A-Za-z0-9])
    """
)
# 40 hex digits with "wandb" earlier on the same line (netrc, settings, a printed key)
_WANDB_HEX = re.compile(r"(?i)(wandb[^\n\x00]{0,200}?)(?<![0-9a-f])[0-9a-f]{40}(?![0-9a-f])")
_BEARER = re.compile(r"(?i)(\bBearer\s+)[A-Za-z0-9._~+/=-]{8,}")
_NETRC = re.compile(r"(?i)(\bpassword\s+)\S{6,}")
_PEM = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S
)


def looks_secret(name: str) -> bool:
    """Whether an environment variable's ``name`` contains one of :data:`SECRET_WORDS`."""
    upper = name.upper()
    return any(word in upper for word in SECRET_WORDS)


def _secret_values() -> tuple[str, ...]:
    """Values of this process's secret-looking environment variables, longest first."""
    values = {
        value
        for name, value in os.environ.items()
        if len(value) >= MIN_VALUE_LENGTH and looks_secret(name) and not _NUMBER.fullmatch(value)
    }
    return tuple(sorted(values, key=lambda v: (-len(v), v)))


@functools.lru_cache(maxsize=8)
def _values_pattern(values: tuple[str, ...]) -> re.Pattern[str] | None:
    return re.compile("|".join(map(re.escape, values))) if values else None


def _pair(m: re.Match[str]) -> str:
    return m.group("name") + m.group("sep") + REDACTED


def scrub(text: str) -> str:
    """``text`` with secrets replaced by ``[REDACTED]`` (see the module docstring)."""
    if not text:
        return text
    pattern = _values_pattern(_secret_values())
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    text = _PEM.sub(REDACTED, text)
    text = _PAIR.sub(_pair, text)
    text = _TOKENS.sub(REDACTED, text)
    text = _WANDB_HEX.sub(lambda m: m.group(1) + REDACTED, text)
    text = _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
    return _NETRC.sub(lambda m: m.group(1) + REDACTED, text)
