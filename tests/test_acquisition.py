"""The acquisition agent: its points and features, its pool, its scorers, and campaigns.

Campaigns run on the in-process ``synth_smooth`` landscape (no sandbox), so every
experiment is a formula and the tests are fast.
"""

from __future__ import annotations

import numpy as np
import pytest

from rsi_rl.agents.acquisition import GP_EI, AcquisitionAgent, Scorer
from rsi_rl.agents.acquisition_features import (
    FEATURES,
    Encoding,
    expected_improvement,
    features,
    pool,
)
from rsi_rl.core.errors import ConfigError

optuna = pytest.importorskip("optuna")


@pytest.fixture
def enc() -> Encoding:
    from optuna.distributions import CategoricalDistribution, IntDistribution

    return Encoding.of(
        {
            "lr": IntDistribution(0, 4),
            "act": CategoricalDistribution(["relu", "gelu", "tanh"]),
            "clip": CategoricalDistribution([False, True]),
        }
    )


def test_points_and_distances(enc):
    assert enc.index({"lr": 3, "act": "tanh", "clip": True}) == (3, 2, 1)
    assert enc.params((3, 2, 1)) == {"lr": 3, "act": "tanh", "clip": True}
    pts = enc.points(np.array([(0, 0, 0), (4, 0, 0), (2, 1, 1)]))
    assert pts[1, 0] == 1.0 and pts[2, 0] == 0.5
    d = enc.distances(pts, pts)
    assert np.allclose(np.diag(d), 0) and np.allclose(d, d.T)
    assert d[0, 1] == pytest.approx(1 / 3)  # the whole lattice on one of three parameters
    assert d[0, 2] == pytest.approx((0.5 + 1 + 1) / 3)  # categorical: 0 or 1 whatever the option


def test_pool_holds_every_edit_and_nothing_run(enc):
    rng = np.random.default_rng(0)
    inc = (2, 0, 0)
    run = {inc, (3, 0, 0)}
    cands, sources = pool(enc, inc, run, rng, n_uniform=30, n_local=10)
    assert not set(cands) & run and len(set(cands)) == len(cands)
    edits = {c for c, s in zip(cands, sources, strict=True) if s == "edit"}
    assert edits == {(1, 0, 0), (2, 1, 0), (2, 2, 0), (2, 0, 1)}  # (3, 0, 0) already ran
    assert set(sources) <= {"edit", "local", "uniform"}
    everything = {(a, b, c) for a in range(5) for b in range(3) for c in range(2)}
    assert pool(enc, inc, everything, rng)[0] == []  # a spent space


def test_features_read_the_campaign(enc):
    run = [(0, 0, 0), (4, 0, 0), (2, 1, 1)]
    values = [0.0, 1.0, 0.5]
    cands = [(4, 0, 1), (0, 0, 1), (3, 0, 0)]
    x = features(enc, cands, ["edit", "local", "uniform"], run, values, (4, 0, 0), 0.25)
    assert x.shape == (3, len(FEATURES)) and np.isfinite(x).all()
    col = {name: x[:, i] for i, name in enumerate(FEATURES)}
    # next to the best run point the model expects more than next to the worst
    assert col["gp_mean_short"][0] > col["gp_mean_short"][1]
    assert col["gp_ei_short"][0] > col["gp_ei_short"][1]
    assert (col["gp_ei_long"] >= 0).all() and (col["gp_sd_short"] > 0).all()
    assert col["dist_incumbent"][0] == pytest.approx(1 / 3)
    assert col["budget_used"].tolist() == [0.25] * 3
    assert col["from_edit"].tolist() == [1, 0, 0] and col["from_uniform"].tolist() == [0, 0, 1]
    assert col["rank_ei"].max() == 1.0 and col["rank_ei"].min() == 0.0
    assert col["dist_start"] == pytest.approx([2 / 3, 1 / 3, 0.25])
    assert col["edge_share"].tolist() == [1.0, 1.0, 0.0]  # lr at a lattice end, or not
    assert col["categorical_share"] == pytest.approx([2 / 3] * 3)  # act and clip of three
    assert (col["gp_sd_fit"] > 0).all() and np.ptp(col["fit_scale"]) == 0
    # one run point (the start alone): no spread to standardise, still finite
    x1 = features(enc, cands, ["edit"] * 3, run[:1], values[:1], run[0], 0.0)
    assert np.isfinite(x1).all()


