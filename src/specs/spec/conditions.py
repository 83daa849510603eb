"""Conditions: the small, safe expression language of ``condition`` keys (docs/conditions.md).

A condition is parsed by its own tokenizer and Pratt parser into a tree of frozen dataclasses
and evaluated against JSON-like data (dict, list, str, int, float, bool, None). There is no
``eval``: a condition can only read step outputs, step statuses and variables.

Grammar (EBNF; keywords are case-sensitive except the optional leading ``IF``)::

    condition  = [ "IF" ] expr ;
    expr       = or ;
    or         = and { "or" and } ;
    and        = not { "and" not } ;
    not        = "not" not | comparison ;
    comparison = sum { compare_op sum } ;              (* chained: 0 < x < 1 *)
    compare_op = "==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not" "in" ;
    sum        = product { ( "+" | "-" ) product } ;
    product    = unary { ( "*" | "/" | "%" ) unary } ;
    unary      = ( "-" | "+" ) unary | primary ;
    primary    = NUMBER | STRING | "true" | "false" | "True" | "False" | "null"
               | "[" [ expr { "," expr } [ "," ] ] "]" | "(" expr ")"
               | ( "len" | "exists" ) "(" expr ")" | reference ;
    reference  = ( STEP_OUTPUT | TASK_STEP_OUTPUT | "steps" "[" STRING "]" "." "output" ) path
               | "steps" "[" STRING "]" "." "status" | "vars" ( "." NAME | "[" STRING "]" ) path ;
    path       = { "." NAME | "[" INDEX "]" } ;         (* INDEX: an integer or a string *)
    STEP_OUTPUT      = "step" DIGITS "_output" ;
    TASK_STEP_OUTPUT = "task" DIGITS "_step" DIGITS "_output" ;

Limits: 2,000 characters, 64 levels of nesting, integers up to 10**100 (literals up to 100
digits), strings and lists up to 1,000,000 items. Only :class:`ConditionError` escapes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from specs.errors import SpecError

__all__ = ["Condition", "ConditionError", "Reference", "Scope", "evaluate", "excerpt", "parse",
           "rebase", "schema_lookup", "step_ref", "type_errors"]

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
            stack.extend(reversed(_children(node)))
        return sorted(found, key=lambda r: r.offset)


def _children(node: Node) -> tuple[Node, ...]:
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


# -- tokens ----------------------------------------------------------------------------------


class _Tok(NamedTuple):
    kind: str  # "num" | "str" | "name" | "op" | "end"
    value: Any
    offset: int
    end: int


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOKEN = re.compile(r"""(?P<ws>\s+)|(?P<num>[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
    |(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
    |(?P<op>==|!=|<=|>=|\*\*|//|&&|\|\||<>|[-<>+*/%()\[\],.!=&|])""", re.X)
_BAD = {"**": "'**' is not supported (there is no exponentiation)",
        "//": "'//' is not supported; use '/' or '%'", "&&": "use 'and' instead of '&&'",
        "||": "use 'or' instead of '||'", "&": "use 'and' instead of '&'",
        "|": "use 'or' instead of '|'", "!": "use 'not' instead of '!'",
        "=": "use '==' to compare ('=' assigns nothing here)", "<>": "use '!=' instead of '<>'"}
_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t"}
_WORDS = {"None": "use null instead of None", "is": "use '==' instead of 'is'",
          "for": "comprehensions are not supported", "lambda": "lambda is not supported",
          "if": "'if' is only allowed at the start", "else": "'x if c else y' is not supported",
          "import": "import is not supported"}
_PYTHON = {"as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif",
           "except", "finally", "from", "global", "nonlocal", "pass", "raise", "return", "try",
           "while", "with", "yield"}
_CONST = {"true": True, "True": True, "false": False, "False": False, "null": None}
_STEP = re.compile(r"step([0-9]{1,9})_output")
_TASK_STEP = re.compile(r"task([0-9]{1,9})_step([0-9]{1,9})_output")
_STEP_KEY = re.compile(r"(?:(.+)\.)?([0-9]{1,9})")
_HELP = ("a condition reads stepN_output.FIELD, taskT_stepN_output.FIELD, "
         'steps["T.N"].output.FIELD, steps["T.N"].status or vars.NAME')


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            _check_words(out, text)
            char = text[pos]
            what = "unterminated string" if char in "\"'" else f"unexpected character {char!r}"
            raise ConditionError(what, text, pos)
        kind, value = m.lastgroup or "", m.group()
        if kind == "op" and value in _BAD:
            raise ConditionError(_BAD[value], text, pos)
        if kind == "num":
            if len(value) > MAX_DIGITS:
                raise ConditionError(f"number too long (more than {MAX_DIGITS} digits)", text,
                                     pos)
            number = float(value) if any(c in value for c in ".eE") else int(value)
            if not math.isfinite(number) or abs(number) > MAX_INT:
                raise ConditionError("number too large", text, pos)
            out.append(_Tok(kind, number, pos, m.end()))
        elif kind == "str":
            out.append(_Tok(kind, _unescape(value, text, pos), pos, m.end()))
        elif kind != "ws":
            out.append(_Tok(kind, value, pos, m.end()))
        pos = m.end()
    out.append(_Tok("end", None, len(text), len(text)))
    _check_words(out, text)
    return out


def _check_words(toks: list[_Tok], text: str) -> None:
    """Python words (``lambda``, ``for``, ``import``...) get a clear message, wherever they are
    (except as a field name after a dot, and a leading ``IF``)."""
    for i, tok in enumerate(toks):
        word = tok.value if tok.kind == "name" else None
        if (word in _WORDS or word in _PYTHON) and not (i and toks[i - 1].value == ".") and not (
                i == 0 and str(word).lower() == "if"):
            raise ConditionError(_WORDS.get(str(word), f"{word!r} is not part of the condition "
                                            "language"), text, tok.offset)


def _unescape(literal: str, text: str, pos: int) -> str:
    def one(m: re.Match[str]) -> str:
        if m[1] not in _ESCAPES:
            raise ConditionError(f"unknown escape '\\{m[1]}'", text, pos + 1 + m.start())
        return _ESCAPES[m[1]]

    return re.sub(r"\\(.)", one, literal[1:-1])


# -- the parser (Pratt: one level of recursion per nesting level) -------------------------------

OR, AND, NOT, CMP, SUM, PROD, UNARY = range(1, 8)
_LEVEL = {"or": OR, "and": AND, "in": CMP, "not": CMP, "==": CMP, "!=": CMP, "<": CMP,
          "<=": CMP, ">": CMP, ">=": CMP, "+": SUM, "-": SUM, "*": PROD, "/": PROD, "%": PROD}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text, self.toks, self.i, self.depth = text, _tokens(text), 0, 0

    def fail(self, message: str, tok: _Tok | None = None) -> ConditionError:
        return ConditionError(message, self.text, (tok or self.peek()).offset)

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += tok.kind != "end"
        return tok

    def is_op(self, *values: str) -> bool:
        tok = self.peek()
        return tok.kind in ("op", "name") and tok.value in values

    def expect(self, value: str, message: str) -> _Tok:
        if not self.is_op(value):
            raise self.fail(message)
        return self.take()

    def level(self) -> int | None:
        tok = self.peek()
        return _LEVEL.get(tok.value) if tok.kind in ("op", "name") else None

    def expr(self, min_level: int) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"the condition is nested too deeply (more than {MAX_DEPTH} levels)")
        left = self.prefix()
        while (level := self.level()) is not None and level >= min_level:
            if level in (OR, AND):
                op, values, at = self.peek().value, [left], self.peek().offset
                while self.is_op(op):
                    self.take()
                    values.append(self.expr(level + 1))
                left = BoolOp(op, tuple(values), at)
                continue
            rest: list[tuple[str, int, Node]] = []
            while self.level() == level:
                tok = self.take()
                op = tok.value
                if op == "not":
                    self.expect("in", "expected 'in' after 'not' (or use 'and not')")
                    op = "not in"
                rest.append((op, tok.offset, self.expr(level + 1)))
            left = Chain(level == CMP, left, tuple(rest))
        self.depth -= 1
        return left

    def prefix(self) -> Node:
        node = self.operand()
        if self.is_op(".", "["):
            raise self.fail("only references (stepN_output..., steps[...], vars) have fields")
        if self.is_op("("):
            raise self.fail("only len() and exists() can be called")
        return node

    def operand(self) -> Node:
        tok = self.take()
        if tok.kind in ("num", "str"):
            return Const(tok.value, tok.offset)
        if tok.kind == "end":
            raise self.fail("the condition ends too early: a value is missing", tok)
        value = tok.value
        if tok.kind == "op":
            if value == "(":
                node = self.expr(0)
                self.expect(")", "expected ')'")
                return node
            if value == "[":
                items: list[Node] = []
                while not self.is_op("]"):
                    items.append(self.expr(0))
                    if not self.is_op("]"):
                        self.expect(",", "expected ',' or ']' in the list")
                self.take()
                return ListOf(tuple(items), tok.offset)
            if value in ("-", "+"):
                operand = self.expr(UNARY)
                if isinstance(operand, Const) and _kind(operand.value) == "number":
                    return Const(-operand.value if value == "-" else operand.value, tok.offset)
                return Unary(value, operand, tok.offset)
            raise self.fail(f"expected a value, got {value!r}", tok)
        if value == "not":
            return Unary("not", self.expr(NOT), tok.offset)
        if value in _CONST:
            return Const(_CONST[value], tok.offset)
        if value in ("len", "exists"):
            self.expect("(", f"{value} is a function: write {value}(...)")
            arg = self.expr(0)
            if self.is_op(","):
                raise self.fail(f"{value}() takes one argument")
            self.expect(")", "expected ')'")
            if value == "exists" and not isinstance(arg, Reference):
                raise self.fail("exists() takes a reference, e.g. exists(step1_output.score)",
                                tok)
            return Call(value, arg, tok.offset)
        return self.reference(tok)

    def reference(self, tok: _Tok) -> Reference:
        name: str = tok.value
        if name.startswith("__"):
            raise self.fail(f"{name!r}: conditions cannot reach Python attributes", tok)
        if name in _LEVEL:
            raise self.fail(f"expected a value before {name!r}", tok)
        if m := _STEP.fullmatch(name):
            ref = Reference("output", None, int(m[1]), (), tok.offset)
        elif m := _TASK_STEP.fullmatch(name):
            ref = Reference("output", m[1], int(m[2]), (), tok.offset)
        elif name == "steps":
            self.expect("[", 'write steps["T.N"]')
            key = self.take()
            match = _STEP_KEY.fullmatch(key.value) if key.kind == "str" else None
            if match is None:
                raise self.fail('a step is written steps["T.N"] (task ref, dot, step id), '
                                'e.g. steps["1.2"]', key)
            self.expect("]", "expected ']'")
            self.expect(".", 'write steps["T.N"].output or steps["T.N"].status')
            part = self.take()
            if part.value not in ("output", "status"):
                raise self.fail('write steps["T.N"].output or steps["T.N"].status', part)
            ref = Reference(part.value, match[1], int(match[2]), (), tok.offset)
        elif name == "vars":
            if not self.is_op(".", "["):
                raise self.fail("write vars.NAME")
            ref = Reference("var", None, None, (), tok.offset)
        else:
            hint = " (did you mean null?)" if name.lower() in ("none", "nil") else ""
            raise self.fail(f"unknown name {name!r}{hint}; {_HELP}", tok)
        path = self.path()
        if ref.kind == "status" and path:
            raise self.fail("a status is a string; it has no fields", tok)
        if ref.kind == "var" and not isinstance(path[0], str):
            raise self.fail("a variable name is a string: vars.NAME", tok)
        return Reference(ref.kind, ref.task, ref.step, path, ref.offset)

    def path(self) -> tuple[str | int, ...]:
        out: list[str | int] = []
        while self.is_op(".", "["):
            if len(out) >= MAX_DEPTH:
                raise self.fail(f"the field path is too long (more than {MAX_DEPTH} parts)")
            if self.take().value == ".":
                tok = self.take()
                if tok.kind != "name":
                    raise self.fail("expected a field name after '.'", tok)
                if tok.value.startswith("__"):
                    raise self.fail(f"{tok.value!r}: conditions cannot reach Python attributes "
                                    f'(write ["{tok.value}"] for a data key)', tok)
                out.append(tok.value)
                continue
            sign = -1 if self.is_op("-") and self.take() else 1
            tok = self.take()
            if not ((tok.kind == "str" and sign == 1) or (tok.kind == "num"
                    and isinstance(tok.value, int))):
                raise self.fail('an index is an integer or a string, e.g. [0] or ["key"]', tok)
            out.append(tok.value * sign if tok.kind == "num" else tok.value)
            self.expect("]", "expected ']'")
        return tuple(out)


def parse(text: str) -> Condition:
    """Parse a condition; a leading ``IF`` (any case) is optional. Raises ConditionError."""
    if not isinstance(text, str):
        raise ConditionError("a condition is a string")
    if len(text) > MAX_LENGTH:
        raise ConditionError(f"the condition is too long ({len(text)} characters; the limit "
                             f"is {MAX_LENGTH})", text, None)
    parser = _Parser(text)
    first = parser.peek()
    if first.kind == "name" and first.value.lower() == "if":
        parser.take()
    if parser.peek().kind == "end":
        raise parser.fail("the condition is empty")
    root = parser.expr(0)
    end = parser.peek()
    if end.kind == "op" and end.value in ")]":
        raise parser.fail(f"unmatched {end.value!r}")
    if end.kind != "end":
        shown = text[end.offset:].split()[0][:20]
        raise parser.fail(f"expected an operator (and, or, ==, <, +, ...) before {shown!r}")
    return Condition(text, root)


# -- values and operators (shared by evaluation and the static check) -----------------------


_KINDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (type(None), "null"), (bool, "bool"), ((int, float), "number"), (str, "string"),
    ((list, tuple), "list"), (dict, "object"))


def _kind(value: Any) -> str:
    """The JSON kind of a value: null, bool, number, string, list, object (or other)."""
    return next((kind for types, kind in _KINDS if isinstance(value, types)), "other")


def _result_kind(op: str, left: str, right: str) -> str | None:
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


def _show(value: Any) -> str:
    kind = _kind(value)
    if kind in ("null", "list", "object", "other"):
        return {"null": "null", "list": "a list", "object": "an object"}.get(
            kind, f"a Python {type(value).__name__}")
    return f"a {kind} ({_cut(str(value).lower() if kind == 'bool' else repr(value))})"


def _cut(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _equal(a: Any, b: Any) -> bool:
    ka, kb = _kind(a), _kind(b)
    if ka != kb or ka == "other":
        return False
    if ka == "list":
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if ka == "object":
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def _limit(value: Any, text: str, offset: int) -> Any:
    if _kind(value) == "number" and not (math.isfinite(value) and abs(value) <= MAX_INT):
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


def _apply(op: str, a: Any, b: Any, text: str, offset: int) -> Any:
    """``a op b`` on JSON values, or ConditionError (kinds that do not fit, zero, overflow)."""
    if _result_kind(op, _kind(a), _kind(b)) is None:
        if op in ("in", "not in"):
            why = f"cannot look for {_show(a)} in {_show(b)}"
        elif _LEVEL[op] == CMP:
            why = f"cannot compare {_show(a)} with {_show(b)} using '{op}'"
        else:
            why = f"cannot use '{op}' on {_show(a)} and {_show(b)}"
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


# -- evaluation ------------------------------------------------------------------------------


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
            if _kind(operand) != "number":
                raise ConditionError(f"cannot apply unary '{node.op}' to {_show(operand)}",
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
            if _kind(arg) not in ("string", "list", "object"):
                raise ConditionError(f"len() of {_show(arg)}: only strings, lists and "
                                     "objects have a length", self.text, node.offset)
            return len(arg)
        left = self.value(node.first)
        for op, offset, right_node in node.rest:
            right = self.value(right_node)
            result = _apply(op, left, right, self.text, offset)
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
            kind = _kind(value)
            if kind == "object":
                item: Any = part if part in value or isinstance(part, str) else str(part)
                if item not in value:
                    keys = ", ".join(sorted(map(str, value))[:8]) or "none"
                    raise self.error(f"{where} has no field {part!r} (its fields: "
                                     f"{_cut(keys)})", ref)
                value = value[item]
            elif kind == "list" and isinstance(part, int):
                if not -len(value) <= part < len(value):
                    raise self.error(f"{where} has {len(value)} items; [{part}] is out of "
                                     "range", ref)
                value = value[part]
            else:
                raise self.error(f"{where} is {_show(value)}; it has no "
                                 f"{'item' if isinstance(part, int) else 'field'} {part!r}", ref)
            where += f".{part}" if isinstance(part, str) else f"[{part}]"
        if _kind(value) == "other":
            raise self.error(f"{where} is a Python {type(value).__name__}, not JSON data", ref)
        return value

    def error(self, message: str, ref: Reference) -> ConditionError:
        return ConditionError(message, self.text, ref.offset)


# -- static checks for `specs validate` -------------------------------------------------------

Kinds = frozenset[str] | None  # None: unknown


def type_errors(cond: Condition, kinds_of: Callable[[Reference], Kinds]) -> list[
        tuple[str, int]]:
    """Operations whose operand kinds are known and can never fit: (message, offset)."""
    found: list[tuple[str, int]] = []

    def infer(node: Node) -> Kinds:
        if isinstance(node, Const):
            return frozenset({_kind(node.value)})
        if isinstance(node, Reference):
            return frozenset({"string"}) if node.kind == "status" else kinds_of(node)
        if isinstance(node, Chain):
            left = infer(node.first)
            for op, offset, right_node in node.rest:
                right = infer(right_node)
                out = None if not left or not right else frozenset(
                    k for a in left for b in right if (k := _result_kind(op, a, b)) is not None)
                if out is not None and not out:
                    found.append((f"'{op}' cannot work on {' or '.join(sorted(left or ()))} and"
                                  f" {' or '.join(sorted(right or ()))}", offset))
                left = right if node.compare else out or None
            return frozenset({"bool"}) if node.compare else left
        kids = [infer(child) for child in _children(node)]
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


def rebase(text: str, rename: Callable[[str], str | None]) -> str:
    """``text`` with each explicit task ref T (``taskT_stepN_output``, ``steps["T.N"]``) replaced
    by ``rename(T)`` unless that is None; same-task forms stay. For the conditions of an included
    spec (``rename = lambda t: f"{alias}.{t}"``). Raises ConditionError if ``text`` is invalid."""
    parse(text)
    toks, out, last = _tokens(text), [], 0
    for i, tok in enumerate(toks):
        if tok.kind != "name" or (i and toks[i - 1].value == "."):
            continue
        if (m := _TASK_STEP.fullmatch(tok.value)) and (new := rename(m[1])) is not None:
            start, end, head = tok.offset, tok.end, f"{new}.{m[2]}"
            out += [text[last:start], f"steps[{json.dumps(head)}].output"]
        elif tok.value == "steps" and (m := _STEP_KEY.fullmatch(toks[i + 2].value)) and m[1] \
                and (new := rename(m[1])) is not None:
            start, end = toks[i + 2].offset, toks[i + 2].end
            out += [text[last:start], json.dumps(f"{new}.{m[2]}")]
        else:
            continue
        last = end
    return "".join(out) + text[last:]


def excerpt(text: str, offset: int | None, width: int = 76) -> str:
    """The line of ``text`` that holds ``offset`` and a caret under that character."""
    offset = min(max(offset or 0, 0), len(text))
    start = text.rfind("\n", 0, offset) + 1
    line = text[start:].split("\n", 1)[0]
    line, col = "".join(c if c.isprintable() else " " for c in line), offset - start
    if len(line) > width:
        low = max(0, min(col - width // 2, len(line) - width))
        line = ("..." if low else "") + line[low:low + width] + (
            "..." if low + width < len(line) else "")
        col += (3 if low else 0) - low
    return f"{line}\n{' ' * col}^"

