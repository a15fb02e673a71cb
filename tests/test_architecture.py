"""The shape of ``app/``, checked from its import graph (issue 20).

Requests flow one way, so imports do too: each module imports only from its own layer or
the layers below it, and no two modules import each other, even lazily, inside a function.
A new module must be given a layer in LAYERS; a loose module directly in ``app/`` has
none.
"""

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parent.parent / "app"

# Lowest first. A module belongs to the longest prefix naming it.
LAYERS = [
    # Everything imports these; they import no other part of app. (config, errors and
    # extensions stay at the top of app/, where every Flask project keeps them.)
    ("foundation", ["app.config", "app.errors", "app.extensions", "app.formats",
                    "app.version"]),
    ("database", ["app.database"]),
    ("models", ["app.models"]),
    ("observability", ["app.observability"]),
    ("security", ["app.security"]),
    # What the services are built from: ID tokens, texts, push messages and their ledger.
    ("domain", ["app.identity", "app.sms", "app.push"]),
    ("services", ["app.resources"]),
    ("web", ["app.web", "app.jsonapi"]),
    ("surfaces", ["app.api", "app.compat", "app.openapi"]),
    # The push worker and the jobs it runs (dispatching a chunk, with the Live Activities it
    # goes to; expanding an audience) use the services (devices.invalidate, audiences).
    ("ops", ["app.ops", "app.push.worker", "app.push.dispatcher", "app.push.live_activities",
             "app.push.expansion"]),
    ("factory", ["app"]),
    # ``flask doctor`` builds the app itself, to check the database it would use.
    ("entry points", ["app.ops.doctor", "app.ops.command"]),
]
LAYER_NAMES = [name for name, _ in LAYERS]

# Over MAX_LINES, with the reason and a ceiling so they do not grow.
MAX_LINES = 500
LONG_FILES = {
    "app/push/http2.py": (580, "one HTTP/2 connection's state machine; its codec is "
                               "already in http2_codec.py"),
}
ENVIRONMENT_READERS = ("app/config/__init__.py", "app/config/environment.py")


def module_name(path):
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(APP.rglob("*.py"))}


def layer_of(module):
    candidates = [(len(prefix), index) for index, (_, prefixes) in enumerate(LAYERS)
                  for prefix in prefixes
                  if module == prefix or (prefix != "app" and module.startswith(prefix + "."))]
    return max(candidates)[1] if candidates else None


def imported_modules(module, node):
    """The app modules an import statement loads (``from a import b``: the module a.b
    when b is one, else a)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in MODULES}
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    base = node.module if node.level == 0 else ".".join(filter(None, [package, node.module]))
    if base is None or not (base == "app" or base.startswith("app.")):
        return set()
    found = {f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES}
    if len(found) < len(node.names) and base in MODULES:
        found.add(base)
    return found


class Imports(ast.NodeVisitor):
    def __init__(self, module):
        self.module = module
        self.depth = 0  # functions entered
        self.edges = []  # (imported module, at module level?, line)

    def visit_FunctionDef(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_If(self, node):
        """An ``if TYPE_CHECKING:`` block's imports never run: only mypy reads them."""
        if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
            self.visit(node.test)
            for child in node.body:
                self.visit(child)
        for child in node.orelse:
            self.visit(child)

    def visit_Import(self, node):
        for target in imported_modules(self.module, node):
            self.edges.append((target, self.depth == 0, node.lineno))

    visit_ImportFrom = visit_Import


def import_graph():
    graph = {}
    for module, path in MODULES.items():
        visitor = Imports(module)
        visitor.visit(ast.parse(path.read_text(), str(path)))
        graph[module] = [edge for edge in visitor.edges if edge[0] != module]
    return graph


GRAPH = import_graph()


def cycles(module_level_only):
    """Each import cycle once, as the list of modules around it."""
    edges = {module: sorted({target for target, top, _ in found if top or not module_level_only})
             for module, found in GRAPH.items()}
    found, state, stack = [], {}, []

    def visit(module):
        state[module] = "open"
        stack.append(module)
        for target in edges[module]:
            if state.get(target) == "open":
                found.append([*stack[stack.index(target):], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module)
    return found


def test_every_module_has_a_layer():
    unplaced = [module for module in MODULES if layer_of(module) is None]
    assert not unplaced, ("give these modules a layer in LAYERS (a loose module belongs in "
                          f"the package of its layer): {unplaced}")


def test_no_import_cycle_among_module_level_imports():
    assert cycles(module_level_only=True) == []


def test_no_import_cycle_even_through_imports_inside_functions():
    assert cycles(module_level_only=False) == []


def test_no_module_imports_from_a_layer_above_its_own():
    upward = []
    for module, edges in GRAPH.items():
        for target, _, line in edges:
            here, there = layer_of(module), layer_of(target)
            if None not in (here, there) and there > here:
                upward.append(f"{module}:{line} ({LAYER_NAMES[here]}) imports {target} "
                              f"({LAYER_NAMES[there]})")
    assert upward == []


def test_no_file_is_over_500_lines():
    too_long = {}
    for path in MODULES.values():
        name = path.relative_to(APP.parent).as_posix()
        ceiling = LONG_FILES.get(name, (MAX_LINES, ""))[0]
        lines = len(path.read_text().splitlines())
        if lines > ceiling:
            too_long[name] = lines
    assert too_long == {}


@pytest.mark.parametrize("name", sorted(LONG_FILES))
def test_a_long_file_allowed_still_exists_and_is_still_long(name):
    path = APP.parent / name
    assert path.exists() and len(path.read_text().splitlines()) > MAX_LINES, \
        f"{name} no longer needs its place in LONG_FILES"


def reads_the_environment(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == "os" and node.attr in ("environ", "getenv", "environb"):
            return node.lineno
        if isinstance(node, ast.ImportFrom) and node.module == "os" and \
                {alias.name for alias in node.names} & {"environ", "getenv", "environb"}:
            return node.lineno
    return None


def test_only_the_configuration_reads_the_environment():
    readers = {}
    for path in MODULES.values():
        name = path.relative_to(APP.parent).as_posix()
        line = reads_the_environment(ast.parse(path.read_text()))
        if line and name not in ENVIRONMENT_READERS:
            readers[name] = line
    assert readers == {}
