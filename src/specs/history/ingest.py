"""Filling the history from files: ``specs history rebuild`` and ``specs history import``.

:func:`rebuild` projects every run of a state folder from its ``events.jsonl`` again and
replaces that run's rows (one transaction per run), so the tables come out as the live
recorder wrote them; rows of runs that are not in the folder (other machines', imports) are
kept. :func:`import_paths` adds ``events.jsonl`` files from anywhere (``source`` =
``events-import``) and the original project's ``progress_*.json`` files
(:mod:`specs.history.progress_import`, ``source`` = ``progress-F1`` .. ``progress-F5``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sqlalchemy import select

from specs import events as ev
from specs.engine.state import RunState
from specs.history import schema
from specs.history.progress_import import import_progress
from specs.history.projection import RunRows, SpecFacts
from specs.history.results import ImportResult
from specs.history.store import HistoryStore
from specs.record.analysis import compliance
from specs.spec.load import load_spec
from specs.spec.model import Spec

__all__ = ["ImportResult", "compliance_score", "facts_for", "import_paths", "project_events",
           "rebuild", "spec_of", "sync"]

_SPECS: dict[tuple[str, str | None], Spec | None] = {}


def spec_of(opened: ev.RunOpened | None) -> Spec | None:
    """The run's spec, loaded from its parameters file while the file is unchanged (same
    SHA-256 as the run recorded); None when it is gone, changed or no longer loads."""
    if opened is None:
        return None
    path = (opened.spec or {}).get("parameters")
    sha = (opened.spec or {}).get("parameters_sha256")
    if not path:
        return None
    key = (str(path), sha)
    if key not in _SPECS:
        found: Spec | None = None
        try:
            file = Path(path)
            if file.is_file() and (sha is None or
                                   hashlib.sha256(file.read_bytes()).hexdigest() == sha):
                found = load_spec(file).spec
        except (OSError, ValueError):
            found = None
        _SPECS[key] = found
    return _SPECS[key]


def facts_for(opened: ev.RunOpened) -> SpecFacts:
    spec = spec_of(opened)
    return SpecFacts.of(spec) if spec is not None else SpecFacts()


def compliance_score(spec: Spec | None, rows: RunRows, state: RunState | None) -> int | None:
    """The run's constitutional compliance score (reference R-COMP), as its progress file
    says it, when the spec is known."""
    spec = spec or spec_of(rows.opened)
    if spec is None or state is None:
        return None
    try:
        return int(compliance(spec, state)["compliance_score"])
    except (KeyError, TypeError, ValueError):
        return None


def project_events(events: list[ev.Event], path: Path, *, source: str = "events") -> RunRows:
    """The rows of one run's events (the run id is its run-opened's, else the folder's)."""
    opened = next((e for e in events if isinstance(e, ev.RunOpened)), None)
    run_id = opened.run_id if opened is not None else path.parent.name
    spec = spec_of(opened)
    rows = RunRows(run_id, source=source, source_path=str(path.resolve()),
                   facts=SpecFacts.of(spec) if spec is not None else SpecFacts())
    state = RunState(spec) if spec is not None else None
    for event in events:
        rows.apply(event)
        if state is not None:
            state.apply(event)
    if any(isinstance(e, ev.RunEnded) for e in events):
        rows.run["compliance_score"] = compliance_score(spec, rows, state)
    return rows


def _replace(store: HistoryStore, rows: RunRows) -> None:
    with store.writing() as conn:
        store.delete_run(conn, rows.run_id)
        for table, items in rows.all_rows():
            store.upsert(conn, table, items)
        store.notify(conn, [rows.run_id])


def _counts(rows: RunRows) -> dict[str, int]:
    return {"tasks": len(rows.tasks), "steps": len(rows.steps), "attempts": len(rows.attempts),
            "gates": len(rows.gates), "escalations": len(rows.escalations)}


def rebuild(store: HistoryStore, state_dir: Path) -> list[ImportResult]:
    """Project every run in ``state_dir/runs`` again from its events (see the module doc)."""
    results = []
    runs = state_dir / "runs"
    for folder in sorted(runs.iterdir()) if runs.is_dir() else []:
        path = folder / "events.jsonl"
        if not path.is_file():
            continue
        events = list(ev.read_events(path))
        if not events:
            results.append(ImportResult(path, "skipped", None, "no events"))
            continue
        rows = project_events(events, path)
        _replace(store, rows)
        results.append(ImportResult(path, "events", rows.run_id, "", _counts(rows)))
    return results


def _last_seq(path: Path) -> int:
    """The seq of the last complete event of a log (read from its end: logs grow large)."""
    with path.open("rb") as handle:
        size = handle.seek(0, 2)
        tail = 65536
        while True:
            handle.seek(max(0, size - tail))
            data = handle.read()
            lines = data.split(b"\n")[:-1]  # the part after the last newline is torn
            for line in reversed(lines if size <= tail else lines[1:]):
                try:
                    return int(json.loads(line).get("seq", 0))
                except (ValueError, AttributeError, TypeError):
                    continue
            if size <= tail:
                return 0
            tail *= 4


def sync(store: HistoryStore, state_dir: Path) -> list[ImportResult]:
    """Bring the history up to date with the state folder: every run whose events the
    database lacks (never recorded, or recorded only in part: a process killed, a recorder
    that could not write) is projected again from its events.jsonl. Cheap when nothing is
    missing: one query and the tail of each log. ``specs runs`` calls it before listing."""
    runs = state_dir / "runs"
    if not runs.is_dir():
        return []
    with store.reading() as conn:
        known = dict(conn.execute(select(schema.runs.c.run_id, schema.runs.c.last_seq)).all())
    results = []
    for folder in sorted(runs.iterdir()):
        path = folder / "events.jsonl"
        if not path.is_file() or known.get(folder.name, -1) >= _last_seq(path):
            continue
        events = list(ev.read_events(path))
        if events:
            rows = project_events(events, path)
            _replace(store, rows)
            results.append(ImportResult(path, "events", rows.run_id, "", _counts(rows)))
    return results


def import_paths(store: HistoryStore, paths: list[Path]) -> list[ImportResult]:
    """Import ``events.jsonl`` and ``progress_*.json`` files (folders: every such file in
    them, recursively); each result says what the file was read as."""
    results: list[ImportResult] = []
    for path in _files(paths):
        if path.suffix == ".jsonl":
            events = list(ev.read_events(path))
            if not any(isinstance(e, ev.RunOpened) for e in events):
                results.append(ImportResult(path, "skipped", None,
                                            "no run-opened event: not a run's events.jsonl"))
                continue
            rows = project_events(events, path, source="events-import")
            _replace(store, rows)
            results.append(ImportResult(path, "events-import", rows.run_id, "", _counts(rows)))
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            results.append(ImportResult(path, "skipped", None, f"not readable JSON: {exc}"))
            continue
        result, found = import_progress(path, data)
        if found is not None:
            _replace(store, found)
            result.counts = _counts(found)
        results.append(result)
    return results


def _files(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and (
                p.name == "events.jsonl" or (p.name.startswith("progress_")
                                             and p.suffix == ".json")))
        else:
            found.append(path)
    return found
