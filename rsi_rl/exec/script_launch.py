"""Runs a script task's program inside the sandbox (the child side of a script task).

A script task's entry file is a two-line stub that calls :func:`main` with the task's
launch spec (script, flags, seed and split flags, config file, launcher). :func:`main`
builds the command line from the experiment's config, runs the script in-process
(``runpy``, warm) or as a subprocess, captures its output and submits the tail of it to the
trusted parent, which parses the metric (:meth:`rsi_rl.core.script_task.ScriptTask.parse_metric`).
"""

from __future__ import annotations

import json
import os
import re
import runpy
import subprocess
import sys
import threading
from typing import IO, Any

import numpy as np

from rsi_rl import harness

#: bytes of output (the tail) submitted to the parent
CAPTURE_BYTES = 1 << 20
#: the longest output line searched for a report (a longer one is skipped)
REPORT_LINE = 4096


class _Capture:
    """The program's output, kept (thread-safe) while it is also written through.

    With a ``report`` regex (groups ``step`` and ``value``, optionally ``total``), every
    whole output line it matches becomes a :func:`rsi_rl.harness.report`.
    """

    def __init__(self, report: str | None = None) -> None:
        self.parts: list[str] = []
        self.lock = threading.Lock()
        self.report = re.compile(report) if report else None
        self.line = ""

    def keep(self, text: str) -> None:
        with self.lock:
            self.parts.append(text)
            if self.report is not None:
                self._report(text)

    def _report(self, text: str) -> None:
        *lines, rest = (self.line + text).split("\n")
        self.line = rest if len(rest) <= REPORT_LINE else ""
        for line in lines:
            match = self.report.search(line[:REPORT_LINE]) if self.report else None
            if match is None:
                continue
            total = match.groupdict().get("total")
            try:
                harness.report(
                    int(match.group("step")),
                    float(match.group("value")),
                    None if total is None else int(total),
                )
            except (ValueError, OverflowError, OSError):
                continue  # not a number, or the report file refused: the script goes on

    def tail(self) -> bytes:
        return "".join(self.parts).encode("utf-8", errors="replace")[-CAPTURE_BYTES:]


class _Tee:
    def __init__(self, stream: IO[str], capture: _Capture):
        self.stream, self.capture = stream, capture

    def write(self, text: str) -> int:
        self.capture.keep(text)
        return self.stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def _pump(pipe: IO[bytes], stream: IO[str], capture: _Capture) -> None:
    for raw in iter(pipe.readline, b""):
        text = raw.decode(errors="replace")
        capture.keep(text)
        stream.write(text)
        stream.flush()


def command_line(
    spec: dict[str, Any], cfg: dict[str, Any], seed: int, split: str, device: str = "cpu"
) -> list[str]:
    """The script's arguments for one experiment: fixed args (``{script_dir}`` and
    ``{device}``, ``cuda`` or ``cpu``, expanded), flags, seed and split."""
    argv = [
        a.replace("{script_dir}", spec["script_dir"]).replace("{device}", device)
        for a in spec["args"]
    ]
    for key, flag in spec["flags"].items():
        value = cfg[key]
        if isinstance(value, bool):
            if value:
                argv.append(flag)
        elif flag.endswith("="):
            argv.append(flag + str(value))
        else:
            argv += [flag, str(value)]
    if spec["seed_flag"]:
        argv += [spec["seed_flag"], str(seed)]
    if spec["split_flag"]:
        argv += [spec["split_flag"], split]
    return argv


def _write_config(path: str, cfg: dict[str, Any]) -> None:
    with open(path, "w") as fh:
        if path.endswith((".yaml", ".yml")):
            import yaml

            yaml.safe_dump(cfg, fh)
        else:
            json.dump(cfg, fh)


def _run_subprocess(command: list[str], capture: _Capture) -> int:
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    threads = [
        threading.Thread(target=_pump, args=(proc.stdout, sys.stdout, capture)),
        threading.Thread(target=_pump, args=(proc.stderr, sys.stderr, capture)),
    ]
    for t in threads:
        t.start()
    code = proc.wait()
    for t in threads:
        t.join()
    return code


def _run_in_process(script: str, argv: list[str], capture: _Capture) -> int:
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Tee(out, capture), _Tee(err, capture)  # type: ignore[assignment]
    sys.argv = [script, *argv]
    sys.path.insert(0, os.path.dirname(script))
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = out, err
    return 0


def main(spec: dict[str, Any]) -> None:
    """Run the script of ``spec`` for this experiment and submit its output's tail."""
    cfg = harness.config()
    split = str(harness.data()["split"])
    script = os.path.abspath(spec["script"])
    argv = command_line(spec, cfg, harness.seed(), split, harness.device())
    if spec["config_file"]:
        _write_config(spec["config_file"], cfg)
    capture = _Capture(spec.get("report_regex"))
    if spec["launcher"] == "subprocess":
        command = [
            c.replace("{python}", sys.executable).replace("{script}", script)
            for c in spec["command"]
        ]
        code = _run_subprocess(command + argv, capture)
    else:
        code = _run_in_process(script, argv, capture)
    if code:
        sys.exit(code)
    harness.submit(np.frombuffer(capture.tail(), dtype=np.uint8))


__all__ = ["CAPTURE_BYTES", "command_line", "main"]
