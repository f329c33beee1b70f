"""The import rule: no import cycle among product modules, no `labral` import inside a function.

A cycle hidden by an import inside a function is still a cycle, and an inner import of our
own code hides who depends on whom (docs/contracts.md). So every ``labral`` module is a
node, every import at module level (including module-level ``if``/``try`` blocks, excluding
``if TYPE_CHECKING:``, which never runs) an edge, and the graph must have no cycle; an
import of a ``labral`` module inside a function or method body fails unless
:data:`ALLOWED_INNER_IMPORTS` names it with its reason. Lazy imports of third-party
packages (optional dependencies: uvicorn, onnxruntime, ...) are not checked.

The module names come from the source alone (``ast``, nothing is imported): each folder of
pyproject's ``[tool.setuptools] package-dir`` maps to its package (``labral.serve`` ->
``serve/``). The first tests check the checker on tiny planted source trees.
"""

from __future__ import annotations

import ast
import tomllib
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: (file relative to the repository, imported module) -> why that import must stay lazy.
#: Keep it short: moving the shared piece down is the fix (docs/contracts.md).
ALLOWED_INNER_IMPORTS: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class ImportSite:
    """One import of a product module: where it is and what it imports."""

    file: str  # relative to the source root, posix
    line: int
    importer: str  # module name
    imported: str  # the product module it resolves to
    in_function: bool
    type_checking: bool


def product_modules(root: Path) -> dict[str, Path]:
    """Module name -> file for every ``.py`` file under pyproject's ``package-dir`` folders."""
    setuptools = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {name: root / folder for name, folder in setuptools["package-dir"].items()}
    modules: dict[Path, str] = {}
    # shallow folders first, so a package mapped to a folder inside another wins its files
    for package, folder in sorted(folders.items(), key=lambda item: len(item[1].parts)):
        for path in folder.rglob("*.py"):
            if "__pycache__" in path.parts:
                continue
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[path] = ".".join((package, *parts))
    return {name: path for path, name in modules.items()}


def _resolve(target: str, modules: dict[str, Path]) -> str:
    """The product module an import of ``target`` runs: itself, or its longest known prefix."""
    while target not in modules and "." in target:
        target = target.rsplit(".", 1)[0]
    return target


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """Absolute dotted names an import statement names: ``module`` or ``module.attribute``
    (``from pkg import mod`` imports the module ``pkg.mod``, ``from mod import f`` ``mod``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:  # relative: from the importer's package, one level up per extra dot
        package = module if is_package else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    else:
        base = node.module or ""
    return [f"{base}.{alias.name}" for alias in node.names]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _sites_in(path: Path, rel: str, module: str, modules: dict[str, Path]) -> list[ImportSite]:
    """The product imports in one file, each marked inside a function or not."""
    top_names = {name.split(".")[0] for name in modules}
    is_package = path.name == "__init__.py"
    sites: list[ImportSite] = []

    def visit(node: ast.AST, in_function: bool, type_checking: bool) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = _targets(node, module, is_package)
            found = {_resolve(n, modules) for n in names if n.split(".")[0] in top_names}
            for imported in sorted(found & modules.keys()):
                sites.append(
                    ImportSite(rel, node.lineno, module, imported, in_function, type_checking)
                )
            return
        inner = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        checking = type_checking or (isinstance(node, ast.If) and _is_type_checking(node))
        for child in ast.iter_child_nodes(node):
            visit(child, inner, checking)

    visit(ast.parse(path.read_text(), str(path)), False, False)
    return sites


def import_sites(root: Path) -> list[ImportSite]:
    """Every import of a product module in the product's source, in file and line order."""
    modules = product_modules(root)
    sites: list[ImportSite] = []
    for module, path in sorted(modules.items()):
        sites += _sites_in(path, path.relative_to(root).as_posix(), module, modules)
    return sites


def import_cycles(root: Path) -> list[list[str]]:
    """One shortest cycle (``[a, b, ..., a]``) per strongly connected set of modules."""
    graph: dict[str, set[str]] = {name: set() for name in product_modules(root)}
    for site in import_sites(root):
        if not site.in_function and not site.type_checking and site.imported != site.importer:
            graph[site.importer].add(site.imported)
    cycles = []
    for group in _strongly_connected(graph):
        if len(group) > 1:
            start = min(group)
            cycles.append(_shortest_cycle(graph, start, group))
    return sorted(cycles)


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []
    for origin in sorted(graph):
        if origin in index:
            continue
        work = [(origin, iter(sorted(graph[origin])))]
        index[origin] = low[origin] = len(index)
        stack.append(origin)
        on_stack.add(origin)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                groups.append(group)
    return groups


