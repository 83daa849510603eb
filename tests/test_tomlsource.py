"""Tests for specs.spec.tomlsource: source positions of every path of a TOML document."""

from __future__ import annotations

import json
import random
import re
import tomllib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path as FsPath
from typing import Any

import pytest
import tomlkit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specs.spec.tomlsource import Path, _scan_offsets, scan_positions

CORPUS = FsPath(__file__).resolve().parents[2] / "shared" / "corpus"


def _walk(obj: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every (path, value) below ``obj``: dict keys and list elements, recursively."""
    if isinstance(obj, dict | list):
        items: Any = obj.items() if isinstance(obj, dict) else enumerate(obj)
        for key, value in items:
            sub = (*path, key)
            yield sub, value
            yield from _walk(value, sub)


def _key_token_matches(at: str, key: str) -> bool:
    """Does the source text ``at`` start with ``key``, bare or quoted?"""
    if at.startswith("'"):
        return at.startswith(f"'{key}'")
    if at.startswith('"'):
        m = re.match(r'"(?:[^"\\\n]|\\.)*"', at)
        return m is not None and tomllib.loads(m.group(0) + " = 0") == {key: 0}
    return at.startswith(key)


def _check(text: str, doc: dict[str, Any], positions: dict[Path, tuple[int, int]]) -> None:
    """Every path of ``doc`` is found, and each points at its key, header or element."""
    lines = text.split("\n")
    missing = [path for path, _ in _walk(doc) if path not in positions]
    assert not missing, f"paths not found: {missing[:5]}"
    for path, value in _walk(doc):
        line, col = positions[path]
        assert 1 <= line <= len(lines) and col >= 1, (path, line, col)
        at = lines[line - 1][col - 1 :]
        last = path[-1]
        if isinstance(last, str):
            is_table = isinstance(value, dict) or (
                isinstance(value, list) and bool(value) and isinstance(value[0], dict)
            )
            ok = _key_token_matches(at, last) or (is_table and at.startswith("["))
            assert ok, f"{path} at {line}:{col} points at {at[:40]!r}"
        elif isinstance(value, dict) and not at.startswith("{"):
            assert at.startswith("[["), f"{path} at {line}:{col} points at {at[:40]!r}"


# ---------------------------------------------------------------------------------------------
# Table-driven unit tests: (text, {path: (line, col)}) - the expected positions must match and
# every path of the parsed document must be found.

AOT = """\
[[tasks]]
name = "a"
[[tasks]]
name = "b"
[[tasks.steps]]
id = 1
[[tasks.steps]]
id = 2
[[tasks.steps.backups]]
path = "/x"
[[tasks]]
[[tasks.steps]]
"""

TRICKY_STRINGS = '''\
a = "x [y] {z} # = 'q' \\" ]]"
b = 'lit [[x]] "q" # = }'
c = """
[not.a.table]
key = "value"  # not a comment
\\""" still inside ""\"""
d = \'\'\'
[[also.not]]
x = {y = 1} '' \'\'\'\'\'
e = [ "]", '[', """}""", \'\'\'{\'\'\', "#" ] # ] [
[real]  # [[fake]]
f = 1
'''

CASES: list[tuple[str, str, dict[Path, tuple[int, int]]]] = [
    (
        "key in table",
        "[a.b]\nx = 1\n  y = 2\n",
        {("a",): (1, 1), ("a", "b"): (1, 1), ("a", "b", "x"): (2, 1), ("a", "b", "y"): (3, 3)},
    ),
    (
        "array of tables",
        AOT,
        {
            ("tasks",): (1, 1),
            ("tasks", 0): (1, 1),
            ("tasks", 0, "name"): (2, 1),
            ("tasks", 1): (3, 1),
            ("tasks", 1, "steps"): (5, 1),
            ("tasks", 1, "steps", 0): (5, 1),
            ("tasks", 1, "steps", 0, "id"): (6, 1),
            ("tasks", 1, "steps", 1): (7, 1),
            ("tasks", 1, "steps", 1, "backups", 0): (9, 1),
            ("tasks", 1, "steps", 1, "backups", 0, "path"): (10, 1),
            ("tasks", 2): (11, 1),
            ("tasks", 2, "steps", 0): (12, 1),
        },
    ),
    (
        "nested aot from the brief",
        "[[tasks]]\n[[tasks]]\n[[tasks.steps]]\n[[tasks.steps.backups]]\n",
        {("tasks", 1, "steps", 0, "backups", 0): (4, 1), ("tasks", 1, "steps", 0): (3, 1)},
    ),
    (
        "subtable of an aot element",
        "[[fruit]]\n[fruit.physical]\ncolor = 1\n[[fruit]]\n[fruit.physical]\ncolor = 2\n",
        {("fruit", 0, "physical"): (2, 1), ("fruit", 1, "physical", "color"): (6, 1)},
    ),
    (
        "dotted keys",
        'a.b = 1\na . "c d" . e = 2\n[t]\nx.y = 3\n',
        {
            ("a",): (1, 1),
            ("a", "b"): (1, 3),
            ("a", "c d"): (2, 5),
            ("a", "c d", "e"): (2, 13),
            ("t", "x"): (4, 1),
            ("t", "x", "y"): (4, 3),
        },
    ),
    (
        "quoted keys",
        '"x y" = 1\n\'lit\' = 2\n"e\\u00e9\\"q\\t" = 3\n"" = 4\n\'a.b\' = 5\n',
        {("x y",): (1, 1), ("lit",): (2, 1), ('eé"q\t',): (3, 1), ("",): (4, 1), ("a.b",): (5, 1)},
    ),
    (
        "inline tables",
        "t = {a = 1, b = {c = 2}}\ne = {}\n",
        {
            ("t",): (1, 1),
            ("t", "a"): (1, 6),
            ("t", "b"): (1, 13),
            ("t", "b", "c"): (1, 18),
            ("e",): (2, 1),
        },
    ),
    (
        "arrays",
        "xs = [1, {k = 2}, [3]]\nempty = []\n",
        {
            ("xs",): (1, 1),
            ("xs", 0): (1, 7),
            ("xs", 1): (1, 10),
            ("xs", 1, "k"): (1, 11),
            ("xs", 2): (1, 19),
            ("xs", 2, 0): (1, 20),
            ("empty",): (2, 1),
        },
    ),
    (
        "multi-line array with comments",
        'xs = [  # start\n  "a",  # one\n  # [ignored]\n  { k = "v" },\n'
        "  [\n    1,\n  ],\n]\ny = 1\n",
        {
            ("xs", 0): (2, 3),
            ("xs", 1): (4, 3),
            ("xs", 1, "k"): (4, 5),
            ("xs", 2): (5, 3),
            ("xs", 2, 0): (6, 5),
            ("y",): (9, 1),
        },
    ),
    (
        "tricky strings",
        TRICKY_STRINGS,
        {
            ("b",): (2, 1),
            ("c",): (3, 1),
            ("d",): (7, 1),
            ("e",): (10, 1),
            ("e", 1): (10, 12),
            ("e", 2): (10, 17),
            ("e", 4): (10, 35),
            ("real",): (11, 1),
            ("real", "f"): (12, 1),
        },
    ),
    (
        "crlf",
        '[a]\r\nx = 1\r\ns = """l1\r\nl2"""\r\ny = [\r\n  1,\r\n  2 ]\r\n',
        {("a",): (1, 1), ("a", "x"): (2, 1), ("a", "y"): (5, 1), ("a", "y", 1): (7, 3)},
    ),
    (
        "columns count characters",
        '"é€😀" = 1\nx = {a = "😀😀", b = 2}\n',
        {("é€😀",): (1, 1), ("x", "b"): (2, 16)},
    ),
    (
        "date-times with a space",
        "d = 1979-05-27 07:32:00Z\nxs = [1979-05-27 07:32:00, 1, 07:32:00]\nz = 1\n",
        {("d",): (1, 1), ("xs", 1): (2, 28), ("xs", 2): (2, 31), ("z",): (3, 1)},
    ),
    (
        "scalars",
        "a = -inf\nb = 0xDEAD_beef\nc = +1_000\nd = 6.02e+23\ne = true\nf = nan\n",
        {("f",): (6, 1)},
    ),
    (
        "header with blanks and quoted parts",
        '[ a . "b.c" ]\nk = 1\n[[ "x y" ]]\n',
        {("a", "b.c"): (1, 1), ("a", "b.c", "k"): (2, 1), ("x y", 0): (3, 1)},
    ),
    (
        "explicit super-table after a subtable",
        "[a.b]\nx = 1\n[a]\ny = 2\n",
        {("a",): (3, 1), ("a", "b"): (1, 1), ("a", "y"): (4, 1)},
    ),
    (
        "comments",
        "# [not.a.table]\n  # x = 1\n[real] # [[x]]\nk = 1 # = 2\n",
        {("real",): (3, 1), ("real", "k"): (4, 1)},
    ),
    (
        "sub-table of a dotted-key table",
        "[fruit]\napple.color = 1\n[fruit.apple.texture]\nsmooth = true\n",
        {("fruit", "apple"): (2, 1), ("fruit", "apple", "texture"): (3, 1)},
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_cases(text: str, expected: dict[Path, tuple[int, int]]) -> None:
    positions = scan_positions(text)
    assert {path: positions.get(path) for path in expected} == expected
    _check(text, tomllib.loads(text), positions)


def test_bom_is_not_a_column() -> None:
    assert scan_positions("\ufeffa = 1\nb = 2\n") == {("a",): (1, 1), ("b",): (2, 1)}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[",
        "[[",
        "[[a",
        "a =",
        "a = \n b = 1",
        '= "x"',
        'a = "unterminated\nb = 1',
        'a = """unterminated',
        "a = '''unterminated",
        "a = [1, 2",
        "a = {b = ",
        "a = {b = 1, c",
        "[" * 100_000,
        "[" + "a." * 100_000 + "a]\nx = 1",
        "a" + ".a" * 100_000 + " = 1",
        "a = " + "[" * 100_000,
        "a = " + "{b = " * 50_000,
        "]]]}}}",
        "a = 1 b = 2 c",
        'x = "\\uZZZZ \\U99999999 \\q"',
        '"\\U99999999" = 1',
        "\r\r\r\n\x00\ufeff",
    ],
)
def test_malformed_text_never_raises(text: str) -> None:
    _scan_offsets(text)  # the lexer itself, without the defensive wrapper
    assert isinstance(scan_positions(text), dict)


