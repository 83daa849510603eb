"""What the dashboard reads from the history database (:mod:`specs.history`): its runs on the
runs page (runs of other machines sharing a PostgreSQL history, and runs whose state folder
is gone), each backup's wins across runs, and the backups, metrics and insights pages.

There is a history when ``--database-url`` or ``SPECS_DATABASE_URL`` names one, or when the
state folder has its ``history.db``; else :meth:`HistoryView.open` gives None and those pages
say how to get one. Reads are cached for :data:`FRESH_S` (the runs stream asks often);
:meth:`HistoryView.changed` (a PostgreSQL notification, see :mod:`specs.dashboard.listen`)
forgets them at once, and then :meth:`HistoryView.fingerprint` is only asked of the database
every ``poll_s`` as a fallback.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from specs.dashboard import records
from specs.dashboard.charts import series_chart, stacked_bars
from specs.dashboard.records import GATE_LANE, lane_label
from specs.dashboard.runs import RunRow
from specs.dashboard.stats import WinRates
from specs.history import (
    ENV_URL,
    HistoryError,
    HistoryStore,
    list_runs,
    open_store,
    run_detail,
    schema,
    sync,
)
from specs.insights import InsightOptions, analyse
from specs.insights.patch import patched_text, unified_diff

__all__ = ["FRESH_S", "HistoryView"]

FRESH_S = 2.0
#: runs shown on the metrics page (the newest)
METRIC_RUNS = 100


class HistoryView:
    """Reads one history database for the dashboard."""

    def __init__(self, store: HistoryStore, state_dir: Path) -> None:
        self.store = store
        self.state_dir = state_dir
        self.poll_s: Callable[[], float] = lambda: FRESH_S
        """How long the database's fingerprint is trusted (longer when notifications come)."""
        self.version = 0  # notifications so far: part of the fingerprint
        self._cache: dict[str, tuple[float, Any]] = {}

    @classmethod
    def open(cls, state_dir: Path, url: str | None) -> HistoryView | None:
        if url is None and not os.environ.get(ENV_URL) and not (
                state_dir / "history.db").is_file():
            return None
        return cls(open_store(state_dir, url), state_dir)

    def describe(self) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.store.url).render_as_string(hide_password=True)

    def changed(self, run_id: str | None) -> None:
        """The history says a run changed (None: maybe any): read it all again."""
        self.version += 1
        self._cache.clear()

    def _cached(self, key: str, make: Callable[[], Any], fresh_s: float = FRESH_S) -> Any:
        found = self._cache.get(key)
        if found is not None and time.monotonic() - found[0] < fresh_s:
            return found[1]
        try:
            value = make()
        except (HistoryError, OSError) as exc:
            raise HistoryError(f"the history database cannot be read: {exc}") from None
        self._cache[key] = (time.monotonic(), value)
        return value

    # -- the runs page -----------------------------------------------------------------------

    def rows(self) -> list[RunRow]:
        return self._cached("rows", self._rows)  # type: ignore[no-any-return]

    def _rows(self) -> list[RunRow]:
        out = []
        for r in list_runs(self.store, limit=2000):
            done = (r["steps_completed"] or 0) + (r["steps_failed"] or 0) + (
                r["steps_skipped"] or 0)
            out.append(RunRow(
                run_id=r["run_id"], spec=r["descriptor"], status=r["status"], goal=r["goal"],
                started=r["started_at"] or "", last=r["last_event_at"] or "",
                duration_s=None if r["duration_ms"] is None else round(r["duration_ms"] / 1000,
                                                                       3),
                steps_done=done, steps_total=r["steps_total"] or 0, tokens=r["tokens"] or 0,
                cost_usd=r["cost_usd"], pending_gate=r["pending_gate"], source="history",
                parameters=r["parameters_path"]))
        return out

    def fingerprint(self) -> tuple[Any, ...]:
        """Changes when a run is added to the history or goes on (for the live runs page)."""
        from sqlalchemy import func, select

        def make() -> tuple[Any, ...]:
            runs = schema.runs
            with self.store.reading() as conn:
                row = conn.execute(select(func.count(), func.max(runs.c.last_event_at),
                                          func.sum(runs.c.last_seq))).one()
            return (self.version, *row)

        return self._cached("fingerprint", make,  # type: ignore[no-any-return]
                            max(FRESH_S, self.poll_s()))

    # -- backups -----------------------------------------------------------------------------

    def wins(self, spec: str, exclude: set[str]) -> WinRates:
        """Each method's [runs tried, runs won] at each step of ``spec``, over the history's
        runs but ``exclude`` (those the state folder counted already)."""
        return {step: {m: list(c) for m, c in methods.items()}
                for step, methods in self._wins(spec, frozenset(exclude)).items()}

    def _wins(self, spec: str | None, exclude: frozenset[str]) -> WinRates:
        from sqlalchemy import select

        runs, steps, attempts = schema.runs, schema.steps, schema.attempts
        mine = select(runs.c.run_id)
        if spec is not None:
            mine = mine.where(runs.c.descriptor == spec)
        tried: dict[tuple[str, str], set[str]] = {}
        won: dict[tuple[str, str], str] = {}
        with self.store.reading() as conn:
            for run_id, step, method in conn.execute(select(
                    attempts.c.run_id, attempts.c.step, attempts.c.method).where(
                    attempts.c.run_id.in_(mine)).distinct()):
                if run_id not in exclude:
                    tried.setdefault((run_id, step), set()).add(method)
            for run_id, step, used in conn.execute(select(
                    steps.c.run_id, steps.c.step, steps.c.method_used).where(
                    steps.c.run_id.in_(mine), steps.c.status == "completed")):
                if used:
                    won[(run_id, step)] = used
        out: WinRates = {}
        for (run_id, step), methods in tried.items():
            counts = out.setdefault(step, {})
            for method in methods:
                pair = counts.setdefault(method, [0, 0])
                pair[0] += 1
                pair[1] += int(won.get((run_id, step)) == method)
        return out

    def _descriptors(self, spec: str | None) -> list[str]:
        from sqlalchemy import select

        runs = schema.runs
        query = select(runs.c.descriptor).distinct().order_by(runs.c.descriptor)
        if spec:
            query = query.where(runs.c.descriptor == spec)
        with self.store.reading() as conn:
            return [r[0] for r in conn.execute(query)]

    def backups(self, spec: str | None) -> dict[str, Any]:
        """Which method won how often at each step, per spec: a chart each."""
        charts, tables = [], []
        for descriptor in self._descriptors(spec)[:20]:
            rates = self._wins(descriptor, frozenset())
            rows = []
            for step in sorted(rates, key=_ref_key):
                methods = rates[step]
                if len(methods) < 2 and "primary" in methods:
                    continue  # the primary alone: nothing to compare
                rows.append((step, [(m, float(methods[m][1])) for m in sorted(methods)]))
                tables.append({"spec": descriptor, "step": step, "methods": {
                    m: {"tried": t, "won": w} for m, (t, w) in sorted(methods.items())}})
            if rows:
                charts.append({"title": f"{descriptor}: the method that won, per step",
                               "note": "runs in which each method completed the step "
                                       "(steps whose primary never failed are left out)",
                               "svg": stacked_bars(rows, unit=" runs")})
        return {"charts": charts, "steps": tables}

    # -- metrics -----------------------------------------------------------------------------

    def metrics(self, spec: str | None) -> dict[str, Any]:
        """Per run over time: duration, retries, failure rate, tokens and cost."""
        from sqlalchemy import func, select

        runs, steps = schema.runs, schema.steps
        query = select(runs.c.run_id, runs.c.descriptor, runs.c.started_at, runs.c.duration_ms,
                       runs.c.steps_total, runs.c.steps_failed, runs.c.tokens,
                       runs.c.cost_usd, runs.c.status).order_by(
            runs.c.started_at.desc()).limit(METRIC_RUNS)
        if spec:
            query = query.where(runs.c.descriptor == spec)
        with self.store.reading() as conn:
            found = list(conn.execute(query))[::-1]
            retries = dict(conn.execute(select(steps.c.run_id, func.sum(steps.c.retries)).where(
                steps.c.run_id.in_([r.run_id for r in found])).group_by(steps.c.run_id)).all())
        points = [{"run_id": r.run_id, "spec": r.descriptor, "started": r.started_at,
                   "status": r.status,
                   "duration_s": None if r.duration_ms is None else round(r.duration_ms / 1000, 3),
                   "retries": int(retries.get(r.run_id) or 0),
                   "failure_rate": round((r.steps_failed or 0) / r.steps_total, 4)
                   if r.steps_total else None, "tokens": r.tokens or 0, "cost_usd": r.cost_usd}
                  for r in found]
        charts = []
        for key, title, unit in (("duration_s", "Duration per run", " s"),
                                 ("retries", "Retries per run", ""),
                                 ("failure_rate", "Share of steps failed per run", ""),
                                 ("tokens", "Tokens per run", ""),
                                 ("cost_usd", "Cost per run", " $")):
            series = [(f"{p['started'] or ''} {p['run_id']}", p[key]) for p in points]
            charts.append({"title": title, "note": f"the newest {len(points)} runs, oldest "
                           "left", "svg": series_chart(series, unit=unit)})
        return {"charts": charts if points else [], "runs": points}

    # -- insights ----------------------------------------------------------------------------

    def insights(self, spec: str | None) -> dict[str, Any]:
        """The adaptive-learning suggestions, with their evidence and the diff each edit
        would make to its spec's parameters file (when that file is still there)."""
        report = analyse(self.store, None, InsightOptions())
        newest = self._newest_parameters()
        items = []
        for s in report.suggestions:
            if spec and s.descriptor != spec:
                continue
            path = newest.get(s.descriptor)
            diff = ""
            if s.patch is not None and path is not None:
                try:
                    before = path.read_text(encoding="utf-8")
                    diff = unified_diff(path, before, patched_text(before, s.patch, s.id)[0])
                except Exception as exc:  # a patch that no longer fits the file: say so
                    diff = f"(the edit no longer applies to {path}: {exc})"
            where = str(path) if path is not None else s.descriptor
            items.append({
                "id": s.id, "kind": s.kind, "spec": s.descriptor, "step": s.step,
                "title": f"{s.kind} · {s.descriptor}" + (f" step {s.step}" if s.step else ""),
                "text": s.message + (f" {s.impact}" if s.impact else ""),
                "evidence": _evidence_text(s.evidence), "diff": diff, "patch": s.patch,
                "cli": f"specs insights {where} --diff {s.id}" if s.patch else
                f"specs insights {where}"})
        return {"charts": [], "items": items, "runs_considered": report.runs_considered,
                "runs_excluded": report.runs_excluded}

    def _newest_parameters(self) -> dict[str, Path]:
        from sqlalchemy import select

        runs = schema.runs
        found: dict[str, Path] = {}
        with self.store.reading() as conn:
            for descriptor, path in conn.execute(select(
                    runs.c.descriptor, runs.c.parameters_path).order_by(
                    runs.c.started_at.desc())):
                if descriptor not in found and path and Path(path).is_file():
                    found[descriptor] = Path(path)
        return found

    def page(self, kind: str, spec: str | None) -> dict[str, Any]:
        make = {"backups": self.backups, "metrics": self.metrics,
                "insights": self.insights}[kind]
        self._cached("sync", lambda: sync(self.store, self.state_dir))
        return self._cached(f"{kind}:{spec}", lambda: make(spec))  # type: ignore[no-any-return]

    # -- a run only the history has ----------------------------------------------------------

    def run_snapshot(self, run_id: str) -> dict[str, Any] | None:
        """The run page's data of a run the state folder does not have (another machine's),
        from its rows; None when the history does not have it either."""
        from sqlalchemy import select

        with self.store.reading() as conn:
            known = conn.execute(select(schema.runs.c.run_id).where(
                schema.runs.c.run_id == run_id)).scalar()
        if known is None:
            return None
        detail = run_detail(self.store, run_id)
        run = detail.run
        gates: dict[str, list[dict[str, Any]]] = {}
        for gate in detail.gates:
            gates.setdefault(gate["step"] or "", []).append(gate)
        steps = []
        for row in detail.steps:
            lane: list[dict[str, Any]] = []
            for a in (a for a in detail.attempts if a["step"] == row["step"]):
                kind, label = lane_label(a["method"], a["attempt"])
                lane.append({
                    "kind": kind, "label": label, "method": a["method"],
                    "attempt": a["attempt"], "outcome": a["outcome"] or "running",
                    "verdict": a["verdict"], "failure_reason": a["failure_reason"],
                    "duration_ms": a["duration_ms"], "exit_code": a["exit_code"],
                    "tokens": (a["input_tokens"] or 0) + (a["output_tokens"] or 0),
                    "cost_usd": a["cost_usd"], "cached": a["cached"],
                    "started_at": a["started_at"], "ended_at": a["ended_at"],
                    "at": a["started_at"],
                    "won": row["status"] == "completed" and a["method"] == row["method_used"]
                    and a["outcome"] == "success"})
            for gate in gates.get(row["step"], []):
                lane.append({"kind": "gate", "label": GATE_LANE.get(gate["kind"], gate["kind"]),
                             "gate": gate["gate"], "gate_kind": gate["kind"],
                             "response": gate["response"], "by": gate["answered_by"],
                             "open": gate["response"] is None, "at": gate["requested_at"]})
            lane.sort(key=lambda e: e["at"] or "")
            steps.append({
                "ref": row["step"], "task": row["task"], "id": row["step"].rpartition(".")[2],
                "description": row["description"] or "", "critical": bool(row["critical"]),
                "status": row["status"], "mode": row["mode"], "started_at": row["started_at"],
                "ended_at": row["ended_at"], "method_used": row["method_used"],
                "message": row["message"] or "", "skip_reason": row["skip_reason"],
                "tokens": row["tokens"] or 0, "cost_usd": row["cost_usd"], "backups": [],
                "lane": lane, "dependencies": []})
        tasks = [records.task_record(t["task"], t["description"], t["status"],
                                     [s for s in steps if s["task"] == t["task"]])
                 for t in detail.tasks]
        done = sum(1 for s in steps if s["status"] in ("completed", "failed", "skipped"))
        header = records.run_header(
            run_id=run_id, spec=run["descriptor"], status=run["status"], goal=run["goal"],
            mode=run["mode"], started=run["started_at"], last=run["last_event_at"],
            ended=run["ended_at"], steps_done=done, steps_total=run["steps_total"] or 0,
            tokens=run["tokens"] or 0, cost_usd=run["cost_usd"], live=False,
            open_gates=sum(1 for g in detail.gates if g["response"] is None),
            seq=run["last_seq"] or 0)
        return {"run": header, "tasks": tasks, "steps": steps, "lines": [],
                "gates": [], "critical_path": [], "spec_readable": True, "source": "history"}


def _ref_key(ref: str) -> tuple[Any, ...]:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in ref.split("."))


def _evidence_text(evidence: dict[str, Any]) -> str:
    lines = []
    for key, value in evidence.items():
        if isinstance(value, list) and len(value) > 8:
            value = [*value[:8], f"... {len(value) - 8} more"]
        lines.append(f"{key}: {value}")
    return "\n".join(lines)
