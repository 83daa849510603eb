"""Reading a run's event log for its projections, with what could not be read.

:func:`specs.events.read_events` skips a line it cannot read, silently: right for the engine's
resume, which must go on from what the log holds. A person looking at a run (``specs
timeline``, ``specs show-run``) must hear of it: a skipped line is a step, an attempt or a
decision missing from what they see. :func:`read_log` reads the log the same way and also
returns each damaged line with its number and why it was skipped.

A torn last line (no newline: a crash mid-write, or a write in progress while a live run is
read) is not damage: the engine cuts it off at its next append. It is counted apart
(:attr:`LogRead.torn`) and not reported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from specs import events as ev

__all__ = ["DamagedLine", "LogRead", "read_log"]


@dataclass(frozen=True, slots=True)
class DamagedLine:
    """A complete line of the log that is not an event."""

    line: int
    """its number in the file, from 1"""
    reason: str
    """why it was skipped: not JSON, no event name, an unknown event, fields that do not fit"""

    def message(self, path: Path) -> str:
        return f"{path}:{self.line}: damaged event line skipped ({self.reason})"


@dataclass(slots=True)
class LogRead:
    """The events of a log, in order, and what could not be read."""

    events: list[ev.Event] = field(default_factory=list)
    damaged: list[DamagedLine] = field(default_factory=list)
    torn: bool = False
    """the last line is incomplete (ignored, as the engine ignores it)"""


def read_log(path: Path) -> LogRead:
    """Every event of the log at ``path``, and every complete line that is not one."""
    found = LogRead()
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.endswith(b"\n"):
                found.torn = True
                break
            try:
                data = json.loads(raw)
            except ValueError:
                found.damaged.append(DamagedLine(number, "not JSON"))
                continue
            event, reason = _event(data)
            if event is None:
                found.damaged.append(DamagedLine(number, reason))
            else:
                found.events.append(event)
    return found


def _event(data: Any) -> tuple[ev.Event | None, str]:
    if not isinstance(data, dict) or "event" not in data:
        return None, "no event name"
    name = data["event"]
    if not isinstance(name, str) or name not in ev.EVENT_TYPES:
        return None, f"unknown event {name!r}"
    try:
        return ev.event_from_dict(data), ""
    except (TypeError, ValueError, KeyError) as exc:
        return None, f"{name}: fields do not fit ({exc})"
