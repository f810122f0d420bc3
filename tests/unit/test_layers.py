"""The layout holds: imports run one way, no cycle, no loose module, no module over 350 lines.

Every module under ``patcher/`` is parsed (nothing is imported) and every import in it is
resolved, the lazy ones inside functions and the ``TYPE_CHECKING`` ones included, to the module
it loads. The layers, top to bottom (each may import the ones it lists, and ``patcher`` itself
for ``__version__``)::

    handler (the SPEC's path)  -> aws.handler, nothing else
    aws, cli                   -> app (cli also -> lint), core
    lint                       -> sql, sources, core        (a layer beside app, for cli only)
    app                        -> engine, and what it wires into the engine: sources, db, sql
    engine                     -> sources, sql, core
    sources, db, sql           -> core
    core                       -> nothing
    dev                        -> anything; nothing under patcher/ imports dev
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "patcher"
MAX_LINES = 350

ALLOWED: dict[str, frozenset[str]] = {
    "handler": frozenset({"aws"}),
    "aws": frozenset({"app", "core"}),
    "cli": frozenset({"app", "lint", "core"}),
    "lint": frozenset({"sql", "sources", "core"}),
    "app": frozenset({"engine", "sources", "db", "sql", "core"}),
    "engine": frozenset({"sources", "sql", "core"}),
    "sources": frozenset({"core"}),
    "db": frozenset({"core"}),
    "sql": frozenset({"core"}),
    "core": frozenset(),
    "dev": frozenset(
        {"handler", "aws", "cli", "app", "lint", "engine", "sources", "db", "sql", "core"}
    ),
}
# Package __init__s that hold code: a library's public names (db, sources, lint, sql.risks),
# the version, or the SPEC's handler path. Every other __init__ (aws, cli, app, engine, core,
# sql, dev) holds a docstring at most, so importing a package loads nothing it does not ask for.
INIT_WITH_CODE = frozenset(
    {"patcher", "patcher.handler", "patcher.db", "patcher.sources", "patcher.sources.layouts"}
    | {"patcher.lint", "patcher.sql.risks"}
)


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the patcher module it loads
    line: int

    def __str__(self) -> str:
        return f"{self.module} imports {self.target} (line {self.line})"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


KNOWN = modules()


def _resolve(base: str, name: str | None) -> str:
    """``from base import name``: the submodule when ``name`` is one, else ``base``."""
    if name and f"{base}.{name}" in KNOWN:
        return f"{base}.{name}"
    return base


def imports_of(module: str, path: Path) -> Iterator[Import]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    yield from imports_in(module, package, path.read_text(encoding="utf-8"))


def imports_in(module: str, package: str, source: str) -> Iterator[Import]:
    """Every import of a patcher module anywhere in ``source``: top level, in functions, in
    ``if TYPE_CHECKING:``; relative ones resolved against ``package``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "patcher":
                    yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != "patcher":
                continue
            for alias in node.names:
                yield Import(module, _resolve(base, alias.name), node.lineno)


def all_imports() -> list[Import]:
    found = {i for module, path in KNOWN.items() for i in imports_of(module, path)}
    return sorted(found, key=lambda i: (i.module, i.line, i.target))


def layer(module: str) -> str | None:
    """``patcher.engine.runner`` -> ``engine``; ``patcher`` itself has none."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_module_belongs_to_a_layer() -> None:
    strays = sorted(m for m in KNOWN if m != "patcher" and layer(m) not in ALLOWED)
    assert not strays, f"modules outside every layer (add them to a package): {strays}"


def test_no_top_level_module_but_init_and_main() -> None:
    loose = sorted(
        p.name for p in ROOT.glob("*.py") if p.name not in ("__init__.py", "__main__.py")
    )
    assert not loose, f"top-level modules in patcher/ (move each into its layer): {loose}"


def test_imports_run_one_way() -> None:
    wrong = []
    for found in all_imports():
        here, there = layer(found.module), layer(found.target)
        if there is None or there == here:
            continue  # patcher itself (__version__) or a module of the same layer
        if there not in ALLOWED.get(here or "", frozenset()):
            allowed = sorted(ALLOWED.get(here or "", ()))
            wrong.append(f"{found}: {here} may import {allowed}, not {there}")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_every_import_names_a_module_that_exists() -> None:
    missing = [str(f) for f in all_imports() if f.target not in KNOWN]
    assert not missing, "imports of patcher modules that do not exist:\n" + "\n".join(missing)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def _package(module: str) -> str:
    return module if KNOWN[module].name == "__init__.py" else module.rpartition(".")[0]


def test_no_cycle_between_packages() -> None:
    edges: dict[str, set[str]] = {}
    for found in all_imports():
        if found.target in KNOWN and found.module != "patcher" and found.target != "patcher":
            here, there = _package(found.module), _package(found.target)
            if here != there:
                edges.setdefault(here, set()).add(there)
    cycles = _cycles(edges)
    assert not cycles, f"packages that import each other (directly or around a circle): {cycles}"


def test_no_cycle_between_modules() -> None:
    edges: dict[str, set[str]] = {}
    for found in all_imports():
        if found.target in KNOWN and found.target != found.module:
            if _package(found.module) == found.target:
                continue  # a module of a package reading its package's own names
            edges.setdefault(found.module, set()).add(found.target)
    cycles = _cycles(edges)
    assert not cycles, f"modules that import each other (directly or around a circle): {cycles}"


def test_nothing_imports_dev() -> None:
    wrong = [str(f) for f in all_imports() if layer(f.target) == "dev" and layer(f.module) != "dev"]
    assert not wrong, "dev/ is not in the Lambda package:\n" + "\n".join(wrong)


def test_no_module_over_the_limit() -> None:
    long = {m: n for m, p in KNOWN.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them): {long}"


def test_package_inits_stay_empty() -> None:
    """Importing a layer's package runs nothing: the cold start loads only what it asks for."""
    for module, path in KNOWN.items():
        if path.name != "__init__.py" or module in INIT_WITH_CODE:
            continue
        body = ast.parse(path.read_text()).body
        code = body[1:] if body and isinstance(body[0], ast.Expr) else body
        assert not code, f"{path} holds code; keep it to a docstring"


def test_the_handler_package_only_re_exports_the_handler() -> None:
    """SPEC section 4's ``patcher.handler.lambda_handler``: one import, of the real handler."""
    body = ast.parse((ROOT / "handler" / "__init__.py").read_text()).body
    imports = [n for n in body if isinstance(n, ast.Import | ast.ImportFrom)]
    assert [ast.unparse(n) for n in imports] == ["from patcher.aws.handler import lambda_handler"]
    rest = [n for n in body if not isinstance(n, ast.Import | ast.ImportFrom | ast.Expr)]
    assert all(isinstance(n, ast.Assign) and ast.unparse(n).startswith("__all__") for n in rest)


def test_the_checker_sees_lazy_relative_and_type_checking_imports() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from patcher.engine.ports import MigrationBackend\n"
        "def f():\n    from ..engine import runner\n    import patcher.db.history\n"
        "from . import output\n"
    )
    found = {i.target for i in imports_in("patcher.cli.x", "patcher.cli", source)}
    assert found == {
        "patcher.engine.ports",
        "patcher.engine.runner",
        "patcher.db.history",
        "patcher.cli.output",
    }


def test_the_cycle_finder_finds_a_circle_of_three() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
