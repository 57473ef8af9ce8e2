"""``datasets/`` imports downward only: no module imports, at any depth and inside any function,
a module that imports it back. The one exception is the guide's ``lerobot.datasets.utils.merge_datasets``,
a re-export of ``LeRobotDataset.merge`` from the bottom module."""

import ast
from pathlib import Path

import lerobot.datasets

PACKAGE = "lerobot.datasets"
ALLOWED = {("lerobot.datasets.utils", "lerobot.datasets.lerobot_dataset")}  # the guide's merge_datasets


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE, *parts])


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """Every ``lerobot.datasets`` module ``path`` imports, at the top or inside functions."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)  # ``from package import module``
    return {m for m in out if m in modules}


def import_graph() -> dict[str, set[str]]:
    root = Path(lerobot.datasets.__file__).parent
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    return {m: imports_of(p, set(files)) - {m} for m, p in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return path[path.index(n) :] + [n]
            if n not in state and (cycle := visit(n)):
                return cycle
        state[m] = 2
        path.pop()
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_datasets_modules_import_each_other_without_a_cycle():
    graph = import_graph()
    assert "lerobot.datasets.lerobot_dataset" in graph["lerobot.datasets.utils"], (
        "the check sees function imports"
    )
    for a, b in ALLOWED:
        graph[a].discard(b)
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_bottom_modules_import_nothing_above_them():
    graph = import_graph()
    assert graph["lerobot.datasets.utils"] == {b for a, b in ALLOWED if a == "lerobot.datasets.utils"}
    assert graph["lerobot.datasets.columns"] == set()
    assert "lerobot.datasets.lerobot_dataset" not in graph["lerobot.datasets.tools"]
