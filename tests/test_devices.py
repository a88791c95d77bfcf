"""Devices: ``sandbox.devices``, each run's GPU and device variables, the fork server that
never initialises CUDA, GPU device nodes in hardened mode, one GPU per executor worker.

This machine has no GPU: the GPU path is checked with a faked GPU count and fake device
nodes (regular files); ``scripts/gpu_check.py`` checks it on a real GPU.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rsi_rl import harness
from rsi_rl.core.edits import Candidate
from rsi_rl.core.errors import ConfigError, SandboxError
from rsi_rl.exec import devices
from rsi_rl.exec.devices import device_env, resolve_devices, visible_device
from rsi_rl.exec.executor import LocalExecutor
from rsi_rl.exec.ray_pool import _ray_gpus
from rsi_rl.exec.runner import Runner
from rsi_rl.exec.sandbox import Sandbox, SandboxLimits
from rsi_rl.exec.script_launch import command_line

PROGRAM = """\
import json, os
import numpy as np
from rsi_rl import harness
print(json.dumps({k: os.environ.get(k) for k in ("CUDA_VISIBLE_DEVICES", "RSI_RL_DEVICE")}))
harness.submit(np.zeros((len(harness.data()["x_eval"]), 3)))
"""


@pytest.fixture
def two_gpus(monkeypatch):
    """A machine whose torch sees two GPUs (nothing here initialises CUDA)."""
    monkeypatch.setattr(devices, "cuda_device_count", lambda: 2)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


# ---------------------------------------------------------------- settings
@pytest.mark.parametrize(
    ("value", "expected"),
    [("auto", "auto"), ("cpu", "cpu"), ("cuda", "cuda"), ([0, 1], (0, 1)), (1, (1,))],
)
def test_devices_setting(value, expected):
    assert SandboxLimits(devices=value).devices == expected


@pytest.mark.parametrize("value", ["gpu", [], [-1], [0.5], True, None])
def test_bad_devices_setting_names_the_key(value):
    with pytest.raises(ConfigError, match="sandbox.devices"):
        SandboxLimits(devices=value)


def test_default_is_cpu_and_cpu_never_counts_gpus(monkeypatch):
    def boom() -> int:
        raise AssertionError("cpu must not look for a GPU")

    monkeypatch.setattr(devices, "cuda_device_count", boom)
    assert SandboxLimits().devices == "cpu"
    assert resolve_devices("cpu") == ()


def test_resolve_devices(two_gpus, monkeypatch):
    assert resolve_devices("auto") == (0, 1)
    assert resolve_devices("cuda") == (0, 1)
    assert resolve_devices([1]) == (1,)
    with pytest.raises(ConfigError, match="GPU 2 does not exist"):
        resolve_devices([0, 2])
    monkeypatch.setattr(devices, "cuda_device_count", lambda: 0)
    assert resolve_devices("auto") == ()
    for spec in ("cuda", [0]):
        with pytest.raises(ConfigError, match="sees no GPU.*sandbox.devices=cpu"):
            resolve_devices(spec)


def test_no_driver_means_no_gpu_without_importing_torch():
    if Path("/dev/nvidiactl").exists() or Path("/proc/driver/nvidia").exists():
        pytest.skip("this machine has a GPU driver")
    devices.cuda_device_count.cache_clear()
    assert devices.cuda_device_count() == 0


def test_visible_device_maps_through_the_parents_own_list(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert visible_device(1) == "1"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")  # e.g. a Ray GPU actor
    assert visible_device(0) == "3" and visible_device(1) == "5"
    assert device_env(None) == {"CUDA_VISIBLE_DEVICES": "", "RSI_RL_DEVICE": "cpu"}
    assert device_env(1) == {"CUDA_VISIBLE_DEVICES": "5", "RSI_RL_DEVICE": "cuda"}


def test_devices_from_the_sandbox_config_group():
    from omegaconf import OmegaConf

    from rsi_rl.builder import sandbox_settings

    group = OmegaConf.load(Path(__file__).parents[1] / "conf" / "sandbox" / "default.yaml")
    cfg = OmegaConf.create({"sandbox": group})
    assert SandboxLimits(**sandbox_settings(cfg)).devices == "cpu"
    cfg.sandbox.devices = [0, 1]  # sandbox.devices=[0,1] on the command line
    assert SandboxLimits(**sandbox_settings(cfg)).devices == (0, 1)
    assert SandboxLimits(**sandbox_settings(cfg)).artifact_mb == 256.0


def test_harness_device(monkeypatch):
    monkeypatch.delenv("RSI_RL_DEVICE", raising=False)
    assert harness.device() == "cpu"
    monkeypatch.setenv("RSI_RL_DEVICE", "cuda")
    assert harness.device() == "cuda"
    monkeypatch.setenv("RSI_RL_DEVICE", "tpu")  # anything else: the CPU
    assert harness.device() == "cpu"


def test_script_args_get_the_device():
    spec = {
        "script_dir": "/s",
        "args": ["--device", "{device}", "--data={script_dir}/d"],
        "flags": {},
        "seed_flag": None,
        "split_flag": None,
    }
    assert command_line(spec, {}, 0, "val", "cuda") == ["--device", "cuda", "--data=/s/d"]
    assert command_line(spec, {}, 0, "val") == ["--device", "cpu", "--data=/s/d"]


# ---------------------------------------------------------------- the fork server
def test_fork_server_reports_cuda_untouched():
    with Sandbox(["numpy", "torch"], SandboxLimits(timeout=30)) as sb:
        assert sb.server_cuda == {"initialized": False, "fork_poisoned": False}


def test_preload_never_calls_into_torch_cuda():
    """The fork server's preload and torch warm-up, with every torch.cuda entry point that
    could initialise the driver replaced by a recorder, and torch pretending to be a CUDA
    build (so that Adam's graph-capture check would ask whether CUDA is available)."""
    code = textwrap.dedent(
        """
        import json, torch
        calls = []
        def recorder(name, result):
            def f(*a, **k):
                calls.append(name)
                return result
            return f
        for mod, name, result in [
            (torch.cuda, "is_available", False), (torch.cuda, "device_count", 0),
            (torch.cuda, "init", None), (torch.cuda, "_lazy_init", None),
            (torch.cuda, "current_device", 0), (torch.accelerator, "device_count", 0),
            (torch.accelerator, "current_device_index", 0),
        ]:
            setattr(mod, name, recorder(f"{mod.__name__}.{name}", result))
        torch._C._accelerator_getAccelerator = lambda: torch.device("cuda")
        from rsi_rl.exec import _zygote
        failed = _zygote._preload(["numpy", "torch"])
        state = _zygote._cuda_state()
        print(json.dumps({"calls": calls, "failed": failed, "state": state,
                          "initialized": torch.cuda.is_initialized()}))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["calls"] == [], report
    assert report["failed"] == []
    assert report["initialized"] is False
    assert report["state"] == {"initialized": False, "fork_poisoned": False}


def test_a_gpu_run_refuses_a_fork_server_that_initialised_cuda(two_gpus, tmp_path):
    sb = Sandbox(["numpy"], SandboxLimits(timeout=10, devices=[0]))
    try:
        sb.start()
        sb.server_cuda = {"initialized": True, "fork_poisoned": False}
        with pytest.raises(SandboxError, match="initialised CUDA"):
            sb.run(tmp_path, "p.py", 0)
    finally:
        sb.close()


# ---------------------------------------------------------------- runs
def _fake_nodes(root: Path) -> tuple[str, ...]:
    (root / "dri").mkdir(parents=True)
    for name in ("nvidia0", "nvidiactl", "nvidia-uvm"):
        (root / name).write_text("")
    return (str(root / "nvidia0"), str(root / "nvidiactl"), str(root / "dri"), str(root / "gone"))


WRITER = """\
import json, os
print(json.dumps({k: os.environ.get(k) for k in ("CUDA_VISIBLE_DEVICES", "RSI_RL_DEVICE")}))
for p in NODES:
    try:
        if os.path.isdir(p):
            open(os.path.join(p, "probe"), "w").write("x")
        else:
            open(p, "a").write("x")
    except OSError as exc:
        print(p, exc)
"""


@pytest.mark.parametrize("hardened", [False, True])
@pytest.mark.parametrize("where", ["cpu", [1]])
def test_runs_get_their_device_and_hardened_gpu_nodes(two_gpus, tmp_path, hardened, where):
    nodes = _fake_nodes(tmp_path / "dev")
    work = tmp_path / "work"
    work.mkdir()
    (work / "p.py").write_text(f"NODES = {list(nodes[:3])!r}\n" + WRITER)
    limits = SandboxLimits(timeout=30, hardened=hardened, devices=where, device_nodes=nodes)
    with Sandbox(["numpy"], limits) as sb:
        res = sb.run(work, "p.py", 0)
    assert res.exit_code == 0, (work / "stderr.log").read_text()
    env = json.loads((work / "stdout.log").read_text().splitlines()[0])
    gpu = where != "cpu"
    assert env == {
        "CUDA_VISIBLE_DEVICES": "1" if gpu else "",
        "RSI_RL_DEVICE": "cuda" if gpu else "cpu",
    }
    address_space = res.enforced["address_space"]
    if gpu:  # RLIMIT_AS would fail CUDA's initialisation
        assert address_space.startswith("not enforced: a GPU run")
    else:
        assert address_space.startswith("enforced")
    wrote = (tmp_path / "dev" / "nvidia0").read_text() == "x"
    dri = (tmp_path / "dev" / "dri" / "probe").exists()
    record = res.enforced.get("gpu_devices")
    if not hardened:  # plain mode: the host's /dev as it is, nothing recorded
        assert wrote and dri and record is None
    elif gpu:  # exposed read-write in a read-only filesystem; the missing node is skipped
        assert wrote and dri
        assert record == "exposed read-write: " + ", ".join(nodes[:3])
    else:  # hidden from a CPU run: /dev/null over the nodes, an empty read-only folder
        assert not wrote and not dri
        assert record.startswith("hidden (a CPU run): ")


def test_local_workers_get_one_gpu_each(two_gpus, light_tabular):
    inst = light_tabular.make_instance(0)
    limits = SandboxLimits(timeout=30, devices="cuda", hardened=False)
    with Runner(light_tabular, limits) as runner, LocalExecutor(workers=3) as ex:
        ex.bind(runner)
        assert [w.limits.devices for w in ex._runners] == [(0,), (1,), (0,)]
        cands = [
            Candidate({**inst.start_config, "lr": 0.01 * (i + 1)}, {"train.py": PROGRAM})
            for i in range(6)
        ]
        results = ex.run_many(inst, cands, seed=0)
    seen = set()
    for res in results:
        assert res.status == "ok", res.message + res.stderr_tail
        env = json.loads(res.stdout_tail.strip().splitlines()[-1])
        assert env["RSI_RL_DEVICE"] == "cuda"
        seen.add(env["CUDA_VISIBLE_DEVICES"])
    assert seen <= {"0", "1"}


def test_local_workers_on_cpu_and_on_a_device_list(two_gpus, light_tabular):
    for where, expected in (("cpu", ["cpu", "cpu"]), ([1], [(1,), (1,)])):
        limits = SandboxLimits(timeout=30, devices=where)
        with Runner(light_tabular, limits) as runner, LocalExecutor(workers=2) as ex:
            ex.bind(runner)
            assert [w.limits.devices for w in ex._runners] == expected


def test_ray_actors_ask_for_a_gpu_only_for_gpu_runs(two_gpus, monkeypatch):
    assert _ray_gpus("cpu") == (0, "cpu")
    assert _ray_gpus("cuda") == (1, "cuda")
    assert _ray_gpus([0, 1]) == (1, "cuda")
    assert _ray_gpus("auto") == (1, "cuda")
    monkeypatch.setattr(devices, "cuda_device_count", lambda: 0)
    assert _ray_gpus("auto") == (0, "cpu")
