"""The package's shape, kept fixed: data flows one way through layers of modules, with no import cycle (imports
inside functions counted too), bertpeft modules imported at module level only, and argparse known to cli.py alone."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bertpeft"
# Each module imports only from its own layer or those above it in this list (lowest first).
LAYERS = (
    ("configurations",),
    ("config",),
    ("result", "layout", "device", "fixtures", "hub", "metrics", "stats"),
    ("manifest", "data", "models", "tracking", "launch"),
    ("benchmark", "probe"),
    ("training",),
    ("cards", "export"),
    ("report", "plots", "explore", "notebook", "speed", "methods"),
    ("series",),
    ("cli", "__main__"),
)
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    """`bertpeft/speed/timing.py` -> `speed.timing`; the package itself is ``."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path):
    """(imported bertpeft module, line, inside a function?) for every import statement in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path).split(".") if path.name == "__init__.py" else module_name(path).split(".")[:-1]
    package = [p for p in package if p]
    in_function = {
        id(node)
        for function in ast.walk(tree)
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
        for node in ast.walk(function)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1] + ([node.module] if node.module else [])
            targets = [".".join(base)] if node.module else [".".join([*base, a.name]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bertpeft"):
            targets = [node.module.removeprefix("bertpeft").lstrip(".")]
        elif isinstance(node, ast.Import):
            targets = [a.name.removeprefix("bertpeft").lstrip(".") for a in node.names if a.name.startswith("bertpeft")]
        else:
            continue
        for target in targets:
            yield target, node.lineno, id(node) in in_function


def graph():
    edges = {}
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path)
        edges[name] = {(t, line, inner) for t, line, inner in imports(path) if t != name}
    return edges


def layer_of(module: str) -> int:
    top = module.split(".")[0] or "config"  # the package's __init__ re-exports the configuration
    assert top in LAYER, f"bertpeft.{module} is in no layer of tests/test_architecture.py: add it where it belongs"
    return LAYER[top]


def test_every_module_has_a_layer():
    for module in graph():
        layer_of(module)


def test_modules_import_only_from_their_layer_or_below():
    wrong = [
        f"bertpeft.{module} (layer {layer_of(module)}) imports bertpeft.{target} (layer {layer_of(target)}), line {line}"
        for module, targets in graph().items()
        for target, line, _ in targets
        if layer_of(target) > layer_of(module)
    ]
    assert not wrong, "\n".join(wrong)


def test_bertpeft_modules_are_imported_at_module_level_only():
    """Imports inside functions are for heavy third-party packages; one of ours there would hide a cycle."""
    inner = [
        f"bertpeft.{module} line {line}: bertpeft.{target}"
        for module, targets in graph().items()
        for target, line, inside in targets
        if inside
    ]
    assert not inner, "\n".join(inner)


def test_the_import_graph_has_no_cycle():
    edges = {module: {t for t, _, _ in targets} & set(graph()) for module, targets in graph().items()}
    visiting, done, cycle = set(), set(), []

    def visit(module, trail):
        if module in done or cycle:
            return
        if module in visiting:
            cycle.extend(trail[trail.index(module) :] + [module])
            return
        visiting.add(module)
        for target in sorted(edges.get(module, ())):
            visit(target, [*trail, module])
        visiting.discard(module)
        done.add(module)

    for module in sorted(edges):
        visit(module, [])
    assert not cycle, " -> ".join(cycle)


def test_only_the_cli_knows_argparse():
    users = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            if "argparse" in names:
                users.append(module_name(path))
    assert users == ["cli"], users


def test_the_contract_catches_a_cycle(tmp_path, monkeypatch):
    """The checks above can fail: a module of a low layer importing a high one is reported."""
    fake = tmp_path / "bertpeft"
    fake.mkdir()
    (fake / "config.py").write_text("def f():\n    from .series import run_series\n")
    (fake / "series.py").write_text("from .config import f\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    edges = graph()
    assert ("series", 2, True) in edges["config"]
    assert [t for t, _, _ in edges["series"]] == ["config"]


def test_every_name_a_notebook_imports_from_bertpeft_exists():
    """A renamed or moved function breaks the notebooks first: caught here in a second, not after a series run."""
    import importlib

    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    missing = []
    for source in sorted(notebooks.glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "bertpeft":
                module = importlib.import_module(node.module)
                missing += [f"{source.name}: {node.module}.{a.name}" for a in node.names if not hasattr(module, a.name)]
    assert not missing, missing
