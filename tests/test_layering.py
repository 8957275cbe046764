"""The dependency direction, read from the code: CLI -> library -> model package -> foundation.

Every package (and each top-level module of ``dkt``) is stated here with what it may import
from the project besides itself. Every ``import`` in every module, function-level ones
included, is checked, so a shortcut that makes the model know the CLI, or a runtime know the
pipeline, fails here by name; a package missing from the table fails too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Modules that hold no project knowledge: every package may use them.
FOUNDATION = {
    "dkt._version", "dkt.errors", "dkt.atomic", "dkt.downloads", "dkt.limits", "dkt.csvcells"
}  # fmt: skip
#: The library's entry points (``import dkt`` and ``dkt.Harmonizer`` are served from these).
FRONT = {"dkt", "dkt.api", "dkt.inputs", "dkt.doctor"}

_BELOW_FRONT = {
    "dkt.dktnet", "dkt.imaging", "backends", "training", "dkt.demo", "dkt.inference",
    "dkt.export", "dkt.evaluation",
}  # fmt: skip

#: Unit -> the project units it may import, bottom to top. A unit is a package, or one
#: top-level module of ``dkt``.
ALLOWED: dict[str, set[str]] = {
    **{name: set() for name in FOUNDATION},
    "dkt.dktnet": set(),
    "dkt.imaging": {"dkt.dktnet"},
    "backends": {"dkt.dktnet"},
    "training": {"dkt.dktnet", "dkt.imaging"},
    "dkt.demo": {"dkt.dktnet", "dkt.imaging"},
    "dkt.inference": {"dkt.dktnet", "dkt.imaging", "backends"},
    "dkt.export": {"dkt.dktnet", "dkt.imaging", "backends", "dkt.inference", "dkt.demo"},
    "dkt.evaluation": {
        "dkt.dktnet",
        "dkt.imaging",
        "backends",
        "dkt.inference",
        "dkt.demo",
        "training",
    },
    "dkt.inputs": {"dkt.dktnet", "dkt.imaging"},
    "dkt.api": {"dkt.dktnet", "dkt.imaging", "backends", "dkt.inference", "dkt.inputs"},
    "dkt.doctor": _BELOW_FRONT,
    "dkt": {"dkt.api", "dkt.inputs", "dkt.inference", "dkt.dktnet"},
    "dkt.serve": _BELOW_FRONT | FRONT,
    "dkt.__main__": {"dkt_cli"},
    "dkt_cli": _BELOW_FRONT | FRONT | {"dkt.serve"},
}
#: Package units and the folders that hold them.
PACKAGES = {
    "dkt.dktnet": "dkt/dktnet", "dkt.imaging": "dkt/imaging", "dkt.demo": "dkt/demo",
    "dkt.inference": "dkt/inference", "dkt.export": "dkt/export",
    "dkt.evaluation": "dkt/evaluation", "dkt.serve": "dkt/serve",
    "backends": "backends", "training": "training", "dkt_cli": "dkt_cli",
}  # fmt: skip
TOP_LEVEL = ("dkt", "dkt_cli", "backends", "training")
#: Packages that must not know the command line's libraries (Typer, Rich).
NO_CLI_LIBRARIES = sorted(set(ALLOWED) - {"dkt_cli", "dkt.__main__"})


def unit_files(unit: str) -> list[Path]:
    """The module files of a unit."""
    if unit in PACKAGES:
        return sorted((ROOT / PACKAGES[unit]).rglob("*.py"))
    if unit == "dkt":
        return [ROOT / "dkt" / "__init__.py"]
    return [ROOT / (unit.replace(".", "/") + ".py")]


def imports(files: list[Path]) -> list[tuple[str, str]]:
    """``(module file, imported name)`` for every import in the files."""
    found = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found += [(path.name, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module == "dkt":
                found += [(path.name, f"dkt.{alias.name}") for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.append((path.name, node.module))
    return found


def unit_of(name: str) -> str | None:
    """The unit an imported name belongs to, or ``None`` for other projects' modules."""
    parts = name.split(".")
    if parts[0] in {"dkt_cli", "backends", "training"}:
        return parts[0]
    if parts[0] != "dkt":
        return None
    if len(parts) == 1:
        return "dkt"
    return f"dkt.{parts[1]}"


def test_every_package_and_module_is_stated() -> None:
    """A new package or top-level module must take a place in the table."""
    found = {f"dkt.{p.stem}" for p in (ROOT / "dkt").glob("*.py") if p.stem != "__init__"}
    found |= {f"dkt.{p.parent.name}" for p in (ROOT / "dkt").glob("*/__init__.py")}
    found |= {name for name in TOP_LEVEL if (ROOT / name / "__init__.py").is_file()}
    assert found - set(ALLOWED) == set()
    assert all(unit_files(unit) and all(f.is_file() for f in unit_files(unit)) for unit in found)


@pytest.mark.parametrize("unit", sorted(ALLOWED))
def test_each_unit_imports_only_what_is_below_it(unit: str) -> None:
    if not all(f.is_file() for f in unit_files(unit)):
        pytest.skip(f"{unit} is stated but does not exist yet")
    allowed = ALLOWED[unit] | FOUNDATION | {unit}
    wrong = [
        f"{module}: {name}"
        for module, name in imports(unit_files(unit))
        if (target := unit_of(name)) is not None and target not in allowed
    ]
    assert not wrong, f"{unit} reaches up or sideways: {wrong}"


@pytest.mark.parametrize("unit", NO_CLI_LIBRARIES)
def test_no_library_package_knows_the_command_line(unit: str) -> None:
    if not all(f.is_file() for f in unit_files(unit)):
        pytest.skip(f"{unit} is stated but does not exist yet")
    wrong = [
        f"{module}: {name}"
        for module, name in imports(unit_files(unit))
        if name.split(".")[0] in {"typer", "dkt_cli"}
        or (name.split(".")[0] == "rich" and (unit, module) != ("training", "monitor.py"))
    ]
    assert not wrong, f"{unit} imports the CLI's libraries: {wrong}"


def test_the_checker_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from dkt_cli.app import app\n    from dkt import api\n")
    assert imports([module]) == [("m.py", "dkt_cli.app"), ("m.py", "dkt.api")]


def test_the_checker_names_the_unit_of_an_import() -> None:
    assert unit_of("dkt.dktnet.model") == "dkt.dktnet"
    assert unit_of("backends.base") == "backends"
    assert unit_of("dkt") == "dkt"
    assert unit_of("torch.nn") is None
