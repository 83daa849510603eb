"""Three-way merges of a spec's files: the user's edits kept, the template's changes applied.

``specs templates update`` has three versions of each file: **base** (what the old template
version rendered, known only by its *fingerprint*), **mine** (the file as it is now, edited or
not) and **theirs** (what the new template version renders with the same answers). A
fingerprint (:func:`fingerprint`) is a short hash of every part of a file, so the base itself
need not be kept:

- a TOML file is cut into its leaf values, keyed by path; arrays of tables whose items all
  have a unique ``id`` (tasks, steps, backups, SPECLets) are keyed by id, and each such
  *entity* also has a hash of its whole content;
- a Markdown file is cut into segments at its headings and step bullets (a task, a step, a
  section), keyed by what they are (``task 2``, ``step 2.3``, ``## Goal``);
- any other file is one part.

Each part merges by the usual rule: if mine and theirs agree, keep it; if only theirs changed
since the base, take theirs; if only mine changed, keep mine; if both changed differently it
is a **conflict**. Entities (a task, a step, a segment) are added and removed as a whole: a
step the template removes goes only if the user did not edit it, a step the user removed
stays removed unless the template changed it (both conflicts). Conflicts are never resolved
silently: each is listed, and the caller decides (``prefer="mine"`` or ``"theirs"``).

The merged TOML is written into the user's own document (tomlkit), so their comments and
layout stay; new entities are copied from the new render with its layout.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import tomlkit
from tomlkit.items import AoT

__all__ = ["FILE_KEY", "Conflict", "FileMerge", "fingerprint", "merge_file", "removed_steps",
           "segments"]

FILE_KEY = "(file)"
Prefer = Literal["mine", "theirs"] | None
_MISSING: Any = object()
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
_TASK = re.compile(r"^#{2,4}\s+Task\s*\[?(\d+)(?:\.(\d+))?\]?\s*:")
_STEP = re.compile(r"^(?:#{2,5}\s+|\s*[-*]\s+(?:\*\*)?)Step\s*\[?(\d+)(?:\.(\d+))?\]?\s*:")
_FENCE = re.compile(r"^\s*(```|~~~)")


def _hash(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _hash_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


@dataclass(frozen=True)
class Conflict:
    """A part both the user and the new template version changed, differently."""

    file: str
    where: str
    message: str

    def render(self) -> str:
        return f"{self.file}: {self.where}: {self.message}"


@dataclass
class FileMerge:
    """The merge of one file: the merged bytes (None: the file goes), its conflicts."""

    path: str
    data: bytes | None
    conflicts: list[Conflict] = field(default_factory=list)
    changed: bool = False  # differs from mine


# --- fingerprints --------------------------------------------------------------------------


def fingerprint(path: str, data: bytes) -> dict[str, str]:
    """The hashes of every part of the file ``path`` (see the module docstring)."""
    parts = {FILE_KEY: _hash_bytes(data)}
    if path.endswith(".toml"):
        doc = _toml(data)
        if doc is not None:
            parts.update(_toml_parts(doc))
    elif path.endswith(".md"):
        text = data.decode("utf-8", "replace")
        parts.update({key: _hash(part.rstrip()) for key, part in segments(text)})
    return parts


def _toml(data: bytes) -> dict[str, Any] | None:
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None


def _is_entities(value: Any) -> bool:
    if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
        return False
    ids = [v.get("id") for v in value]
    return all(isinstance(i, int | str) and not isinstance(i, bool) for i in ids) and \
        len(set(map(repr, ids))) == len(ids)


def _seg(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_parts(node: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        if not node and prefix:
            yield prefix, _hash({})
        for key, value in node.items():
            yield from _toml_parts(value, f"{prefix}.{_seg(key)}" if prefix else _seg(key))
    elif _is_entities(node):
        for item in node:
            where = f"{prefix}[{json.dumps(item['id'])}]"
            yield where, _hash(item)
            yield from _toml_parts(item, where)
    else:
        yield prefix, _hash(node)


def segments(text: str) -> list[tuple[str, str]]:
    """The Markdown cut at headings and step bullets: (key, text) in order."""
    out: list[tuple[str, list[str]]] = [("(start)", [])]
    seen: dict[str, int] = {}
    task = "0"
    fenced = False
    for line in text.splitlines(keepends=True):
        if _FENCE.match(line):
            fenced = not fenced
        key = None if fenced else _segment_key(line, task)
        if key is not None:
            if key.startswith("task "):
                task = key[5:]
            seen[key] = seen.get(key, 0) + 1
            out.append((key if seen[key] == 1 else f"{key} ({seen[key]})", [line]))
        else:
            out[-1][1].append(line)
    return [(key, "".join(lines)) for key, lines in out if lines or key != "(start)"]


def _segment_key(line: str, task: str) -> str | None:
    match = _TASK.match(line)
    if match:
        return "task " + ".".join(g for g in match.groups() if g)
    match = _STEP.match(line)
    if match:
        first, second = match.groups()
        return f"step {first}.{second}" if second else f"step {task}.{first}"
    match = _HEADING.match(line)
    if match:
        return "# " + " ".join(match.group(1).split()).lower()
    return None


# --- merging ---------------------------------------------------------------------------------


def merge_file(path: str, base: Mapping[str, str] | None, mine: bytes | None,
               theirs: bytes | None, prefer: Prefer = None) -> FileMerge:
    """Merge one file. ``base`` is its fingerprint in the old render (None: the old template
    did not have it); ``mine``/``theirs`` None: the file is absent there."""
    base = base or {}
    b = base.get(FILE_KEY)
    hm = None if mine is None else _hash_bytes(mine)
    ht = None if theirs is None else _hash_bytes(theirs)
    if hm == ht:
        return FileMerge(path, mine)
    if hm == b:
        return FileMerge(path, theirs, changed=True)
    if ht == b:
        return FileMerge(path, mine)
    if mine is not None and theirs is not None and b is not None:
        if path.endswith(".toml") and _toml(mine) is not None and _toml(theirs) is not None:
            return _merge_toml(path, base, mine, theirs, prefer)
        if path.endswith(".md"):
            return _merge_markdown(path, base, mine, theirs, prefer)
    what = ("you removed it and the new template version changes it" if mine is None else
            "the new template version removes it and you changed it" if theirs is None else
            "you and the new template version both changed it")
    conflict = Conflict(path, "the whole file", what)
    chosen = theirs if prefer == "theirs" else mine
    return FileMerge(path, chosen, [conflict], changed=chosen != mine)


class _Merger:
    """The three-way merge of parsed TOML data against a base fingerprint."""

    def __init__(self, path: str, base: Mapping[str, str], prefer: Prefer) -> None:
        self.path, self.base, self.prefer = path, base, prefer
        self.conflicts: list[Conflict] = []

    def conflict(self, where: str, message: str, mine: Any, theirs: Any) -> Any:
        self.conflicts.append(Conflict(self.path, where or "(top)", message))
        return theirs if self.prefer == "theirs" else mine

    def value(self, where: str, mine: Any, theirs: Any) -> Any:
        if isinstance(mine, dict) and isinstance(theirs, dict):
            return self.table(where, mine, theirs)
        if _is_entities(mine) and _is_entities(theirs):
            return self.entities(where, mine, theirs)
        hm = None if mine is _MISSING else _hash(mine)
        ht = None if theirs is _MISSING else _hash(theirs)
        b = self.base.get(where)
        if hm == ht or ht == b:
            return mine
        if hm == b:
            return theirs
        if mine is _MISSING or theirs is _MISSING:
            gone = "you removed it" if mine is _MISSING else "the new version removes it"
            return self.conflict(where, f"{gone}, and the other side changed it "
                                 f"(mine: {_short(mine)}, template: {_short(theirs)})",
                                 mine, theirs)
        return self.conflict(where, f"you changed it to {_short(mine)}; the new template "
                             f"version changes it to {_short(theirs)}", mine, theirs)

    def table(self, where: str, mine: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in [*mine, *(k for k in theirs if k not in mine)]:
            inner = f"{where}.{_seg(key)}" if where else _seg(key)
            value = self.value(inner, mine.get(key, _MISSING), theirs.get(key, _MISSING))
            if value is not _MISSING:
                out[key] = value
        return out

    def entities(self, where: str, mine: list[dict[str, Any]], theirs: list[dict[str, Any]]
                 ) -> list[dict[str, Any]]:
        ours = {repr(item["id"]): item for item in mine}
        new = {repr(item["id"]): item for item in theirs}
        kept: dict[str, dict[str, Any]] = {}
        for key in [*new, *(k for k in ours if k not in new)]:
            item = self.entity(f"{where}[{json.dumps((ours.get(key) or new[key])['id'])}]",
                               ours.get(key, _MISSING), new.get(key, _MISSING))
            if item is not _MISSING:
                kept[key] = item
        order = [k for k in new if k in kept]
        for index, key in enumerate(ours):  # mine-only entities: after their predecessor
            if key in kept and key not in new:
                before = [k for k in list(ours)[:index] if k in order]
                order.insert(order.index(before[-1]) + 1 if before else 0, key)
        return [kept[k] for k in order]

    def entity(self, where: str, mine: Any, theirs: Any, atomic: bool = False) -> Any:
        b = self.base.get(where)
        hm = None if mine is _MISSING else _hash(mine)
        ht = None if theirs is _MISSING else _hash(theirs)
        if hm == ht or ht == b:
            return mine
        if hm == b:
            return theirs
        if mine is not _MISSING and theirs is not _MISSING:
            if b is None:
                return self.conflict(where, "you and the new template version both added it, "
                                     "differently", mine, theirs)
            if atomic:
                return self.conflict(where, "you and the new template version both changed "
                                     "it", mine, theirs)
            return self.table(where, mine, theirs)
        if theirs is _MISSING:
            return self.conflict(where, "the new template version removes it, and you "
                                 "edited it", mine, theirs)
        return self.conflict(where, "you removed it, and the new template version changes "
                             "it", mine, theirs)


def _short(value: Any) -> str:
    if value is _MISSING:
        return "(absent)"
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 70 else text[:67] + "..."


def _merge_toml(path: str, base: Mapping[str, str], mine: bytes, theirs: bytes,
                prefer: Prefer) -> FileMerge:
    merger = _Merger(path, base, prefer)
    mine_doc, theirs_doc = tomlkit.parse(mine.decode()), tomlkit.parse(theirs.decode())
    result = merger.table("", mine_doc.unwrap(), theirs_doc.unwrap())
    if result == mine_doc.unwrap():
        return FileMerge(path, mine, merger.conflicts)
    _sync(mine_doc, result, theirs_doc)
    data = tomlkit.dumps(mine_doc).encode()
    return FileMerge(path, data, merger.conflicts, changed=True)


def _plain(item: Any) -> Any:
    return item.unwrap() if hasattr(item, "unwrap") else item


def _sync(table: Any, result: dict[str, Any], theirs: Any) -> None:
    """Edit the tomlkit ``table`` until it holds ``result``; new parts come from ``theirs``."""
    for key in [k for k in table if k not in result]:
        del table[key]
    for key, value in result.items():
        source = theirs.get(key) if theirs is not None and hasattr(theirs, "get") else None
        if key in table:
            current = table[key]
            if _plain(current) == value:
                continue
            if isinstance(value, dict) and isinstance(_plain(current), dict):
                _sync(current, value, source)
                continue
            if isinstance(current, AoT) and _is_entities(value):
                _sync_entities(current, value, source)
                continue
        table[key] = copy.deepcopy(source) if source is not None and \
            _plain(source) == value else value


def _sync_entities(items: AoT, result: list[dict[str, Any]], theirs: Any) -> None:
    wanted = [repr(v["id"]) for v in result]
    for index in reversed(range(len(items))):
        if repr(items[index].get("id")) not in wanted:
            del items[index]
    new = {repr(_plain(t).get("id")): t for t in theirs} if isinstance(theirs, AoT) else {}
    for position, value in enumerate(result):
        key = repr(value["id"])
        present = [i for i, item in enumerate(items) if repr(item.get("id")) == key]
        if present:
            _sync(items[present[0]], value, new.get(key))
            continue
        source = new.get(key)
        table = copy.deepcopy(source) if source is not None and _plain(source) == value \
            else tomlkit.item(value)
        items.insert(min(position, len(items)), table)


def _merge_markdown(path: str, base: Mapping[str, str], mine: bytes, theirs: bytes,
                    prefer: Prefer) -> FileMerge:
    """Segments compare without their trailing blank lines (which move when a template adds
    a step after another); each keeps its own text in the result."""
    merger = _Merger(path, base, prefer)
    ours_raw = dict(segments(mine.decode("utf-8", "replace")))
    new_raw = dict(segments(theirs.decode("utf-8", "replace")))
    ours = {k: v.rstrip() for k, v in ours_raw.items()}
    new = {k: v.rstrip() for k, v in new_raw.items()}
    kept: dict[str, str] = {}
    for key in [*new, *(k for k in ours if k not in new)]:
        text = merger.entity(key, ours.get(key, _MISSING), new.get(key, _MISSING), atomic=True)
        if text is not _MISSING:
            kept[key] = ours_raw[key] if ours.get(key) == text else new_raw[key]
    order = [k for k in new if k in kept]
    for index, key in enumerate(ours):
        if key in kept and key not in new:
            before = [k for k in list(ours)[:index] if k in order]
            order.insert(order.index(before[-1]) + 1 if before else 0, key)
    joined = ""
    for key in order:
        text = kept[key]
        if joined and not joined.endswith("\n"):
            joined += "\n"
        if joined and text.lstrip().startswith("#") and not joined.endswith("\n\n"):
            joined += "\n"  # a heading after a segment that lost its blank line
        joined += text
    data = joined.encode()
    return FileMerge(path, data, merger.conflicts, changed=data != mine)


def removed_steps(mine: bytes | None, merged: bytes | None) -> list[str]:
    """The step refs (``"2.3"``) of the TOML ``mine`` that ``merged`` no longer has."""
    def refs(data: bytes | None) -> set[str]:
        doc = _toml(data) if data is not None else None
        found: set[str] = set()
        for task in (doc or {}).get("tasks", []) or []:
            if isinstance(task, dict):
                for step in task.get("steps", []) or []:
                    if isinstance(step, dict):
                        found.add(f"{task.get('id')}.{step.get('id')}")
        return found

    return sorted(refs(mine) - refs(merged))
