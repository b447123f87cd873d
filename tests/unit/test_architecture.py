"""The layout rules of the architecture (docs/ARCHITECTURE.md), checked on the source tree itself.

- no import circle between modules of ``harness``: every import counts, function-local ones and those under
  ``if TYPE_CHECKING:`` included (a circle hidden by a deferred import is still two rooms that need each other);
- no function or method in ``harness`` longer than 120 lines;
- no module named like a leftover (``*_ext*``, ``*_v2*``).
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[2] / "harness"
MAX_FUNCTION_LINES = 120


def _module_name(path: Path) -> str:
    parts = path.relative_to(HARNESS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(tree: ast.Module, module: str, is_package: bool, known: set[str]) -> set[str]:
    """Harness modules that ``module`` imports anywhere (module level, inside functions, for type checking)."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            # ``from harness.x import y`` imports the submodule harness.x.y when y is one
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name in known and name != module}


def _harness_sources() -> dict[str, tuple[Path, ast.Module]]:
    return {_module_name(p): (p, ast.parse(p.read_text(), str(p))) for p in sorted(HARNESS.rglob("*.py"))}


def test_harness_has_no_import_circle() -> None:
    sources = _harness_sources()
    known = set(sources)
    graph = {
        name: _imported_modules(tree, name, path.name == "__init__.py", known) for name, (path, tree) in sources.items()
    }
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import circle in harness: {' -> '.join(exc.args[1])}")


def test_cycle_detection_sees_a_circle() -> None:
    """The check above can fail: a two-module circle is reported."""
    graph = {"harness.a": {"harness.b"}, "harness.b": {"harness.a"}}
    with pytest.raises(graphlib.CycleError):
        tuple(graphlib.TopologicalSorter(graph).static_order())


def test_no_function_in_harness_exceeds_the_length_limit() -> None:
    too_long = [
        f"{path.relative_to(HARNESS.parent)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path, tree in _harness_sources().values()
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not too_long, f"functions over {MAX_FUNCTION_LINES} lines: {too_long}"


def test_no_leftover_module_names() -> None:
    leftovers = [str(p.relative_to(HARNESS.parent)) for p in HARNESS.rglob("*.py")
                 if any(tag in p.stem for tag in ("_ext", "_v2", "_new", "_old"))]
    assert not leftovers, f"modules named like leftovers: {leftovers}"
