"""The project's import structure, read statically from the source: the runner's layers, genomics'
independence, no import circle anywhere, and no module over 400 lines."""

from __future__ import annotations

import ast
import fnmatch
import shutil
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("genomics", "operators", "phenotypes", "strategies", "zoo", "runner")

#: The runner's layers, top to bottom; a module may import its own layer's modules or lower ones.
#: ``runner`` (the package ``__init__``) is apart: it may only name ``runner.api``, lazily.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("L6", ("runner.cli", "runner.cli.*")),
    (
        "L5",
        (
            "runner.session",
            "runner.display",
            "runner.report",
            "runner.report.*",
            "runner.export",
            "runner.api",
        ),
    ),
    ("L4", ("runner.evolution", "runner.evolution.*")),
    ("L3", ("runner.execution", "runner.execution.*", "runner.store", "runner.store.*")),
    ("L2", ("runner.config", "runner.config.*", "runner.judge", "runner.files")),
    (
        "L1",
        (
            "runner.records",
            "runner.errors",
            "runner.failures",
            "runner.rng",
            "runner.faults",
            "runner.extras",
            "runner.lock",
            "runner.executors",
            "runner.proxies",
            "runner.evaluations",
        ),
    ),
)
#: Siblings of one layer that may not import each other.
SIBLINGS = (("runner.execution", "runner.store"),)
#: What the package ``runner`` may import, and only inside a function.
RUNNER_INIT_MAY_NAME = frozenset({"runner.api"})

MAX_LINES = 400
#: Modules outside runner/ allowed over MAX_LINES (runner/ has no exceptions).
LONG_MODULES = frozenset(
    {
        # Dataset loading: the bundled, torchvision and folder datasets with their checks; one
        # module so far, to be split when next changed.
        "phenotypes/data.py",
    }
)


@dataclass(frozen=True)
class Import:
    """One import statement's target, as the importing module names it."""

    source: str
    target: str  # a project module, or an outside name such as "torch.nn"
    line: int
    lazy: bool  # inside a function: runs when called, but is a dependency all the same