def test_malformed_prefix_keeps_what_was_found() -> None:
    positions = scan_positions("[a]\nx = 1\ny = [1, 2\n")
    assert positions[("a", "x")] == (2, 1)
    assert positions[("a", "y", 1)] == (3, 9)


# ---------------------------------------------------------------------------------------------
# The real specs of the shared corpus.

CORPUS_FILES = sorted(CORPUS.rglob("*.toml")) if CORPUS.is_dir() else []


@pytest.mark.parametrize(
    "file",
    CORPUS_FILES or [pytest.param(None, marks=pytest.mark.skip(reason="no corpus"))],
    ids=[str(f.relative_to(CORPUS)) for f in CORPUS_FILES] or None,
)
def test_corpus(file: FsPath) -> None:
    text = file.read_text(encoding="utf-8")
    positions = scan_positions(text)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return  # e.g. `language = null`: only that scanning does not raise
    _check(text, doc, positions)


# ---------------------------------------------------------------------------------------------
# A large document: every path found, and fast.


def _big_spec(tasks: int, steps: int) -> str:
    parts = ['[meta]\nname = "big"\n']
    for t in range(tasks):
        parts.append(f'\n[[tasks]]\nid = "T{t}"\ndepends_on = ["T{t - 1}"]  # [x]\n')
        for s in range(steps):
            parts.append(
                f'\n[[tasks.steps]]\nid = "S{t}.{s}"\n'
                f'description = "step {s}: do [the] thing {{x}} # = \\"q\\""\n'
                f"command = 'echo \"hi\" && ls'\ntimeout = 300\n"
                f'retries = {{ max = 3, backoff = "exp", delay = 1.5 }}\n'
                f'outputs = ["out_{s}.txt", "log_{s}.txt"]\n'
                f'notes = """\nmulti [line] = "x"\n"""\n'
                f'\n[[tasks.steps.backups]]\npath = "/backup/{t}/{s}"\nkeep = 5\n'
            )
    return "".join(parts)


