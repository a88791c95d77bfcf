"""Ordinary PyTorch multiprocessing inside the sandbox, in hardened and plain mode.

Training programs use ``DataLoader(num_workers=...)``, ``torch.multiprocessing`` (shared
tensors, pools) and TensorBoard's ``SummaryWriter``; each must finish ``ok`` through the
real :class:`~rsi_rl.exec.runner.Runner` and fork server (tabular's data, torch preloaded), and
a worker that fails must be reported by its own error, not only by the parent's summary.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
import textwrap

import pytest

from rsi_rl.core.edits import Candidate
from rsi_rl.exec.runner import Runner
from rsi_rl.exec.sandbox import SandboxLimits

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox"),
    pytest.mark.slow,
]

PRELUDE = """\
import numpy as np
import torch
from rsi_rl import harness

d = harness.data()
x = torch.as_tensor(d["x_train"], dtype=torch.float32)
y = torch.as_tensor(d["y_train"], dtype=torch.long)
x_eval = torch.as_tensor(d["x_eval"], dtype=torch.float32)
n_classes = int(d["n_classes"])
model = torch.nn.Linear(x.shape[1], n_classes)
opt = torch.optim.SGD(model.parameters(), lr=0.1)


def train_step(xb, yb):
    loss = torch.nn.functional.cross_entropy(model(xb), yb)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss


def submit():
    with torch.no_grad():
        harness.submit(model(x_eval).numpy())
"""

PROGRAMS = {
    "dataloader_workers": """
        ds = torch.utils.data.TensorDataset(x, y)
        loader = torch.utils.data.DataLoader(ds, batch_size=64, shuffle=True, num_workers=2)
        seen = set()
        for epoch in range(2):
            for xb, yb in loader:
                loss = train_step(xb, yb)
            harness.log(step=epoch, train_loss=float(loss))
        info = torch.utils.data.get_worker_info()
        assert info is None  # the parent is no worker
        submit()
    """,
    "dataloader_spawn_workers": """
        import multiprocessing as mp


        def main():
            ds = torch.utils.data.TensorDataset(x, y)
            loader = torch.utils.data.DataLoader(
                ds,
                batch_size=128,
                num_workers=2,
                persistent_workers=True,
                multiprocessing_context=mp.get_context("spawn"),
            )
            for epoch in range(2):
                for xb, yb in loader:
                    train_step(xb, yb)
            submit()


        if __name__ == "__main__":  # spawn re-imports the program in each worker
            main()
    """,
    "shared_tensor_process": """
        import os
        import tempfile

        import torch.multiprocessing as tmp

        assert tempfile.gettempdir() == os.getcwd()  # the run's scratch dir, not the host's /tmp

        def fill(t, value):
            t.fill_(value)

        shared = torch.zeros(8).share_memory_()
        procs = [tmp.Process(target=fill, args=(shared[i : i + 4], i + 1)) for i in (0, 4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
        assert shared.tolist() == [1.0] * 4 + [5.0] * 4, shared.tolist()
        submit()
    """,
    "pool_of_tensors": """
        import torch.multiprocessing as tmp

        def grad_norm(seed):
            g = torch.Generator().manual_seed(seed)
            return torch.randn(16, generator=g).norm()

        with tmp.get_context("fork").Pool(2) as pool:
            norms = pool.map(grad_norm, range(4))
        assert len(norms) == 4 and all(float(n) > 0 for n in norms)
        ctx = tmp.get_context("spawn")
        queue = ctx.SimpleQueue()
        queue.put(torch.arange(4.0))  # a tensor through a queue: shared memory + fds
        assert queue.get().tolist() == [0.0, 1.0, 2.0, 3.0]
        submit()
    """,
    "tensorboard": """
        import glob
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter("tb")
        for step in range(3):
            loss = train_step(x, y)
            writer.add_scalar("train/loss", float(loss), step)
        writer.close()
        assert glob.glob("tb/events.out.tfevents.*"), "no event file"
        submit()
    """,
}


#: a data set whose item 37 fails, by ``{fail}``, in a DataLoader worker process
FAILING_SHARDS = """
import os
import signal


class Shards(torch.utils.data.Dataset):
    def __len__(self):
        return 64

    def __getitem__(self, i):
        if i == 37:
            {fail}
        return x[i]


for xb in torch.utils.data.DataLoader(Shards(), batch_size=8, num_workers=2):
    pass
"""

CRASHES = {
    # (how the worker fails, what the crash record must show)
    "worker_raises": ('raise ValueError("shard 37 is corrupt")', "valueerror: shard 37 is corrupt"),
    "worker_segfaults": ("os.kill(os.getpid(), signal.SIGSEGV)", "segmentation fault"),
}


def _needs(name: str) -> None:
    if name == "tensorboard" and importlib.util.find_spec("tensorboard") is None:
        pytest.skip("tensorboard is not installed")


@pytest.fixture(scope="module")
def runner(tabular, tmp_path_factory):
    """A runner of tabular (torch preloaded) whose scratch folders are kept."""
    root = tmp_path_factory.mktemp("multiproc")
    limits = SandboxLimits(timeout=120.0, memory_mb=8192)
    with Runner(tabular, limits, scratch_root=root, keep_scratch=True) as r:
        yield r


def _run(runner: Runner, inst, body: str, mode: str):
    source = PRELUDE + textwrap.dedent(body)
    cand = Candidate(dict(inst.start_config), {"train.py": source})
    base = runner.limits
    runner.limits = dataclasses.replace(base, hardened=mode == "hardened")
    try:
        return runner.run_fresh(inst, cand, seed=0)  # the cache does not key on the mode
    finally:
        runner.limits = base


@pytest.mark.parametrize("mode", ["hardened", "plain"])
@pytest.mark.parametrize("name", list(PROGRAMS))
def test_torch_multiprocessing_finishes_ok(runner, inst, mode, name):
    _needs(name)
    res = _run(runner, inst, PROGRAMS[name], mode)
    assert res.status == "ok", (res.message, res.stderr_tail)
    assert str(res.enforced.get("namespaces", "")).startswith("enforced") == (mode == "hardened")
    if name == "tensorboard":
        events = list(runner.scratch_root.glob("exp*/tb/events.out.tfevents.*"))
        assert events and events[-1].stat().st_size > 0  # copied back from the sandbox


@pytest.mark.parametrize("name", list(CRASHES))
def test_a_failing_worker_is_a_crash_that_shows_its_error(runner, inst, name):
    """The record keeps the program's traceback, even when torch's SIGCHLD handler fires
    while it prints, and the tail reaches back to the worker's own error: the traceback
    leaves out the sandbox's frames and library source lines."""
    fail, shown = CRASHES[name]
    res = _run(runner, inst, FAILING_SHARDS.format(fail=fail), "hardened")
    assert res.status == "crash", (res.message, res.stderr_tail)
    tail = res.stderr_tail
    assert shown in tail.lower() and "Traceback" in tail and "_zygote" not in tail, tail
    if name == "worker_raises":
        assert res.message.endswith("ValueError: shard 37 is corrupt"), res.message