def test_expected_improvement():
    ei = expected_improvement(np.array([0.0, 1.0, 0.0]), np.array([1.0, 1.0, 1e-9]), 0.0)
    assert ei[0] == pytest.approx(0.3989, abs=1e-3)  # sd * phi(0)
    assert ei[1] > ei[0] and ei[2] == pytest.approx(0.0, abs=1e-6)


def test_scorer_files(tmp_path):
    x = np.random.default_rng(0).normal(size=(5, len(FEATURES)))
    assert np.array_equal(Scorer(GP_EI)(x), x[:, FEATURES.index("gp_ei_short")])
    d, h = len(FEATURES), 4
    rng = np.random.default_rng(1)
    arrays = {
        "w0": rng.normal(size=(d, h)),
        "b0": np.zeros(h),
        "w1": rng.normal(size=(h, h)),
        "b1": np.zeros(h),
        "w2": rng.normal(size=(h, 1)),
        "b2": np.array([0.5]),
    }
    good = tmp_path / "s.npz"
    np.savez(good, mean=np.zeros(d), std=np.ones(d), features=np.asarray(FEATURES), **arrays)
    out = Scorer(good)(x)

    def relu(a):
        return np.maximum(a, 0.0)

    want = relu(relu(x @ arrays["w0"]) @ arrays["w1"]) @ arrays["w2"] + 0.5
    assert np.allclose(out, want[:, 0])
    other = tmp_path / "other.npz"
    np.savez(other, mean=np.zeros(d), std=np.ones(d), features=np.asarray(["a"] * d), **arrays)
    with pytest.raises(ConfigError, match="trained on other features"):
        Scorer(other)
    with pytest.raises(ConfigError, match="is not a file; give gp_ei"):
        Scorer(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="cannot be read"):
        Scorer(tmp_path / "bad.npz")


def test_shipped_scorers_match_these_features():
    """`make demo`, conf/agent/acquisition.yaml and the headline use the shipped scorers:
    a feature change without retraining them fails this test, not the demo."""
    from pathlib import Path

    shipped = sorted(
        (Path(__file__).resolve().parents[1] / "policies" / "acquisition").glob("*.npz")
    )
    assert {p.stem for p in shipped} >= {"acquisition", "lofo_hpobench", "lofo_nb201"}
    x = np.random.default_rng(0).normal(size=(7, len(FEATURES)))
    for path in shipped:
        assert np.isfinite(Scorer(path)(x)).all() and Scorer(path)(x).shape == (7,)


@pytest.fixture(scope="module")
def smooth_env():
    from rsi_rl.builder import make_env
    from rsi_rl.core.registry import make_task

    env = make_env(make_task("synth_smooth"), 12, [10_000, 10_001], {"executor": "serial"})
    yield env
    env.close()


def test_campaign_never_repeats_a_candidate(smooth_env):
    from rsi_rl.search import run_campaign

    trace: list[dict] = []
    agent = AcquisitionAgent(seed=0, trace=trace)
    run_campaign(smooth_env, agent, seed=0, instance=10_000, test=False)
    records = [r for r in smooth_env.log if r.get("kind") == "acquisition"]
    assert len(records) == 12 and len(trace) == 12
    hashes = [r["candidate"] for r in records]
    assert len(set(hashes)) == len(hashes)
    assert len(agent.points) == 13 and len(set(agent.points)) == 13  # the start and 12 runs
    assert all(t["x"].shape[1] == len(FEATURES) for t in trace)
    # the same seed, the same campaign
    again = AcquisitionAgent(seed=0)
    run_campaign(smooth_env, again, seed=0, instance=10_000, test=False)
    assert again.points == agent.points


