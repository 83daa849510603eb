"""Suggestions about a step's methods: promote a backup, redesign a failing step, retries,
failure classes that never recover on a retry, and timeouts (docs/insights.md has the rules).

Each function takes the spec's :class:`~specs.insights.data.History`, the current spec's steps
(by ref; a step the spec no longer has gets no patch) and the options, and returns suggestions
with their evidence. Nothing is suggested below the evidence thresholds.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from specs.insights.data import Attempt, History, Run, Step
from specs.insights.model import InsightOptions, Suggestion, suggestion_id
from specs.insights.stats import cluster_reasons, median, percentile, wilson
from specs.spec.model import Step as SpecStep

__all__ = ["no_retry", "promote_backup", "rate", "redesign_step", "retries", "timeouts"]

#: failure classes a retry of the same method cannot fix, said so in the docs and messages
NEVER_RECOVER_HINT = {"command_not_found": "the command does not exist",
                      "not_executable": "the file is not executable",
                      "missing_file": "a file the method needs is missing",
                      "schema": "the output has the wrong shape"}


def rate(k: int, n: int) -> dict[str, Any]:
    """``k`` of ``n`` with the rate and its 95 % Wilson interval."""
    low, high = wilson(k, n)
    return {"count": k, "of": n, "rate": round(k / n, 4) if n else None,
            "interval95": [round(low, 4), round(high, 4)]}


def _ended(step: Step, method: str | None = None) -> list[Attempt]:
    """The step's attempts that ended (the history loads no other), of one method or all."""
    return step.attempts if method is None else step.tries(method)


def _last_seen(items: list[Attempt]) -> str | None:
    return max((a.ended_at for a in items if a.ended_at), default=None)


def _recent_ids(runs: list[Run], limit: int = 10) -> list[str]:
    return [r.run_id for r in runs[-limit:]][::-1]


def promote_backup(history: History, specs: dict[str, SpecStep],
                   options: InsightOptions) -> list[Suggestion]:
    """A backup whose success rate's lower bound beats the primary's upper bound, with at least
    ``min_tries`` attempts of each."""
    out = []
    for ref in history.refs():
        pairs = history.step_runs(ref)
        primary = [a for _r, s in pairs for a in _ended(s, "primary")]
        methods = sorted({a.method for _r, s in pairs for a in _ended(s)} - {"primary"})
        p_ok = sum(a.outcome == "success" for a in primary)
        _p_low, p_high = wilson(p_ok, len(primary))
        for method in methods:
            tries = [a for _r, s in pairs for a in _ended(s, method)]
            b_ok = sum(a.outcome == "success" for a in tries)
            b_low, _b_high = wilson(b_ok, len(tries))
            if len(primary) < options.min_tries or len(tries) < options.min_tries or \
                    b_low <= p_high:
                continue
            saved_runs, saved = [], 0
            for run, step in pairs:
                ended = _ended(step)
                win = next((i for i, a in enumerate(ended)
                            if a.method == method and a.outcome == "success"), None)
                if win is not None and win > 0:
                    saved_runs.append(run)
                    saved += sum(a.outcome != "success" for a in ended[:win])
            backup_id = int(method.split("_")[1]) if method.startswith("backup_") else None
            spec_step = specs.get(ref)
            patch = {"op": "promote_backup", "step": ref, "backup": backup_id} \
                if spec_step is not None and backup_id is not None and \
                any(b.id == backup_id for b in spec_step.backups) else None
            out.append(Suggestion(
                suggestion_id("promote-backup", history.descriptor, ref, method),
                "promote-backup", history.descriptor, ref,
                f"promote {method} of step {ref} to primary: it succeeded in "
                f"{b_ok}/{len(tries)} tries ({b_ok / len(tries):.0%}), the primary in "
                f"{p_ok}/{len(primary)} ({p_ok / len(primary):.0%})",
                {"runs": len(pairs), "primary": rate(p_ok, len(primary)),
                 "backup": {"method": method, **rate(b_ok, len(tries))},
                 "primary_interval_high": round(p_high, 4), "backup_interval_low": round(b_low, 4),
                 "last_seen": _last_seen(tries),
                 "examples": cluster_reasons([a.failure_reason or a.failure_class or ""
                                              for a in primary if a.outcome != "success"]),
                 "run_ids": _recent_ids(saved_runs)},
                patch,
                f"in {len(saved_runs)} of {len(pairs)} runs the promoted method would have "
                f"run first and saved {saved} failed attempts"))
    return out


