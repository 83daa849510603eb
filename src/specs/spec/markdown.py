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
  any text). Any casing; the colon may sit inside or outside the bold; a bullet is optional.
  Lines indented deeper than the label continue its value, nested bullets included (sizes,
  buttons, fields ...): a value keeps its whole block, one line per bullet (``- text``, two
  spaces per level deeper), wrapped lines joined. Every other bold label of the step
  (``Description``, ``Verification``, ``Logging`` ...) is kept whole too, as ``details``
  (``"Verification: text"``), and so are its unlabelled lines. Properties belong to the
  step until the next heading; under a bullet step they must be indented deeper than its bullet
  (a sibling bullet, e.g. a task-level ``- **Expected Output:**``, or an outdented line after a
  blank line ends the step). The first value of a field wins.
- Goal: the first paragraph under the first heading whose first word is ``Goal`` (after
  optional emoji, numbering or punctuation), or a ``**Goal:** text`` line, whichever comes
  first; emphasis markers are stripped. ``goal_line`` is the 1-based line of the goal text, 0
  when there is none.
- Completion: the top-level bullets of the first ``Definition of Complete`` / ``Completion
  Criteria`` section, which ends at a heading of the same or a higher level, a task heading or
  a ``---`` rule (checkboxes and emphasis stripped, nested bullets joined to their parent).

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
    # the step's other labelled items, whole: "Description: ...", "Verification: ..."
    details: tuple[str, ...] = ()


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


# Possessive quantifiers (*+, ++) keep every pattern linear on long runs of blanks.
_ID = r"\[?(\d{1,9})(?:\.(\d{1,9}))?\]?[ \t]*+(?:\*\*)?[ \t]*+:(.*)$"
_TASK_RE = re.compile(r"#{2,6}[ \t]++(?:\*\*)?Task[ \t]*+" + _ID, re.I)
_STEP_RE = re.compile(r"(#{2,6}[ \t]++|[-*+][ \t]++)(?:\*\*)?Step[ \t]*+" + _ID, re.I)
_PROP_RE = re.compile(  # label, number, colon inside, colon outside; the value follows
    r"(?:[-*+][ \t]++)?\*\*[ \t]*+([A-Za-z][A-Za-z ]{0,30}+)(?:\[?(\d{1,9})\]?)?[ \t]*+(:)?"
    r"[ \t]*+\*\*[ \t]*+(:)?"
)
_GOAL_LINE_RE = re.compile(r"(?:[-*+][ \t]++)?\*\*goal[ \t]*+(:)?[ \t]*+\*\*[ \t]*+(:)?(.*)$", re.I)
_HEADING_RE = re.compile(r"(#{1,6})(?:[ \t]+(.*))?$")
_LEAD_RE = re.compile(r"[\W\d_]*")
_GOAL_HEAD_RE = re.compile(r"goals?\b", re.I)
_DONE_HEAD_RE = re.compile(r"(?:definition of (?:complete|done)|completion criteria)\b", re.I)
_BULLET_RE = re.compile(r"(?:[-*+]|\d{1,9}[.)])[ \t]+(?:\[[ xX]\][ \t]*)?")
_FENCE_RE = re.compile(r"^[ \t]*+(`{3,}|~{3,})([^\n]*)", re.M)
_CRIT_SUFFIX_RE = re.compile(r"[ \t]*[(\[](non[- ]?)?critical[)\]]$", re.I)
_WORD_RE = re.compile(r"[^A-Za-z]*([A-Za-z]+)")
_EMPHASIS_RE = re.compile(r"(?<!\w)[*_]{1,3}(?=\S)|(?<=\S)[*_]{1,3}(?!\w)")
_MODES = frozenset({"silent", "collaborative", "dynamic", "education"})
_BOOLS = {"yes": True, "true": True, "no": False, "false": False}
_KEYS = {
    "primary method": "primary", "primary": "primary", "primary approach": "primary",
    "backup": "backup", "backup method": "backup", "expected output": "expected",
    "expected outputs": "expected", "expected result": "expected", "critical": "critical",
    "critical flag": "critical", "mode": "mode", "execution mode": "mode",
}  # fmt: skip


def _plain(text: str) -> str:
    """Drop Markdown bold/italic markers and collapse whitespace (linear time)."""
    return " ".join(_EMPHASIS_RE.sub("", text).split())


