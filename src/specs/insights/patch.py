"""Applying a suggestion: the edit to the parameters file, with tomlkit (comments and layout
kept), shown as a unified diff (``--diff``) or written (``--apply``).

Patches are small and exact: set one key of a step or backup (``max_retries``,
``timeout_seconds``, ``critical_flag``), or promote backup k: the methods rotate (backup k's
action becomes the primary's, the primary's becomes backup 1, backups 1..k-1 move down one),
the backups' descriptions follow their actions, and triggers written in the positional form
(``primary_failure``, ``backup_<n>_failure``) are renumbered. The step's own keys (its
description, expected output, checks, ``max_retries``) stay where they are. A comment above
the change names the suggestion and the date, so the file says where the change came from.
"""

from __future__ import annotations

import difflib
import hashlib
import time
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import AoT, Table

from specs.errors import UsageError

__all__ = ["ACTION_KEYS", "PatchError", "patched_text", "unified_diff"]

#: the keys that make up a method (the rest of a step is the step's, and stays)
ACTION_KEYS = ("execution_method", "command", "tool_path", "tool_args", "callable",
               "timeout_seconds", "env", "cwd", "retry_on_exit_codes", "output_file",
               "primary_method", "method")
_CRITICAL_KEYS = ("critical_flag", "critical")


class PatchError(UsageError):
    """The suggestion cannot be applied to this file (a shape the patch cannot edit)."""


def _steps(doc: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    tasks = doc.get("tasks")
    if not isinstance(tasks, AoT | list):
        return out
    for task in tasks:
        for step in task.get("steps", []) if isinstance(task, Table | dict) else []:
            if isinstance(step, Table | dict) and "id" in step and "id" in task:
                out[f"{task['id']}.{step['id']}"] = step
    return out


def _find(doc: Any, ref: str) -> Any:
    step = _steps(doc).get(ref)
    if step is None:
        raise PatchError(f"step {ref} is not in this parameters file as [[tasks.steps]] "
                         "(an included spec's step, or a SPECLet's?): edit it by hand")
    return step


def _backup(step: Any, backup_id: int) -> Any:
    backups = step.get("backups")
    found = next((b for b in backups or [] if isinstance(b, Table | dict) and
                  b.get("id") == backup_id), None)
    if found is None:
        raise PatchError(f"backup {backup_id} is not a [[tasks.steps.backups]] table of this "
                         "step (an inline backup_1 string?): edit it by hand")
    return found


def _stamp(table: Any, key: str, suggestion: str, what: str) -> None:
    """A comment at the end of the changed key's line: which suggestion, when, what."""
    item = table.get(key)
    if hasattr(item, "comment"):
        item.comment(f"specs insights {suggestion}, "
                     f"{time.strftime('%Y-%m-%d', time.gmtime())}: {what}")


def _set(doc: Any, patch: dict[str, Any], suggestion: str) -> str:
    step = _find(doc, patch["step"])
    method, key, value = patch["method"], patch["key"], patch["value"]
    target = step if method == "primary" else _backup(step, int(method.split("_")[1]))
    if key == "critical_flag":
        key = next((k for k in _CRITICAL_KEYS if k in step), "critical_flag")
    before = target.get(key)
    target[key] = value
    summary = f"{key} {before!r} -> {value!r}" if before is not None else f"{key} = {value!r}"
    _stamp(target, key, suggestion, f"was {before!r}" if before is not None else "added")
    return f"step {patch['step']} {method}: {summary}"


def _comment(table: Any, key: str) -> tuple[str, str]:
    """The comment at the end of a key's line (and the space before it): it travels with the
    value when methods rotate."""
    trivia = getattr(table.item(key) if hasattr(table, "item") else None, "trivia", None)
    return (trivia.comment, trivia.comment_ws) if trivia is not None else ("", "")


def _put(table: Any, key: str, value: Any, comment: tuple[str, str]) -> None:
    table[key] = value
    trivia = getattr(table.item(key), "trivia", None)
    if trivia is not None:
        trivia.comment, trivia.comment_ws = comment


def _plain(item: Any) -> Any:
    return item.unwrap() if hasattr(item, "unwrap") else item


def _renumber(trigger: Any, position: int) -> Any:
    text = str(trigger)
    if text == "primary_failure" or (text.startswith("backup_") and
                                     text.endswith("_failure")):
        return "primary_failure" if position == 1 else f"backup_{position - 1}_failure"
    return trigger


def _promote(doc: Any, patch: dict[str, Any], suggestion: str) -> str:
    step = _find(doc, patch["step"])
    k = int(patch["backup"])
    backups = list(step.get("backups") or [])
    chosen = _backup(step, k)
    index = backups.index(chosen)
    slots: list[Any] = [step, *backups[:index + 1]]  # primary, backup 1 .. backup k
    actions = [{key: (_plain(slot[key]), _comment(slot, key)) for key in ACTION_KEYS
                if key in slot} for slot in slots]
    texts = [(f"the former primary method (until {suggestion})", ("", ""))] + [
        (str(b.get("description", "")), _comment(b, "description"))
        for b in backups[:index + 1]]
    order = [index + 1, *range(index + 1)]  # the slot each position now takes from
    for position, source in enumerate(order):
        slot = slots[position]
        for key in ACTION_KEYS:
            if key in actions[source]:
                _put(slot, key, *actions[source][key])  # in place when the key was there
            elif key in slot:
                del slot[key]
        if position:
            _put(slot, "description", *texts[source])
            if "trigger_condition" in slot:
                slot["trigger_condition"] = _renumber(slot["trigger_condition"], position)
    summary = f"backup {k} ({texts[index + 1][0]}) promoted to primary; the former " \
        "primary is backup 1"
    first = next((key for key in ACTION_KEYS if key in step), None)
    if first is not None:
        _stamp(step, first, suggestion, f"was backup {k}")
    return f"step {patch['step']}: {summary}"


def patched_text(text: str, patch: dict[str, Any], suggestion: str) -> tuple[str, str]:
    """The file's new text and a one-line summary of the change."""
    try:
        doc = tomlkit.parse(text)
    except Exception as exc:  # tomlkit's parse errors share no base class we can name
        raise PatchError(f"the parameters file does not parse: {exc}") from None
    if patch["op"] == "promote_backup":
        summary = _promote(doc, patch, suggestion)
    elif patch["op"] == "set":
        summary = _set(doc, patch, suggestion)
    else:
        raise PatchError(f"unknown patch {patch['op']!r}")
    return tomlkit.dumps(doc), summary


def unified_diff(path: Path, before: str, after: str) -> str:
    return "".join(difflib.unified_diff(before.splitlines(keepends=True),
                                        after.splitlines(keepends=True),
                                        fromfile=f"a/{path.name}", tofile=f"b/{path.name}"))


def sha256(text: bytes) -> str:
    return hashlib.sha256(text).hexdigest()