def modules_of(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Every module of ``packages`` under ``root``, by dotted name (a package by its own)."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def imports_of(module: str, path: Path, known: set[str]) -> list[Import]:
    """Every import in ``path``'s source, wherever it stands: in a function, under ``if
    TYPE_CHECKING:`` or ``try:``. A lazy or typing-only import is still a dependency (it runs,
    or the names it gives are used), so it counts like any other. Names in strings (the
    executors' registry's ``module:Class``) are not imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []

    def add(name: str, node: ast.AST, lazy: bool) -> None:
        found.append(Import(module, _resolve(name, known), node.lineno, lazy))

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    add(alias.name, child, inner)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - child.level + 1]
                    prefix = ".".join([*base, *([child.module] if child.module else [])])
                else:
                    prefix = child.module or ""
                for alias in child.names:
                    # `from x import y` imports module x.y when there is one, else a name of x.
                    wanted = f"{prefix}.{alias.name}"
                    add(wanted if wanted in known else prefix, child, inner)
            visit(child, inner)

    visit(tree, False)
    return found


def _resolve(name: str, known: set[str]) -> str:
    # A project name resolves to the longest module it lies in (`genomics.genes.Conv`'s module).
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in known:
            return ".".join(parts[:end])
    return name


def import_graph(root: Path, packages: tuple[str, ...] = PACKAGES) -> list[Import]:
    """Every import of every module of ``packages`` under ``root``."""
    modules = modules_of(root, packages)
    known = set(modules)
    return [found for name, path in modules.items() for found in imports_of(name, path, known)]


def internal_edges(imports: list[Import], packages: tuple[str, ...] = PACKAGES) -> dict:
    """Module -> the project modules it imports (itself included, for a self import)."""
    graph: dict[str, set[str]] = {}
    for found in imports:
        graph.setdefault(found.source, set())
        if found.target.split(".")[0] in packages:
            graph[found.source].add(found.target)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle: each strongly connected component of more than one module, and each
    module importing itself, as one closed path through it (``[a, b, a]``)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    counter = 0
    nodes = sorted(set(graph) | {t for targets in graph.values() for t in targets})

    # Tarjan's algorithm, iterative: the graph is deep enough to trouble recursion on some runs.
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            step = next(successors, None)
            if step is not None:
                if step not in index:
                    index[step] = low[step] = counter
                    counter += 1
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(sorted(graph.get(step, ())))))
                elif step in on_stack:
                    low[node] = min(low[node], index[step])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.get(node, ()):
                    components.append(component)
    return sorted((_closed_path(graph, c) for c in components), key=lambda p: p[0])


def _closed_path(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    # The shortest way from the component's first module back to itself, inside the component.
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for step in sorted(graph.get(node, ())):
                if step == start:
                    return [*paths[node], start]
                if step in component and step not in paths:
                    paths[step] = [*paths[node], step]
                    following.append(step)
        frontier = following
    raise AssertionError(f"no circle through {start}")  # a component always has one


def layer_of(module: str) -> int | None:
    """The rank of ``module``'s runner layer (higher is higher up), or None outside them."""
    for rank, (_, patterns) in enumerate(reversed(LAYERS), start=1):
        if any(fnmatch.fnmatchcase(module, pattern) for pattern in patterns):
            return rank
    return None


def _name(rank: int) -> str:
    return LAYERS[len(LAYERS) - rank][0]


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def layer_violations(imports: list[Import]) -> list[str]:
    """One line per runner import against the layers: upward, between siblings, from a runner
    module without a layer, or from the package ``runner`` beyond a lazy ``runner.api``."""
    problems = []
    for found in imports:
        source, target = found.source, found.target
        if not _in(source, "runner"):
            continue
        where = f"{source}:{found.line} imports {target}"
        if source == "runner":
            # Outside libraries (typing) are its own business; of the project, only the API.
            project = target.split(".")[0] in PACKAGES
            if project and (target not in RUNNER_INIT_MAY_NAME or not found.lazy):
                problems.append(f"{where}: the package runner may only import runner.api lazily")
            continue
        rank = layer_of(source)
        if rank is None:
            problems.append(f"{source} is in no layer: add it to tests/test_layers.py's LAYERS")
            continue
        if not _in(target, "runner") or target == "runner":
            continue
        target_rank = layer_of(target)
        if target_rank is None:
            continue  # reported as its own module's problem
        if target_rank > rank:
            problems.append(f"{where}: {_name(rank)} may not import {_name(target_rank)}")
        for one, other in SIBLINGS:
            for a, b in ((one, other), (other, one)):
                if _in(source, a) and _in(target, b):
                    problems.append(f"{where}: siblings {a} and {b} may not import each other")
    return sorted(set(problems))


def _circle_lines(found: list[list[str]]) -> str:
    return "\n".join(" -> ".join(path) for path in found)


# The project's own tree.


def test_the_runners_layers_are_kept():
    problems = layer_violations(import_graph(ROOT))
    assert not problems, "runner layer violations:\n" + "\n".join(problems)


def test_every_runner_module_has_a_layer():
    unplaced = [m for m in modules_of(ROOT, ("runner",)) if m != "runner" and not layer_of(m)]
    assert not unplaced, f"runner modules in no layer of tests/test_layers.py: {unplaced}"


def test_no_import_circle():
    found = circles(internal_edges(import_graph(ROOT)))
    assert not found, "import circles:\n" + _circle_lines(found)


def test_genomics_imports_only_itself_and_no_torch():
    outside = [
        f"{i.source}:{i.line} imports {i.target}"
        for i in import_graph(ROOT, ("genomics",))
        if i.target.split(".")[0] in {"torch", *PACKAGES} - {"genomics"}
    ]
    assert not outside, "genomics imports:\n" + "\n".join(outside)


def test_no_module_over_400_lines():
    long = []
    for path in modules_of(ROOT).values():
        relative = path.relative_to(ROOT).as_posix()
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES and relative not in LONG_MODULES:
            long.append(f"{relative}: {lines} lines")
    assert not long, f"modules over {MAX_LINES} lines:\n" + "\n".join(sorted(long))


def test_long_module_exceptions_are_outside_runner_and_still_needed():
    for relative in LONG_MODULES:
        assert not relative.startswith("runner/"), relative
        lines = len((ROOT / relative).read_text(encoding="utf-8").splitlines())
        assert lines > MAX_LINES, f"{relative} is {lines} lines: remove it from LONG_MODULES"


# The checker itself.


def _imports(edges: list[tuple[str, str]], lazy: bool = False) -> list[Import]:
    return [Import(a, b, 1, lazy) for a, b in edges]


def test_circles_finds_each_circle_and_self_import_and_nothing_else():
    graph = {
        "a": {"b"},
        "b": {"c"},
        "c": {"a", "d"},
        "d": {"e"},
        "e": set(),
        "f": {"f"},
        "g": {"d"},
    }
    assert circles(graph) == [["a", "b", "c", "a"], ["f", "f"]]
    graph["c"] = {"d"}
    graph["f"] = set()
    assert circles(graph) == []


def test_layer_violations_finds_upward_and_sibling_imports():
    allowed = _imports(
        [
            ("runner.cli.search", "runner.session"),
            ("runner.session", "runner.evolution.engine"),
            ("runner.evolution.engine", "runner.store"),
            ("runner.store.database", "runner.errors"),
            ("runner.evolution.engine", "runner.evolution.budget"),
            ("runner.records", "genomics"),
        ]
    )
    assert layer_violations(allowed) == []
    upward = _imports([("runner.records", "runner.session")])
    assert layer_violations(upward) == [
        "runner.records:1 imports runner.session: L1 may not import L5"
    ]
    sibling = _imports([("runner.store.history", "runner.execution.base")])
    assert layer_violations(sibling) == [
        "runner.store.history:1 imports runner.execution.base: "
        "siblings runner.store and runner.execution may not import each other"
    ]
    assert layer_violations(_imports([("runner.newcomer", "runner.errors")])) == [
        "runner.newcomer is in no layer: add it to tests/test_layers.py's LAYERS"
    ]


def test_the_runner_package_may_name_only_runner_api_lazily():
    assert layer_violations(_imports([("runner", "runner.api")], lazy=True)) == []
    assert layer_violations(_imports([("runner", "runner.api")])) == [
        "runner:1 imports runner.api: the package runner may only import runner.api lazily"
    ]
    assert layer_violations(_imports([("runner", "runner.session")], lazy=True)) != []
    assert layer_violations(_imports([("runner", "genomics")], lazy=True)) != []
    assert layer_violations(_imports([("runner", "typing")])) == []


def test_an_added_upward_import_in_a_copied_module_is_found(tmp_path):
    # The real records and session modules, copied; records then imports session inside a
    # function, which a lazy import does not excuse.
    (tmp_path / "runner").mkdir()
    (tmp_path / "runner" / "__init__.py").write_text("")
    shutil.copy(ROOT / "runner" / "session.py", tmp_path / "runner" / "session.py")
    records = (ROOT / "runner" / "records.py").read_text(encoding="utf-8")
    (tmp_path / "runner" / "records.py").write_text(records)
    assert layer_violations(import_graph(tmp_path, ("runner",))) == []

    added = records + "\n\ndef _late():\n    from .session import start\n\n    return start\n"
    (tmp_path / "runner" / "records.py").write_text(added)
    line = len(records.splitlines()) + 4
    assert layer_violations(import_graph(tmp_path, ("runner",))) == [
        f"runner.records:{line} imports runner.session: L1 may not import L5"
    ]
    assert circles(internal_edges(import_graph(tmp_path, ("runner",)))) == []


def test_imports_of_counts_relative_lazy_and_typing_only_imports(tmp_path):
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    for name in ("__init__", "a", "b", "sub/__init__", "sub/c"):
        (tmp_path / "pkg" / f"{name}.py").write_text("")
    (tmp_path / "pkg" / "sub" / "d.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import c\n"
        "from .. import a\n"
        "if TYPE_CHECKING:\n"
        "    from ..b import Thing\n"
        "def f():\n"
        "    import torch.nn\n"
        "    return 'pkg.missing:Name'\n"
    )
    known = set(modules_of(tmp_path, ("pkg",)))
    found = imports_of("pkg.sub.d", tmp_path / "pkg" / "sub" / "d.py", known)
    assert [(i.target, i.line, i.lazy) for i in found] == [
        ("typing", 1, False),
        ("pkg.sub.c", 2, False),
        ("pkg.a", 3, False),
        ("pkg.b", 5, False),
        ("torch.nn", 7, True),
    ]
