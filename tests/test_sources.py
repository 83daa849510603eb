"""Source maps: the quick header index agrees with the full scan wherever it answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from specs.sources import SourceMap
from specs.tomlio import parse_toml
from specs.tomlsource import scan_positions

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def corpus_files() -> list[Any]:
    if not CORPUS.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason="no corpus"))]
    return [pytest.param(p, id=p.relative_to(CORPUS).as_posix())
            for p in sorted(CORPUS.rglob("parameters_*.toml"))]


@pytest.mark.parametrize("path", corpus_files())
def test_quick_positions_match_the_full_scan(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    full = scan_positions(text)
    answered = 0
    for key, expected in full.items():
        quick = SourceMap(str(path), text=text)._quick(key)
        if quick is not None:
            answered += 1
            assert quick == expected, key
    if '"""' not in text and "'''" not in text:
        assert answered > 0


def test_a_big_spec_locates_without_the_full_scan() -> None:
    lines = ["[goal]", 'description = "x"']
    for t in range(1, 301):
        lines += ["[[tasks]]", f"id = {t}", f'description = "task {t}"']
        for s in range(1, 4):
            lines += ["  [[tasks.steps]]", f"  id = {s}", '  expected_output = "y"']
    text = "\n".join(lines) + "\n"
    doc, sources, _ = parse_toml(text, "p.toml")
    assert doc is not None
    where = sources.at(("tasks", 299, "steps", 2, "expected_output"))
    assert (where.line, where.col) == scan_positions(text)[
        ("tasks", 299, "steps", 2, "expected_output")]
    assert sources._positions is None  # the full scan never ran
