"""scripts/compare_fresh.py: paired tests of fresh-seed re-measurements across bench folders."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def cf(script):
    return script("compare_fresh")


def _write(folder: Path, agent: str, values: list[float | None], gz: bool = False) -> None:
    folder.mkdir(parents=True)
    lines = [
        json.dumps({"agent": agent, "instance": 100 + i, "seed": i, "final_fresh": v})
        for i, v in enumerate(values)
    ]
    text = "\n".join(lines) + "\n"
    if gz:
        with gzip.open(folder / "campaigns.jsonl.gz", "wt") as fh:
            fh.write(text)
    else:
        (folder / "campaigns.jsonl").write_text(text)


def test_pairs_by_instance_and_seed_across_folders(cf, tmp_path, capsys):
    base = [0.80 + 0.01 * i for i in range(12)]
    _write(tmp_path / "a", "tpe", base)
    _write(tmp_path / "b", "acq", [v + 0.02 for v in base[:11]] + [None], gz=True)
    data = cf.load([tmp_path / "a", tmp_path / "b"])
    assert len(data["tpe"]) == 12 and len(data["acq"]) == 11  # no re-measurement: left out
    (row,) = cf.compare(data, [("acq", "tpe")])
    assert row["n"] == 11 and row["wtl"] == (11, 0, 0)
    assert row["diff"] == pytest.approx(0.02) and row["p"] < 0.01 and row["p_holm"] == row["p"]
    (low,) = cf.compare(data, [("acq", "tpe")], maximize=False)  # lower is better: losses
    assert low["wtl"] == (0, 0, 11) and low["diff"] == pytest.approx(0.02)
    cf.main([str(tmp_path / "a"), str(tmp_path / "b"), "--compare", "acq:tpe"])
    assert "| acq vs tpe | 11 |" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="no re-measured campaigns of agent 'nope'"):
        cf.compare(data, [("nope", "tpe")])
