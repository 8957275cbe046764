"""The dependency direction: ``dkt_cli`` -> library packages -> ``dkt.dktnet``, read from the code.

Every ``import`` in every module (function-level ones included) is checked, so a shortcut
that makes the model know the CLI, or a runtime know the pipeline, fails here by name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Source folder -> the ``dkt.`` sub-packages its modules may import (besides their own).
ALLOWED = {
    "dktnet": {"dkt._version"},
    "imaging": {"dkt.dktnet"},
    "backends": {"dkt.dktnet"},
    "demo": {"dkt.dktnet", "dkt.imaging"},
}
LIBRARIES = [
    "dkt", "dktnet", "imaging", "backends", "inference", "evaluation", "training", "demo", "serve"
]  # fmt: skip
OWN = {"dkt_cli": "dkt_cli", "dkt": "dkt"}


def imports(folder: str) -> list[tuple[str, str]]:
    """``(module file, imported name)`` for every import in ``folder``'s modules."""
    found = []
    for path in sorted((ROOT / folder).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found += [(path.name, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module == "dkt":
                found += [(path.name, f"dkt.{alias.name}") for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.append((path.name, node.module))
    return found


def _package(name: str) -> str:
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] == "dkt" and len(parts) > 1 else name


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_lower_packages_import_only_what_is_below_them(folder: str) -> None:
    own = OWN.get(folder, f"dkt.{folder}")
    wrong = [
        f"{module}: {name}"
        for module, name in imports(folder)
        if name.startswith("dkt") and _package(name) not in ALLOWED[folder] | {own}
    ]
    assert not wrong, f"dkt.{folder} reaches up: {wrong}"


@pytest.mark.parametrize("folder", LIBRARIES)
def test_no_library_package_knows_the_command_line(folder: str) -> None:
    wrong = [
        f"{module}: {name}"
        for module, name in imports(folder)
        if (_package(name) == "dkt_cli" and not (folder == "dkt" and module == "__main__.py"))
        or name.split(".")[0] == "typer"
        or (name.split(".")[0] == "rich" and (folder, module) != ("training", "monitor.py"))
    ]
    assert not wrong, f"{folder} imports the CLI's libraries: {wrong}"


def test_the_checker_sees_imports_inside_functions(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text("def f():\n    from dkt_cli.app import app\n")
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    assert imports("pkg") == [("m.py", "dkt_cli.app")]
