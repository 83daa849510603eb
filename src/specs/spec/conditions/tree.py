"""The tree a condition parses into: frozen dataclasses, and the one error type.

:class:`Condition` holds the text and the root :data:`Node`; :class:`Reference` is what a
condition reads (a step's output or status, a variable). The limits are here too, since the
tokenizer, the parser and evaluation all enforce them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from specs.errors import SpecError

__all__ = ["MAX_DEPTH", "MAX_DIGITS", "MAX_INT", "MAX_LENGTH", "MAX_SIZE", "BoolOp", "Call",
           "Chain", "Condition", "ConditionError", "Const", "ListOf", "Node", "Reference",
           "Unary", "children", "step_ref"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_LENGTH, MAX_DEPTH, MAX_DIGITS, MAX_SIZE = 2000, 64, 100, 1_000_000
MAX_INT = 10**100


class ConditionError(SpecError):
    """A condition that cannot be parsed or evaluated; ``offset`` is 0-based into ``text``."""

    def __init__(self, message: str, text: str = "", offset: int | None = None) -> None:
        self.text, self.offset, self.reason = text, offset, message
        super().__init__(message)


# -- the tree --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """Data a condition reads: a step's output (and a path in it), a step's status, a var."""

    kind: Literal["output", "status", "var"]
    task: str | None  # None: the task of the condition's step
    step: int | None
    field: tuple[str | int, ...]
    offset: int

    def source(self) -> str:
        """The reference written back in its canonical form."""
        path = "".join(f".{p}" if isinstance(p, str) and _IDENT.fullmatch(p)
                       else f"[{json.dumps(p)}]" for p in self.field)
        if self.kind == "var":
            return "vars" + path
        head = (f"step{self.step}_output" if self.task is None and self.kind == "output"
                else f'steps["{self.task + "." if self.task else ""}{self.step}"].{self.kind}')
        return head + path


@dataclass(frozen=True)
class Const:
    value: Any  # str | int | float | bool | None
    offset: int


@dataclass(frozen=True)
class ListOf:
    items: tuple[Node, ...]
    offset: int


@dataclass(frozen=True)
class Unary:
    op: str  # "not" | "-" | "+"
    operand: Node
    offset: int


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" | "or"
    values: tuple[Node, ...]
    offset: int


@dataclass(frozen=True)
class Chain:
    """``first op1 x1 op2 x2 ...``: a comparison chain, or a left-to-right arithmetic fold."""

    compare: bool
    first: Node
    rest: tuple[tuple[str, int, Node], ...]  # (operator, its offset, right operand)


@dataclass(frozen=True)
class Call:
    name: str  # "len" | "exists"
    arg: Node
    offset: int


Node = Reference | Const | ListOf | Unary | BoolOp | Chain | Call


@dataclass(frozen=True)
class Condition:
    """A parsed condition."""

    text: str
    root: Node

    def references(self) -> list[Reference]:
        """Every reference, in the order written."""
        found: list[Reference] = []
        stack: list[Node] = [self.root]
        while stack:
            node = stack.pop()
            if isinstance(node, Reference):
                found.append(node)
            stack.extend(reversed(children(node)))
        return sorted(found, key=lambda r: r.offset)


def children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Chain):
        return (node.first, *(n for _, _, n in node.rest))
    if isinstance(node, Unary | Call):
        return (node.operand,) if isinstance(node, Unary) else (node.arg,)
    return node.items if isinstance(node, ListOf) else node.values if isinstance(
        node, BoolOp) else ()


def step_ref(ref: Reference, task: str) -> str | None:
    """The ``"T.N"`` a reference points at (``task`` for same-task forms); None for vars."""
    if ref.kind == "var":
        return None
    return f"{ref.task if ref.task is not None else task}.{ref.step}"
