"""Check rsi_rl's GPU path on a machine with a GPU, in one go (a few minutes on one GPU).

    .venv/bin/python scripts/gpu_check.py             # every check
    .venv/bin/python scripts/gpu_check.py --quick     # check-task without its code edits
    .venv/bin/python scripts/gpu_check.py --out gpu_check.json
    .venv/bin/python scripts/gpu_check.py --devices cpu --quick   # rehearsal without a GPU

What it runs, each with ``sandbox.devices=cuda``:

1. ``probe/plain``, ``probe/hardened``: a program in the sandbox (torch preloaded in the
   fork server) multiplies two matrices on ``harness.device()``; the check needs exit 0,
   ``RSI_RL_DEVICE=cuda``, exactly one visible GPU, a fork server that never initialised
   CUDA, and in hardened mode the GPU device nodes exposed (the run's ``gpu_devices``).
2. ``check-task/plain``, ``check-task/hardened``: ``rsi-rl check-task task=char_lm``
   (baseline, repeatability, noise and, unless ``--quick``, every code edit trained once).
3. ``search/local``: ``rsi-rl search task=char_lm budget=4 agent=random
   agent.batch_size=2 executor=local executor.workers=2``; every experiment must be ``ok``.

Prints one line per check and a summary; exits 1 if a check failed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PROBE = """\
import json, os
import torch
from rsi_rl import harness
device = harness.device()
x = torch.ones(512, 512, device=device)
total = float((x @ x).sum().item())
print(json.dumps({
    "device": device,
    "visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
    "count": torch.cuda.device_count(),
    "name": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    "tensor_device": str(x.device),
    "ok": total == 512.0 ** 3,
}))
"""


def probe(hardened: bool, devices: str) -> tuple[bool, str]:
    """Run :data:`PROBE` in a sandbox with ``devices``; (passed, detail)."""
    from rsi_rl.exec.sandbox import Sandbox, SandboxLimits

    limits = SandboxLimits(timeout=120, devices=devices, hardened=hardened)
    with tempfile.TemporaryDirectory() as tmp, Sandbox(["numpy", "torch"], limits) as sb:
        (Path(tmp) / "probe.py").write_text(PROBE)
        res = sb.run(Path(tmp), "probe.py", 0)
        out = (Path(tmp) / "stdout.log").read_text()
        err = (Path(tmp) / "stderr.log").read_text()
    if res.exit_code != 0:
        return False, f"exit {res.exit_code} signal {res.signal}: {err.strip()[-300:]}"
    got = json.loads(out.strip().splitlines()[-1])
    nodes = str(res.enforced.get("gpu_devices", "-"))
    if devices == "cpu":  # the rehearsal: the same plumbing, no GPU
        expected = got["device"] == "cpu" and got["visible"] == "" and got["count"] == 0
    else:
        expected = (
            got["device"] == "cuda"
            and got["count"] == 1
            and got["tensor_device"].startswith("cuda")
            and (not hardened or nodes.startswith("exposed"))
        )
    passed = got["ok"] and expected and not any(sb.server_cuda.values())
    return passed, f"{got} fork server {sb.server_cuda}; gpu_devices: {nodes}"


def cli(args: list[str], timeout: float) -> tuple[int, str, float]:
    """Run ``rsi-rl <args>``; (exit status, output tail, seconds)."""
    t0 = time.monotonic()
    try:
        p = subprocess.run(
            [sys.executable, "-m", "rsi_rl.cli", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return p.returncode, (p.stdout + p.stderr)[-1500:], time.monotonic() - t0
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {timeout:.0f}s", time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="check-task without code edits")
    ap.add_argument("--out", type=Path, help="also write the report as JSON here")
    ap.add_argument("--timeout", type=float, default=240.0, help="seconds per command")
    ap.add_argument(
        "--devices",
        default="cuda",
        choices=("cuda", "cpu"),
        help="cpu: rehearse the same commands without a GPU (checks the plumbing only)",
    )
    opts = ap.parse_args()

    from rsi_rl.exec.devices import cuda_device_count

    report: list[dict[str, Any]] = []

    def record(name: str, passed: bool, detail: str, seconds: float) -> None:
        report.append({"check": name, "passed": passed, "seconds": seconds, "detail": detail})
        print(f"{'PASS' if passed else 'FAIL'}  {name:<20} {seconds:6.1f}s  {detail[:300]}")
        sys.stdout.flush()

    n = cuda_device_count()
    print(f"torch sees {n} GPU(s)")
    if n == 0 and opts.devices == "cuda":
        print("FAIL  no GPU: this check needs a machine where torch.cuda.device_count() > 0")
        return 1
    for hardened in (False, True):
        t0 = time.monotonic()
        try:
            passed, detail = probe(hardened, opts.devices)
        except Exception as exc:  # noqa: BLE001 - reported as a failed check
            passed, detail = False, f"{type(exc).__name__}: {exc}"
        record(
            f"probe/{'hardened' if hardened else 'plain'}", passed, detail, time.monotonic() - t0
        )
    edits = "run_edits=none" if opts.quick else "run_edits=code"
    for mode in ("plain", "hardened"):
        code, out, secs = cli(
            [
                "check-task",
                "task=char_lm",
                f"sandbox.devices={opts.devices}",
                f"sandbox.hardened={'true' if mode == 'hardened' else 'false'}",
                edits,
                "seeds=[0,1]",
            ],
            opts.timeout,
        )
        record(
            f"check-task/{mode}",
            code == 0,
            out.strip().splitlines()[-1] if out.strip() else "",
            secs,
        )
    with tempfile.TemporaryDirectory() as run_dir:
        code, out, secs = cli(
            [
                "search",
                "task=char_lm",
                "budget=4",
                "agent=random",
                "agent.batch_size=2",
                "executor=local",
                "executor.workers=2",
                f"sandbox.devices={opts.devices}",
                "test=false",
                f"hydra.run.dir={run_dir}",
            ],
            opts.timeout,
        )
        summary_path = Path(run_dir) / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    statuses = summary.get("statuses", {})
    passed = code == 0 and summary.get("experiments") == 4 and set(statuses) == {"ok"}
    detail = f"statuses {statuses}, best {summary.get('best_metric')}" if summary else out
    record("search/local", passed, detail, secs)
    failed = [r["check"] for r in report if not r["passed"]]
    print(
        f"{len(report) - len(failed)}/{len(report)} checks passed"
        + (f"; failed: {failed}" if failed else "")
    )
    if opts.out:
        opts.out.write_text(json.dumps(report, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
