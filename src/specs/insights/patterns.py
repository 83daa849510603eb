"""Suggestions drawn from whole runs: critical flags, regressions, dominant steps, templates
(docs/insights.md has the rules)."""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import select

from specs.history import schema
from specs.history.store import HistoryStore
from specs.insights.data import History, Run, Step
from specs.insights.methods import rate
from specs.insights.model import InsightOptions, Suggestion, suggestion_id
from specs.insights.stats import median, percentile
from specs.spec.model import Step as SpecStep

__all__ = ["critical_flags", "dominant_steps", "regressions", "templates"]


def critical_flags(history: History, specs: dict[str, SpecStep],
                   options: InsightOptions) -> list[Suggestion]:
    """A non-critical step whose failure was always followed by a critical step's failure in
    the same run (``min_runs`` such runs, and a critical failure after it in under half of the
    runs where it succeeded): flag it critical. A critical step skipped in every run where it
    has a record (``min_runs``): unflag it, or remove what skips it."""
    out = []
    for ref, spec_step in specs.items():
        pairs = history.step_runs(ref)
        if not spec_step.critical_flag:
            failed: list[tuple[Run, list[str]]] = []
            ok: list[tuple[Run, list[str]]] = []
            for run, step in pairs:
                if step.status not in ("failed", "completed") or not step.ended_at:
                    continue
                later = [other for at, other in run.critical_failures()
                         if other != ref and at >= step.ended_at]
                (failed if step.status == "failed" else ok).append((run, later))
            followed = [(r, later) for r, later in failed if later]
            ok_followed = sum(bool(later) for _r, later in ok)
            if len(failed) < options.min_runs or len(followed) < len(failed) or \
                    (ok and ok_followed * 2 >= len(ok)):
                continue
            after: dict[str, int] = {}
            for _r, later in followed:
                for item in later:
                    after[item] = after.get(item, 0) + 1
            out.append(Suggestion(
                suggestion_id("flag-critical", history.descriptor, ref), "flag-critical",
                history.descriptor, ref,
                f"step {ref} is not critical, but each of its {len(failed)} failures was "
                f"followed by a critical failure ({', '.join(sorted(after))}): flag it critical",
                {"runs_failed": len(failed),
                 "followed_by_critical_failure": rate(len(followed), len(failed)),
                 "critical_failure_after_success": rate(ok_followed, len(ok)),
                 "critical_steps_failed_after": dict(sorted(after.items())),
                 "last_seen": max((r.started_at for r, _l in failed), default=None),
                 "run_ids": [r.run_id for r, _l in followed][-10:][::-1]},
                {"op": "set", "step": ref, "method": "primary", "key": "critical_flag",
                 "value": True},
                f"in {len(followed)} runs the failure would have been handled where it "
                f"happened (at {ref}) instead of at the later critical step"))
        else:
            skipped = [(r, s) for r, s in pairs if s.status == "skipped"]
            if len(pairs) < options.min_runs or len(skipped) < len(pairs):
                continue
            reasons = sorted({s.method_used or "" for _r, s in skipped} - {""})
            out.append(Suggestion(
                suggestion_id("unflag-critical", history.descriptor, ref), "unflag-critical",
                history.descriptor, ref,
                f"critical step {ref} was skipped in all {len(skipped)} runs: unflag it, or "
                "change what skips it",
                {"runs": len(pairs), "skipped": rate(len(skipped), len(pairs)),
                 "methods": reasons, "last_seen": max((r.started_at for r, _s in skipped),
                                                      default=None),
                 "run_ids": [r.run_id for r, _s in skipped][-10:][::-1]},
                {"op": "set", "step": ref, "method": "primary", "key": "critical_flag",
                 "value": False},
                f"the critical ratio counted a step that never ran in {len(skipped)} runs"))
    return out


def _duration(step: Step) -> float | None:
    return step.duration_ms


def _cost(step: Step) -> float | None:
    return step.cost_usd