def redesign_step(history: History, specs: dict[str, SpecStep],
                  options: InsightOptions) -> list[Suggestion]:
    """A step that failed in most of the runs where it ran: the lower bound of its failure
    rate is above one half, over at least ``min_runs`` runs; its failure reasons clustered."""
    out = []
    for ref in history.refs():
        pairs = [(r, s) for r, s in history.step_runs(ref) if s.status in ("completed", "failed")]
        failed = [(r, s) for r, s in pairs if s.status == "failed"]
        low, _high = wilson(len(failed), len(pairs))
        if len(pairs) < options.min_runs or low <= 0.5:
            continue
        attempts = [a for _r, s in failed for a in _ended(s) if a.outcome != "success"]
        classes: dict[str, int] = {}
        for a in attempts:
            classes[a.failure_class or "failure"] = classes.get(a.failure_class or "failure",
                                                                0) + 1
        critical = specs[ref].critical_flag if ref in specs else pairs[-1][1].critical
        advice = "redesign it, or split it" if critical else \
            "redesign it, or drop it if the goal does not need it"
        out.append(Suggestion(
            suggestion_id("redesign-step", history.descriptor, ref), "redesign-step",
            history.descriptor, ref,
            f"step {ref} failed in {len(failed)} of {len(pairs)} runs: {advice}",
            {"runs": len(pairs), "failed": rate(len(failed), len(pairs)),
             "critical": critical, "failure_classes": dict(sorted(classes.items())),
             "reason_clusters": cluster_reasons([a.failure_reason or "" for a in attempts], 5),
             "last_seen": max((s.ended_at or "" for _r, s in failed), default=None),
             "run_ids": _recent_ids([r for r, _s in failed])},
            None, f"{len(failed)} of {len(pairs)} runs lost this step"))
    return out


def _method_action(spec_step: SpecStep, method: str) -> tuple[Any, int] | None:
    """(the step or backup, its max_retries) of a method label."""
    if method == "primary":
        return spec_step, spec_step.max_retries
    backup = next((b for b in spec_step.backups if f"backup_{b.id}" == method), None)
    return (backup, backup.max_retries or 0) if backup is not None else None


def retries(history: History, specs: dict[str, SpecStep],
            options: InsightOptions) -> list[Suggestion]:
    """The smallest ``max_retries`` that keeps ``keep_successes`` of a method's eventual
    successes (at least ``min_tries`` of them), when it is below the one the spec sets and
    some runs spent every retry and still failed (a retry that never runs costs nothing)."""
    out = []
    for ref, spec_step in specs.items():
        for method in ["primary"] + [f"backup_{b.id}" for b in spec_step.backups]:
            found = _method_action(spec_step, method)
            if found is None or found[1] == 0:
                continue
            current = found[1]
            wins: list[int] = []  # the attempt number each eventual success came at
            exhausted = 0
            for _run, step in history.step_runs(ref):
                tries = _ended(step, method)
                win = next((a.attempt for a in tries if a.outcome == "success"), None)
                if win is not None:
                    wins.append(win)
                elif len(tries) >= current + 1:
                    exhausted += 1
            if len(wins) < options.min_tries:
                continue
            best = next(r for r in range(current + 1)
                        if sum(w <= r + 1 for w in wins) >= options.keep_successes * len(wins))
            if best >= current or exhausted == 0:
                continue  # lowering saves nothing unless some runs spent every retry
            kept = sum(w <= best + 1 for w in wins)
            spent = exhausted * (current - best)
            out.append(Suggestion(
                suggestion_id("retries", history.descriptor, ref, method), "retries",
                history.descriptor, ref,
                f"{method} of step {ref}: max_retries = {best} keeps {kept} of {len(wins)} "
                f"eventual successes (now {current})",
                {"method": method, "max_retries": current, "suggested": best,
                 "eventual_successes": len(wins),
                 "success_at_attempt": {str(k): wins.count(k) for k in sorted(set(wins))},
                 "kept": rate(kept, len(wins)), "exhausted_runs": exhausted,
                 "run_ids": _recent_ids([r for r, _s in history.step_runs(ref)])},
                {"op": "set", "step": ref, "method": method, "key": "max_retries",
                 "value": best},
                f"{spent} attempts would not have run in the {exhausted} runs where every "
                f"retry failed; {len(wins) - kept} of {len(wins)} successes came later"))
    return out


