"""Where the sandboxed programs train: ``sandbox.devices`` and each run's GPU.

``sandbox.devices`` is ``cpu``, ``cuda``, ``auto`` or a list of GPU indices
(:func:`checked_devices`); :func:`resolve_devices` turns it into the GPU indices a run may
use, counting GPUs in a fresh process (:func:`cuda_device_count`) so that CUDA is never
initialised in a process that forks. A run's device variables (``CUDA_VISIBLE_DEVICES``,
``RSI_RL_DEVICE``) come from :func:`device_env`; the GPU device nodes a hardened GPU run
sees from :func:`gpu_device_nodes`. See ``docs/sandbox.md`` (devices).
"""

from __future__ import annotations

import functools
import glob
import os
import subprocess
import sys
from typing import Any

from rsi_rl.core.errors import ConfigError

#: the values of ``sandbox.devices`` besides a list of GPU indices
DEVICE_NAMES = ("auto", "cpu", "cuda")


def checked_devices(value: Any) -> str | tuple[int, ...]:
    """``sandbox.devices`` as a name or a tuple of GPU indices, or a ConfigError."""
    if isinstance(value, str) and value in DEVICE_NAMES:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if (
        isinstance(value, (list, tuple))
        and value
        and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in value)
    ):
        return tuple(value)
    raise ConfigError(
        f"sandbox.devices must be auto, cpu, cuda or a list of GPU indices such as [0,1], "
        f"got {value!r}"
    )


def gpu_device_nodes(dev: str = "/dev") -> tuple[str, ...]:
    """The GPU device nodes under ``dev`` that exist: ``nvidia*`` (``nvidia0``,
    ``nvidiactl``, ``nvidia-uvm``, ``nvidia-uvm-tools``, ``nvidia-caps``, ...) and ``dri``."""
    found = sorted(glob.glob(os.path.join(dev, "nvidia*")))
    dri = os.path.join(dev, "dri")
    if os.path.isdir(dri):
        found.append(dri)
    return tuple(found)


@functools.lru_cache(maxsize=1)
def cuda_device_count() -> int:
    """GPUs torch sees in this environment (``CUDA_VISIBLE_DEVICES`` applies), counted in a
    fresh subprocess so that CUDA is never initialised here (it does not survive a fork).

    0 without a GPU driver (no ``/dev/nvidiactl``, ``/proc/driver/nvidia`` or
    ``/dev/kfd``), without torch, or when the check fails. Computed once per process.
    """
    if not any(os.path.exists(p) for p in ("/dev/nvidiactl", "/proc/driver/nvidia", "/dev/kfd")):
        return 0
    code = "import torch; print(torch.cuda.device_count())"
    try:
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        return max(0, int(out.stdout.strip().splitlines()[-1]))
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return 0


def resolve_devices(devices: str | tuple[int, ...] | list[int]) -> tuple[int, ...]:
    """The GPU indices ``sandbox.devices`` stands for; ``()`` means the CPU.

    ``cpu`` never checks for a GPU; ``auto`` and ``cuda`` count them with
    :func:`cuda_device_count`; a list is checked against that count.

    Raises:
        ConfigError: ``cuda`` or a list where torch sees no GPU, or an index it does not see.
    """
    devices = checked_devices(devices)
    if devices == "cpu":
        return ()
    n = cuda_device_count()
    if devices == "auto":
        return tuple(range(n))
    shown = devices if isinstance(devices, str) else list(devices)
    if n == 0:
        raise ConfigError(
            f"sandbox.devices={shown}: torch sees no GPU in this environment; use "
            "sandbox.devices=auto or sandbox.devices=cpu"
        )
    if isinstance(devices, str):  # cuda
        return tuple(range(n))
    missing = [i for i in devices if i >= n]
    if missing:
        raise ConfigError(
            f"sandbox.devices={shown}: GPU {missing[0]} does not exist (torch sees {n}: 0..{n - 1})"
        )
    return tuple(devices)


def visible_device(index: int) -> str:
    """The ``CUDA_VISIBLE_DEVICES`` value that shows a child GPU ``index`` of this process:
    the index itself, or the ``index``-th entry of this process's own
    ``CUDA_VISIBLE_DEVICES`` (a Ray GPU actor's, a cluster scheduler's) when it has one."""
    own = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return own[index] if index < len(own) else str(index)


def device_env(gpu: int | None) -> dict[str, str]:
    """The device variables of one run: ``CUDA_VISIBLE_DEVICES`` (its GPU, or empty: none)
    and ``RSI_RL_DEVICE`` (``cuda`` or ``cpu``, what :func:`rsi_rl.harness.device` returns)."""
    if gpu is None:
        return {"CUDA_VISIBLE_DEVICES": "", "RSI_RL_DEVICE": "cpu"}
    return {"CUDA_VISIBLE_DEVICES": visible_device(gpu), "RSI_RL_DEVICE": "cuda"}
