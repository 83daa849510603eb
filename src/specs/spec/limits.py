"""The bounds on what a spec file may hold, checked before and after the TOML is parsed.

Input a spec never needs but that would crash or stall a parser is refused *before* parsing,
each with one diagnostic that names the line (docs/validation.md "Limits"):

- arrays and inline tables nested more than :data:`MAX_NESTING` deep (``tomllib`` recurses
  once per level and dies near 1,000; the model, copies and JSON output recurse too);
- keys of more than :data:`MAX_KEY_PARTS` dotted parts (``a.b.c...``, in a table header, a
  ``key = value`` line or an inline table: ``tomllib`` takes quadratic time and memory in the
  number of parts: 20,000 parts cost it 24 s and 9 GB);
- integers outside the 64-bit signed range (TOML 1.0 §Integer asks parsers to reject them;
  Python also refuses to convert decimal integers of more than 4,300 digits).

The scan is a few regular-expression passes over the text with strings and comments blanked
out (so ``"[[[["`` in a description is just text); real specs take well under a millisecond per
10 KB. Counts and durations that parse but make no sense for a run (``max_retries = 10**18``)
are bounded in the model (:data:`MAX_RETRIES`, :data:`MAX_SECONDS` ...), so the validator
reports them as ``E-TYPE`` with the key's position.
"""

from __future__ import annotations

import re

from specs.diagnostics import Diagnostic, Location, Severity

__all__ = ["MAX_BACKOFF_SECONDS", "MAX_COUNT", "MAX_ITERATIONS", "MAX_KEY_PARTS", "MAX_NESTING",
           "MAX_PARALLEL", "MAX_RETRIES", "MAX_SECONDS", "MAX_TOKENS", "input_limits"]

MAX_NESTING = 32
MAX_KEY_PARTS = 32
INT64 = 2**63

#: retries of one method (each attempt can take up to its timeout)
MAX_RETRIES = 100
#: a timeout of one attempt or one step: 7 days
MAX_SECONDS = 7 * 24 * 3600.0
#: the longest wait between two attempts
MAX_BACKOFF_SECONDS = 24 * 3600.0
#: iterations of a task transition loop
MAX_ITERATIONS = 1000
#: steps run at once
MAX_PARALLEL = 1024
#: other counts (escalation thresholds, agent turns, failure thresholds)
MAX_COUNT = 10_000
#: token counts (budgets, output tokens)
MAX_TOKENS = 10**12

# Strings and comments, blanked before the other passes: multi-line strings first, then
# one-line strings, then comments (a `#` inside a string was consumed with the string).
_STRINGS = re.compile(
    r'"""(?:[^"\\]++|\\.|"(?!""))*+"""|\'\'\'(?:[^\']++|\'(?!\'\'))*+\'\'\''
    r'|"(?:[^"\\\n]++|\\.)*+"|\'[^\'\n]*+\'|#[^\n]*+', re.S)
_BRACKET = re.compile(r"[\[\]{}]")
# MAX_KEY_PARTS dots between key parts, so more than MAX_KEY_PARTS parts (quoted parts are
# blanked to "s"); it starts at a dot, a literal the regex engine finds fast
_DOTTED = re.compile(r"\.(?:[ \t]*+[\w-]++[ \t]*+\.){" + str(MAX_KEY_PARTS - 1) + "}")
# an integer in value position (after `=`, `[` or `,`), not followed by what makes it a float,
# a date or a key
_INT = re.compile(
    r"(?<=[=\[,])[ \t\n]*+([+-]?(?:0x[0-9A-Fa-f_]++|0o[0-7_]++|0b[01_]++|[0-9][0-9_]*+))"
    r"(?![\w.:+-]|[ \t]*+[=.])")
_LONG_DIGITS = re.compile(r"[0-9_]{19}|0[xob][0-9A-Fa-f_]{16}")


def _blank(match: re.Match[str]) -> str:
    """A string or comment made harmless, with its line breaks kept (positions stay true)."""
    text = match.group(0)
    if text.startswith("#"):
        return " " * len(text)
    if "\n" not in text:
        return "s" * len(text)
    return "\n".join("s" * len(line) for line in text.split("\n"))


def _where(file: str, text: str, offset: int) -> Location:
    line = text.count("\n", 0, offset) + 1
    return Location(file, line, offset - (text.rfind("\n", 0, offset) + 1) + 1)


def _error(message: str, where: Location, hint: str) -> Diagnostic:
    return Diagnostic(Severity.ERROR, "E-TOML-LIMIT", message, where, hint)


def input_limits(text: str, file: str) -> list[Diagnostic]:
    """The first input that breaks one of the limits above, as one error (empty when none)."""
    code = _STRINGS.sub(_blank, text) if ('"' in text or "'" in text or "#" in text) else text
    found = _nesting(code, text, file) or _dotted(code, text, file) or _integers(code, text, file)
    return [found] if found else []


def _nesting(code: str, text: str, file: str) -> Diagnostic | None:
    if code.count("[") + code.count("{") <= MAX_NESTING:
        return None
    depth = 0
    for match in _BRACKET.finditer(code):
        if match.group(0) in "[{":
            depth += 1
            if depth > MAX_NESTING:
                return _error(f"arrays or inline tables nested more than {MAX_NESTING} deep",
                              _where(file, text, match.start()),
                              "flatten the value; a spec needs a few levels at most")
        elif depth:
            depth -= 1
    return None


def _dotted(code: str, text: str, file: str) -> Diagnostic | None:
    if code.count(".") < MAX_KEY_PARTS:
        return None
    match = _DOTTED.search(code)
    if match is None:
        return None
    return _error(f"a dotted key or table name of more than {MAX_KEY_PARTS} parts",
                  _where(file, text, match.start()), "use a shorter key")


def _integers(code: str, text: str, file: str) -> Diagnostic | None:
    if not _LONG_DIGITS.search(code):
        return None  # every integer has at most 18 digits: within 64 bits
    for match in _INT.finditer(code):
        literal = match.group(1).replace("_", "")
        digits = literal.lstrip("+-")
        if len(digits) < 19 and not digits.startswith(("0x", "0o", "0b")):
            continue
        if len(digits) > 40:
            out_of_range = True  # no need to convert it (Python refuses over 4,300 digits)
        else:
            try:
                value = int(literal, 0) if digits[:2] in ("0x", "0o", "0b") else int(literal)
            except ValueError:
                continue  # not an integer after all: tomllib explains
            out_of_range = not -INT64 <= value < INT64
        if out_of_range:
            shown = literal if len(literal) <= 24 else f"{literal[:12]}... ({len(digits)} digits)"
            return _error(f"integer {shown} is outside the 64-bit range TOML allows",
                          _where(file, text, match.start(1)),
                          "use a smaller number; docs/validation.md lists the limits")
    return None
