"""Art. V: leftover template placeholders, only in the forms a template leaves."""

from __future__ import annotations

import re
from collections.abc import Iterator

from specs.spec.model import Spec
from specs.spec.sources import DocPath
from specs.spec.validate.base import (
    _DESCRIPTION,
    _EXPECTED,
)

# Placeholders are flagged only in the forms a template leaves, never as a word in prose
# ("search comments for FIXME/HACK/TODO" is a real step): the original template's slots
# anywhere in a text, a "<insert ...>" slot, "TODO:" opening a value, or a whole value that is
# one slot ("[descriptor]", "<goal>", "TODO", "TBD", "...").
PLACEHOLDER = re.compile(
    r"\[(?:Insert\b[^\]]*|Task \w+ description|Step \w+ action|Expected output description|"
    r"Backup method[^\]]*)\]"
    r"|<(?:insert|your|describe|enter|add|fill in|replace|placeholder)\b[^<>\n]{0,60}>"
    r"|^\s*(?:TODO|FIXME|TBD|XXX)\s*:", re.I | re.M)
WHOLE_PLACEHOLDER = re.compile(
    r"\s*(?:\[[A-Za-z][\w .,'/-]{0,60}\]|<[A-Za-z][\w .,'/-]{0,60}>|TODO|TBD|FIXME|XXX|\.\.\.|…)"
    r"\s*", re.I)
_MAYBE_PLACEHOLDER = re.compile(r"[\[<…]|\.\.\.|todo|tbd|fixme|xxx", re.I)


def texts(spec: Spec) -> Iterator[tuple[DocPath, str]]:
    """Every user-written text that a placeholder could be left in, with its path."""
    yield from headtexts(spec)
    for ti, task in enumerate(spec.tasks):
        yield ("tasks", ti, "description"), task.description
        for si, step in enumerate(task.steps):
            path: DocPath = ("tasks", ti, "steps", si)
            yield (*path, "description"), step.description
            yield (*path, "expected_output"), step.expected_output or ""
            for bi, backup in enumerate(step.backups):
                yield (*path, "backups", bi, "description"), backup.description


def placeholder_free(spec: Spec) -> bool:
    """True when no text of :func:`_texts` can hold a placeholder: every placeholder form has a
    "[", "<", "..." or a TODO-like word. One joined string is searched instead of thousands."""
    steps = [step for task in spec.tasks for step in task.steps]
    joined = "\0".join([
        *(text for _, text in headtexts(spec)), *map(_DESCRIPTION, spec.tasks),
        *map(_DESCRIPTION, steps), *filter(None, map(_EXPECTED, steps)),
        *(backup.description for step in steps for backup in step.backups)])
    return not _MAYBE_PLACEHOLDER.search(joined)


def placeholder(text: str) -> str | None:
    """The template placeholder left in ``text``, if any (see :data:`PLACEHOLDER`)."""
    if WHOLE_PLACEHOLDER.fullmatch(text):
        return text.strip()
    match = PLACEHOLDER.search(text)
    return match.group(0).strip() if match else None


def headtexts(spec: Spec) -> Iterator[tuple[DocPath, str]]:
    """The texts of :func:`_texts` outside the tasks: goal, descriptor, completion criteria."""
    yield ("goal", "description"), spec.goal.description
    if spec.meta.goal_descriptor:
        yield ("meta", "goal_descriptor"), spec.meta.goal_descriptor
    criteria = spec.completion_criteria
    if criteria is not None:
        for key in ("primary_deliverable", "verification_method"):
            value = getattr(criteria, key)
            if isinstance(value, str):
                yield ("completion_criteria", key), value
        for key in ("acceptance_criteria", "quality_standards", "core_features"):
            for i, value in enumerate(getattr(criteria, key) or []):
                yield ("completion_criteria", key, i), value
