"""The README's module map names every module outside tests/, with its docstring's first line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MAPPED = ("web", "workers", "lvd", "bench")


def modules() -> list[Path]:
    found = []
    for top in MAPPED:
        for path in sorted((PROJECT_ROOT / top).rglob("*.py")):
            if path.name == "__init__.py" and not path.read_text().strip():
                continue  # an empty package marker has nothing to say
            found.append(path)
    return found


@pytest.mark.parametrize("path", modules(), ids=lambda p: p.relative_to(PROJECT_ROOT).as_posix())
def test_module_map_names_the_module_with_its_docstring(path: Path) -> None:
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc, "every module starts with a docstring saying what belongs in it"
    first = doc.strip().splitlines()[0]
    line = f"{path.relative_to(PROJECT_ROOT).as_posix()}"
    readme = (PROJECT_ROOT / "README.md").read_text()
    entries = [row for row in readme.splitlines() if row.startswith(line + " ")]
    assert entries, f"README's module map lacks {line}"
    assert entries[0].split(None, 1)[1] == first, "README's line differs from the docstring"
