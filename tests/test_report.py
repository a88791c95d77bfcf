"""``rsi-rl report``: the HTML page and PNGs from a real run, and a look in a headless browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from rsi_rl.analysis.folders import unordered_pairs
from rsi_rl.analysis.report import render_report
from rsi_rl.analysis.runs import load_run
from rsi_rl.analysis.stats import regret_band
from rsi_rl.analysis.tables import kind_table
from rsi_rl.core.errors import ConfigError


def fake_run(path: Path) -> Path:
    """A small ledger written through :class:`Ledger` (no training): 2 kept, 1 reverted, 1 crash."""
    from rsi_rl.store.ledger import Ledger

    led = Ledger(path, task="tabular", metric="val_acc")
    base = {"campaign": 1, "instance": "tabular/10000", "split": "val", "seed": 7, "seconds": 0.5,
            "config": {"lr": 0.001, "width": 32}, "diff": "", "reward": 0.0}  # fmt: skip
    steps = [
        ("baseline", "start config", None, "c0", "ok", 0.60, True, 0.60),
        ("lr_up", "lr 0.001 -> 0.002", "c0", "c1", "ok", 0.70, True, 0.70),
        ("width_up", "width 32 -> 64", "c1", "c2", "ok", 0.65, False, 0.70),
        ("residual", "+residual: skip connections", "c1", "c3", "crash", None, False, 0.70),
        ("depth_up", "depth 1 -> 2", "c1", "c4", "ok", 0.75, True, 0.75),
    ]
    for i, (kind, desc, parent, cand, status, metric, kept, inc) in enumerate(steps):
        diff = (
            "--- a/train.py\n+++ b/train.py\n@@ -1 +1 @@\n-old\n+new\n"
            if kind == "residual"
            else ""
        )
        led.append({**base, "step": i, "kind": kind, "description": desc, "parent": parent, "candidate": cand,
                    "status": status, "metric": metric, "kept": kept, "incumbent_metric": inc,
                    "best_metric": inc, "diff": diff, "message": "boom" if status == "crash" else ""})  # fmt: skip
    led.append(
        {
            **base,
            "step": 4,
            "kind": "test",
            "split": "test",
            "candidate": "c4",
            "status": "ok",
            "metric": 0.72,
        }
    )
    led.close()
    summary = {"task": "tabular", "agent": "greedy", "metric": "val_acc", "direction": "maximize",
               "start_metric": 0.6, "best_metric": 0.75, "test_metric": 0.72, "best_candidate": "c4",
               "instance": "tabular/10000", "self_reported": False}  # fmt: skip
    (path / "summary.json").write_text(json.dumps(summary))
    (path / "best").mkdir()
    (path / "best" / "config_changes.json").write_text(
        json.dumps({"lr": [0.001, 0.002], "depth": [1, 2]})
    )
    (path / "best" / "diff.patch").write_text(
        "--- a/train.py\n+++ b/train.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n"
    )
    return path


@pytest.fixture(scope="module")
def fake_dir(tmp_path_factory):
    return fake_run(tmp_path_factory.mktemp("fake_run"))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A real campaign: greedy on tabular, 8 experiments, best/ and summary.json written."""
    from rsi_rl.agents import GreedyAgent
    from rsi_rl.env import ResearchEnv
    from rsi_rl.search import run_campaign, save_best

    path = tmp_path_factory.mktemp("report_run")
    env = ResearchEnv(task="tabular", budget=8, instances=[10_000], run_dir=path)
    try:
        summary = run_campaign(env, GreedyAgent(seed=0), seed=0, instance=10_000)
        summary["run_dir"] = str(path)
        save_best(env, path, summary)
    finally:
        env.close()
    return path


