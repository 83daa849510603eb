"""The static checks ``specs validate`` runs on a condition: operand kinds that can never fit
an operator (judged by literals and an ``output_schema``'s types), and fields a schema does not
allow."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from specs.spec.conditions.tree import (
    Call,
    Chain,
    Condition,
    Const,
    ListOf,
    Node,
    Reference,
    Unary,
    children,
)
from specs.spec.conditions.values import kind_of, result_kind

__all__ = ["Kinds", "schema_lookup", "type_errors"]

Kinds = frozenset[str] | None  # None: unknown


def type_errors(cond: Condition, kinds_of: Callable[[Reference], Kinds]) -> list[
        tuple[str, int]]:
    """Operations whose operand kinds are known and can never fit: (message, offset)."""
    found: list[tuple[str, int]] = []

    def infer(node: Node) -> Kinds:
        if isinstance(node, Const):
            return frozenset({kind_of(node.value)})
        if isinstance(node, Reference):
            return frozenset({"string"}) if node.kind == "status" else kinds_of(node)
        if isinstance(node, Chain):
            left = infer(node.first)
            for op, offset, right_node in node.rest:
                right = infer(right_node)
                out = None if not left or not right else frozenset(
                    k for a in left for b in right if (k := result_kind(op, a, b)) is not None)
                if out is not None and not out:
                    found.append((f"'{op}' cannot work on {' or '.join(sorted(left or ()))} and"
                                  f" {' or '.join(sorted(right or ()))}", offset))
                left = right if node.compare else out or None
            return frozenset({"bool"}) if node.compare else left
        kids = [infer(child) for child in children(node)]
        if isinstance(node, ListOf):
            return frozenset({"list"})
        need = {"len": {"string", "list", "object"}, "-": {"number"}, "+": {"number"}}.get(
            node.name if isinstance(node, Call) else node.op, set())
        if need and kids[0] and not kids[0] & need:
            what = "len()" if isinstance(node, Call) else f"unary '{node.op}'"
            found.append((f"{what} cannot work on {' or '.join(sorted(kids[0]))}", node.offset))
        number = (isinstance(node, Call) and node.name == "len") or (isinstance(
            node, Unary) and node.op != "not")
        return frozenset({"number" if number else "bool"})

    infer(cond.root)
    return found


_SCHEMA_KINDS = {"integer": "number", "number": "number", "string": "string", "boolean": "bool",
                 "null": "null", "array": "list", "object": "object"}


def schema_lookup(schema: Any, path: tuple[str | int, ...]) -> tuple[str | int | None, bool,
                                                                      Kinds]:
    """Follow ``path`` in a JSON Schema: (the first part the schema does not list, whether it
    forbids it, the kinds at the end when the schema says). A part is forbidden when the value
    cannot be an object/list, or ``additionalProperties = false``; unknown shapes stop early."""
    for part in path:
        kinds = _schema_kinds(schema)
        if not isinstance(schema, dict):
            return None, False, None
        want = "list" if isinstance(part, int) else "object"
        if kinds is not None and want not in kinds:
            return part, True, None
        if isinstance(part, int):
            schema = schema.get("items")
            continue
        props = schema.get("properties")
        if not isinstance(props, dict):
            return None, False, None
        if part not in props:
            return part, schema.get("additionalProperties") is False, None
        schema = props[part]
    return None, False, _schema_kinds(schema)


def _schema_kinds(schema: Any) -> Kinds:
    types = schema.get("type") if isinstance(schema, dict) else None
    names = [types] if isinstance(types, str) else types if isinstance(types, list) else []
    kinds = frozenset(_SCHEMA_KINDS.get(str(t), "other") for t in names)
    return kinds if kinds and "other" not in kinds else None
