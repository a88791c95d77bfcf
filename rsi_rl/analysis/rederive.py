"""Re-derive a bench's headline from its committed records and yardstick alone.

::

    python -m rsi_rl.analysis.rederive runs/bench/2026-12-02/10-00-00_synth_smooth
    python -m rsi_rl.analysis.rederive <bench dir> --check   # exit 1 if bench.json differs

Reads ``protocol.json``, ``records.jsonl.gz`` and ``yardstick.json`` of the bench folder
(nothing else: no campaign runs, no task is built), recomputes every headline number
(regret at each endpoint, AUC, the declared paired tests, Holm's correction, resolvable
effects) with the same function ``rsi-rl bench`` used, prints the Markdown table, and
compares the numbers with the folder's ``bench.json`` when it has one.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rsi_rl.analysis.headline import PROTOCOL, RECORDS, Headline, Protocol, headline, read_records
from rsi_rl.analysis.yardstick import YARDSTICK_JSON, read_yardstick
from rsi_rl.core.errors import ConfigError


def rederive(folder: str | Path) -> Headline:
    """The headline of bench folder ``folder`` from its protocol, records and yardstick."""
    folder = Path(folder)
    missing = [n for n in (PROTOCOL, RECORDS, YARDSTICK_JSON) if not (folder / n).is_file()]
    if missing:
        raise ConfigError(
            f"{folder} lacks {', '.join(missing)}; pass the run directory of an rsi-rl bench "
            "that ran with a yardstick"
        )
    protocol = Protocol.from_dict(json.loads((folder / PROTOCOL).read_text()))
    return headline(
        read_records(folder / RECORDS), read_yardstick(folder / YARDSTICK_JSON), protocol
    )


def differences(a: Any, b: Any, path: str = "", tol: float = 1e-12) -> list[str]:
    """Where two JSON values differ (numbers within ``tol`` relative are equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}/{k}: only in one" for k in sorted(set(a) ^ set(b), key=str)]
        for k in sorted(set(a) & set(b), key=str):
            out += differences(a[k], b[k], f"{path}/{k}", tol)
        return out
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        if len(a) != len(b):
            return [f"{path}: lengths {len(a)} and {len(b)}"]
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in differences(x, y, f"{path}/{i}", tol)
        ]
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        fa, fb = float(a), float(b)
        if (math.isnan(fa) and math.isnan(fb)) or math.isclose(fa, fb, rel_tol=tol, abs_tol=tol):
            return []
    elif a == b:
        return []
    return [f"{path}: {a!r} != {b!r}"]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rsi_rl.analysis.rederive <bench dir> [--check]``."""
    from rsi_rl.analysis.tables import format_headline

    ap = argparse.ArgumentParser(prog="python -m rsi_rl.analysis.rederive", description=__doc__)
    ap.add_argument("folder", help="a bench run directory")
    ap.add_argument("--check", action="store_true", help="exit 1 when bench.json differs")
    args = ap.parse_args(argv)
    try:
        h = rederive(args.folder)
    except ConfigError as exc:
        print(f"rederive: error: {exc}", file=sys.stderr)
        return 2
    print(format_headline(h))
    bench_json = Path(args.folder) / "bench.json"
    if not bench_json.is_file():
        print("\n(no bench.json to compare with)")
        return 0
    stored = json.loads(bench_json.read_text()).get("headline")
    fresh = json.loads(json.dumps(h.to_dict()))  # the same JSON round trip as bench.json's
    diffs = differences(stored, fresh) if stored is not None else ["bench.json has no headline"]
    if diffs:
        print(f"\nbench.json differs in {len(diffs)} place(s):", *diffs[:20], sep="\n  ")
        return 1 if args.check else 0
    print("\nevery headline number matches bench.json")
    return 0


__all__ = ["differences", "main", "rederive"]

if __name__ == "__main__":
    raise SystemExit(main())
