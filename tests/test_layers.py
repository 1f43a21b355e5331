"""One direction of dependency (issue 20): every import in the package runs downwards.

The layers, lowest first (``docs/architecture.md``):

0. ``config``, ``runtime``, ``metrics``: configuration, Ray start-up, metric helpers;
1. ``data``, ``render``, ``features``: readers and writers, light-curve windows, images;
2. ``models``: one package per family (config, model, its own preprocessing), the registry;
3. ``train``, ``infer``, ``uncertainty``, ``ot``, ``debias``, ``eval``: reusable stages;
4. ``studies``: the experiment protocols of the jobs;
5. ``cli``, ``serve``, ``api``, ``demo``, ``submit``: what users run.

A module imports only from its own layer or below, wherever the import statement sits (a
function-body import is no way around the rule), and the modules' imports form no circle.
A function-body import is kept only to keep a heavy dependency lazy or the CLI quick to
start, and says so on its line (``# lazy: torch``, ``# lazy: CLI start-up``).
The imports are read with :mod:`ast`, so nothing here imports the package.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Layer of each module prefix (the longest matching prefix wins).
LAYERS: dict[str, int] = {
    "astroray._version": 0, "astroray.config": 0, "astroray.runtime": 0, "astroray.metrics": 0,
    "astroray.data": 1, "astroray.render": 1, "astroray.features": 1,
    "astroray.models": 2,
    "astroray.train": 3, "astroray.infer": 3, "astroray.uncertainty": 3, "astroray.ot": 3,
    "astroray.interp": 3, "astroray.debias": 3, "astroray.eval": 3,
    "astroray.studies": 4,
    "astroray.cli": 5, "astroray.serve": 5, "astroray.api": 5, "astroray.demo": 5,
    "astroray.submit": 5, "astroray.__main__": 5,
    # The package root re-exports the Python API lazily (module __getattr__): top layer.
    "astroray": 5,
}
NAMES = ["config / runtime / metrics", "data / render / features", "models",
         "train / infer / uncertainty / ot / debias / eval", "studies",
         "cli / serve / api / demo / submit"]


def layer_of(module: str) -> int | None:
    """The layer of ``module`` (None: not in the map)."""
    best = None
    for prefix, layer in LAYERS.items():
        if (module == prefix or module.startswith(prefix + ".")) and (
                best is None or len(prefix) > len(best[0])):
            best = (prefix, layer)
    return None if best is None else best[1]


def _modules(root: Path) -> dict[str, Path]:
    out = {}
    for path in sorted((root / "astroray").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _targets(module: str, node: ast.Import | ast.ImportFrom, is_package: bool,
             known: dict[str, Path]) -> Iterator[str]:
    """The astroray modules an import statement loads (``from pkg import mod`` -> pkg.mod)."""
    if isinstance(node, ast.Import):
        yield from (a.name for a in node.names if a.name.split(".")[0] == "astroray")
        return
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        name = ".".join(base + ([node.module] if node.module else []))
    else:
        name = node.module or ""
    if name.split(".")[0] != "astroray":
        return
    for alias in node.names:
        sub = f"{name}.{alias.name}"
        yield sub if sub in known else name


def import_graph(root: Path) -> dict[str, list[tuple[str, int]]]:
    """Module -> [(imported astroray module, line)], every import statement included."""
    known = _modules(root)
    graph: dict[str, list[tuple[str, int]]] = {}
    for module, path in known.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        edges = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _targets(module, node, path.name == "__init__.py", known):
                    if target != module:
                        edges.append((target, node.lineno))
                    # Importing a.b.c first runs the package a.b's __init__ (and a's): an
                    # edge too, unless the importer is inside that package already.
                    parts = target.split(".")
                    for k in range(2, len(parts)):
                        package = ".".join(parts[:k])
                        if package in known and not (module + ".").startswith(package + "."):
                            edges.append((package, node.lineno))
        graph[module] = edges
    return graph


def upward_imports(root: Path) -> list[str]:
    """Every import of a module of a higher layer, as ``module:line -> target``."""
    problems = []
    for module, edges in import_graph(root).items():
        if module == "astroray":
            continue
        here = layer_of(module)
        for target, line in edges:
            there = layer_of(target)
            if here is None or there is None:
                problems.append(f"{module}:{line} -> {target}: not in the layer map")
            elif there > here:
                problems.append(f"{module}:{line} -> {target}: layer {there} "
                                f"({NAMES[there]}) above layer {here} ({NAMES[here]})")
    return sorted(problems)


def import_cycles(root: Path) -> list[list[str]]:
    """Circles among the package's modules (Tarjan's strongly connected components)."""
    graph = {m: sorted({t for t, _ in e if t != m}) for m, e in import_graph(root).items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return cycles


#: What marks a function-body import as deliberate: ``# lazy: <reason>``.
_LAZY = re.compile(r"# lazy: \S")


def unexplained_body_imports(root: Path) -> list[str]:
    """Function-body imports without a ``# lazy: <reason>`` comment, as ``path:line``.

    The comment sits on the statement's first or last line (a parenthesised import spans
    several).
    """
    problems = []
    for path in sorted((root / "astroray").rglob("*.py")):
        lines = path.read_text().splitlines()
        tree = ast.parse("\n".join(lines), filename=str(path))
        seen = set()
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(func):
                if not isinstance(node, ast.Import | ast.ImportFrom) or node.lineno in seen:
                    continue
                seen.add(node.lineno)
                ends = (lines[node.lineno - 1], lines[(node.end_lineno or node.lineno) - 1])
                if not any(_LAZY.search(line) for line in ends):
                    problems.append(f"{path.relative_to(root)}:{node.lineno}")
    return problems


def test_every_import_runs_downwards():
    problems = upward_imports(ROOT)
    assert not problems, "imports that run upward:\n" + "\n".join(problems)


def test_no_import_circle():
    cycles = import_cycles(ROOT)
    assert not cycles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_function_body_imports_say_why_they_are_lazy():
    problems = unexplained_body_imports(ROOT)
    assert not problems, ("function-body imports without a `# lazy: <reason>` comment (hoist "
                          "them, or say which heavy dependency they keep lazy):\n"
                          + "\n".join(problems))


def _plant(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "astroray" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_the_check_catches_a_planted_upward_import_even_inside_a_function(tmp_path):
    root = _plant(tmp_path, {
        "__init__.py": "",
        "data/__init__.py": "",
        "data/reader.py": "def read():\n    from astroray.train.loop import fit\n    return fit\n",
        "train/__init__.py": "",
        "train/loop.py": "from astroray.data.reader import read\n\ndef fit():\n    return read\n",
    })
    problems = upward_imports(root)
    assert problems == [f"astroray.data.reader:2 -> {target}: layer 3 "
                        f"({NAMES[3]}) above layer 1 ({NAMES[1]})"
                        for target in ("astroray.train.loop", "astroray.train")]
    assert import_cycles(root) == [["astroray.data.reader", "astroray.train.loop"]]


def test_a_circle_through_a_package_init_is_caught(tmp_path):
    """Importing a.b.c runs a.b's __init__ first: a circle through it is a circle."""
    root = _plant(tmp_path, {
        "__init__.py": "",
        "infer/__init__.py": "from astroray.infer.embed import embed\n",
        "infer/embed.py": "from astroray.train.loop import fit\n\ndef embed():\n    return fit\n",
        "train/__init__.py": "from astroray.train.classify import head\n",
        "train/loop.py": "def fit():\n    return 1\n",
        "train/classify.py": "from astroray.infer.embed import embed\n\ndef head():\n"
                             "    return embed\n",
    })
    assert import_cycles(root) == [["astroray.infer", "astroray.infer.embed", "astroray.train",
                                    "astroray.train.classify"]]


def test_the_check_catches_a_body_import_without_a_reason(tmp_path):
    root = _plant(tmp_path, {
        "__init__.py": "",
        "loop.py": ("def fit():\n    import torch  # lazy: torch\n    from astroray import data\n"
                    "    import numpy  # noqa: F401\n    return torch, data\n"),
    })
    assert unexplained_body_imports(root) == ["astroray/loop.py:3", "astroray/loop.py:4"]


def test_relative_and_package_imports_resolve(tmp_path):
    root = _plant(tmp_path, {
        "__init__.py": "",
        "models/__init__.py": "from . import family\n",
        "models/family.py": "from ..config import Config\n",
        "config.py": "from astroray import models\n",
    })
    assert upward_imports(root) == [
        f"astroray.config:1 -> astroray.models: layer 2 ({NAMES[2]}) above layer 0 ({NAMES[0]})"]
    assert import_cycles(root) == [["astroray.config", "astroray.models",
                                    "astroray.models.family"]]


@pytest.mark.parametrize("module,layer", [("astroray.data.readers.csv", 1),
                                          ("astroray.models.astromer.model", 2),
                                          ("astroray.studies.fewshot", 4), ("astroray", 5)])
def test_layer_map(module, layer):
    assert layer_of(module) == layer
