"""Source maps: the quick header index agrees with the full scan wherever it answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from specs.spec.sources import SourceMap
from specs.spec.tomlio import parse_toml
from specs.spec.tomlsource import scan_positions

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


TRICKY = """\
[meta]
goal_descriptor = "x [y] z"
[goal]
description = "[[not.a.header]]"
  [ execution ]
\tparallel_enabled = true
[[tasks]]
id = 1
depends_on = []
matrix = [[1, 2], [3]]
  [[tasks.steps]]
  id = 1
  depends_on = [ 2 ]
\t[[ tasks.steps ]]
\tid = 2
  [[tasks.steps.backups]]
  id = 1
[[tasks]]
id = 2
"""


@pytest.mark.parametrize("path", corpus_files())
def test_locations_match_the_full_scan(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    full = scan_positions(text)
    sources = SourceMap(str(path), text=text)
    for key, (line, col) in full.items():
        where = sources.at(key)
        assert (where.file, where.line, where.col) == (str(path), line, col), key


@pytest.mark.parametrize("text", [TRICKY, TRICKY.replace("\n", "\r\n")], ids=["lf", "crlf"])
def test_headers_are_found_only_first_on_their_line(text: str) -> None:
    full = scan_positions(text)
    for key, expected in full.items():
        quick = SourceMap("p.toml", text=text)._quick(key)
        assert quick in (None, expected), key
        assert SourceMap("p.toml", text=text).at(key).line == expected[0], key
    sources = SourceMap("p.toml", text=text)
    assert (sources.at(("tasks", 0, "steps", 1)).line,
            sources.at(("tasks", 0, "steps", 1)).col) == (14, 2)
    assert sources.at(("execution",)).col == 3
    assert sources.at(("tasks", 1)).line == 18
    assert sources._positions is None  # answered from the header index alone