def _clean(value: str) -> str:
    """Collapse whitespace and drop the ``**`` left around a label's value."""
    return " ".join(value.strip().strip("*").split())


def _title(text: str, heading: bool) -> str:
    """Clean a task/step title; drop a heading's closing ``#`` sequence."""
    title = _clean(text)
    bare = title.rstrip("#") if heading else title
    return bare.rstrip() if bare != title and (not bare or bare[-1] == " ") else title


def _heading_text(head: re.Match[str]) -> str:
    """Heading text without leading emoji, numbering or punctuation."""
    text = head.group(2) or ""
    lead = _LEAD_RE.match(text)
    return text[lead.end() :] if lead else text


def _joined(parts: list[str] | None) -> str | None:
    """A value's lines as one text: wrapped lines joined, each nested bullet on its own line
    (continuation lines are stored by :meth:`_Parser._continue` with their relative indent)."""
    if not parts:
        return None
    lines: list[str] = []
    for part in parts:
        body = part.lstrip(" ")
        if not lines or _BULLET_RE.match(body):
            lines.append(" " * (len(part) - len(body)) + _clean(body))
        else:
            lines[-1] += " " + _clean(body)
    lines[0] = lines[0].strip()
    text = "\n".join(line for line in lines if line.strip()).strip("\n")
    return text.strip() or None


def _first_word(value: str) -> str:
    m = _WORD_RE.match(value)
    return m.group(1).lower() if m else ""


def _is_rule(s: str) -> bool:
    return len(s) >= 3 and s[0] in "-*_" and not s.replace(s[0], "").replace(" ", "")


def _code_ranges(text: str) -> list[tuple[int, int]]:
    """0-based first/last line of each closed fenced code block, in linear time."""
    fences: list[tuple[int, str, int, bool]] = []  # line, char, length, may close
    line, pos = 0, 0
    for m in _FENCE_RE.finditer(text):
        line += text.count("\n", pos, m.start())
        pos = m.start()
        mark, info = m.group(1), m.group(2)
        if not (mark[0] == "`" and "`" in info):
            fences.append((line, mark[0], len(mark), not info.strip()))
    longest = {"`": 0, "~": 0}
    after: list[tuple[int, int]] = [(0, 0)] * (len(fences) + 1)  # longest closers after k
    for k in range(len(fences) - 1, -1, -1):
        after[k + 1] = (longest["`"], longest["~"])
        _, ch, size, closes = fences[k]
        if closes:
            longest[ch] = max(longest[ch], size)
    ranges: list[tuple[int, int]] = []
    k = 0
    while k < len(fences):
        start, ch, size, _ = fences[k]
        if after[k + 1][ch == "~"] < size:  # never closed: not a fence
            k += 1
            continue
        j = k + 1
        while not (fences[j][1] == ch and fences[j][3] and fences[j][2] >= size):
            j += 1
        ranges.append((start, fences[j][0]))
        k = j + 1
    return ranges


@dataclass(slots=True)
class _Step:
    task_id: int | None
    id: int
    title: str
    line: int
    critical: bool | None
    fields: dict[str, list[str]] = field(default_factory=dict)  # key -> value lines
    backups: list[tuple[int, list[str], int]] = field(default_factory=list)  # id, lines, line
    details: list[tuple[str, list[str]]] = field(default_factory=list)  # label, value lines
    next_backup: int = 1

    def freeze(self) -> MdStep:
        get = self.fields.get
        crit = _BOOLS.get(_first_word(" ".join(get("critical", ()))), self.critical)
        mode = _first_word(" ".join(get("mode", ())))
        return MdStep(
            self.task_id, self.id, self.title, self.line, _joined(get("primary")),
            _joined(get("expected")), crit, mode if mode in _MODES else None,
            tuple(MdBackup(i, _joined(t) or "", n) for i, t, n in self.backups),
            tuple(f"{label}: {text}" if label else text for label, lines in self.details
                  if (text := _joined(lines))),
        )  # fmt: skip


