"""User edits: the unified-diff applier, task patch files, and ``rsi-rl try``."""

from __future__ import annotations

import json

import pytest

from rsi_rl.cli import main
from rsi_rl.core.edits import start_candidate
from rsi_rl.core.errors import EditError, PatchError
from rsi_rl.core.patching import (
    apply_unified_diff,
    parse_unified_diff,
    read_patch_file,
    task_patch_files,
)
from rsi_rl.testing import instant_experiments
from rsi_rl.try_edit import resolve_edit, try_edit

SRC = {"train.py": "a = 1\nb = 2\nc = 3\nd = 4\ne = 5\n"}


def test_applies_hunks_at_an_offset_and_several_files():
    diff = "--- a/train.py\n+++ b/train.py\n@@ -1,2 +1,2 @@\n c = 3\n-d = 4\n+d = 40\n"
    assert apply_unified_diff(SRC, diff)["train.py"] == "a = 1\nb = 2\nc = 3\nd = 40\ne = 5\n"
    two = (
        "--- a/train.py\n+++ b/train.py\n@@ -1,1 +1,2 @@\n a = 1\n+z = 0\n"
        "@@ -5 +6 @@\n-e = 5\n+e = 50\n"
    )
    assert apply_unified_diff(SRC, two)["train.py"] == "a = 1\nz = 0\nb = 2\nc = 3\nd = 4\ne = 50\n"


def test_a_hunk_that_does_not_match_names_its_first_lines():
    diff = "--- a/train.py\n+++ b/train.py\n@@ -2,2 +2,2 @@\n b = 2\n-c = 999\n+c = 4\n"
    with pytest.raises(
        PatchError, match=r"hunk does not match train.py: @@ -2,2 \+2,2 @@ \|  b = 2 \|  c = 999"
    ):
        apply_unified_diff(SRC, diff)
    with pytest.raises(PatchError, match="does not have"):
        apply_unified_diff(SRC, diff.replace("train.py", "model.py"))
    with pytest.raises(PatchError, match="no hunks"):
        parse_unified_diff("just text\n")


def test_no_newline_at_end_of_file():
    src = {"train.py": "x = 1"}
    diff = "--- a/train.py\n+++ b/train.py\n@@ -1 +1 @@\n-x = 1\n\\ No newline at end of file\n+x = 2\n"
    assert apply_unified_diff(src, diff)["train.py"] == "x = 2\n"


def test_task_patch_files_have_names_and_apply(digits):
    files = task_patch_files(digits.program_dir)
    assert len(files) >= 2
    names = {f.name for f in files}
    assert "adamw" in names and "label_smoothing" in names  # read from '# kind:' headers
    for pf in files:
        out = apply_unified_diff(digits.source(), pf.text)
        assert out != digits.source()
        compile(out["train.py"], pf.name, "exec")


def test_patch_file_name_from_header_or_file_name(tmp_path):
    p = tmp_path / "warmup.long.diff"
    body = "--- a/train.py\n+++ b/train.py\n@@ -1 +1 @@\n-a = 1\n+a = 2\n"
    p.write_text(body)
    assert read_patch_file(p).name == "warmup"
    p.write_text("# name: warmup_long\n# description: longer warmup\n" + body)
    assert (read_patch_file(p).name, read_patch_file(p).description) == (
        "warmup_long",
        "longer warmup",
    )
    p.write_text("# kind: warmup_old\n" + body)
    assert read_patch_file(p).name == "warmup_old"
    for header in ("name", "kind"):
        p.write_text(f"# {header}: not an id\n" + body)
        with pytest.raises(
            PatchError, match=f"name 'not an id' is not an identifier.*'# {header}:'"
        ):
            read_patch_file(p)


