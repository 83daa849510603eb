"""Reading a condition: the tokenizer and the Pratt parser (one level of recursion per nesting
level, bounded by ``MAX_DEPTH``), and two helpers on condition text: :func:`rebase` (the task
refs of an included spec's conditions) and :func:`excerpt` (the line under a caret)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any, NamedTuple

from specs.spec.conditions.tree import (
    MAX_DEPTH,
    MAX_DIGITS,
    MAX_INT,
    MAX_LENGTH,
    BoolOp,
    Call,
    Chain,
    Condition,
    ConditionError,
    Const,
    ListOf,
    Node,
    Reference,
    Unary,
)
from specs.spec.conditions.values import AND, CMP, LEVEL, NOT, OR, UNARY, kind_of

__all__ = ["excerpt", "parse", "rebase"]


# -- tokens ----------------------------------------------------------------------------------


class _Tok(NamedTuple):
    kind: str  # "num" | "str" | "name" | "op" | "end"
    value: Any
    offset: int
    end: int


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
        return LEVEL.get(tok.value) if tok.kind in ("op", "name") else None

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
                if isinstance(operand, Const) and kind_of(operand.value) == "number":
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
        if name in LEVEL:
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
