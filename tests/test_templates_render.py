"""Rendering: placeholders replaced, escaped for where they stand (TOML strings, bare TOML
values, Markdown), filters, and one-line errors naming file:line:col."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specs.templates import TemplateError
from specs.templates.render import Context, render_text

NASTY = 'say "hi" \\ then\nnext line\ttab \u0007 bell'


def toml(text: str, **values: object) -> dict[str, object]:
    rendered = render_text(text, Context(values), kind="toml", file="t/parameters_x.toml")
    return tomllib.loads(rendered)


def test_a_value_in_a_basic_string_is_escaped_for_it() -> None:
    assert toml('a = "<{{ v }}>"', v=NASTY) == {"a": f"<{NASTY}>"}


def test_a_value_in_a_multiline_basic_string_keeps_its_line_breaks() -> None:
    doc = toml('a = """\nbefore {{ v }} after"""', v='x """ y\\z\nsecond')
    assert doc == {"a": 'before x """ y\\z\nsecond after'}


@pytest.mark.parametrize(("value", "expected"), [
    ("text \"q\"", "text \"q\""), (3, 3), (True, True), (False, False),
    (["a", 'b"c', "d\\e"], ["a", 'b"c', "d\\e"]),
])
def test_a_bare_value_becomes_a_toml_value_of_its_type(value: object, expected: object) -> None:
    assert toml("a = {{ v }}\nb = [{{ v }}]", v=value)["a"] == expected


def test_in_a_comment_line_breaks_become_spaces() -> None:
    rendered = render_text("# about {{ v }}\na = 1", Context({"v": "x\ny"}), kind="toml",
                           file="f.toml")
    assert rendered == "# about x y\na = 1"


def test_placeholders_in_literal_strings_and_keys_are_refused_with_a_location() -> None:
    with pytest.raises(TemplateError, match=r"^t\.toml:2:6: .*literal string"):
        render_text("x = 1\na = '{{ v }}'", Context({"v": "x"}), kind="toml", file="t.toml")
    with pytest.raises(TemplateError, match=r"^t\.toml:1:1: .*key"):
        render_text("{{ v }} = 1", Context({"v": "x"}), kind="toml", file="t.toml")
    with pytest.raises(TemplateError, match=r"^t\.toml:1:2: .*key"):
        render_text("[{{ v }}]", Context({"v": "x"}), kind="toml", file="t.toml")


def test_unknown_names_filters_and_unclosed_braces_are_one_line_errors() -> None:
    with pytest.raises(TemplateError, match=r"^f\.md:2:3: unknown variable 'nope' \(known: v\)"):
        render_text("ok\n  {{ nope }}", Context({"v": 1}), kind="text", file="f.md")
    with pytest.raises(TemplateError, match="unknown filter 'shout'"):
        render_text("{{ v | shout }}", Context({"v": "x"}), kind="text", file="f.md")
    with pytest.raises(TemplateError, match="not closed"):
        render_text("{{ v \n}}", Context({"v": "x"}), kind="text", file="f.md")
    with pytest.raises(TemplateError, match="cannot read the placeholder"):
        render_text("{{ v w }}", Context({"v": "x"}), kind="text", file="f.md")


def test_filters_and_literal_braces() -> None:
    ctx = Context({"v": "It's Here", "l": ["a b", "c"]})
    assert render_text("{{ v | lower }} {{ v | upper }} {{ v | snake }}", ctx, kind="text",
                       file="f") == "it's here IT'S HERE it_s_here"
    assert render_text("run {{ v | shell }} {{ l | shell }}", ctx, kind="text",
                       file="f") == "run 'It'\"'\"'s Here' 'a b' c"
    assert render_text("{{ '{{' }} x }}", ctx, kind="text", file="f") == "{{ x }}"
    assert render_text("{{ l }}", ctx, kind="text", file="f") == "a b, c"


def test_markdown_keeps_line_breaks_only_for_a_placeholder_alone_on_its_line() -> None:
    ctx = Context({"v": "one\ntwo", "l": ["a", "b"]})
    assert render_text("- **Step 1.1:** {{ v }}", ctx, kind="text", file="f.md") == \
        "- **Step 1.1:** one two"
    assert render_text("text\n  {{ v }}\nend", ctx, kind="text", file="f.md") == \
        "text\n  one\n  two\nend"
    assert render_text("{{ l | bullets }}", ctx, kind="text", file="f.md") == "- a\n- b"


def test_a_secret_renders_as_its_environment_variable() -> None:
    ctx = Context({}, secrets={"token": "API_TOKEN"})
    assert render_text("curl -H {{ token | shell }}", ctx, kind="text", file="f") == \
        'curl -H "${API_TOKEN}"'
    rendered = render_text('a = "{{ token }}"\nb = {{ token }}', ctx, kind="toml", file="f")
    assert tomllib.loads(rendered) == {"a": "${API_TOKEN}", "b": "${API_TOKEN}"}


def test_text_without_placeholders_is_returned_as_it_is() -> None:
    text = "a = '{ not a placeholder }'\n"
    assert render_text(text, Context({}), kind="toml", file="f") is text


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_any_answer_survives_a_toml_basic_string(value: str) -> None:
    assert toml('a = "{{ v }}"\nb = {{ v }}', v=value) == {"a": value, "b": value}
