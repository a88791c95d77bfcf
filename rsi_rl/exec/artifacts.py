"""Kept artifacts: the files a task declares (``InnerTask.artifacts``, e.g. a model's
weights) copied out of a successful run's scratch directory into the runner's store,
``<artifact_dir>/<candidate hash>/``.

The copy goes through :meth:`~rsi_rl.exec.scratch_io.ScratchDir.copy_file`: no link
followed, regular files with one link only, all files together under a size cap. What was
kept, refused or missing is one line of the run's sandbox record; it never fails the run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from rsi_rl.exec.scratch_io import ScratchDir, UnsafeScratchFile, format_size, relpath_parts


def keep_artifacts(scratch: ScratchDir, names: Sequence[str], dest: str | Path, cap: int) -> str:
    """Copy the artifacts ``names`` (paths relative to the scratch dir) of a finished run
    into the folder ``dest``, at most ``cap`` bytes together; returns what happened, for
    the run's record.

    Each file is copied by :meth:`ScratchDir.copy_file` (no links followed, regular files
    only), into a fresh folder that replaces ``dest`` once at least one file was kept: a
    run that keeps nothing leaves an earlier run's artifacts in place. A refused, missing
    or oversized file is named in the returned text; it never fails the run.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    kept, notes, left = [], [], int(cap)
    try:
        for name in dict.fromkeys(names):
            target = tmp / name
            try:
                relpath_parts(name)  # before the folder is made: never outside tmp
                target.parent.mkdir(parents=True, exist_ok=True)
                got = scratch.copy_file(name, target, left)
            except UnsafeScratchFile as exc:
                notes.append(f"refused {exc}")
                continue
            except OSError as exc:  # e.g. two names for one file, or a file and a folder
                notes.append(f"failed {name}: {exc.strerror or exc}")
                continue
            if got is None:
                notes.append(f"missing {name}")
                continue
            left -= got
            kept.append(f"{name} ({format_size(got)})")
        if kept:
            if dest.exists():
                shutil.rmtree(dest)
            os.rename(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    head = f"kept {', '.join(kept)} (cap {format_size(cap)})" if kept else "none kept"
    return "; ".join([head, *notes])


__all__ = ["keep_artifacts"]
