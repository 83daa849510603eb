"""Values and operators, shared by evaluation and the static type check: the JSON kind of a
value, what kind an operator gives for its operands' kinds, and applying an operator."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from specs.spec.conditions.tree import MAX_INT, MAX_SIZE, ConditionError

__all__ = ["CMP", "LEVEL", "NOT", "UNARY", "apply", "kind_of", "result_kind", "show"]

# operator precedence, lowest first (the parser climbs it; messages tell comparisons apart)
OR, AND, NOT, CMP, SUM, PROD, UNARY = range(1, 8)
LEVEL = {"or": OR, "and": AND, "in": CMP, "not": CMP, "==": CMP, "!=": CMP, "<": CMP,
          "<=": CMP, ">": CMP, ">=": CMP, "+": SUM, "-": SUM, "*": PROD, "/": PROD, "%": PROD}

_KINDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (type(None), "null"), (bool, "bool"), ((int, float), "number"), (str, "string"),
    ((list, tuple), "list"), (dict, "object"))


def kind_of(value: Any) -> str:
    """The JSON kind of a value: null, bool, number, string, list, object (or other)."""
    return next((kind for types, kind in _KINDS if isinstance(value, types)), "other")


def result_kind(op: str, left: str, right: str) -> str | None:
    """The kind an operator gives for operand kinds, or None when they do not fit it."""
    if op in ("<", "<=", ">", ">="):
        return "bool" if left == right and left in ("number", "string") else None
    if op in ("in", "not in"):
        fits = right == "list" or (right in ("string", "object") and left == "string")
        return "bool" if fits else None
    if op in ("==", "!="):
        return "bool"
    if op == "+" and left == right and left in ("number", "string", "list"):
        return left
    return "number" if left == right == "number" else None


def show(value: Any) -> str:
    kind = kind_of(value)
    if kind in ("null", "list", "object", "other"):
        return {"null": "null", "list": "a list", "object": "an object"}.get(
            kind, f"a Python {type(value).__name__}")
    return f"a {kind} ({cut(str(value).lower() if kind == 'bool' else repr(value))})"


def cut(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _equal(a: Any, b: Any) -> bool:
    ka, kb = kind_of(a), kind_of(b)
    if ka != kb or ka == "other":
        return False
    if ka == "list":
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if ka == "object":
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def _limit(value: Any, text: str, offset: int) -> Any:
    if kind_of(value) == "number" and not (math.isfinite(value) and abs(value) <= MAX_INT):
        raise ConditionError("number too large or not finite (the limit is 10**100)", text,
                             offset)
    if isinstance(value, str | list) and len(value) > MAX_SIZE:
        raise ConditionError(f"result too long (more than {MAX_SIZE} items)", text, offset)
    return value


_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda x, y: [*x, *y] if isinstance(x, list | tuple) else x + y,
    "-": lambda x, y: x - y, "*": lambda x, y: x * y, "/": lambda x, y: x / y,
    "%": lambda x, y: x % y, "<": lambda x, y: x < y, "<=": lambda x, y: x <= y,
    ">": lambda x, y: x > y, ">=": lambda x, y: x >= y}


def apply(op: str, a: Any, b: Any, text: str, offset: int) -> Any:
    """``a op b`` on JSON values, or ConditionError (kinds that do not fit, zero, overflow)."""
    if result_kind(op, kind_of(a), kind_of(b)) is None:
        if op in ("in", "not in"):
            why = f"cannot look for {show(a)} in {show(b)}"
        elif LEVEL[op] == CMP:
            why = f"cannot compare {show(a)} with {show(b)} using '{op}'"
        else:
            why = f"cannot use '{op}' on {show(a)} and {show(b)}"
        raise ConditionError(why, text, offset)
    if op in ("in", "not in"):
        found = any(_equal(a, x) for x in b) if isinstance(b, list | tuple) else a in b
        return found == (op == "in")
    if op in ("==", "!="):
        return _equal(a, b) == (op == "==")
    if op in ("/", "%") and b == 0:
        raise ConditionError("division by zero", text, offset)
    try:
        return _limit(_ARITH[op](a, b), text, offset)
    except OverflowError:
        raise ConditionError("number too large", text, offset) from None
