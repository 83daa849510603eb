"""Parse the human-readable Markdown half of a SPEC (``spec_<d>.md``, ``<Name>_SPEC.md``,
``speclet_<n>_<name>.md``): goal, tasks, steps, step properties and completion items.

Accepted forms (SPEC_ENGINE_REFERENCE.md section 6.4):

- Tasks: a ``##``..``######`` heading ``Task [n]:``, ``Task n:`` or ``Task [s.n]:`` (a SPECLet
  task: ``speclet`` s, ``id`` n); the rest of the heading is the title. The colon is required,
  so ``### Task 2 Completion Gate`` is not a task.
- Steps, seven forms: ``### Step [n]: t``, ``#### Step [t.s]: t``, ``#### Step t.s: t``,
  ``- **Step [n]:** t``, ``- **Step [t.s]:** t``, ``- **Step t.s:** t``, ``- Step t.s: t
  (critical)``. A trailing ``(critical)`` / ``(non-critical)`` sets ``critical`` and is removed
  from the title. A ``[n]`` step takes the current task's id; a ``t.s`` step takes ``task_id`` t
  and is listed under the current task even when t differs (callers can flag the mismatch).
  Steps before any task heading go to ``orphan_steps``.
- Step properties, as bold labels: ``Primary method`` (or ``Primary``), ``Backup [k]`` /
  ``Backup k`` / ``Backup`` (next free number), ``Expected output``, ``Critical`` (yes / no /
  true / false, then any text) and ``Mode`` (silent / collaborative / dynamic / education, then
  any text). Any casing; the colon may sit inside or outside the bold; a bullet is optional;
  non-bullet lines indented deeper than the label continue its value. Properties belong to the
  step until the next heading; under a bullet step they must be indented deeper than the step's
  bullet (a sibling bullet such as a task-level ``- **Expected Output:**`` ends the step). The
  first value of a field wins.
- Goal: the first paragraph under the first heading whose first word is ``Goal`` (after
  optional emoji, numbering or punctuation), or a ``**Goal:** text`` line, whichever comes
  first; emphasis markers are stripped. ``goal_line`` is the 1-based line of the goal text, 0
  when there is none.
- Completion: the top-level bullets of the first ``Definition of Complete`` / ``Completion
  Criteria`` section (checkboxes and emphasis stripped, nested bullets joined to their parent).

Closed fenced code blocks (```` ``` ```` / ``~~~``) are ignored. Each line is read once with
precompiled regexes; the parser never raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["MdBackup", "MdSpec", "MdStep", "MdTask", "parse_markdown"]


@dataclass(frozen=True, slots=True)
class MdBackup:
    id: int
    text: str
    line: int


@dataclass(frozen=True, slots=True)
class MdStep:
    task_id: int | None  # None when no task context is known
    id: int
    title: str
    line: int  # 1-based line of the heading
    primary_method: str | None = None
    expected_output: str | None = None
    critical: bool | None = None
    mode: str | None = None
    backups: tuple[MdBackup, ...] = ()


@dataclass(frozen=True, slots=True)
class MdTask:
    id: int
    title: str
    line: int
    speclet: int | None = None  # for "Task [1.1]" headings: speclet 1, task id 1
    steps: tuple[MdStep, ...] = ()


@dataclass(frozen=True, slots=True)
class MdSpec:
    goal: str | None
    goal_line: int
    tasks: tuple[MdTask, ...]
    completion_items: tuple[str, ...] = ()
    orphan_steps: tuple[MdStep, ...] = ()  # steps seen before any task heading


_ID = r"\[?(\d{1,9})(?:\.(\d{1,9}))?\]?[ \t]*(?:\*\*)?[ \t]*:(.*)$"
_TASK_RE = re.compile(r"^[ \t]*#{2,6}[ \t]+(?:\*\*)?Task[ \t]*" + _ID, re.I)
_STEP_RE = re.compile(r"^[ \t]*(#{2,6}[ \t]+|[-*+][ \t]+)(?:\*\*)?Step[ \t]*" + _ID, re.I)
_PROP_RE = re.compile(
    r"^[ \t]*(?:[-*+][ \t]+)?\*\*[ \t]*([A-Za-z][A-Za-z ]{0,30}?)[ \t]*(?:\[?(\d{1,9})\]?)?"
    r"[ \t]*(:)?[ \t]*\*\*[ \t]*(:)?(.*)$"
)
_GOAL_LINE_RE = re.compile(
    r"^[ \t]*(?:[-*+][ \t]+)?\*\*goal[ \t]*(:)?[ \t]*\*\*[ \t]*(:)?(.*)$", re.I
)
_HEADING_RE = re.compile(r"^[ \t]{0,3}(#{1,6})(?:[ \t]+(.*))?$")
_LEAD_RE = re.compile(r"^[\W\d_]*")
_GOAL_HEAD_RE = re.compile(r"goals?\b", re.I)
_DONE_HEAD_RE = re.compile(r"(?:definition of (?:complete|done)|completion criteria)\b", re.I)
_BULLET_RE = re.compile(r"^(?:[-*+]|\d{1,9}[.)])[ \t]+(?:\[[ xX]\][ \t]*)?")
_HR_RE = re.compile(r"^(?:(?:-[ \t]*){3,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,})$")
_FENCE_RE = re.compile(r"^[ \t]*(`{3,}|~{3,})(.*)$")
_CRIT_SUFFIX_RE = re.compile(r"[ \t]*[(\[](non[- ]?)?critical[)\]][ \t]*$", re.I)
_WORD_RE = re.compile(r"[^A-Za-z]*([A-Za-z]+)")
_EMPHASIS = (
    re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"),
    re.compile(r"(?<![\w*])(\*)(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])"),
    re.compile(r"(?<!\w)(_)(?=[^\s_])(.+?)(?<=[^\s_])_(?!\w)"),
)
_MODES = frozenset({"silent", "collaborative", "dynamic", "education"})
_KEYS = {
    "primary method": "primary", "primary": "primary", "primary approach": "primary",
    "backup": "backup", "backup method": "backup", "expected output": "expected",
    "expected outputs": "expected", "expected result": "expected", "critical": "critical",
    "critical flag": "critical", "mode": "mode", "execution mode": "mode",
}  # fmt: skip


def _indent(line: str) -> int:
    n = 0
    for ch in line:
        if ch == " ":
            n += 1
        elif ch == "\t":
            n += 4 - n % 4
        else:
            break
    return n


def _plain(text: str) -> str:
    """Drop Markdown bold/italic markers and collapse whitespace."""
    for rx in _EMPHASIS:
        text = rx.sub(r"\2", text)
    return " ".join(text.replace("**", "").split())


def _clean(value: str) -> str:
    return " ".join(value.strip().strip("*").split())


def _first_word(value: str) -> str:
    m = _WORD_RE.match(value)
    return m.group(1).lower() if m else ""


def _code_lines(lines: list[str]) -> set[int]:
    """Indices of the lines of closed fenced code blocks (fences included), in linear time."""
    fences: list[tuple[int, str, int, bool]] = []  # line, char, length, may close
    for i, line in enumerate(lines):
        if "``" in line or "~~" in line:
            m = _FENCE_RE.match(line)
            if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
                fences.append((i, m.group(1)[0], len(m.group(1)), not m.group(2).strip()))
    longest = {"`": 0, "~": 0}
    after: list[tuple[int, int]] = [(0, 0)] * (len(fences) + 1)  # longest closers after k
    for k in range(len(fences) - 1, -1, -1):
        after[k + 1] = (longest["`"], longest["~"])
        _, ch, size, closes = fences[k]
        if closes:
            longest[ch] = max(longest[ch], size)
    inside: set[int] = set()
    k = 0
    while k < len(fences):
        start, ch, size, _ = fences[k]
        if after[k + 1][ch == "~"] < size:  # never closed: not a fence
            k += 1
            continue
        j = k + 1
        while not (fences[j][1] == ch and fences[j][3] and fences[j][2] >= size):
            j += 1
        inside.update(range(start, fences[j][0] + 1))
        k = j + 1
    return inside


@dataclass(slots=True)
class _Step:
    task_id: int | None
    id: int
    title: str
    line: int
    critical: bool | None
    fields: dict[str, str] = field(default_factory=dict)
    backups: list[list[int | str]] = field(default_factory=list)  # [id, text, line]

    def freeze(self) -> MdStep:
        crit = {"yes": True, "true": True, "no": False, "false": False}.get(
            _first_word(self.fields.get("critical", "")), self.critical
        )
        mode = _first_word(self.fields.get("mode", ""))
        return MdStep(
            self.task_id, self.id, self.title, self.line,
            self.fields.get("primary") or None, self.fields.get("expected") or None,
            crit, mode if mode in _MODES else None,
            tuple(MdBackup(int(i), _clean(str(t)), int(n)) for i, t, n in self.backups),
        )  # fmt: skip


class _Parser:
    def __init__(self) -> None:
        self.tasks: list[tuple[MdTask, list[_Step]]] = []
        self.orphans: list[_Step] = []
        self.step: _Step | None = None
        self.step_indent = -1  # indent of a bullet step; -1 for a heading step
        self.cont: tuple[list[int | str] | str, int] | None = None  # value being continued
        self.goal: str | None = None
        self.goal_line = 0
        self.goal_buf: list[str] | None = None  # not None while inside a Goal section
        self.done_level = 0  # heading level of the completion section; -1 once it is over
        self.done_base = -1
        self.done: list[str] = []

    def feed(self, no: int, line: str) -> None:
        s = line.strip()
        ind = _indent(line)
        head = _HEADING_RE.match(line) if s[:1] == "#" else None
        if self.goal is None:
            self._goal(no, s, head)
        if self.done_level >= 0:
            self._completion(s, ind, head)
        self._structure(no, line, s, ind, head is not None)

    def _goal(self, no: int, s: str, head: re.Match[str] | None) -> None:
        buf = self.goal_buf
        gm = _GOAL_LINE_RE.match(s) if s[:1] in "*-+" and s else None
        if gm and (gm.group(1) or gm.group(2)) and _plain(gm.group(3)) and not buf:
            self.goal, self.goal_line = _plain(gm.group(3)), no
        elif buf is not None and s and not head and not _HR_RE.match(s):
            if buf and _BULLET_RE.match(s):
                self.goal = _plain(" ".join(buf)) or None
            else:
                self.goal_line = self.goal_line if buf else no
                buf.append(_BULLET_RE.sub("", s.lstrip("> ")) if not buf else s)
        elif buf and (head or not s):
            self.goal = _plain(" ".join(buf)) or None
        if head and self.goal is None:
            title = _LEAD_RE.sub("", head.group(2) or "")
            self.goal_buf = [] if _GOAL_HEAD_RE.match(title) else None

    def _completion(self, s: str, ind: int, head: re.Match[str] | None) -> None:
        if head:
            if self.done_level and len(head.group(1)) <= self.done_level:
                self.done_level = -1
            elif not self.done_level and _DONE_HEAD_RE.match(_LEAD_RE.sub("", head.group(2) or "")):
                self.done_level = len(head.group(1))
            return
        if not self.done_level or not s:
            return
        bm = _BULLET_RE.match(s)
        if bm and (self.done_base < 0 or ind <= self.done_base):
            self.done_base = ind if self.done_base < 0 else self.done_base
            self.done.append(_plain(s[bm.end() :]))
        elif self.done and ind > self.done_base:
            sep = "; " if bm and not self.done[-1].endswith(":") else " "
            self.done[-1] = (self.done[-1] + sep + _plain(s[bm.end() :] if bm else s)).strip()

    def _structure(self, no: int, line: str, s: str, ind: int, is_head: bool) -> None:
        if not s:
            self.cont = None
            return
        first = s[0]
        is_bullet = first in "-*+" and s[1:2] in (" ", "\t")
        if self.cont is not None and ind > self.cont[1] and not is_bullet and not is_head:
            pm = _PROP_RE.match(line) if first == "*" else None
            if pm is None or not (pm.group(3) or pm.group(4)):
                target = self.cont[0]
                if isinstance(target, list):
                    target[1] = f"{target[1]} {s}"
                elif self.step is not None:
                    self.step.fields[target] = f"{self.step.fields[target]} {s}".strip()
                return
        self.cont = None
        if first not in "#-*+":
            return
        tm = _TASK_RE.match(line) if first == "#" else None
        if tm:
            major, minor = int(tm.group(1)), tm.group(2)
            speclet, tid = (major, int(minor)) if minor is not None else (None, major)
            title = _clean(tm.group(3)).rstrip("#").strip()
            self.tasks.append((MdTask(tid, title, no, speclet), []))
            self.step = None
            return
        sm = _STEP_RE.match(line)
        if sm:
            self._new_step(no, ind, sm)
        elif is_head or (is_bullet and ind <= self.step_indent):
            self.step = None  # a heading or a sibling bullet ends the step
        elif self.step is not None:
            self._property(no, line, ind, self.step)

    def _new_step(self, no: int, ind: int, sm: re.Match[str]) -> None:
        major, minor = int(sm.group(2)), sm.group(3)
        current = self.tasks[-1][0].id if self.tasks else None
        task_id, sid = (major, int(minor)) if minor is not None else (current, major)
        title = _clean(sm.group(4))
        heading = sm.group(1)[0] == "#"
        title = title.rstrip("#").strip() if heading else title
        crit: bool | None = None
        cm = _CRIT_SUFFIX_RE.search(title)
        if cm:
            crit, title = cm.group(1) is None, title[: cm.start()].rstrip()
        self.step = step = _Step(task_id, sid, title, no, crit)
        (self.tasks[-1][1] if self.tasks else self.orphans).append(step)
        self.step_indent = -1 if heading else ind

    def _property(self, no: int, line: str, ind: int, step: _Step) -> None:
        pm = _PROP_RE.match(line)
        if not pm or not (pm.group(3) or pm.group(4)):
            return
        key = _KEYS.get(" ".join(pm.group(1).lower().split()))
        value = _clean(pm.group(5))
        if key == "backup":
            num = pm.group(2)
            taken = (int(b[0]) for b in step.backups)
            entry: list[int | str] = [int(num) if num else max(taken, default=0) + 1, value, no]
            step.backups.append(entry)
            self.cont = (entry, ind)
        elif key is not None and pm.group(2) is None and key not in step.fields:
            step.fields[key] = value
            self.cont = (key, ind)

    def result(self) -> MdSpec:
        if self.goal is None and self.goal_buf:
            self.goal = _plain(" ".join(self.goal_buf)) or None
        return MdSpec(
            goal=self.goal,
            goal_line=self.goal_line if self.goal else 0,
            tasks=tuple(
                MdTask(t.id, t.title, t.line, t.speclet, tuple(s.freeze() for s in steps))
                for t, steps in self.tasks
            ),
            completion_items=tuple(item for item in self.done if item),
            orphan_steps=tuple(s.freeze() for s in self.orphans),
        )


def parse_markdown(text: str) -> MdSpec:
    """Parse a SPEC Markdown document. Never raises: bad input gives a sparse result."""
    try:
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        code = _code_lines(lines)
        parser = _Parser()
        for idx, line in enumerate(lines):
            if idx not in code:
                parser.feed(idx + 1, line)
        return parser.result()
    except Exception:  # pragma: no cover - defensive; the parser is written not to raise
        return MdSpec(goal=None, goal_line=0, tasks=())