class _Parser:
    __slots__ = ("blank", "cont", "done", "done_base", "done_level", "goal", "goal_buf",
                 "goal_line", "orphans", "step", "step_indent", "tasks")  # fmt: skip

    def __init__(self) -> None:
        self.tasks: list[tuple[MdTask, list[_Step]]] = []
        self.orphans: list[_Step] = []
        self.step: _Step | None = None
        self.step_indent = -1  # indent of a bullet step; -1 for a heading step
        self.blank = True  # the previous line was blank
        # the value lines being continued, the label's indent, the indent nested lines start at
        self.cont: tuple[list[str], int, int] | None = None
        self.goal: str | None = None
        self.goal_line = 0
        self.goal_buf: list[str] | None = None  # not None while inside a Goal section
        self.done_level = 0  # completion section: 0 not seen, >0 its heading level, -1 over
        self.done_base = -1
        self.done: list[list[str]] = []  # completion items as parts

    def feed(self, no: int, line: str) -> None:
        s = line.strip()
        if not s:
            self.cont, self.blank = None, True
            if self.goal_buf:
                self._end_goal()
            return
        first, after_blank, self.blank = s[0], self.blank, False
        quiet = (self.cont is None and self.goal_buf is None and self.done_level <= 0
                 and self.step is None)
        if quiet and first not in "#-*+":
            return  # plain text outside every section of interest
        ind = len(line) - len(line.lstrip())
        if "\t" in line[:ind]:
            ind = len(line[:ind].expandtabs(4))
        head = _HEADING_RE.match(s) if first == "#" else None
        if self.goal is None:
            self._goal(no, s, head)
        if self.done_level > 0 or (head and not self.done_level):
            self._completion(s, ind, head)
        is_bullet = first in "-*+" and s[1:2] in (" ", "\t")
        cont = self.cont
        if cont is not None and ind > cont[1] and not head and not self._is_key(s, first):
            self._continue(cont, ind, s)
            return
        self.cont = None
        if first not in "#-*+":
            if self.step is None:
                return
            if after_blank and ind <= self.step_indent:
                self.step = None  # an outdented paragraph ends a bullet step
                return
        tm = _TASK_RE.match(s) if head else None
        if tm:
            major, minor = int(tm.group(1)), tm.group(2)
            speclet, tid = (major, int(minor)) if minor is not None else (None, major)
            self.tasks.append((MdTask(tid, _title(tm.group(3), True), no, speclet), []))
            self.step = None
            return
        sm = _STEP_RE.match(s) if "step" in s[:24].lower() else None
        if sm:
            self._new_step(no, ind, sm)
        elif head or (ind <= self.step_indent and (is_bullet or after_blank)):
            self.step = None  # a heading, a sibling bullet or an outdented paragraph ends it
        elif self.step is not None and not ("**" in s and self._property(no, s, ind, self.step)):
            self._text(self.step, s, ind, is_bullet, after_blank)

    @staticmethod
    def _is_key(s: str, first: str) -> bool:
        """A line that sets a step property we know (so it does not continue a value)."""
        pm = _PROP_RE.match(s) if first in "*-+" else None
        if pm is None or not (pm.group(3) or pm.group(4)):
            return False
        label = pm.group(1).lower().rstrip()
        return (_KEYS.get(label) or _KEYS.get(" ".join(label.split()))) is not None

    def _continue(self, cont: tuple[list[str], int, int], ind: int, s: str) -> None:
        """A line indented under a value: kept with its indent relative to the first one."""
        lines, label_indent, base = cont
        if base < 0:
            base = ind
            self.cont = (lines, label_indent, base)
        lines.append(" " * (2 * ((max(ind - base, 0) + 1) // 2)) + s)

    def _end_goal(self) -> None:
        self.goal = _plain(" ".join(self.goal_buf or ())) or None
        self.goal_buf = None
        self.goal_line = self.goal_line if self.goal else 0

    def _goal(self, no: int, s: str, head: re.Match[str] | None) -> None:
        buf = self.goal_buf
        gm = _GOAL_LINE_RE.match(s) if s[0] in "*-+" and not buf else None
        if gm and (gm.group(1) or gm.group(2)) and _plain(gm.group(3)):
            self.goal, self.goal_line, self.goal_buf = _plain(gm.group(3)), no, None
        elif buf is not None and not head and not _is_rule(s):
            if buf and _BULLET_RE.match(s):
                self._end_goal()
            else:
                if not buf:
                    self.goal_line, s = no, s.lstrip("> ")
                    bm = _BULLET_RE.match(s)
                    s = s[bm.end() :] if bm else s
                buf.append(s)
        elif buf:
            self._end_goal()
        if head and self.goal is None:
            self.goal_buf = [] if _GOAL_HEAD_RE.match(_heading_text(head)) else None

    def _completion(self, s: str, ind: int, head: re.Match[str] | None) -> None:
        if head:
            level = len(head.group(1))
            if self.done_level and (level <= self.done_level or _TASK_RE.match(s)):
                self.done_level = -1
            elif not self.done_level:
                self.done_level = level if _DONE_HEAD_RE.match(_heading_text(head)) else 0
            return
        if _is_rule(s):
            self.done_level = -1
            return
        bm = _BULLET_RE.match(s)
        if bm and (self.done_base < 0 or ind <= self.done_base):
            self.done_base = ind if self.done_base < 0 else self.done_base
            self.done.append([_plain(s[bm.end() :])])
        elif self.done and ind > self.done_base:
            parts = self.done[-1]
            sep = "; " if bm and not parts[-1].endswith(":") else " "
            parts.append(sep + _plain(s[bm.end() :] if bm else s))

    def _new_step(self, no: int, ind: int, sm: re.Match[str]) -> None:
        major, minor = int(sm.group(2)), sm.group(3)
        current = self.tasks[-1][0].id if self.tasks else None
        task_id, sid = (major, int(minor)) if minor is not None else (current, major)
        heading = sm.group(1)[0] == "#"
        title = _title(sm.group(4), heading)
        crit: bool | None = None
        cm = _CRIT_SUFFIX_RE.search(title) if title.endswith((")", "]")) else None
        if cm:
            crit, title = cm.group(1) is None, title[: cm.start()].rstrip()
        self.step = step = _Step(task_id, sid, title, no, crit)
        (self.tasks[-1][1] if self.tasks else self.orphans).append(step)
        self.step_indent = -1 if heading else ind

    def _text(self, step: _Step, s: str, ind: int, is_bullet: bool, after_blank: bool) -> None:
        """An unlabelled line of the step: a detail of its own, or the next line of the last
        unlabelled paragraph."""
        if _is_rule(s):
            return
        last = step.details[-1] if step.details else None
        if last is not None and not last[0] and not is_bullet and not after_blank:
            last[1].append(s)
        else:
            step.details.append(("", [s]))
        self.cont = (step.details[-1][1], ind, -1)

    def _property(self, no: int, s: str, ind: int, step: _Step) -> bool:
        """Read a ``**Label:** value`` line; False when ``s`` is none."""
        pm = _PROP_RE.match(s)
        if not pm or not (pm.group(3) or pm.group(4)):
            return False
        label = pm.group(1).lower().rstrip()
        key = _KEYS.get(label) or _KEYS.get(" ".join(label.split()))
        value = s[pm.end() :]
        if key == "backup":
            num = pm.group(2)
            bid = int(num) if num else step.next_backup
            step.next_backup = max(step.next_backup, bid + 1)
            step.backups.append((bid, [value], no))
            self.cont = (step.backups[-1][1], ind, -1)
        elif key is not None and pm.group(2) is None and key not in step.fields:
            step.fields[key] = [value]
            self.cont = (step.fields[key], ind, -1)
        elif key is None:
            name = " ".join(pm.group(1).split()) + (f" {pm.group(2)}" if pm.group(2) else "")
            step.details.append((name, [value]))
            self.cont = (step.details[-1][1], ind, -1)
        return True

    def result(self) -> MdSpec:
        if self.goal is None and self.goal_buf:
            self._end_goal()
        return MdSpec(
            goal=self.goal,
            goal_line=self.goal_line if self.goal else 0,
            tasks=tuple(
                MdTask(t.id, t.title, t.line, t.speclet, tuple(s.freeze() for s in steps))
                for t, steps in self.tasks
            ),
            completion_items=tuple(t for t in ("".join(p).strip() for p in self.done) if t),
            orphan_steps=tuple(s.freeze() for s in self.orphans),
        )


def parse_markdown(text: str) -> MdSpec:
    """Parse a SPEC Markdown document. Never raises: bad input gives a sparse result."""
    try:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        for first, last in _code_ranges(text):  # code blocks read as blank lines
            lines[first : last + 1] = [""] * (last + 1 - first)
        parser = _Parser()
        feed = parser.feed
        for no, line in enumerate(lines, 1):
            feed(no, line)
        return parser.result()
    except Exception:  # pragma: no cover - defensive; the parser is written not to raise
        return MdSpec(goal=None, goal_line=0, tasks=())
