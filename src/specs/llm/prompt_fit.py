"""What a prompt is made of and how it is cut to fit: :class:`Prompt` (a system and a user
message, and their titled :class:`Section` s), :class:`PromptLimits`, and the drafts
:mod:`specs.llm.prompt` builds sections from (:class:`Draft`, made of :class:`Part` s).

A cut keeps the head of a part's body and says what it removed (:func:`cut_notice`). A
section's parts are cut in rank order (lowest first), each first down to :data:`PART_FLOOR`,
then entirely.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["MIN_KEEP", "PART_FLOOR", "Draft", "Part", "Prompt", "PromptLimits", "Section",
           "cut_notice"]

#: In the first cutting pass, a part longer than twice this keeps at least this much (so one
#: huge output does not wipe out every small one); the second pass cuts parts entirely.
PART_FLOOR = 400
#: Below this many characters of kept text, a cut part keeps only the cut notice.
MIN_KEEP = 40


@dataclass(frozen=True, slots=True)
class PromptLimits:
    """Size bounds, in characters (roughly 4 per token)."""

    section_chars: int = 8_000
    """The most one section may hold (its title not counted)."""
    total_chars: int = 32_000
    """The most the system and user prompts may hold together."""
    prior_steps: int = 3
    """How many of the most recent prior steps are shown when a step declares no depends_on."""

    def __post_init__(self) -> None:
        if self.section_chars < 1 or self.total_chars < 1 or self.prior_steps < 0:
            raise ValueError(f"PromptLimits must be positive: {self}")


@dataclass(frozen=True, slots=True)
class Section:
    """One titled part of a prompt, as it was sent (after any cut)."""

    name: str
    """A fixed key: one of :data:`specs.llm.prompt.ORDER`."""
    text: str
    truncated_chars: int = 0
    """Characters cut from this section (0: complete)."""
    title: str = ""

    def render(self) -> str:
        return f"## {self.title or self.name}\n{self.text}"


@dataclass(frozen=True, slots=True)
class Prompt:
    """The prompt of one attempt: a system and a user message, and their sections."""

    system: str
    user: str
    sections: list[Section] = field(default_factory=list)

    @property
    def chars(self) -> int:
        return len(self.system) + len(self.user)

    @property
    def truncated_chars(self) -> int:
        return sum(s.truncated_chars for s in self.sections)

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {"system": self.system, "user": self.user, "chars": self.chars,
                "truncated_chars": self.truncated_chars,
                "sections": [{"name": s.name, "title": s.title, "text": s.text,
                              "truncated_chars": s.truncated_chars} for s in self.sections]}


# --- parts: what sections are made of, and how they are cut --------------------------------


@dataclass(slots=True)
class Part:
    """A piece of a section: ``head`` is never cut, ``body`` may be (``what`` names it)."""

    what: str
    body: str
    head: str = ""
    rank: int = 0  # cut order within the section: lower is cut first
    cut: int = 0

    def render(self) -> str:
        return "\n".join(t for t in (self.head, self.body) if t)


@dataclass(slots=True)
class Draft:
    name: str
    title: str
    parts: list[Part]
    intro: str = ""
    plural: str = ""  # what the parts are, to say "all 20 notepad entries" in one notice

    def text(self) -> str:
        blocks = [self.intro] if self.intro else []
        blocks += [r for p in self.parts if (r := p.render())]
        return "\n\n".join(blocks)

    def fit(self, budget: int) -> None:
        """Cut bodies (least important first) until the text fits in ``budget``."""
        for floor in (PART_FLOOR, 0):
            for part in sorted(self.parts, key=lambda p: p.rank):
                over = len(self.text()) - budget
                if over <= 0:
                    return
                if floor and len(part.body) <= 2 * floor:
                    continue  # small already: cutting it down to the floor saves little
                keep = max(len(part.body) - over, min(floor, len(part.body)))
                if keep < len(part.body):
                    _shrink(part, keep)
        gone = [p for p in self.parts if not p.head and _cut_of(p)]
        if self.plural and len(gone) > 1 and len(self.text()) > budget:
            # one notice for the parts that are all notice, not one each
            total = sum(p.cut for p in gone)
            merged = Part(self.plural, cut_notice(total, f"{len(gone)} {self.plural}"),
                           cut=total)
            at = self.parts.index(gone[0])
            kept = [p for p in self.parts if p not in gone]
            self.parts = [*kept[:at], merged, *kept[at:]]

    def section(self) -> Section:
        return Section(self.name, self.text(), sum(p.cut for p in self.parts), self.title)


def _cut_of(part: Part) -> int:
    """Characters a fully cut part lost (0 when some of its body is left)."""
    return part.cut if part.body == cut_notice(part.cut, part.what) else 0


def cut_notice(chars: int, what: str) -> str:
    return f"[... {chars:,} characters of {what} cut ...]"


def _shrink(part: Part, target: int) -> None:
    """Cut ``part.body`` to at most ``target`` characters, ending in a notice of the cut."""
    body, already = part.body, part.cut
    if already:  # a second cut: take the old notice off and count on from the original
        body = body.rpartition("\n")[0] if "\n" in body else ""
    original = len(body) + already
    keep = target - len(cut_notice(original, part.what)) - 1
    if keep < MIN_KEEP:
        part.body, part.cut = cut_notice(original, part.what), original
        return
    head = body[:keep]
    line_end = head.rfind("\n")
    if line_end >= keep - 200 and line_end > MIN_KEEP:
        head = head[:line_end]  # end on a whole line when one is near
    removed = original - len(head)
    part.body, part.cut = f"{head}\n{cut_notice(removed, part.what)}", removed
