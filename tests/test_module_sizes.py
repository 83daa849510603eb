"""Issue 12's size rule, for the whole package: no module over 600 lines, no class over 30
methods (STYLE.md: one concept per module)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "specs"
CHECKED = sorted(SRC.rglob("*.py"))
MAX_LINES, MAX_METHODS = 600, 30


@pytest.mark.parametrize("path", CHECKED, ids=[str(p.relative_to(SRC)) for p in CHECKED])
def test_modules_and_classes_stay_small(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count("\n") <= MAX_LINES
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef):
            methods = [n for n in node.body
                       if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
            assert len(methods) <= MAX_METHODS, node.name
