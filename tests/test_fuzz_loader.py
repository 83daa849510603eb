"""Fuzzing the loader: mangled real specs never crash ``load_spec`` or ``validate``.

Each example takes a corpus parameters file, mutates its text (lines deleted, duplicated or
swapped, characters inserted, the text cut short, values replaced by other types, ``[[`` flipped
to ``[`` and back) and loads the result from a temporary folder. Only :class:`SpecsError`
subclasses may escape (in practice nothing does), and every diagnostic must carry a message and a
line number >= 0.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specs.errors import SpecsError
from specs.spec.load import load_spec
from specs.spec.validate import validate

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
PARAMETERS = sorted(CORPUS.rglob("parameters_*.toml")) if CORPUS.is_dir() else []
TEXTS = {path: path.read_text("utf-8") for path in PARAMETERS}

pytestmark = pytest.mark.skipif(not PARAMETERS, reason="../shared/corpus is not available")

VALUE = re.compile(r"^(\s*[\w\"'.-]+\s*=\s*)(.+)$")
OTHER_VALUES = ['"text"', "42", "-1", "true", "3.5", "[]", '[1, "a", true]', "{ a = 1 }",
                "1979-05-27", '"""\nmulti\n"""', "[[1], [2]]", "{}", '"[Insert x]"', "nan",
                "null", '""', "0", "99999999999999999999"]
NOISE_PIECES = [*"[]{}=\"'#.,\n\\ \t0aé🚀\x00\r", "[[", "]]", '"""']
NOISE = st.lists(st.sampled_from(NOISE_PIECES), min_size=1, max_size=6).map("".join)


@st.composite
def mutations(draw: st.DrawFn, text: str) -> str:
    lines = text.split("\n")
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        if not lines:
            lines = [""]
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "insert", "truncate",
                                   "retype", "flip", "unflip"]))
        i = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(min_value=0, max_value=len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "insert":
            line = lines[i]
            at = draw(st.integers(min_value=0, max_value=len(line)))
            lines[i] = line[:at] + draw(NOISE) + line[at:]
        elif op == "truncate":
            joined = "\n".join(lines)
            cut = draw(st.integers(min_value=0, max_value=len(joined)))
            lines = joined[:cut].split("\n")
        elif op == "retype":
            candidates = [k for k, line in enumerate(lines) if VALUE.match(line)]
            if candidates:
                k = draw(st.sampled_from(candidates))
                match = VALUE.match(lines[k])
                assert match is not None
                lines[k] = match.group(1) + draw(st.sampled_from(OTHER_VALUES))
        elif op == "flip":
            candidates = [k for k, line in enumerate(lines) if line.lstrip().startswith("[[")]
            if candidates:
                k = draw(st.sampled_from(candidates))
                lines[k] = lines[k].replace("[[", "[", 1).replace("]]", "]", 1)
        else:  # unflip: a [table] becomes an array of tables
            candidates = [k for k, line in enumerate(lines)
                          if line.startswith("[") and not line.startswith("[[")]
            if candidates:
                k = draw(st.sampled_from(candidates))
                lines[k] = "[" + lines[k].rstrip().replace("]", "]]", 1)
    return "\n".join(lines)


@st.composite
def mangled(draw: st.DrawFn) -> tuple[Path, str]:
    path = draw(st.sampled_from(PARAMETERS))
    return path, draw(mutations(TEXTS[path]))


def load_and_validate(text: str, name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "spec_fuzz"
        folder.mkdir()
        (folder / name).write_text(text, "utf-8")
        try:
            loaded = load_spec(folder)
            found = validate(loaded)
            found += validate(loaded, strict=True)
        except SpecsError:
            return  # allowed by the contract (specs.errors)
        for diagnostic in found:
            assert diagnostic.message.strip(), diagnostic
            assert diagnostic.location.line >= 0, diagnostic
            assert diagnostic.location.col >= 0, diagnostic
            assert diagnostic.render()
        if loaded.spec is None:
            assert loaded.errors, "a spec that does not load must say why"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.data_too_large])
@given(mangled())
def test_mutated_corpus_files_never_crash_the_loader(case: tuple[Path, str]) -> None:
    path, text = case
    load_and_validate(text, path.name)


@pytest.mark.parametrize("path", PARAMETERS, ids=[p.name for p in PARAMETERS])
def test_every_prefix_cut_at_a_table_header_loads_or_explains(path: Path) -> None:
    text = TEXTS[path]
    cuts = [m.start() for m in re.finditer(r"^\[", text, re.M)][::7]
    for cut in cuts:
        load_and_validate(text[:cut] + "\n[[tasks]\n" + text[cut:], path.name)
