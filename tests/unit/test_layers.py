"""The folders are the layers, and imports point inward: each package imports only the
packages beneath it (checked on the source, so a new import that runs back up fails here)."""

from __future__ import annotations

import ast
from pathlib import Path

import bridge

_ROOT = Path(bridge.__file__).parent
# What each package may import of ours, besides itself.
_ALLOWED = {
    "domain": set(),
    "contract": {"domain"},
    "store": {"domain", "contract", "cache"},
    "matrix": {"domain", "store", "cache", "config"},
    "services": {"domain", "contract", "store", "matrix", "cache", "config"},
    "api": {"domain", "contract", "store", "matrix", "services"},
    "importers": {"domain", "store", "services"},
    "web": set(),
}


def _imports(path: Path) -> set[str]:
    """The top-level packages of ours a module imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = (
            [node.module or ""]
            if isinstance(node, ast.ImportFrom) and node.level == 0
            else [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else []
        )
        for name in names:
            parts = name.split(".")
            if parts[0] == "bridge" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_every_layer_imports_only_what_lies_beneath_it() -> None:
    wrong = []
    for package, allowed in _ALLOWED.items():
        for module in sorted((_ROOT / package).rglob("*.py")):
            for imported in _imports(module) - allowed - {package}:
                wrong.append(f"{module.relative_to(_ROOT)} imports bridge.{imported}")
    assert not wrong, "\n".join(wrong)


def test_only_the_wiring_imports_the_http_layer() -> None:
    importers = {
        str(module.relative_to(_ROOT))
        for module in _ROOT.rglob("*.py")
        if "api" in _imports(module) and module.parent.name != "api"
    }
    assert importers <= {"app.py", "cli.py"}, importers
