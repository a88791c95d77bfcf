"""Where Hydra configs live, and the config pieces jobs share (the CLI and the bench use it).

- :func:`conf_dir`: the shipped ``conf/`` folder (installed as ``rsi_rl.conf``);
- :func:`search_dirs`: the folders of the running job's config search path
  (``--config-dir`` first);
- :func:`agent_config_file`: ``<dir>/agent/<name>.yaml`` of the first folder that has it;
- :func:`executor_spec`: a job's ``executor`` group as a plain mapping.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def conf_dir() -> Path:
    """The folder of Hydra configs (``conf/``, installed as ``rsi_rl.conf``)."""
    import rsi_rl.conf

    return Path(next(iter(rsi_rl.conf.__path__)))


def search_dirs() -> list[Path]:
    """The folders of Hydra's config search path, in its order (``--config-dir`` first);
    [] outside a Hydra job."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    return [
        Path(source.path)
        for source in HydraConfig.get().runtime.config_sources
        if source.schema == "file"
    ]


def agent_config_file(name: str, dirs: Sequence[Path]) -> Path | None:
    """``<dir>/agent/<name>.yaml`` of the first of ``dirs`` that has it (None: none has)."""
    for d in dirs:
        path = Path(d) / "agent" / f"{name}.yaml"
        if path.is_file():
            return path
    return None


def executor_spec(cfg: Any) -> dict[str, Any] | None:
    """The ``executor`` group of a job's config as a plain mapping (None: serial)."""
    if cfg.get("executor") is None:
        return None
    from omegaconf import OmegaConf

    spec: dict[str, Any] = OmegaConf.to_container(cfg.executor, resolve=True)  # type: ignore[assignment]
    return spec
