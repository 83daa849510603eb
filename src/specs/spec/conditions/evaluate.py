"""Evaluating a parsed condition against what a run knows (:class:`Scope`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from specs.spec.conditions.tree import (
    BoolOp,
    Call,
    Condition,
    ConditionError,
    Const,
    ListOf,
    Node,
    Reference,
    Unary,
    step_ref,
)
from specs.spec.conditions.values import apply, cut, kind_of, show

__all__ = ["Scope", "evaluate"]


@dataclass
class Scope:
    """What a condition can read. ``outputs``/``statuses`` are keyed by step ref ``"T.N"``."""

    task: str
    outputs: Mapping[str, Any]  # only steps that completed
    statuses: Mapping[str, str]
    vars: Mapping[str, Any]


def evaluate(cond: Condition, scope: Scope) -> bool:
    """The truth of ``cond`` in ``scope``; raises ConditionError when it cannot be known."""
    try:
        return bool(_Eval(cond.text, scope).value(cond.root))
    except RecursionError:
        raise ConditionError("the data is nested too deeply", cond.text, None) from None


class _Eval:
    def __init__(self, text: str, scope: Scope) -> None:
        self.text, self.scope = text, scope

    def value(self, node: Node) -> Any:
        if isinstance(node, Const):
            return node.value
        if isinstance(node, Reference):
            return self.resolve(node)
        if isinstance(node, ListOf):
            return [self.value(item) for item in node.items]
        if isinstance(node, BoolOp):
            want = node.op == "or"
            return want if any(bool(self.value(v)) == want for v in node.values) else not want
        if isinstance(node, Unary):
            operand = self.value(node.operand)
            if node.op == "not":
                return not bool(operand)
            if kind_of(operand) != "number":
                raise ConditionError(f"cannot apply unary '{node.op}' to {show(operand)}",
                                     self.text, node.offset)
            return -operand if node.op == "-" else operand
        if isinstance(node, Call):
            if node.name == "exists":
                try:
                    self.value(node.arg)
                except ConditionError:
                    return False
                return True
            arg = self.value(node.arg)
            if kind_of(arg) not in ("string", "list", "object"):
                raise ConditionError(f"len() of {show(arg)}: only strings, lists and "
                                     "objects have a length", self.text, node.offset)
            return len(arg)
        left = self.value(node.first)
        for op, offset, right_node in node.rest:
            right = self.value(right_node)
            result = apply(op, left, right, self.text, offset)
            if node.compare and not result:
                return False
            left = right if node.compare else result
        return True if node.compare else left

    def resolve(self, ref: Reference) -> Any:
        scope, path = self.scope, ref.field
        if ref.kind == "var":
            name = str(path[0])
            if name not in scope.vars:
                raise self.error(f"vars.{name} is not set (set it in [vars] or with --var "
                                 f"{name}=...)", ref)
            value, where, path = scope.vars[name], f"vars.{name}", path[1:]
        else:
            key = step_ref(ref, scope.task) or ""
            if ref.kind == "status":
                return scope.statuses.get(key, "pending")
            if key not in scope.outputs:
                status = scope.statuses.get(key)
                why = f"its status is {status}" if status else "it has not completed"
                raise self.error(f"step {key} has no output ({why})", ref)
            value, where = scope.outputs[key], f"step {key}'s output"
        for part in path:
            kind = kind_of(value)
            if kind == "object":
                item: Any = part if part in value or isinstance(part, str) else str(part)
                if item not in value:
                    keys = ", ".join(sorted(map(str, value))[:8]) or "none"
                    raise self.error(f"{where} has no field {part!r} (its fields: "
                                     f"{cut(keys)})", ref)
                value = value[item]
            elif kind == "list" and isinstance(part, int):
                if not -len(value) <= part < len(value):
                    raise self.error(f"{where} has {len(value)} items; [{part}] is out of "
                                     "range", ref)
                value = value[part]
            else:
                raise self.error(f"{where} is {show(value)}; it has no "
                                 f"{'item' if isinstance(part, int) else 'field'} {part!r}", ref)
            where += f".{part}" if isinstance(part, str) else f"[{part}]"
        if kind_of(value) == "other":
            raise self.error(f"{where} is a Python {type(value).__name__}, not JSON data", ref)
        return value

    def error(self, message: str, ref: Reference) -> ConditionError:
        return ConditionError(message, self.text, ref.offset)
