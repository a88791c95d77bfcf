"""The package's layers: each imports only the layers below it, and no module-level import
runs in a cycle. Imports under ``if TYPE_CHECKING:`` (type hints only) are not counted."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "rsi_rl"

#: (layer, the module prefixes in it), lowest first; a module may import its own layer
#: and the layers listed before it
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("rsi_rl.core", "rsi_rl.task", "rsi_rl.harness")),
    ("exec", ("rsi_rl.exec",)),
    ("store", ("rsi_rl.store",)),
    ("campaign", ("rsi_rl.campaign",)),
    (
        "env",
        (
            "rsi_rl.env",
            "rsi_rl.env_setup",
            "rsi_rl.actions",
            "rsi_rl.observation",
            "rsi_rl.proposer",
            "rsi_rl.proposers",
        ),
    ),
    ("agents", ("rsi_rl.agents",)),
]


def _layer(module: str) -> int:
    """The rank of ``module``'s layer (the commands and everything above: the top)."""
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    return len(LAYERS)


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = ("rsi_rl", *path.relative_to(ROOT).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(path: Path, module: str) -> list[tuple[str, bool]]:
    """(imported rsi_rl module, at module level?) of every import outside
    ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text())
    found: list[tuple[str, bool]] = []
    known = _modules()

    def resolve(name: str) -> str:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for sub in child.orelse:
                    visit(sub, top)
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.startswith("rsi_rl"):
                        found.append((resolve(alias.name), top))
            elif (
                isinstance(child, ast.ImportFrom)
                and child.level == 0
                and (child.module or "").startswith("rsi_rl")
            ):
                for alias in child.names:
                    full = f"{child.module}.{alias.name}"
                    found.append((resolve(full if full in known else str(child.module)), top))
            visit(child, top and not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef))

    visit(tree, True)
    return [(m, top) for m, top in found if m and m != module and m != "rsi_rl"]


def test_each_layer_imports_only_the_layers_below_it():
    wrong = []
    for module, path in _modules().items():
        if module.startswith(("rsi_rl.envs", "rsi_rl.conf")):
            continue
        for imported, _ in _imports(path, module):
            if _layer(imported) > _layer(module):
                wrong.append(f"{module} -> {imported}")
    assert not wrong, "imports that run up a layer:\n" + "\n".join(wrong)


def test_no_module_level_import_cycle():
    graph = {m: {i for i, top in _imports(p, m) if top} for m, p in _modules().items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n) :] + [n]
            if n not in state and (cycle := walk(n)):
                return cycle
        state[m] = 2
        stack.pop()
        return None

    for m in sorted(graph):
        if m not in state and (cycle := walk(m)):
            pytest.fail("import cycle: " + " -> ".join(cycle))
