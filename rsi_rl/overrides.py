"""The command line before Hydra sees it: overrides among Hydra's flags, the config
folders a user adds, ``resume=RUN_DIR``, and the run directory a job will write."""

from __future__ import annotations

from pathlib import Path

from rsi_rl.core.errors import RunDirError

#: Hydra flags that take a value in the next argument
_VALUE_FLAGS = (
    "--config-dir",
    "-cd",
    "--config-name",
    "-cn",
    "--config-path",
    "-cp",
    "--cfg",
    "-c",
    "--package",
    "-p",
    "--experimental-rerun",
)


def hydra_args(argv: list[str]) -> list[str]:
    """The key=value overrides among ``argv`` (without Hydra's flags and their values)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in _VALUE_FLAGS:
            skip = True
        elif not a.startswith("-"):
            out.append(a)
    return out


def extra_config_dirs(argv: list[str]) -> list[Path]:
    """Config folders a user adds with ``--config-dir DIR`` or ``hydra.searchpath=[file://DIR]``."""
    dirs: list[str] = []
    for i, a in enumerate(argv):
        if a in ("--config-dir", "-cd") and i + 1 < len(argv):
            dirs.append(argv[i + 1])
        elif a.startswith("--config-dir="):
            dirs.append(a.split("=", 1)[1])
        elif a.startswith("hydra.searchpath="):
            for item in a.split("=", 1)[1].strip("[]").split(","):
                item = item.strip().strip("'\"")
                if item.startswith("file://"):
                    dirs.append(item[len("file://") :])
    return [Path(d).expanduser().resolve() for d in dirs]


def resume_overrides(args: list[str]) -> list[str]:
    """``resume=RUN_DIR``: reuse the run's own overrides and write into the same directory."""
    resume = [a for a in args if a.startswith("resume=")]
    if not resume:
        return args
    run_dir = Path(resume[-1].split("=", 1)[1]).resolve()
    saved = run_dir / ".hydra" / "overrides.yaml"
    if not saved.exists():
        raise RunDirError(
            f"resume={run_dir}: not a search run directory (no .hydra/overrides.yaml)"
        )
    import yaml

    previous = [
        o
        for o in (yaml.safe_load(saved.read_text()) or [])
        if not o.startswith(("resume=", "hydra."))
    ]
    keys = {a.split("=", 1)[0] for a in args if "=" in a}
    merged = [o for o in previous if o.split("=", 1)[0] not in keys]
    rest = [a for a in args if not a.startswith("resume=")]
    return [*merged, *rest, f"resume={run_dir}", f"hydra.run.dir={run_dir}"]


def override_value(args: list[str], key: str) -> str | None:
    """The value of the last ``key=value`` override among ``args`` (quotes removed)."""
    values = [a.split("=", 1)[1] for a in hydra_args(args) if a.startswith(f"{key}=")]
    if not values:
        return None
    value = values[-1].strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return value


def check_run_dir(args: list[str]) -> None:
    """Fail in one line, before Hydra writes its logs there, if the run directory of a
    ``hydra.run.dir=`` (or ``resume=``) override cannot be written or another run writes it.
    """
    from rsi_rl.store.ledger import check_not_in_use

    value = override_value(args, "hydra.run.dir")
    if not value or "${" in value:
        return
    run_dir = Path(value).expanduser().absolute()
    existing = run_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise RunDirError(
            f"hydra.run.dir={value}: {existing} is not a directory; pick another hydra.run.dir=..."
        )
    try:
        import tempfile

        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        where = "" if existing == run_dir else f" ({existing}, where it would be made)"
        raise RunDirError(
            f"run directory {run_dir} is not writable{where}: {exc.strerror or exc}; make it "
            "writable or pick another directory (hydra.run.dir=...)"
        ) from None
    if run_dir.is_dir():
        check_not_in_use(run_dir)