def test_generated_spec_is_complete() -> None:
    text = _big_spec(5, 8)
    positions = scan_positions(text)
    _check(text, tomllib.loads(text), positions)
    assert positions[("tasks", 4, "steps", 7, "backups", 0, "keep")][0] == text.count("\n")


def test_big_document() -> None:
    """A 10,000-step spec (about 3 MB) is scanned completely (its speed: bench/bench_load.py)."""
    text = _big_spec(100, 100)
    assert len(text) > 2_500_000
    positions = scan_positions(text)
    assert len(positions) > 100_000
    assert positions[("tasks", 99, "steps", 99, "backups", 0, "keep")][0] == text.count("\n")


# ---------------------------------------------------------------------------------------------
# Property tests: random documents, serialised by tomlkit and by a hand-written serialiser.

_TRICKY = "aZ09_- .#=[]{},\"'\\\t\néü€😀\r\x01"
KEYS = st.text(alphabet=_TRICKY, max_size=6) | st.sampled_from(["a", "b", "tasks", "x-1", "1"])
STRINGS = st.text(alphabet=_TRICKY, max_size=12) | st.sampled_from(['"""', "'''", '""', "a'"])
SCALARS = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.booleans(),
    STRINGS,
    st.floats(allow_nan=False),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
)
VALUES: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(KEYS, inner, max_size=3),
        st.lists(st.dictionaries(KEYS, inner, max_size=3), min_size=1, max_size=3),
    ),
    max_leaves=12,
)
DOCS = st.dictionaries(KEYS, VALUES, max_size=6)