def _values(get: Any, steps: list[Step]) -> list[float]:
    return [v for s in steps if (v := get(s)) is not None]


def regressions(history: History, specs: dict[str, SpecStep],
                options: InsightOptions) -> list[Suggestion]:
    """A step whose median duration (or cost) over its ``recent_runs`` newest completed runs
    exceeds the 90th percentile of the ``baseline_runs`` before them (5 runs at least in
    each); a duration must also be 10 ms and a quarter above the baseline's median (timer
    jitter on fast steps is not a regression)."""
    out = []
    for ref in history.refs():
        done = [(r, s) for r, s in history.step_runs(ref) if s.status == "completed"]
        recent = done[-options.recent_runs:]
        baseline = done[-options.recent_runs - options.baseline_runs:-options.recent_runs]
        if len(recent) < 5 or len(baseline) < 5:
            continue
        for measure, unit, get in (("duration", "ms", _duration), ("cost", "USD", _cost)):
            now = _values(get, [s for _r, s in recent])
            before = _values(get, [s for _r, s in baseline])
            if len(now) < 5 or len(before) < 5:
                continue
            now_median, before_p90 = median(now), percentile(before, 90)
            floor = max(10.0, 0.25 * median(before)) if measure == "duration" else 0.0
            if now_median <= before_p90 or now_median - median(before) < floor:
                continue  # a few ms of jitter on a fast step is noise, not a regression
            out.append(Suggestion(
                suggestion_id("regression", history.descriptor, ref, measure), "regression",
                history.descriptor, ref,
                f"step {ref}'s {measure} regressed: median {now_median:.4g} {unit} over the "
                f"last {len(now)} runs, above the baseline's p90 ({before_p90:.4g} {unit})",
                {"measure": measure, "unit": unit, "recent_median": round(now_median, 6),
                 "recent_runs": len(now), "baseline_p90": round(before_p90, 6),
                 "baseline_median": round(median(before), 6), "baseline_runs": len(before),
                 "since": recent[0][0].started_at, "last_seen": recent[-1][0].started_at,
                 "run_ids": [r.run_id for r, _s in recent][::-1]},
                None, f"{now_median / before_p90:.2f}x the baseline's p90"))
    return out


def dominant_steps(history: History, specs: dict[str, SpecStep],
                   options: InsightOptions) -> list[Suggestion]:
    """A step whose median share of its run's step time (or cost) is at least
    ``dominant_share`` over ``min_runs`` runs, in runs of 3 steps or more."""
    out = []
    for measure, get in (("duration", _duration), ("cost", _cost)):
        shares: dict[str, list[float]] = {}
        for run in history.runs:
            values = {s.ref: v for s in run.ran if (v := get(s)) is not None}
            total = sum(values.values())
            if len(values) < 3 or total <= 0:
                continue
            for ref, value in values.items():
                shares.setdefault(ref, []).append(value / total)
        for ref, found in sorted(shares.items()):
            share = median(found)
            if len(found) < options.min_runs or share < options.dominant_share:
                continue
            out.append(Suggestion(
                suggestion_id("dominant-step", history.descriptor, ref, measure),
                "dominant-step", history.descriptor, ref,
                f"step {ref} takes {share:.0%} of its runs' {measure} (median over "
                f"{len(found)} runs): make it cheaper, split it, or run it in parallel",
                {"measure": measure, "median_share": round(share, 4), "runs": len(found),
                 "min_share": round(min(found), 4), "max_share": round(max(found), 4)},
                None, ""))
    return out


_STOP = frozenset(["the", "and", "for", "with", "from", "into", "are", "this", "that", "its"])


def _words(text: str) -> frozenset[str]:
    return frozenset(w for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 2 and
                     w not in _STOP)


