"""An offline example proposer: samples one of the task's patch files that applies.

    python -m rsi_rl.proposers.sample_patches [--patches DIR] [--config-move P]

It reads the proposer request (JSON) on stdin, lists ``<patches_dir>/*.diff`` (or
``--patches``), shuffles them with the request's seed, and prints the first one that
applies to the current source, as ``{"diff": ..., "description": ...}``. With probability
``--config-move`` it proposes a config move instead (one numeric knob doubled or halved,
within bounds), so a campaign can see both kinds of proposals. It exits 1 when nothing
applies.

It stands in for a code LLM: a real proposer reads the same request (source, config,
recent ledger rows) and prints a unified diff. Use it from Python::

    ResearchEnv("digits_mlp", proposer=[sys.executable, "-m", "rsi_rl.proposers.sample_patches"])

From the command line: ``rsi-rl search task=digits_mlp proposer=sample_patches``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

from rsi_rl.core.errors import RsiRlError
from rsi_rl.core.patching import apply_unified_diff, read_patch_file


def _config_move(request: dict[str, Any], rng: random.Random) -> dict[str, Any] | None:
    config = request.get("config") or {}
    moves = []
    for key, spec in (request.get("knobs") or {}).items():
        value = config.get(key)
        if spec.get("choices") or not isinstance(value, (int, float)) or value <= 0:
            continue
        for factor in (2.0, 0.5):
            new = value * factor
            new = round(new) if isinstance(value, int) else float(f"{new:.6g}")
            if spec["low"] <= new <= spec["high"] and new != value:
                moves.append({key: new})
    return rng.choice(moves) if moves else None


def propose(
    request: dict[str, Any], patches: Path | None = None, config_move: float = 0.0
) -> dict[str, Any]:
    """The proposal for ``request`` (a dict with ``diff`` or ``config``); raises LookupError."""
    rng = random.Random(int(request.get("seed", 0)) * 7919 + int(request.get("step", 0)))
    if config_move > 0 and rng.random() < config_move:
        move = _config_move(request, rng)
        if move:
            return {"config": move, "description": "sampled config move"}
    folder = patches or Path(request.get("patches_dir") or "patches")
    files = [read_patch_file(p) for p in sorted(folder.glob("*.diff"))] if folder.is_dir() else []
    rng.shuffle(files)
    source = request.get("source") or {}
    for pf in files:
        try:
            apply_unified_diff(source, pf.text)
        except RsiRlError:
            continue
        return {"diff": pf.text, "description": f"{pf.name}: {pf.description}"}
    raise LookupError(f"no patch file in {folder} applies to the current source")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patches", type=Path, default=None, help="folder of .diff files")
    parser.add_argument(
        "--config-move", type=float, default=0.0, help="probability of a config move"
    )
    args = parser.parse_args(argv)
    request = json.load(sys.stdin)
    try:
        print(json.dumps(propose(request, args.patches, args.config_move)))
    except LookupError as exc:
        print(f"sample_patches: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