_BARE = re.compile(r"[A-Za-z0-9_-]+\Z")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _dump_key(key: str, rnd: random.Random) -> str:
    if _BARE.match(key) and rnd.random() < 0.8:
        return key
    if "'" not in key and not _CONTROL.search(key) and rnd.random() < 0.5:
        return f"'{key}'"
    return json.dumps(key, ensure_ascii=False)


def _dump_str(s: str, rnd: random.Random) -> str:
    choice = rnd.random()
    if choice < 0.2 and "'''" not in s and not _CONTROL.search(s.replace("\n", "")):
        return f"'''\n{s}'''"  # the newline after the opening quotes is trimmed
    if choice < 0.4 and "'" not in s and not _CONTROL.search(s):
        return f"'{s}'"
    if choice < 0.7:
        body = []
        for k, ch in enumerate(s):
            if ch == "\\":
                body.append("\\\\")
            elif ch == '"' and (k + 1 == len(s) or s[k + 1] == '"'):
                body.append('\\"')  # never two raw quotes in a row, nor one before the end
            elif ch != "\n" and _CONTROL.match(ch):
                body.append(f"\\u{ord(ch):04x}")
            else:
                body.append(ch)
        return '"""\n' + "".join(body) + '"""'
    return json.dumps(s, ensure_ascii=False)


