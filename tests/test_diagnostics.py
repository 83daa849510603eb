"""Diagnostics and locations: fields, defaults, immutability, equality and the rendered line."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from specs.diagnostics import Diagnostic, Location, Severity


def make(**changes: object) -> Diagnostic:
    fields: dict[str, object] = {"severity": Severity.WARNING, "code": "W-X", "message": "m",
                                 "location": Location("p.toml", 3, 5)}
    fields.update(changes)
    return Diagnostic(**fields)  # type: ignore[arg-type]


def test_defaults_and_positional_order() -> None:
    d = Diagnostic(Severity.ERROR, "E-X", "broken", Location("p.toml"))
    assert (d.hint, d.strict, d.extra, d.excerpt) == ("", False, {}, "")
    assert Diagnostic(Severity.ERROR, "E-X", "m", Location("f", 1, 2), "h", True, {"a": 1},
                      "ex") == make(severity=Severity.ERROR, code="E-X", hint="h", strict=True,
                                    location=Location("f", 1, 2), excerpt="ex")
    assert Location("f") == Location("f", 0, 0)
    assert Location("f", 2).col == 0


def test_each_diagnostic_has_its_own_extra() -> None:
    a, b = make(), make()
    a.extra["k"] = 1
    assert b.extra == {}
    assert make(extra=None).extra is None  # given values are kept as they are


def test_diagnostics_and_locations_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        make().code = "E-Y"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Location("f").line = 2  # type: ignore[misc]


def test_equality_and_hash_ignore_extra_only() -> None:
    assert make(extra={"a": 1}) == make() and hash(make(extra={"a": 1})) == hash(make())
    for change in ({"code": "W-Y"}, {"message": "n"}, {"hint": "h"}, {"strict": True},
                   {"excerpt": "x"}, {"location": Location("p.toml", 3, 6)},
                   {"severity": Severity.INFO}):
        assert make(**change) != make(), change
    assert len({make(), make(), make(hint="h")}) == 2


def test_replace_pickle_and_escalate() -> None:
    d = make(hint="h", strict=True, excerpt="a\nb")
    assert dataclasses.replace(d, code="W-Z").code == "W-Z"
    assert pickle.loads(pickle.dumps(d)) == d
    up = d.escalated()
    assert up.severity is Severity.ERROR
    assert (up.code, up.message, up.location, up.hint, up.strict, up.excerpt) == (
        d.code, d.message, d.location, d.hint, d.strict, d.excerpt)
    assert [f.name for f in dataclasses.fields(Diagnostic)] == [
        "severity", "code", "message", "location", "hint", "strict", "extra", "excerpt"]
    assert [f.name for f in dataclasses.fields(Location)] == ["file", "line", "col"]


@pytest.mark.parametrize("location,expected", [
    (Location("p.toml", 3, 5), "p.toml:3:5"), (Location("p.toml", 3), "p.toml:3"),
    (Location("p.toml", 0, 5), "p.toml"), (Location("p.toml"), "p.toml")])
def test_render_and_str_name_the_same_place(location: Location, expected: str) -> None:
    assert str(location) == expected
    assert make(location=location).render() == f"{expected}: warning W-X m"


def test_render_adds_the_hint_and_indents_the_excerpt() -> None:
    assert make(hint="do this").render() == "p.toml:3:5: warning W-X m (do this)"
    assert make(excerpt="a == \n     ^\n").render() == \
        "p.toml:3:5: warning W-X m\n    a == \n         ^"
    assert make(severity=Severity.INFO).render().startswith("p.toml:3:5: info W-X")


def test_severity_ranks_errors_first() -> None:
    assert [s.rank for s in (Severity.ERROR, Severity.WARNING, Severity.INFO)] == [0, 1, 2]
