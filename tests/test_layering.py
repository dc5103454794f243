"""The import graph of ``curation``: no cycle, no private name taken from another module.

Every import counts for the cycle check: at module level, inside a function, and
under ``if TYPE_CHECKING:`` (a type-only import still says which module knows
about which).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "curation"


def _module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(package: Path) -> dict[str, Path]:
    return {_module_name(p, package): p for p in sorted(package.rglob("*.py"))}


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the modules of ``package`` it imports anywhere (type-only imports included)."""
    modules = _modules(package)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for t in targets:
                if t in modules and t != name and not name.startswith(t + "."):
                    graph[name].add(t)
    return graph


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_imports(package: Path = PACKAGE) -> list[str]:
    """Each ``_private`` name one module of ``package`` takes from another.

    ``from pkg.mod import _name`` and ``mod._name`` on an imported module both count;
    a private *module* (``from pkg import _io``) is fine: its public names are its API.
    """
    modules = _modules(package)
    root = package.name
    found: list[str] = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module_aliases: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name in modules and a.asname:
                        module_aliases.add(a.asname)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module != root and not node.module.startswith(root + "."):
                    continue
                for a in node.names:
                    if f"{node.module}.{a.name}" in modules:
                        module_aliases.add(a.asname or a.name)
                    elif _is_private(a.name) and node.module != name:
                        found.append(f"{name}: from {node.module} import {a.name}")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in module_aliases
                and _is_private(node.attr)
            ):
                found.append(f"{name}: {node.value.id}.{node.attr}")
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_find_cycle_finds_a_planted_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_curation_import_graph_has_no_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_record_types_is_a_leaf() -> None:
    assert import_graph()["curation.record_types"] <= {"curation.answers", "curation.errors"}


def test_evaluate_leaves_fiftyone_to_its_caller() -> None:
    """Scoring imports neither the curator (FiftyOne) nor the CLI: ``curate eval`` hands
    it the step that writes predictions to a dataset."""
    graph = import_graph()
    above = [
        m
        for m in graph["curation.evaluate.run"]
        if m.startswith(("curation.curator", "curation.cli"))
    ]
    assert above == []


def _plant(tmp_path: Path, files: dict[str, str]) -> Path:
    package = tmp_path / "pkg"
    for rel, text in files.items():
        (package / rel).parent.mkdir(parents=True, exist_ok=True)
        (package / rel).write_text(text, encoding="utf-8")
    return package


def test_a_type_only_import_counts_for_the_cycle_check(tmp_path: Path) -> None:
    package = _plant(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "from pkg.b import B\n",
            "b.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n"
                "    from pkg.a import A\n"
                "B = 1\n"
            ),
        },
    )
    assert find_cycle(import_graph(package)) == ["pkg.a", "pkg.b", "pkg.a"]


@pytest.mark.parametrize(
    "line",
    [
        "from pkg.a import _helper",
        "from pkg import a\nX = a._helper",
        "import pkg.a as a\nX = a._helper",
    ],
)
def test_a_private_name_taken_from_another_module_is_found(tmp_path: Path, line: str) -> None:
    package = _plant(
        tmp_path, {"__init__.py": "", "a.py": "def _helper(): ...\n", "b.py": line + "\n"}
    )
    assert len(private_imports(package)) == 1


def test_a_private_module_and_dunder_names_are_fine(tmp_path: Path) -> None:
    package = _plant(
        tmp_path,
        {
            "__init__.py": "__version__ = '1'\n",
            "_io.py": "def read(): ...\n",
            "b.py": "from pkg import __version__, _io\nX = _io.read\n",
        },
    )
    assert private_imports(package) == []


def test_no_private_name_crosses_a_module_of_curation() -> None:
    assert private_imports() == []
