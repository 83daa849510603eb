"""Reading the history: the runs (newest first, filtered) and one run's detail.

These answer ``specs runs`` and ``specs show-run`` from the database, so they list the runs of
every machine sharing it, and runs whose state folder is gone. A run is named by its full id,
a unique prefix of it, or ``last`` (the newest started).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select

from specs.errors import UsageError
from specs.history import schema
from specs.history.store import HistoryStore

__all__ = ["RunDetail", "list_changes", "list_runs", "parse_since", "run_detail"]


def parse_since(text: str, *, now: datetime | None = None) -> str:
    """``--since``: a date (``2026-03-01``), a date and time (ISO 8601), or an age (``7d``,
    ``12h``, ``30m``); returned as the ISO UTC text the history's times compare with."""
    now = now or datetime.now(UTC)
    value = text.strip()
    units = {"d": "days", "h": "hours", "m": "minutes", "w": "weeks"}
    if value[:-1].isdigit() and value[-1:] in units:
        moment = now - timedelta(**{units[value[-1]]: int(value[:-1])})
    else:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(f"--since {text!r} is not a date (2026-03-01), an ISO time or an "
                             "age such as 7d, 12h or 30m") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _spec_filter(spec: str) -> Any:
    """A descriptor, or a spec folder / parameters file (matched by its absolute path)."""
    runs = schema.runs
    path = Path(spec)
    if path.exists():
        resolved = str(path.resolve())
        return or_(runs.c.parameters_path == resolved, runs.c.spec_folder == resolved)
    return runs.c.descriptor == spec


def list_runs(store: HistoryStore, *, spec: str | None = None, status: str | None = None,
              since: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """The runs, newest first (by start time, then id), as dicts of the ``runs`` columns.

    ``spec`` is a descriptor or a spec path; ``status`` a run status (``completed``,
    ``failed``, ``awaiting_human``...); ``since`` an ISO time (:func:`parse_since`)."""
    runs = schema.runs
    query = select(runs)
    if spec:
        query = query.where(_spec_filter(spec))
    if status:
        query = query.where(runs.c.status == status)
    if since:
        query = query.where(runs.c.started_at >= since)
    query = query.order_by(runs.c.started_at.desc(), runs.c.run_id.desc())
    if limit:
        query = query.limit(limit)
    with store.reading() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


@dataclass
class RunDetail:
    """One run: its row, and its tasks, steps, attempts, gates and escalations in order."""

    run: dict[str, Any]
    tasks: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    gates: list[dict[str, Any]] = field(default_factory=list)
    escalations: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        steps = []
        for step in self.steps:
            mine = [a for a in self.attempts if a["step"] == step["step"]]
            steps.append({**step, "attempts_detail": mine})
        return {"run": self.run, "tasks": self.tasks, "steps": steps, "gates": self.gates,
                "escalations": self.escalations}


def _ref_key(ref: str) -> tuple[Any, ...]:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in ref.split("."))


def resolve_run(store: HistoryStore, name: str) -> str:
    """The full id of run ``name`` (an id, a unique prefix, or ``last``)."""
    runs = schema.runs
    with store.reading() as conn:
        if name == "last":
            found = conn.execute(select(runs.c.run_id).order_by(
                runs.c.started_at.desc(), runs.c.run_id.desc()).limit(1)).scalar()
            if found is None:
                raise UsageError("the history has no runs; start one with `specs run PATH`")
            return str(found)
        exact = conn.execute(select(runs.c.run_id).where(runs.c.run_id == name)).scalar()
        if exact is not None:
            return str(exact)
        escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        matches = [r[0] for r in conn.execute(select(runs.c.run_id).where(
            runs.c.run_id.like(f"{escaped}%", escape="\\")).limit(6))]
    if not matches:
        raise UsageError(f"no run {name!r} in the history; `specs runs` lists them")
    if len(matches) > 1:
        raise UsageError(f"run {name!r} is ambiguous: {', '.join(matches[:5])}")
    return str(matches[0])


def run_detail(store: HistoryStore, name: str) -> RunDetail:
    """Run ``name`` (an id, a unique prefix, or ``last``) with all its rows."""
    run_id = resolve_run(store, name)
    with store.reading() as conn:
        def rows(table: Any) -> list[dict[str, Any]]:
            return [dict(r._mapping) for r in conn.execute(
                select(table).where(table.c.run_id == run_id))]

        run = rows(schema.runs)[0]
        detail = RunDetail(run, rows(schema.tasks), rows(schema.steps), rows(schema.attempts),
                           rows(schema.gates), rows(schema.escalations))
    detail.tasks.sort(key=lambda t: _ref_key(t["task"]))
    detail.steps.sort(key=lambda s: _ref_key(s["step"]))
    detail.attempts.sort(key=lambda a: (_ref_key(a["step"]), a["n"]))
    detail.gates.sort(key=lambda g: g["requested_at"] or "")
    detail.escalations.sort(key=lambda e: e["seq"])
    return detail


def list_changes(store: HistoryStore, *, spec: str | None = None) -> list[dict[str, Any]]:
    """The edits ``specs insights --apply`` made, newest first."""
    changes = schema.changes
    query = select(changes).order_by(changes.c.applied_at.desc(), changes.c.id.desc())
    if spec:
        path = Path(spec)
        query = query.where(changes.c.parameters_path == str(path.resolve())
                            if path.exists() else changes.c.descriptor == spec)
    with store.reading() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]