def no_retry(history: History, specs: dict[str, SpecStep],
             options: InsightOptions) -> list[Suggestion]:
    """Failure classes after which a retry of the same method never succeeded (at least
    ``min_runs`` such retries): say so, and set ``max_retries = 0`` when they are all the
    failures the method's retries followed."""
    out = []
    for ref in history.refs():
        follow: dict[tuple[str, str], list[tuple[Run, bool]]] = {}
        for run, step in history.step_runs(ref):
            ended = _ended(step)
            for before, after in itertools.pairwise(ended):
                if before.outcome != "success" and after.method == before.method:
                    follow.setdefault((before.method, before.failure_class or "failure"),
                                      []).append((run, after.outcome == "success"))
        for (method, klass), items in sorted(follow.items()):
            recovered = sum(ok for _r, ok in items)
            if len(items) < options.min_runs or recovered:
                continue
            others = [k for (m, k), v in follow.items() if m == method and k != klass and
                      any(ok for _r, ok in v)]
            spec_step = specs.get(ref)
            found = _method_action(spec_step, method) if spec_step is not None else None
            patch = {"op": "set", "step": ref, "method": method, "key": "max_retries",
                     "value": 0} if found is not None and found[1] > 0 and not others else None
            hint = NEVER_RECOVER_HINT.get(klass, "the same failure came back every time")
            out.append(Suggestion(
                suggestion_id("no-retry", history.descriptor, ref, method, klass), "no-retry",
                history.descriptor, ref,
                f"{method} of step {ref}: {klass} never recovered on a retry ({len(items)} "
                f"retries): {hint}; stop retrying it",
                {"method": method, "failure_class": klass, "retries": len(items),
                 "recovered": rate(0, len(items)),
                 "runs": len({r.run_id for r, _ok in items}),
                 "run_ids": _recent_ids(list({r.run_id: r for r, _ok in items}.values()))},
                patch, f"{len(items)} retries would not have run"))
    return out


def timeouts(history: History, specs: dict[str, SpecStep],
             options: InsightOptions) -> list[Suggestion]:
    """A timeout from the observed durations of successful attempts (p95, p99): suggested as
    ``ceil(1.5 x p99)`` seconds (at least 1) when the spec's is more than 4 times that (and
    5 s longer), when more than 20 % of the method's attempts timed out, or when there is none
    and the slowest successes ran more than 10 times the median (a long tail of hangs)."""
    out = []
    for ref, spec_step in specs.items():
        pairs = history.step_runs(ref)
        tries = [a for _r, s in pairs for a in _ended(s, "primary")]
        durations = [a.duration_ms for a in tries if a.outcome == "success" and
                     a.duration_ms is not None]
        if len(durations) < options.min_tries:
            continue
        p95, p99, mid = percentile(durations, 95), percentile(durations, 99), median(durations)
        suggested = max(1, math.ceil(1.5 * p99 / 1000))
        current = spec_step.timeout_seconds
        timed_out = sum(a.failure_class == "timeout" for a in tries)
        why = None
        if current is not None and current > 4 * suggested and current - suggested >= 5:
            why = f"the timeout ({current:g} s) is far above what successes need"
        elif current is not None and timed_out > 0.2 * len(tries):
            suggested = max(suggested, math.ceil(2 * current))
            why = f"{timed_out} of {len(tries)} attempts timed out at {current:g} s"
        elif current is None and max(durations) > 10 * mid and max(durations) >= 1000:
            why = "there is no timeout and the slowest successes took over 10x the median"
        if why is None or suggested == current:
            continue
        longer = sum(d > suggested * 1000 for d in durations)
        out.append(Suggestion(
            suggestion_id("timeout", history.descriptor, ref), "timeout", history.descriptor,
            ref, f"step {ref}: timeout_seconds = {suggested} ({why})",
            {"successful_attempts": len(durations), "p50_ms": round(mid, 1),
             "p95_ms": round(p95, 1), "p99_ms": round(p99, 1), "max_ms": round(max(durations), 1),
             "timeout_seconds": current, "suggested": suggested, "timed_out": timed_out,
             "last_seen": _last_seen(tries), "run_ids": _recent_ids([r for r, _s in pairs])},
            {"op": "set", "step": ref, "method": "primary", "key": "timeout_seconds",
             "value": suggested},
            f"{longer} of {len(durations)} past successes took longer than {suggested} s"))
    return out
