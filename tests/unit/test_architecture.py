"""The layout rules of the architecture (docs/ARCHITECTURE.md), checked on the source tree itself.

- no import circle between modules of ``harness``: every import counts, function-local ones and those under
  ``if TYPE_CHECKING:`` included (a circle hidden by a deferred import is still two rooms that need each other);
- no function or method in ``harness`` longer than 120 lines;
- no module named like a leftover (``*_ext*``, ``*_v2*``);
- the layers of docs/ARCHITECTURE.md: every room (a folder directly under ``harness/``) belongs to one layer
  (:data:`LAYERS`), and an import from one room into another is allowed only towards a layer the importer's layer
  may use (:data:`MAY_IMPORT`); the rooms form no circle among themselves either (two rooms of one layer that
  need each other are one room).
"""

from __future__ import annotations

import ast
import functools
import graphlib
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[2] / "harness"
MAX_FUNCTION_LINES = 120

LAYERS: dict[str, tuple[str, ...]] = {
    "foundation": ("foundation", "stats"),
    "runtime": ("runtime",),
    "engine": ("models", "prompts", "engine"),
    "registry": ("registry",),
    "measurements": ("behaviour", "transfer", "geometry", "anatomy", "exchange"),
    "claims": ("claim",),
    "interface": ("plugin", "report", "store"),
}
"""The rooms of each layer, bottom to top (docs/ARCHITECTURE.md, "Layers")."""

MAY_IMPORT: dict[str, frozenset[str]] = {
    "foundation": frozenset(),
    "runtime": frozenset({"foundation"}),
    "engine": frozenset({"foundation", "runtime"}),
    "registry": frozenset({"foundation"}),
    "measurements": frozenset({"foundation", "runtime", "engine"}),
    "claims": frozenset({"foundation", "runtime", "engine", "registry", "measurements"}),
    "interface": frozenset({"foundation", "runtime", "engine", "registry", "measurements", "claims"}),
}
"""Which other layers each layer may import. The registry (what is claimed and decided before data) and the
measurements (what is measured) never import each other: a measurement does not depend on how a claim will judge
it, and a claim's rule does not depend on how it is measured."""

ROOT_MODULE_LAYER = "foundation"
"""``harness/__init__.py`` (the offline switch) counts as foundation."""


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


@functools.cache
def _parsed_import_graph() -> dict[str, frozenset[str]]:
    sources = _harness_sources()
    known = set(sources)
    return {
        name: frozenset(_imported_modules(tree, name, path.name == "__init__.py", known))
        for name, (path, tree) in sources.items()
    }


def _import_graph() -> dict[str, set[str]]:
    """Harness module → the harness modules it imports; parsed once per process, a fresh copy per call (tests add
    edges to it)."""
    return {name: set(imported) for name, imported in _parsed_import_graph().items()}


def room_of(module: str) -> str:
    """The room of a harness module: the folder directly under ``harness/`` (``harness`` for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def layer_of(room: str) -> str | None:
    if room == "harness":
        return ROOT_MODULE_LAYER
    return next((layer for layer, rooms in LAYERS.items() if room in rooms), None)


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """One line per import that crosses layers against :data:`MAY_IMPORT`, or comes from or goes to a room with
    no layer."""
    problems = []
    for importer, imported in sorted(graph.items()):
        for target in sorted(imported):
            source_room, target_room = room_of(importer), room_of(target)
            if source_room == target_room:
                continue
            source_layer, target_layer = layer_of(source_room), layer_of(target_room)
            if source_layer is None or target_layer is None:
                unplaced = source_room if source_layer is None else target_room
                problems.append(f"{importer} -> {target}: room {unplaced!r} has no layer in LAYERS")
            elif source_layer != target_layer and target_layer not in MAY_IMPORT[source_layer]:
                problems.append(f"{importer} -> {target}: {source_layer} ({source_room}) may not import "
                                f"{target_layer} ({target_room})")
    return problems


def room_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    rooms: dict[str, set[str]] = {}
    for importer, imported in graph.items():
        rooms.setdefault(room_of(importer), set()).update(room_of(t) for t in imported if room_of(t) != room_of(importer))
    return rooms


def test_every_import_respects_the_layers() -> None:
    problems = layer_violations(_import_graph())
    assert not problems, "imports against the layers of docs/ARCHITECTURE.md:\n" + "\n".join(problems)


def test_every_folder_of_harness_has_a_layer() -> None:
    rooms = {p.name for p in HARNESS.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    placed = {room for members in LAYERS.values() for room in members}
    assert rooms == placed, f"rooms without a layer: {sorted(rooms - placed)}; layers naming no room: {sorted(placed - rooms)}"
    assert not [p.name for p in HARNESS.glob("*.py") if p.name != "__init__.py"], "a module directly under harness/"


def test_rooms_form_no_circle() -> None:
    try:
        tuple(graphlib.TopologicalSorter(room_graph(_import_graph())).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"rooms that import each other: {' -> '.join(exc.args[1])}")


@pytest.mark.parametrize(("importer", "target"), [
    ("harness.engine.generation", "harness.geometry.metrics"),  # the engine reaching up into a measurement
    ("harness.transfer.scorer_corpus", "harness.registry.claims"),  # an experiment reading the registry
    ("harness.registry.claims", "harness.behaviour"),  # the registry reading a measurement
    ("harness.stats.power", "harness.runtime.storage"),  # foundation importing anything
    ("harness.newroom.module", "harness.engine.kvcache"),  # a room nobody placed
])
def test_the_layer_check_sees_an_upward_import(importer: str, target: str) -> None:
    """The check above can fail: each of these edges, added to the real graph, is reported."""
    graph = _import_graph()
    graph.setdefault(importer, set()).add(target)
    assert any(line.startswith(f"{importer} -> {target}:") for line in layer_violations(graph))


def test_the_room_check_sees_a_circle_within_a_layer() -> None:
    graph = _import_graph()
    graph["harness.behaviour.validation"].add("harness.transfer.runner")  # transfer imports behaviour already
    with pytest.raises(graphlib.CycleError):
        tuple(graphlib.TopologicalSorter(room_graph(graph)).static_order())


def test_harness_has_no_import_circle() -> None:
    graph = _import_graph()
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