def test_resolve_edit_specs(digits, tmp_path):
    cand = start_candidate(digits, digits.make_instance(0).start_config)
    assert resolve_edit(digits, cand, "grad_clip")[1] == "grad_clip"
    assert resolve_edit(digits, cand, "silu")[1] == "activation_silu"
    child, name, desc = resolve_edit(digits, cand, "width_max")
    assert name == "width_max" and child.config["width"] == 1024 and desc.startswith("width ")
    replacement = tmp_path / "train.py"
    replacement.write_text("print('hi')\n")
    child, kind, _ = resolve_edit(digits, cand, str(replacement))
    assert kind == "replace" and child.source["train.py"] == "print('hi')\n"
    with pytest.raises(
        EditError, match="neither an edit of task 'digits_mlp' \\(lr_down, lr_up,"
    ) as e:
        resolve_edit(digits, cand, "no_such_edit")
    assert all(name in str(e.value) for name in [*digits.edit_names(), "adamw"])


def test_try_edit_runs_incumbent_and_child(tabular):
    rec = try_edit(tabular, "input_norm", instance=10_000, config={"steps": 25})
    assert rec["status"] == "ok" and rec["baseline_status"] == "ok"
    assert rec["kind"] == "input_norm" and rec["diff"].startswith("--- a/train.py")
    assert rec["delta"] == pytest.approx(rec["metric"] - rec["baseline_metric"])
    assert rec["enforced"]["wall_clock"].startswith("enforced")


def test_cli_try_prints_json(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with instant_experiments(lambda cand: 0.5 + 0.1 * ("grad_clip" in cand.toggles)) as runs:
        main(
            [
                "try",
                "task=tabular",
                "edit=grad_clip",
                "instance=10000",
                "+config.steps=25",
                "baseline=false",
            ]
        )
    out = capsys.readouterr().out
    rec = json.loads(out[out.index("{") :])
    assert rec["status"] == "ok" and rec["kind"] == "grad_clip" and rec["baseline_metric"] is None
    assert rec["metric"] == pytest.approx(0.6)
    ((cand, _, split),) = runs  # the child only, with the config override
    assert cand.toggles == {"grad_clip"} and cand.config["steps"] == 25 and split == "val"


def test_cli_try_bad_diff_fails_with_the_hunk(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.diff"
    bad.write_text("--- a/train.py\n+++ b/train.py\n@@ -1 +1 @@\n-nothing like this\n+x\n")
    with pytest.raises(SystemExit) as exc:
        main(["try", "task=digits_mlp", f"edit={bad}"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "rsi-rl: error:" in err and "nothing like this" in err and "Traceback" not in err


def test_cli_try_binary_edit_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "some.bin").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "some.diff").write_bytes(b"\xff\xfe" + bytes(range(256)))
    for name in ("some.bin", "some.diff"):
        with pytest.raises(SystemExit) as exc:
            main(["try", "task=tabular", f"edit={name}"])
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [
            f"rsi-rl: error: edit={name}: not a UTF-8 text file (binary?); give an edit name, "
            "a .diff/.patch, or a replacement program file in text"
        ]


def test_try_trains_on_the_evaluation_seed_of_search(tabular):
    """The same seed= gives the same baseline in ``rsi-rl try`` and in a search campaign
    (training is a formula whose value differs from seed to seed)."""
    from rsi_rl.core.seeds import evaluation_seed
    from rsi_rl.env import ResearchEnv

    with instant_experiments(lambda cand: 0.5, noise=0.1) as runs:
        env = ResearchEnv(task=tabular, budget=1, instances=[10_000])
        try:
            env.reset(seed=3, options={"instance": 10_000})
            search_baseline = env.log[0]
        finally:
            env.close()
        rec = try_edit(tabular, "grad_clip", instance=10_000, seed=3)
        other = try_edit(tabular, "grad_clip", instance=10_000, seed=4)
    assert rec["seed"] == search_baseline["seed"] == evaluation_seed(3)
    assert rec["campaign_seed"] == 3
    assert rec["baseline_metric"] == search_baseline["metric"]
    assert other["baseline_metric"] != rec["baseline_metric"]  # the seed matters
    assert {seed for _, seed, _ in runs} == {evaluation_seed(3), evaluation_seed(4)}
