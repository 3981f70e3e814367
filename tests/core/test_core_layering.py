"""The package's layers point down only, and no two modules import each other.

The order is the README's architecture section. Imports inside functions count too: they are
for optional backends, never a way around a cycle or a layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "partime"
# bottom to top; a module may import its own layer and the layers below it
LAYERS = [
    "partime",  # the package face: __version__
    "_optional",
    "options",
    "io",
    "comm",
    "dynamics",
    "integrators",
    "steppers",
    "data",
    "pint",
    "hits",
    "nets",
    "train",
    "layerpar",
    "mgopt",
    "plot",
    "bench",
    "cli",
    "__main__",
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path) -> set[str]:
    """The partime modules ``name`` imports (anywhere in the file), resolved to modules."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            candidates = [f"{base}.{alias.name}" for alias in node.names] + [base]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in MODULES:
                candidate = candidate.rpartition(".")[0]
            if candidate.startswith("partime") and candidate != name:
                found.add(candidate)
                break
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def layer(module: str) -> int:
    parts = module.split(".")
    key = parts[1] if len(parts) > 1 else parts[0]
    assert key in LAYERS, f"{module}: its package {key!r} is not in the layer order"
    return LAYERS.index(key)


def test_every_import_points_down():
    upward = [
        f"{module} (layer {LAYERS[layer(module)]}) imports {target} (layer {LAYERS[layer(target)]})"
        for module, targets in sorted(GRAPH.items())
        for target in sorted(targets)
        if layer(target) > layer(module)
    ]
    assert upward == []


def test_no_two_modules_import_each_other():
    cycles, state = [], {}

    def visit(module: str, stack: list[str]) -> None:
        state[module] = "open"
        stack.append(module)
        for target in sorted(GRAPH[module]):
            if state.get(target) == "open":
                cycles.append(" -> ".join([*stack[stack.index(target) :], target]))
            elif target not in state:
                visit(target, stack)
        stack.pop()
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [])
    assert cycles == []


def test_the_graph_sees_real_imports():
    # guards the test itself: a parser that found nothing would pass the two tests above
    assert "partime.pint.parareal" in GRAPH["partime.pint.solve"]
    assert "partime.io.atomic" in GRAPH["partime.pint.checkpoint"]
    assert layer("partime.cli.main") > layer("partime.bench.pint") > layer("partime.pint")
