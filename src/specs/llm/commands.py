"""Which commands a shell line runs, as far as can be told without running it, and the
``[llm.tools]`` ``allow``/``deny`` check of the ``run_command`` tool (:mod:`specs.llm.tools`).

:func:`command_names` looks at the first word of every simple command of a line (after ``;``,
``&``, ``|``, ``&&``, ``||``, newlines, ``(``, ``{``, shell keywords, inside ``$( )`` and
backticks, past ``VAR=value``), the command a wrapper runs (``env``, ``sudo``, ``xargs`` ...)
and the command string of ``sh -c`` and ``eval``. :func:`check_command` matches those names
against glob patterns (deny wins; with an allow list, anything not in it is refused).
"""

from __future__ import annotations

import fnmatch
import re

__all__ = ["check_command", "command_names"]


def check_command(command: str, allow: list[str] | None, deny: list[str] | None) -> str | None:
    """Why ``command`` may not run under the ``allow``/``deny`` patterns, or None."""
    if not command.strip():
        return "empty command"
    if "\x00" in command:
        return "the command holds a NUL character"
    if allow is None and deny is None:
        return None
    for name in command_names(command):
        if not re.fullmatch(r"[\w./+\-@%:,=]+", name):
            return (f"command name {name!r} is built at run time (variables, quotes, "
                    "globs), so it cannot be checked against the allow/deny lists")
        candidates = {name, name.rsplit("/", 1)[-1]}
        denied = next((p for p in deny or [] if any(
            fnmatch.fnmatchcase(c, p) for c in candidates)), None)
        if denied is not None:
            return f"{name!r} is denied by [llm.tools] deny ({denied!r})"
        if allow is not None and not any(
                fnmatch.fnmatchcase(c, p) for p in allow for c in candidates):
            return (f"{name!r} is not in [llm.tools] allow "
                    f"({', '.join(allow) or 'empty: no commands'})")
    return None


_KEYWORDS = {"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "for", "in",
             "case", "esac", "!", "{", "}", "time", "function", "select"}
#: commands that run the command named by their arguments
_WRAPPERS = {"env", "sudo", "doas", "nohup", "exec", "command", "builtin", "nice", "ionice",
             "timeout", "xargs", "stdbuf", "setsid", "chroot", "unbuffer", "time", "watch",
             "strace", "ltrace", "busybox", "flock", "chrt", "taskset", "parallel"}
_HEADERS = {"for", "select", "case", "function"}
_SHELLS = {"sh", "bash", "dash", "zsh", "ksh", "ash", "fish", "csh", "tcsh"}
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=")


def command_names(command: str) -> list[str]:
    """Every command name in a shell command line, as far as can be told without running it.

    Looks at the first word of every simple command: after ``;``, ``&``, ``|``, ``&&``,
    ``||``, newlines, ``(``, ``{``, shell keywords, inside ``$( )`` and backticks (also inside
    double quotes), past ``VAR=value`` assignments; for wrappers (``env``, ``sudo``,
    ``xargs`` ...) also the command they run, and for ``sh -c``/``eval`` the command string.
    Words are returned as written (quotes removed); a name built from ``$`` expansions keeps
    its ``$`` so the caller can refuse it.
    """
    names: list[str] = []
    for words in _simple_commands(command):
        _names_of(words, names, 0)
    return names


def _names_of(words: list[str], names: list[str], depth: int) -> None:
    index = 0
    while index < len(words) and (_ASSIGNMENT.match(words[index]) or words[index] in _KEYWORDS):
        if words[index] in _HEADERS:
            return  # `for i in ...`, `case x in`: no command name here
        index += 1
    if index >= len(words):
        return
    name = words[index]
    names.append(name)
    base = name.rsplit("/", 1)[-1]
    rest = words[index + 1:]
    if depth > 8:
        return
    if base == "eval" and rest:
        names.extend(command_names(" ".join(rest)))
    elif base in _SHELLS:
        if "-c" in rest and rest.index("-c") + 1 < len(rest):
            names.extend(command_names(rest[rest.index("-c") + 1]))
    elif base in _WRAPPERS:
        # skip options, their numbers/durations and assignments: the next word is the command
        inner = [w for w in rest if not (w.startswith("-") or _ASSIGNMENT.match(w)
                                         or re.fullmatch(r"[\d.]+[smhd]?", w))]
        _names_of(inner, names, depth + 1)


def _simple_commands(line: str) -> list[list[str]]:
    """The words of each simple command of ``line`` (a small tokenizer: quotes, escapes,
    operators, command substitutions)."""
    commands: list[list[str]] = []
    words: list[str] = []
    word: list[str] = []
    started = False  # a word is in progress (it may be an empty quoted string)
    i, n = 0, len(line)
    quote: str | None = None

    def end_word() -> None:
        nonlocal word, started
        if started:
            words.append("".join(word))
        word, started = [], False

    def end_command() -> None:
        nonlocal words
        end_word()
        if words:
            commands.append(words)
        words = []

    while i < n:
        c = line[i]
        if quote == "'":
            if c == "'":
                quote = None
            else:
                word.append(c)
            i += 1
            continue
        if c == "\\" and i + 1 < n:
            word.append(line[i + 1])
            started = True
            i += 2
            continue
        if line.startswith("$((", i):  # arithmetic: a value, not a command
            end = line.find("))", i)
            i = n if end < 0 else end + 2
            word.append("$")
            started = True
            continue
        inner = _substitution(line, i)
        if inner is not None:  # $( ... ) or ` ... `: a command of its own, also in "..."
            body, i = inner
            commands.extend(_simple_commands(body))
            word.append("$")  # the word's value is computed: mark it
            started = True
            continue
        if quote == '"':
            if c == '"':
                quote = None
            else:
                word.append(c)
            i += 1
            continue
        if c in "'\"":
            quote, started = c, True
            i += 1
            continue
        if c in " \t":
            end_word()
        elif c in ";\n|(){}" or (c == "&" and not _redirect_amp(line, i)):
            if c in "{}" and (started or (i + 1 < n and line[i + 1] not in " \t\n;")):
                word.append(c)  # a brace inside a word, not a group
                started = True
            else:
                end_command()
        else:
            word.append(c)
            started = True
        i += 1
    end_command()
    return [_drop_redirections(ws) for ws in commands if _drop_redirections(ws)]


def _substitution(line: str, i: int) -> tuple[str, int] | None:
    """(body, index after it) when ``$(`` or a backtick starts at ``i``."""
    if line.startswith("$(", i):
        depth, j = 1, i + 2
        while j < len(line) and depth:
            depth += {"(": 1, ")": -1}.get(line[j], 0)
            j += 1
        return line[i + 2: j - 1 if depth == 0 else j], j
    if line[i] == "`":
        end = line.find("`", i + 1)
        end = len(line) if end < 0 else end
        return line[i + 1: end], end + 1
    return None


def _redirect_amp(line: str, i: int) -> bool:
    """``&`` in ``2>&1``, ``>&2``, ``&>file``: part of a redirection, not an operator."""
    before = line[i - 1] if i else ""
    after = line[i + 1] if i + 1 < len(line) else ""
    return before in "<>" or after == ">"


def _drop_redirections(words: list[str]) -> list[str]:
    """Words without leading redirections (``>out``, ``2>&1``, ``< in``)."""
    out = list(words)
    while out and re.match(r"&?\d*[<>]", out[0]):
        alone = re.fullmatch(r"&?\d*[<>]+\|?", out[0])  # the target is the next word
        out = out[2:] if alone else out[1:]
    return out
