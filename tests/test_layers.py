"""The package's layers point one way: base modules <- marketdata <- engine <- evaluation, ops
<- cli. A test reads every module's imports (static, lazy ones inside functions included)."""

import ast
from pathlib import Path

import fxforecast

PACKAGE = Path(fxforecast.__file__).parent
# Rank of each top-level part; a module may import from lower ranks and from its own part.
RANKS = {
    "errors": 0,
    "settings": 0,
    "horizons": 0,
    "quantiles": 0,
    "fsio": 0,
    "memory": 0,
    "marketdata": 1,
    "engine": 2,
    "evaluation": 3,
    "ops": 3,
    "cli": 4,
    "__main__": 5,
}


def _part(module: str) -> str:
    """fxforecast.engine.members.var -> engine; fxforecast -> '' (the package's __init__)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> list[str]:
    """The fxforecast modules a file imports, as absolute names."""
    module = ".".join(("fxforecast", *path.relative_to(PACKAGE).with_suffix("").parts))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    package = package.removesuffix(".__init__")
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            # `from . import x` names modules; `from .m import x` names names in m.
            found.extend([f"{base}.{a.name}" for a in node.names] if not node.module else [base])
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return [name for name in found if name.split(".")[0] == "fxforecast"]


def test_every_part_has_a_rank():
    parts = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()}
    parts -= {"__init__", "__pycache__"}
    assert parts == set(RANKS)


def test_no_import_points_to_a_higher_or_sibling_layer():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = _part(".".join(("fxforecast", *path.relative_to(PACKAGE).with_suffix("").parts)))
        for name in _imports(path):
            there = _part(name)
            if there in ("", here) or there not in RANKS:
                continue  # the package's own __init__ (its version), or within the same part
            # Base modules (rank 0) may use each other; other parts only lower ranks.
            if RANKS[there] > RANKS[here] or (RANKS[there] == RANKS[here] > 0):
                wrong.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert wrong == []


def test_the_checker_sees_relative_and_lazy_imports():
    imports = _imports(PACKAGE / "cli.py")
    assert "fxforecast.ops.service" in imports  # inside a function
    assert "fxforecast.errors" in imports
    assert "fxforecast.engine.members.base" in _imports(PACKAGE / "engine" / "runner.py")
    assert "fxforecast.marketdata.providers.fred" in _imports(
        PACKAGE / "marketdata" / "providers" / "__init__.py"
    )