def test_explore_and_bad_settings(smooth_env):
    from rsi_rl.agents import make_agent
    from rsi_rl.search import run_campaign

    with pytest.raises(ConfigError, match="agent.explore"):
        AcquisitionAgent(explore=2.0)
    assert isinstance(make_agent("acquisition", seed=0), AcquisitionAgent)
    wild = AcquisitionAgent(seed=0, explore=1.0)
    run_campaign(smooth_env, wild, seed=0, instance=10_001, test=False)
    tame = AcquisitionAgent(seed=0)
    run_campaign(smooth_env, tame, seed=0, instance=10_001, test=False)
    assert wild.points != tame.points


@pytest.fixture(scope="module")
def train_script(script):
    return script("train_acquisition")


def _toy_rows(n_steps: int, rows: int, seed: int) -> dict[str, np.ndarray]:
    """Experiments of ``rows`` candidates whose target is positive only for the one with
    the largest first feature (the rest: noise), every fifth experiment with no gain."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_steps * rows, len(FEATURES))).astype(np.float32)
    y = np.zeros(n_steps * rows, np.float32)
    step = np.repeat(np.arange(n_steps), rows).astype(np.int32)
    for s in range(n_steps):
        if s % 5:
            block = slice(s * rows, (s + 1) * rows)
            y[block][x[block, 0].argmax()] = 0.5
    return {"x": x, "y": y, "step": step, "campaign": step // 10}


def test_listwise_groups_experiments_and_learns_which_to_run(train_script):
    import torch

    part = _toy_rows(1000, 8, 0)
    mean, std = part["x"].mean(axis=0), part["x"].std(axis=0)
    x, y, mask, w = train_script._grouped([part], mean, std)
    assert x.shape == (800, 8, len(FEATURES)) and bool(mask.all())  # no-gain steps left out
    assert torch.allclose(w, torch.ones(800)) and bool((y.max(dim=1).values == 0.5).all())
    model = train_script._train((x, y, mask, w), "listwise", 16, 30, 0)
    test = _toy_rows(50, 8, 1)
    with torch.no_grad():
        score = model(torch.from_numpy((test["x"] - mean) / std))[:, 0].numpy()
    picked = [test["y"][s * 8 + score[s * 8 : (s + 1) * 8].argmax()] for s in range(1, 50) if s % 5]
    assert np.mean(np.asarray(picked) > 0) > 0.7  # a random pick: 1 in 8


def test_picks_by_stage_reads_collected_rows(train_script, tmp_path, monkeypatch):
    rows = _toy_rows(40, 8, 2)  # 4 campaigns of 10 experiments
    rows["x"][:, FEATURES.index("gp_ei_short")] = rows["x"][:, 0]  # gp_ei sees the gain
    np.savez(tmp_path / "nb201.npz", **rows)
    monkeypatch.setattr(train_script, "DATA", tmp_path)
    out = train_script.picks_by_stage("nb201", GP_EI).splitlines()
    # campaigns of 10 experiments: no line for experiments 11-20
    assert [line.split(":")[0] for line in out] == ["nb201 k 1-2", "nb201 k 3-5", "nb201 k 6-10"]
    # experiments 3-5 all have one gain of 0.5, on the candidate gp_ei rates highest
    assert "model 0.5000, gp_ei 0.5000, random 0.0625, best 0.5000" in out[1]


def test_collect_keeps_both_targets_and_fit_reads_either(train_script, tmp_path, monkeypatch):
    monkeypatch.setattr(train_script, "DATA", tmp_path)
    path = train_script.collect("synth_smooth", 3, 8, 0.3, GP_EI, 10, 0)
    data = np.load(path)
    y, y_keep = data["y"], data["y_keep"]
    assert len(y) == len(y_keep) == len(data["x"]) == 3 * 8 * 10
    assert (y >= 0).all() and (y_keep >= -1).all() and (y_keep <= 1).all()
    # a kept gain is the gain; the keep rule turns some gains away
    assert np.array_equal(y_keep[y_keep > 0], y[y_keep > 0])
    assert 0 < (y_keep > 0).sum() < (y > 0).sum()
    assert np.array_equal(train_script.load("synth_smooth", None, "keep")["y"], y_keep)
    assert "y_keep" not in train_script.load("synth_smooth", None)
    np.savez(tmp_path / "nb201.npz", x=data["x"], y=y, step=data["step"])
    with pytest.raises(SystemExit, match="collect it again"):
        train_script.load("nb201", None, "keep")


def test_keep_target_reproduces_the_campaigns_keep_decisions(train_script, smooth_env):
    from rsi_rl.search import run_campaign

    trace: list[dict] = []
    agent = AcquisitionAgent(seed=3, explore=0.5, trace=trace)
    run_campaign(smooth_env, agent, seed=3, instance=10_001, test=False)
    task, inst = smooth_env.task, smooth_env.instance
    score = train_script._eval_of(task, inst, agent, smooth_env.eval_seed)
    records = [r for r in smooth_env.log if r.get("kind") == "acquisition"]
    assert len(records) == len(trace) == 12
    kept = []
    for step, record in zip(trace, records, strict=True):
        bar = task.score(step["incumbent_metric"]) + smooth_env.keep_threshold * step["noise"]
        kept.append(score(step["points"][step["pick"]]) > bar)
        assert kept[-1] == bool(record["kept"])
    assert any(kept) and not all(kept)


def test_finetune_round_trips_a_scorer_and_takes_a_gradient_step(script, tmp_path):
    from pathlib import Path

    ft = script("finetune_acquisition")
    start = (
        Path(__file__).resolve().parents[1] / "policies" / "acquisition" / "lofo_synth_rugged.npz"
    )
    model, mean, std = ft.load_model(start)
    copy = tmp_path / "copy.npz"
    ft.save_scorer(model, mean, std, copy)
    x = np.random.default_rng(0).normal(size=(5, len(FEATURES)))
    assert np.allclose(Scorer(start)(x), Scorer(copy)(x), atol=1e-5)  # same ratings
    out = tmp_path / "tuned.npz"
    argv = ["--exclude", "synth_rugged", "--scorer", str(start), "--out", str(out)]
    ft.main([*argv, "--iterations", "1", "--per-family", "1", "--budget", "4", "--lr", "1e-2"])
    assert not np.allclose(Scorer(start)(x), Scorer(out)(x))  # one step moved the weights


def test_acquisition_val_arms_read_one_scorer_or_the_held_out_one(script, tmp_path):
    """scripts/acquisition_val.py: ``acq`` reads ``lofo_<family>.npz`` from the scorer
    folder unless one ``scorer`` file is given for every family; ``gp`` is Optuna's
    Gaussian-process sampler, left out of the default arms (it is the slow one)."""
    from rsi_rl.core.errors import ConfigError

    av = script("acquisition_val")
    with pytest.raises(ConfigError, match="lofo_nb201.npz"):
        av.make_arm("acq", 0, "nb201", tmp_path)
    agent = av.make_arm("acq", 0, "nb201", tmp_path, scorer="gp_ei")
    assert agent.scorer.path == "gp_ei"
    assert av.make_arm("gp", 3, "nb201", tmp_path).name == "gp"
    # the unlearned arm ignores a scorer file meant for acq
    assert av.make_arm("gp_ei", 0, "nb201", tmp_path, scorer="x.npz").scorer.path == "gp_ei"