def templates(store: HistoryStore, descriptor: str | None,
              options: InsightOptions) -> list[Suggestion]:
    """Tasks that recur across specs: the same step shape (number of steps, their execution
    methods and critical flags in order) and similar descriptions (the words they share are at
    least half of their words: Jaccard >= 0.5), in ``min_specs`` specs or more. With a spec,
    only the groups it is in."""
    runs_t, tasks_t, steps_t = schema.runs, schema.tasks, schema.steps
    with store.reading() as conn:
        newest: dict[str, str] = {}
        for r in conn.execute(select(runs_t.c.descriptor, runs_t.c.run_id, runs_t.c.started_at)
                              .order_by(runs_t.c.started_at)):
            newest[r.descriptor] = r.run_id  # each spec's newest run stands for its shape
        if len(newest) < options.min_specs:
            return []
        ids = list(newest.values())
        tasks: dict[tuple[str, str], dict[str, Any]] = {}
        sources: dict[str, str] = {}
        for chunk in range(0, len(ids), 500):
            part = ids[chunk:chunk + 500]
            sources.update({r.run_id: r.source for r in conn.execute(
                select(runs_t.c.run_id, runs_t.c.source).where(runs_t.c.run_id.in_(part)))})
            for r in conn.execute(select(tasks_t).where(tasks_t.c.run_id.in_(part))):
                tasks[(r.run_id, r.task)] = {"description": r.description, "steps": []}
            rows: Any = conn.execute(select(steps_t.c.run_id, steps_t.c.task, steps_t.c.step,
                                         steps_t.c.description, steps_t.c.critical,
                                         steps_t.c.execution_method)
                                  .where(steps_t.c.run_id.in_(part)))
            for r in rows:
                if (r.run_id, r.task) in tasks:
                    tasks[(r.run_id, r.task)]["steps"].append(r)
    by_run = {run_id: d for d, run_id in newest.items()}
    items = []
    for (run_id, task), found in tasks.items():
        steps = sorted(found["steps"], key=lambda s: [int(p) if p.isdigit() else p
                                                       for p in s.step.split(".")])
        if not steps or not found["description"]:
            continue
        shape = tuple((s.execution_method or "?", bool(s.critical)) for s in steps)
        items.append((by_run[run_id], task, _words(found["description"]), shape,
                      found["description"], steps, run_id))
    groups: list[list[Any]] = []
    for item in items:
        for group in groups:
            head = group[0]
            union = head[2] | item[2]
            if head[3] == item[3] and union and len(head[2] & item[2]) / len(union) >= 0.5:
                group.append(item)
                break
        else:
            groups.append([item])
    out = []
    for group in groups:
        specs_in = sorted({g[0] for g in group})
        if len(specs_in) < options.min_specs or (descriptor and descriptor not in specs_in):
            continue
        head = group[0]
        candidate = _candidate(head[4], head[5])
        out.append(Suggestion(
            suggestion_id("template", *specs_in, head[4]), "template", descriptor or head[0],
            None,
            f"the task \"{head[4]}\" ({len(head[5])} steps) recurs in {len(specs_in)} specs: "
            "make it a template",
            {"support": len(specs_in), "specs": specs_in,
             "tasks": [{"spec": g[0], "task": g[1], "description": g[4], "run_id": g[6]}
                       for g in group],
             "shape": [list(s) for s in head[3]], "candidate": candidate,
             "sources": sorted({sources.get(g[6], "events") for g in group})},
            None, "`specs templates extract` can take the candidate when templates exist"))
    return out


def _quote(text: str | None) -> str:
    return json.dumps(text or "", ensure_ascii=False)  # a JSON string is a TOML basic string


def _candidate(description: str, steps: list[Any]) -> str:
    """The task as a parameters-file fragment (what a template of it would hold)."""
    lines = ["[[tasks]]", "id = 1", f"description = {_quote(description)}"]
    for i, step in enumerate(steps, start=1):
        lines += ["", "  [[tasks.steps]]", f"  id = {i}",
                  f"  description = {_quote(step.description or '')}",
                  f"  critical_flag = {'true' if step.critical else 'false'}"]
        if step.execution_method:
            lines.append(f"  execution_method = {_quote(step.execution_method)}")
    return "\n".join(lines) + "\n"