def test_report_page_and_plots(fake_dir, tmp_path):
    page = render_report(fake_dir, out=tmp_path / "rep")
    assert page == tmp_path / "rep" / "index.html"
    for png in ("progress.png", "lineage.png", "kinds.png"):
        assert (tmp_path / "rep" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = page.read_text()
    for value in ("0.6000", "0.7500", "0.7200", "+0.1500"):  # start, best, test, gain
        assert value in text
    for heading in (
        "Best so far",
        "Lineage of candidates",
        "Edit kinds",
        "From start to best",
        "Experiments",
    ):
        assert f"<h2>{heading}</h2>" in text
    assert text.count('src="data:image/png;base64,') == 3  # self-contained
    assert (
        not re.search(r"<(script|link)\b", text)
        and "http://" not in text
        and "https://" not in text
    )
    tree = text[
        text.index('<ul class="tree">') : text.index("</details>", text.index('<ul class="tree">'))
    ]
    assert [m for m in re.findall(r'<span class="b (\w+)">', tree)] == [
        "start",
        "kept",
        "reverted",
        "failed",
        "kept",
    ]
    assert "<td>lr</td><td>0.001</td><td>0.002</td>" in text  # config change start -> best
    assert '<span class="a">+x = 2</span>' in text  # the code diff, coloured


def test_report_without_embedding_links_the_pngs(fake_dir, tmp_path):
    page = render_report(fake_dir, out=tmp_path / "rep", embed=False)
    text = page.read_text()
    assert 'src="progress.png"' in text and "base64" not in text


def test_kind_table_mean_effect_and_success(fake_dir):
    table = {r.kind: r for r in kind_table(load_run(fake_dir))}
    assert table["lr_up"].mean_effect == pytest.approx(0.10) and table["lr_up"].success_rate == 1.0
    assert table["width_up"].mean_effect == pytest.approx(-0.05) and table["width_up"].kept == 0
    assert table["residual"].failed == 1 and table["residual"].mean_effect is None
    assert table["depth_up"].mean_effect == pytest.approx(0.05)
    assert list(table)[0] in ("lr_up", "depth_up")  # sorted by success, then effect


def test_report_of_a_bench_folder_as_bench_writes_it(tmp_path, tabular):
    """A folder written by ``bench`` itself (campaigns train a formula): the page shows its
    setup, each agent's numbers from bench.json, the pair once and the regret curves."""
    from rsi_rl.analysis.bench import bench
    from rsi_rl.analysis.report.html import fmt
    from rsi_rl.testing import instant_experiments

    def landscape(cand):
        return 0.5 + 0.05 * len(cand.toggles) - 0.01 * cand.config["depth"]

    with instant_experiments(landscape, noise=0.01):
        bench(tabular, ["greedy", "random"], tmp_path, budget=3, seeds=2, instances=1, plots=False)
    data = json.loads((tmp_path / "bench.json").read_text())
    text = render_report(tmp_path).read_text()
    assert "<h2>Agents compared (bench)</h2>" in text and "budget: <b>3</b>" in text
    for name, entry in data["agents"].items():
        assert f"<td>{name}</td>" in text
        assert f">{fmt(entry['regret_mean'])}<" in text and f">{fmt(entry['auc_mean'])}<" in text
    assert "greedy vs random" in text and "random vs greedy" not in text
    assert "<h3>normalised regret vs experiments</h3>" in text


def fake_bench(path: Path) -> Path:
    """A bench folder: bench.json with both directions of a pair, campaigns.jsonl, a wide table."""
    path.mkdir(parents=True, exist_ok=True)
    agents = {
        name: {"campaigns": 3, "errors": 0, "regret_mean": reg, "regret_ci95": [max(0, reg - 0.1), reg + 0.1],
               "regret_median": reg, "gap_mean": 0.01, "gap_ci95": [0.0, 0.02], "auc_mean": reg + 0.1,
               "auc_ci95": [reg, reg + 0.2], "best_mean": 0.8, "start_mean": 0.6, "test_mean": 0.79,
               "seconds_mean": 12.5, "regret_fresh_mean": reg, "regret_fresh_ci95": [0.0, 0.3],
               "final_fresh_mean": 0.78, "experiments_to_reference_median": 4.0,
               "experiments_to_reference_censored_median": 6.0, "reached_reference": 0.67,
               "cotra": {"adequacy": 1.0, "parity": 0.67, "supremacy": 0.33},
               "gap_in_noise_sd_median": 0.4, "gap_in_noise_sd_mean": 0.5}
        for name, reg in (("policy_bundle_tpe", 0.02), ("random_search_long_name", 0.3))
    }  # fmt: skip
    test = {"wins": 2, "ties": 1, "losses": 0, "p_value": 0.18, "n": 3}
    paired = {
        "policy_bundle_tpe_vs_random_search_long_name": {**test, "auc": dict(test)},
        "random_search_long_name_vs_policy_bundle_tpe": {**test, "wins": 0, "losses": 2, "auc": dict(test)},
    }  # fmt: skip
    bench = {
        "agents": agents, "paired": paired, "best_known": {"1": 0.8, "2": 0.9},
        "headroom": {"1": 0.2, "2": 0.3}, "noise_sd": {"1": 0.01, "2": 0.02}, "noise_regret_median": 0.06,
        "setup": {"task": "tabular", "metric": "val_acc", "direction": "maximize", "budget": 4,
                  "seeds": 3, "agents": list(agents)},
    }  # fmt: skip
    (path / "bench.json").write_text(json.dumps(bench))
    rows = []
    for agent, curves in (
        ("policy_bundle_tpe", [[0.8, 0.8], [0.75, 0.9], [0.8, 0.8]]),  # regret near 0
        ("random_search_long_name", [[0.7, 0.7], [0.7, 0.75], [0.62, 0.7]]),
    ):
        for i, c in enumerate(curves):
            rows.append({"agent": agent, "instance": 1 + i % 2, "seed": i, "start": 0.6 if i % 2 == 0 else 0.6,
                         "best": max(c), "curve": c, "seconds": [1.0, 2.0]})  # fmt: skip
    (path / "campaigns.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_bench_report_lists_each_pair_once_and_draws_regret_in_range(tmp_path):
    assert list(unordered_pairs({"a_vs_b": 1, "b_vs_a": 2, "a_vs_c": 3, "other": 4})) == [
        "a_vs_b", "a_vs_c", "other",
    ]  # fmt: skip
    page = render_report(fake_bench(tmp_path / "bench"))
    text = page.read_text()
    assert "policy_bundle_tpe vs random_search_long_name" in text
    assert "random_search_long_name vs policy_bundle_tpe" not in text
    assert text.count("<h3>paired tests (each pair once)</h3>") == 1
    assert "<h3>normalised regret vs experiments</h3>" in text
    assert (page.parent / "bench_regret.png").read_bytes()[:4] == b"\x89PNG"
    assert '<div class="tw"><table>' in text  # wide tables scroll inside their box
    assert "direction: <b>maximize</b>" in text
    # a mean near 0 with spread: the normal band would dip below 0
    mean, low, high = regret_band([[0.0, 0.0], [0.3, 0.0], [0.0, 0.0]])
    assert mean[0] == pytest.approx(0.1) and low.min() == 0.0 and high.max() <= 1.0


def test_direction_comes_from_the_ledger_meta_then_summary(tmp_path):
    from rsi_rl.store.ledger import Ledger

    led = Ledger(tmp_path / "a", task="plugin_task_gone", metric="neg_loss")  # name says minimize
    led.set_meta("direction", "maximize")
    led.close()
    assert load_run(tmp_path / "a").direction == "maximize"
    led = Ledger(tmp_path / "b", task="plugin_task_gone", metric="neg_loss")
    led.close()
    (tmp_path / "b" / "summary.json").write_text(json.dumps({"direction": "maximize"}))
    assert load_run(tmp_path / "b").direction == "maximize"
    led = Ledger(tmp_path / "c", task="plugin_task_gone", metric="neg_loss")
    led.close()
    assert load_run(tmp_path / "c").direction == "minimize"  # last resort: the name


def fake_sweep(path: Path) -> Path:
    """A multirun folder as `rsi-rl search -m agent=random,greedy` writes it."""
    for num, agent in enumerate(("random", "greedy")):
        job = path / f"{num}_{agent}_seed0"
        job.mkdir(parents=True)
        fake_run(job)
        (job / ".hydra").mkdir()
        (job / ".hydra" / "overrides.yaml").write_text(
            f"- task=tabular\n- agent={agent}\n- budget=4\n"
        )
    (path / "multirun.yaml").write_text("hydra: {}\n")
    return path


def test_report_of_a_multirun_folder_compares_its_jobs(tmp_path):
    sweep = fake_sweep(tmp_path / "sweep")
    page = render_report(sweep)
    assert page == sweep / "report" / "index.html"
    text = page.read_text()
    assert "<h2>Jobs</h2>" in text and "task=tabular agent=random budget=4" in text
    assert "agent=greedy" in text and text.count("<tr>") == 3  # header + 2 jobs
    for job in ("0_random_seed0", "1_greedy_seed0"):
        assert f'href="../{job}/report/index.html"' in text
        assert (sweep / job / "report" / "index.html").is_file()
    assert "0.7500" in text and "0.7200" in text  # best and test of the jobs
    assert (sweep / "report" / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert text.count('src="data:image/png;base64,') == 1


def test_report_user_errors(tmp_path, fake_dir):
    with pytest.raises(ConfigError, match="does not exist"):
        render_report(tmp_path / "nope")
    with pytest.raises(ConfigError, match="has no ledger.sqlite"):
        render_report(tmp_path)
    with pytest.raises(ConfigError, match="campaign=9 is not in the ledger"):
        render_report(fake_dir, out=tmp_path / "r", campaign=9)


def test_cli_report_takes_the_run_dir_as_argument(fake_dir, tmp_path, monkeypatch, capsys):
    from rsi_rl.cli import main

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "cli report"
    main(["report", str(fake_dir), f"out={out}"])
    assert capsys.readouterr().out.startswith("report: ") and (out / "index.html").is_file()
    assert not (tmp_path / "outputs").exists() and not (tmp_path / ".hydra").exists()
    with pytest.raises(SystemExit) as exc:
        main(["report", str(tmp_path / "missing")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("rsi-rl: error: run directory")
    assert len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------- headless browser
def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


def browse(page: Path, shot: Path, profile: Path, width: int = 1280) -> str:
    """Load ``page`` in headless Chromium, save a screenshot; returns its log (console lines)."""
    exe = chromium()
    assert exe is not None
    cmd = [
        exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
        f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=1", f"--window-size={width},2000",
        f"--screenshot={shot}", page.resolve().as_uri(),
    ]  # fmt: skip
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stderr + p.stdout


def console_errors(log: str) -> list[str]:
    return [ln for ln in log.splitlines() if ":CONSOLE" in ln]


@pytest.mark.slow
@pytest.mark.skipif(
    chromium() is None, reason="Chromium is not installed (apt-get install chromium; .ci/run does)"
)
def test_report_renders_in_a_headless_browser(run_dir, tmp_path):
    import matplotlib.image as mpimg

    # the check can see console errors at all: a page with one
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<html><body><script>console.error('planted'); missingFn();</script></body></html>"
    )
    log = browse(bad, tmp_path / "bad.png", tmp_path / "profile0")
    assert any("planted" in ln for ln in console_errors(log)), "the console check sees nothing"

    page = render_report(run_dir, out=tmp_path / "rep")
    shot = tmp_path / "report.png"
    log = browse(page, shot, tmp_path / "profile1")
    assert console_errors(log) == []
    img = mpimg.imread(shot)
    assert img.shape[0] == 2000 and img.shape[1] == 1280
    assert float(img[..., :3].std()) > 0.05  # not a blank page: plots, tables and text drew
    # the top of the page is the header with the metric cards, not an error page
    dom = subprocess.run(
        [chromium() or "", "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'p2'}",
         "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert "rsi_rl report: tabular" in dom.stdout and dom.stdout.count("<img") >= 3


PROBE = (
    "<script>window.addEventListener('load', () => {const p = document.createElement('pre');"
    "p.id = 'probe'; p.textContent = 'PROBE ' + document.documentElement.scrollWidth + ' '"
    " + window.innerWidth; document.body.appendChild(p);});</script>"
)


def page_widths(page: Path, profile: Path, width: int = 1400) -> tuple[int, int]:
    """``(scrollWidth of the page, window width)`` of ``page`` in headless Chromium."""
    probe = page.with_name(page.stem + "_probe.html")  # beside it: relative links still work
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    cmd = [
        chromium() or "", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
        "--no-first-run", "--disable-background-networking", f"--user-data-dir={profile}",
        f"--window-size={width},1000", "--virtual-time-budget=5000", "--dump-dom",
        probe.resolve().as_uri(),
    ]  # fmt: skip
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    probe.unlink()
    m = re.search(r"PROBE (\d+) (\d+)", p.stdout)
    assert m, p.stderr[-2000:]
    return int(m.group(1)), int(m.group(2))


@pytest.mark.slow
@pytest.mark.skipif(
    chromium() is None, reason="Chromium is not installed (apt-get install chromium; .ci/run does)"
)
def test_run_bench_and_multirun_pages_fit_1400px_in_a_headless_browser(fake_dir, tmp_path):
    import matplotlib.image as mpimg

    # the probe sees overflow at all: a page wider than the window
    wide = tmp_path / "wide.html"
    wide.write_text("<html><body><div style='width:3000px'>x</div></body></html>")
    scroll, window = page_widths(wide, tmp_path / "p0")
    assert window == 1400 and scroll > window
    pages = {
        "run": lambda: render_report(fake_dir, out=tmp_path / "run_report"),
        "bench": lambda: render_report(fake_bench(tmp_path / "bench")),
        "multirun": lambda: render_report(fake_sweep(tmp_path / "sweep")),
    }
    for i, (name, make) in enumerate(pages.items()):
        page = make()
        scroll, window = page_widths(page, tmp_path / f"p{i + 1}")
        assert scroll <= window, f"the {name} page overflows: {scroll} px > {window} px"
        shot = tmp_path / f"{name}.png"
        log = browse(page, shot, tmp_path / f"s{i + 1}", width=1400)
        assert console_errors(log) == []
        img = mpimg.imread(shot)
        assert img.shape[1] == 1400 and float(img[..., :3].std()) > 0.05  # something drew


def test_refused_run_counts_as_failed_and_masked_action_does_not(tmp_path):
    """An ``invalid`` row with a seed ran and was refused (tampered scratch files): a failed
    experiment. One without a seed is a masked action that never ran: not a failure."""
    from rsi_rl.analysis.report.run_page import tree_html
    from rsi_rl.store.ledger import Ledger

    path = tmp_path / "run"
    path.mkdir()
    led = Ledger(path, task="tabular", metric="val_acc")
    base = {"campaign": 1, "instance": "tabular/10000", "split": "val", "seconds": 0.5,
            "config": {"lr": 0.001}, "diff": "", "reward": 0.0, "best_metric": 0.6,
            "incumbent_metric": 0.6, "kept": False, "metric": None}  # fmt: skip
    led.append({**base, "step": 0, "kind": "baseline", "parent": None, "candidate": "c0",
                "status": "ok", "metric": 0.6, "kept": True, "seed": 7})  # fmt: skip
    led.append({**base, "step": 1, "kind": "lr_up", "parent": "c0", "candidate": "c1",
                "status": "invalid", "seed": 7, "description": "tampered",
                "message": "refused the run's scratch files"})  # fmt: skip
    led.append({**base, "step": 2, "kind": "width_up", "parent": "c0", "candidate": "c0",
                "status": "invalid", "seed": None, "description": "masked",
                "message": "edit 'width_up' is not valid"})  # fmt: skip
    led.close()
    data = load_run(path)
    table = {r.kind: r for r in kind_table(data)}
    assert table["lr_up"].failed == 1  # refused run: failed
    assert table["width_up"].failed == 0 and table["width_up"].tries == 1  # masked
    tree = tree_html(data, 1)
    assert "lr_up" in tree and "width_up" not in tree