def _dump_value(v: Any, rnd: random.Random) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return _dump_str(v, rnd)
    if isinstance(v, datetime):
        return v.isoformat(sep=rnd.choice("T "))
    if isinstance(v, list):
        if rnd.random() < 0.5:
            return "[" + ", ".join(_dump_value(x, rnd) for x in v) + "]"
        items = "".join(f"\n  {_dump_value(x, rnd)},  # [c] = {{\n" for x in v)
        return "[  # ]\n" + items + "]"
    pairs = (f"{_dump_key(k, rnd)} = {_dump_value(x, rnd)}" for k, x in v.items())
    return "{" + ", ".join(pairs) + "}"


def _dump_dotted(prefix: str, table: dict[str, Any], rnd: random.Random, out: list[str]) -> None:
    for key, value in table.items():
        full = prefix + rnd.choice([".", " . "]) + _dump_key(key, rnd)
        if isinstance(value, dict) and value and rnd.random() < 0.5:
            _dump_dotted(full, value, rnd, out)
        else:
            out.append(f"{full} = {_dump_value(value, rnd)}\n")


def _dump_table(
    table: dict[str, Any], header: list[str], rnd: random.Random, out: list[str]
) -> None:
    deferred: list[tuple[bool, str, Any]] = []
    for key, value in table.items():
        k = _dump_key(key, rnd)
        is_aot = isinstance(value, list) and value and all(isinstance(x, dict) for x in value)
        if isinstance(value, dict) and rnd.random() < 0.6:
            deferred.append((False, k, value))
        elif is_aot and rnd.random() < 0.7:
            deferred.append((True, k, value))
        elif isinstance(value, dict) and value and rnd.random() < 0.5:
            _dump_dotted(k, value, rnd, out)
        else:
            indent = rnd.choice(["", "  ", "\t"])
            comment = rnd.choice(["", "  # x = [1]", " #"])
            out.append(f"{indent}{k}{rnd.choice(['=', ' = '])}{_dump_value(value, rnd)}{comment}\n")
    for is_aot, k, value in deferred:
        path = [*header, k]
        name = rnd.choice([".", " . "]).join(path)
        for element in value if is_aot else [value]:
            out.append(f"\n[[{name}]]  # [x]\n" if is_aot else f"\n[ {name} ]\n")
            _dump_table(element, path, rnd, out)


def _dump(doc: dict[str, Any], rnd: random.Random) -> str:
    out: list[str] = ["# generated\n"]
    _dump_table(doc, [], rnd, out)
    return "".join(out)


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(doc=DOCS)
def test_property_tomlkit(doc: dict[str, Any]) -> None:
    text = tomlkit.dumps(doc)
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError:  # pragma: no cover - a tomlkit limitation, not ours
        return
    _check(text, parsed, scan_positions(text))


@PROPERTY
@given(doc=DOCS, rnd=st.randoms(use_true_random=False), crlf=st.booleans())
def test_property_hand_serialiser(doc: dict[str, Any], rnd: random.Random, crlf: bool) -> None:
    text = _dump(doc, rnd)
    assert tomllib.loads(text) == doc  # the serialiser itself is right
    if crlf:
        text = text.replace("\n", "\r\n")
    _check(text, tomllib.loads(text), scan_positions(text))


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list(_TRICKY + "\x00\ufeff")) | st.characters()))
def test_property_garbage_never_raises(text: str) -> None:
    _scan_offsets(text)
    scan_positions(text)


@settings(max_examples=100, deadline=None)
@given(doc=DOCS, rnd=st.randoms(use_true_random=False), data=st.data())
def test_property_mangled_documents_never_raise(
    doc: dict[str, Any], rnd: random.Random, data: st.DataObject
) -> None:
    text = _dump(doc, rnd)
    cut = data.draw(st.integers(0, len(text)))
    insert = data.draw(st.text(alphabet=_TRICKY, max_size=3))
    mangled = text[:cut] + insert + text[cut + data.draw(st.integers(0, 5)) :]
    _scan_offsets(mangled)
    scan_positions(mangled)
