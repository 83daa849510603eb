"""Insights: the analysis of a spec's history, and applying its suggestions.

:func:`analyse` loads the spec (for its current steps: a suggestion is made against the file as
it is now), the spec's counted runs (:mod:`specs.insights.data`), runs every kind of
:mod:`specs.insights.methods` and :mod:`specs.insights.patterns`, and saves the report beside
the history (``<state dir>/insights/``) with the parameters file's SHA-256. :func:`diff` and
:func:`apply` work from that saved report and refuse when the file changed since (its evidence
was about another file); :func:`apply` writes the file with tomlkit and records the change in
the history's ``changes`` table (and a comment in the file). Nothing is ever applied unless
asked (constitution Art. XIII).

:func:`history_analysis` is the post-execution analysis of reference §3.12 R-POST computed
over the history (failure patterns, backup effectiveness, escalations, compliance,
recommendations), for a run's progress file.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from specs.atomic import write_text_atomic
from specs.errors import UsageError
from specs.events import iso
from specs.history import schema
from specs.history.store import HistoryStore
from specs.insights import methods, patterns
from specs.insights.data import EVENT_SOURCES, History, load
from specs.insights.model import KINDS, InsightOptions, Report, Suggestion
from specs.insights.patch import PatchError, patched_text, sha256, unified_diff
from specs.insights.stats import wilson
from specs.spec.load import LoadedSpec, load_spec
from specs.spec.model import Spec
from specs.spec.model import Step as SpecStep

__all__ = ["analyse", "apply", "diff", "history_analysis", "saved_report"]

Kind = Callable[[History, dict[str, SpecStep], InsightOptions], list[Suggestion]]
STEP_KINDS: tuple[Kind, ...] = (methods.promote_backup, methods.redesign_step, methods.retries,
                                methods.no_retry, methods.timeouts, patterns.critical_flags,
                                patterns.regressions, patterns.dominant_steps)


def _now() -> str:
    return iso(time.time())  # the events' format: compares with the runs' times as text


def _loaded(path: Path) -> tuple[LoadedSpec, Spec]:
    loaded = load_spec(path)
    if loaded.spec is None or loaded.parameters_path is None:
        first = next((d.render() for d in loaded.diagnostics), "it does not load")
        raise UsageError(f"{path}: the spec cannot be analysed: {first}")
    return loaded, loaded.spec


def _spec_steps(spec: Spec) -> dict[str, SpecStep]:
    return {f"{task.ref}.{step.id}": step for task, step in spec.steps()}


def _ordered(found: list[Suggestion]) -> list[Suggestion]:
    return sorted(found, key=lambda s: (KINDS.index(s.kind), [
        int(p) if p.isdigit() else 0 for p in (s.step or "").split(".")], s.id))


def _descriptors(store: HistoryStore) -> list[str]:
    runs = schema.runs
    with store.reading() as conn:
        return sorted({r[0] for r in conn.execute(select(runs.c.descriptor).where(
            runs.c.source.in_(EVENT_SOURCES)))})


def _newest_spec(store: HistoryStore, descriptor: str) -> Spec | None:
    runs = schema.runs
    with store.reading() as conn:
        path = conn.execute(select(runs.c.parameters_path).where(
            runs.c.descriptor == descriptor).order_by(runs.c.started_at.desc()).limit(1)).scalar()
    if not path or not Path(path).is_file():
        return None
    return load_spec(Path(path)).spec


def analyse(store: HistoryStore, path: Path | None,
            options: InsightOptions | None = None) -> Report:
    """The suggestions for the spec at ``path`` (or for every spec in the history)."""
    options = options or InsightOptions()
    found: list[Suggestion] = []
    excluded: dict[str, list[str]] = {}
    considered = 0
    if path is not None:
        loaded, spec = _loaded(path)
        targets = [(loaded.descriptor, _spec_steps(spec))]
        parameters: Path | None = loaded.parameters_path
    else:
        targets = []
        for descriptor in _descriptors(store):
            newest = _newest_spec(store, descriptor)
            targets.append((descriptor, _spec_steps(newest) if newest is not None else {}))
        parameters = None
    for descriptor, steps in targets:
        history = load(store, descriptor, options)
        considered += len(history.runs)
        for reason, ids in history.excluded.items():
            excluded.setdefault(reason, []).extend(ids)
        for kind in STEP_KINDS:
            found += kind(history, steps, options)
    found += patterns.templates(store, targets[0][0] if path is not None else None, options)
    report = Report(targets[0][0] if path is not None else None,
                    str(parameters.resolve()) if parameters else None,
                    sha256(parameters.read_bytes()) if parameters else None, _now(),
                    considered, excluded, _ordered(found), asdict(options))
    return report


# -- saved reports, diff and apply ---------------------------------------------------------------


def _report_path(state_dir: Path, parameters: Path) -> Path:
    key = hashlib.sha256(str(parameters.resolve()).encode()).hexdigest()[:16]
    return state_dir / "insights" / f"{key}.json"


def save_report(state_dir: Path, report: Report) -> Path | None:
    if report.parameters_path is None:
        return None
    target = _report_path(state_dir, Path(report.parameters_path))
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(target, json.dumps(report.to_dict(), indent=1, default=str))
    return target


def saved_report(state_dir: Path, path: Path) -> tuple[Report, Path]:
    """The last analysis saved for the spec at ``path``, and its parameters file; refuses
    when there is none or the file changed since."""
    loaded, _spec = _loaded(path)
    parameters = loaded.parameters_path
    assert parameters is not None
    found = _report_path(state_dir, parameters)
    if not found.is_file():
        raise UsageError(f"no analysis of {parameters} yet: run `specs insights {path}` first")
    data = json.loads(found.read_text())
    data["suggestions"] = [Suggestion(**s) for s in data["suggestions"]]
    report = Report(**data)
    if sha256(parameters.read_bytes()) != report.parameters_sha256:
        raise UsageError(f"{parameters} changed since the analysis of {report.analysed_at}: "
                         f"run `specs insights {path}` again and use the new ids")
    return report, parameters


def _suggestion(report: Report, suggestion: str) -> Suggestion:
    found = report.find(suggestion)
    if found is None:
        known = ", ".join(s.id for s in report.suggestions[:8]) or "none"
        raise UsageError(f"no suggestion {suggestion!r} in the analysis of "
                         f"{report.analysed_at} (ids: {known})")
    if found.patch is None:
        raise PatchError(f"{suggestion} ({found.kind}) is advice, not an edit: it has no patch "
                         "to show or apply")
    return found


def diff(state_dir: Path, path: Path, suggestion: str) -> tuple[str, Suggestion]:
    """The unified diff ``--apply`` would make, and the suggestion (with its impact)."""
    report, parameters = saved_report(state_dir, path)
    found = _suggestion(report, suggestion)
    before = parameters.read_text(encoding="utf-8")
    after, _summary = patched_text(before, found.patch or {}, found.id)
    return unified_diff(parameters, before, after), found


def apply(state_dir: Path, store: HistoryStore, path: Path,
          suggestion: str) -> tuple[str, Suggestion]:
    """Edit the parameters file as the suggestion says and record the change; returns the
    one-line summary. The edited file must still load as a spec, else nothing is written."""
    report, parameters = saved_report(state_dir, path)
    found = _suggestion(report, suggestion)
    raw = parameters.read_bytes()
    after, summary = patched_text(raw.decode("utf-8"), found.patch or {}, found.id)
    scratch = parameters.with_name(f".{parameters.name}.insights")
    scratch.write_text(after, encoding="utf-8")
    try:
        check = load_spec(scratch, markdown=False, includes=False)
    finally:
        scratch.unlink(missing_ok=True)
    if check.spec is None:
        first = next((d.message for d in check.diagnostics), "")
        raise PatchError(f"the edited file would not load ({first}); nothing was changed")
    write_text_atomic(parameters, after)
    with store.writing() as conn:
        conn.execute(insert(schema.changes).values(
            suggestion_id=found.id, kind=found.kind, descriptor=found.descriptor,
            step=found.step, parameters_path=str(parameters.resolve()),
            sha_before=sha256(raw), sha_after=sha256(after.encode("utf-8")), summary=summary,
            evidence=found.evidence, applied_at=_now()))
    return summary, found


# -- R-POST over the history ---------------------------------------------------------------------


def history_analysis(store: HistoryStore, descriptor: str,
                     options: InsightOptions | None = None) -> dict[str, Any]:
    """Reference R-POST's ``post_execution_analysis`` computed over the spec's counted runs
    (a progress file's ``post_execution_analysis.history``)."""
    options = options or InsightOptions()
    history = load(store, descriptor, options)
    ran = [(run, s) for run in history.runs for s in run.ran]
    failing: list[dict[str, Any]] = []
    for ref in history.refs():
        pairs = [s for r, s in history.step_runs(ref) if s.status in ("completed", "failed")]
        failed = sum(s.status == "failed" for s in pairs)
        if failed:
            low, high = wilson(failed, len(pairs))
            failing.append({"step": ref, "runs": len(pairs), "failed_runs": failed,
                            "failure_rate": round(failed / len(pairs), 4),
                            "interval95": [round(low, 4), round(high, 4)]})
    failing.sort(key=lambda item: (-item["failure_rate"], item["step"]))
    backups: dict[str, list[int]] = {}  # "<step> <method>" -> [successes, uses]
    for _run, step in ran:
        for a in step.attempts:
            if a.method != "primary" and a.outcome is not None:
                tally = backups.setdefault(f"{step.ref} {a.method}", [0, 0])
                tally[0] += a.outcome == "success"
                tally[1] += 1
    uses = sum(t[1] for t in backups.values())
    scores = [r.compliance_score for r in history.runs if r.compliance_score is not None]
    suggestions: list[Suggestion] = []
    steps: dict[str, SpecStep] = {}
    newest = _newest_spec(store, descriptor)
    if newest is not None:
        steps = _spec_steps(newest)
    for kind in STEP_KINDS:
        suggestions += kind(history, steps, options)
    return {
        "runs": len(history.runs), "runs_excluded": history.excluded,
        "failure_patterns": {
            "steps_that_frequently_fail": failing[:10],
            "overall_failure_rate": round(sum(s.status == "failed" for _r, s in ran) / len(ran),
                                          4) if ran else 0.0,
            "most_successful_backups": [
                {"backup": key, "successes": t[0], "uses": t[1],
                 "success_rate": round(t[0] / t[1], 4)} for key, t in sorted(
                    backups.items(), key=lambda item: (-item[1][0] / item[1][1], item[0]))][:10],
            "backup_success_rate": round(sum(t[0] for t in backups.values()) / uses, 4)
            if uses else None},
        "mode_escalation_analysis": {
            "total_escalations": sum(r.escalations for r in history.runs),
            "runs_with_escalations": sum(r.escalations > 0 for r in history.runs)},
        "constitutional_compliance": {
            "runs_scored": len(scores),
            "mean_score": round(sum(scores) / len(scores), 2) if scores else None,
            "min_score": min(scores) if scores else None},
        "recommendations": [f"{s.id}: {s.message}" for s in _ordered(suggestions)],
    }