def _shortest_cycle(graph: dict[str, set[str]], start: str, group: set[str]) -> list[str]:
    """The shortest path ``start -> ... -> start`` inside ``group`` (breadth first)."""
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(graph[node] & group):
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [start, *reversed(path[:-1]), start]
            if child not in came_from:
                came_from[child] = node
                queue.append(child)
    raise AssertionError(f"{start} is in a strongly connected set but on no cycle")


def inner_imports(
    root: Path, allowed: dict[tuple[str, str], str]
) -> tuple[list[str], list[tuple[str, str]]]:
    """(``file:line imports module`` for each unallowed inner import, stale allow-list keys)."""
    inner = [site for site in import_sites(root) if site.in_function]
    found = {(site.file, site.imported) for site in inner}
    offenders = [
        f"{site.file}:{site.line} imports {site.imported} inside a function"
        for site in inner
        if (site.file, site.imported) not in allowed
    ]
    return offenders, sorted(set(allowed) - found)


# ---- the checker, on planted source trees ---------------------------------------------
def _tree(root: Path, files: dict[str, str]) -> Path:
    """A toy product: package ``toy`` in ``core/`` and ``toy.sub`` in ``sub/``."""
    (root / "pyproject.toml").write_text(
        '[tool.setuptools]\npackage-dir = { "toy" = "core", "toy.sub" = "sub" }\n'
    )
    for name, text in {"core/__init__.py": "", "sub/__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_a_two_module_cycle_is_found(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"core/a.py": "import toy.b\n", "core/b.py": "from toy.a import f\n"})
    assert import_cycles(root) == [["toy.a", "toy.b", "toy.a"]]


def test_a_longer_cycle_through_mapped_folders_and_relative_imports_is_found(
    tmp_path: Path,
) -> None:
    files = {
        "core/a.py": "from toy.sub import c\n",
        "sub/c.py": "from . import d\n",  # toy.sub.d, found in sub/
        "sub/d.py": "try:\n    from ..b import g\nexcept ImportError:\n    pass\n",
        "core/b.py": "from .a import f\n",
        "core/free.py": "import toy.a\n",  # imports into the cycle, is not on it
    }
    root = _tree(tmp_path, files)
    assert product_modules(root)["toy.sub.d"] == tmp_path / "sub" / "d.py"
    assert import_cycles(root) == [["toy.a", "toy.sub.c", "toy.sub.d", "toy.b", "toy.a"]]


def test_a_cycle_hidden_by_an_inner_import_is_an_inner_import(tmp_path: Path) -> None:
    files = {
        "core/a.py": "import toy.b\n",
        "core/b.py": (
            "import json\n\n\nclass B:\n    def load(self):\n"
            "        import onnxruntime  # an optional dependency: allowed\n"
            "        from toy import a\n        return a\n"
        ),
        "core/typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import toy.t\n",
        "core/t.py": "import toy.typed\n",
    }
    root = _tree(tmp_path, files)
    assert import_cycles(root) == []  # the inner import and the TYPE_CHECKING one never run
    offenders, stale = inner_imports(root, {})
    assert offenders == ["core/b.py:7 imports toy.a inside a function"] and stale == []
    reason = {("core/b.py", "toy.a"): "planted"}
    assert inner_imports(root, reason) == ([], [])
    stale_entry = {**reason, ("core/a.py", "toy.b"): "no longer lazy"}
    assert inner_imports(root, stale_entry) == ([], [("core/a.py", "toy.b")])


# ---- the product -----------------------------------------------------------------------
def test_the_checker_sees_the_whole_product() -> None:
    modules = product_modules(REPO)
    for package in ("labral", "labral.serve", "labral.datasets", "labral.bench", "labral.train"):
        assert package in modules
    assert modules["labral.serve.http.app"] == REPO / "serve" / "http" / "app.py"
    edges = {(s.importer, s.imported) for s in import_sites(REPO) if not s.in_function}
    assert ("labral.scoring", "labral.bundle") in edges
    assert len(edges) > 100


def test_no_import_cycle_among_product_modules() -> None:
    cycles = [" -> ".join(cycle) for cycle in import_cycles(REPO)]
    assert cycles == [], "import cycles (move the shared piece down):\n" + "\n".join(cycles)


def test_no_labral_import_inside_a_function() -> None:
    offenders, stale = inner_imports(REPO, ALLOWED_INNER_IMPORTS)
    assert stale == [], f"ALLOWED_INNER_IMPORTS names imports that are gone: {stale}"
    if offenders:
        pytest.fail(
            "import labral modules at the top of the file (only optional third-party "
            "dependencies may be imported lazily; break a cycle by moving the shared piece "
            "down):\n" + "\n".join(offenders)
        )
