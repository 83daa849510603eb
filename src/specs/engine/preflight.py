"""Pre-flight: what must hold before a run starts (reference §3.2), beyond the validator.

:func:`diagnostics` is the validator's findings plus the run's own requirements: a cognitive
step, or an output judged by an LLM (``verify_with = "llm"``), needs an LLM provider
(``E-NO-PROVIDER``, said once, naming the steps). :func:`violation` is how a quality-rule warning is
recorded in the run's validation summary (the constitution article it comes from).
"""

from __future__ import annotations

from typing import Any

from specs.diagnostics import Diagnostic, Severity
from specs.spec.files import LoadedSpec
from specs.spec.model import Spec, Step, Task
from specs.spec.validate import validate

__all__ = ["diagnostics", "violation"]

_CHOOSE = ("choose one with `--provider openai|anthropic` (and `--model`), `[llm]` in the spec, "
           "or OPENAI_BASE_URL / OPENAI_API_KEY / ANTHROPIC_API_KEY in the environment")


def diagnostics(loaded: LoadedSpec, *, strict: bool, cognitive: bool,
                judge: bool) -> list[Diagnostic]:
    """Validation for running. ``cognitive``: the run has an executor for cognitive steps;
    ``judge``: it has an LLM judge."""
    spec = loaded.require()
    found = validate(loaded, strict=strict)
    if not cognitive:
        found += _no_agent(loaded, spec)
    if not judge:
        found += _no_judge(loaded, spec, skip_cognitive=not cognitive)
    return found


def _no_agent(loaded: LoadedSpec, spec: Spec) -> list[Diagnostic]:
    """One ``E-NO-PROVIDER`` for every cognitive step (or backup) of a run with no LLM
    provider, located at the first."""
    labels, first = [], None
    for task, step in spec.steps():
        for i, action in enumerate((step, *step.backups)):
            if action.is_cognitive:
                labels.append(f"{task.ref}.{step.id}" + (
                    f" (backup {step.backups[i - 1].id})" if i else ""))
                first = first or (task, step)
                break
    if first is None:
        return []
    what = f"step {labels[0]} is a cognitive (LLM) step" if len(labels) == 1 else \
        f"{len(labels)} steps are cognitive (LLM) steps ({_listed(labels)})"
    return [Diagnostic(
        Severity.ERROR, "E-NO-PROVIDER", f"{what} and no LLM provider is configured",
        loaded.sources.at(_path_of(spec, *first)),
        f"{_CHOOSE}; or give such a step `command = \"...\"`, `callable = "
        "\"module:function\"` or `execution_method = \"human\"`")]


def _no_judge(loaded: LoadedSpec, spec: Spec, *, skip_cognitive: bool) -> list[Diagnostic]:
    """One ``E-NO-PROVIDER`` for the steps whose checks ask for the LLM judge (on the step or
    a backup); ``skip_cognitive`` leaves out steps reported as cognitive already."""
    labels, first = [], None
    for task, step in spec.steps():
        actions = (step, *step.backups)
        if skip_cognitive and any(a.is_cognitive for a in actions):
            continue
        if any(a.verify_with == "llm" for a in actions):
            labels.append(f"{task.ref}.{step.id}")
            first = first or (task, step)
    if first is None:
        return []
    what = f"step {labels[0]} has" if len(labels) == 1 else \
        f"{len(labels)} steps ({_listed(labels)}) have"
    return [Diagnostic(
        Severity.ERROR, "E-NO-PROVIDER", f"{what} verify_with = \"llm\" and no LLM provider "
        "is configured to judge the output", loaded.sources.at(_path_of(spec, *first)),
        f"{_CHOOSE}; or remove verify_with")]


def _listed(labels: list[str], shown: int = 8) -> str:
    more = f" and {len(labels) - shown} more" if len(labels) > shown else ""
    return ", ".join(labels[:shown]) + more


def _path_of(spec: Spec, task: Task, step: Step) -> tuple[str | int, ...]:
    return ("tasks", spec.tasks.index(task), "steps", task.steps.index(step))


#: the constitution article behind each quality rule, for the validation summary's violations
_ARTICLES = {"W-CRIT-BALANCE": "VI", "W-CRIT-TASK": "VI", "W-COUNT-TASKS": "II",
             "W-COUNT-STEPS": "II", "W-BACKUPS-MANY": "II", "W-STACK": "XIV",
             "W-UI-USERS": "XIV", "W-UI-FIELDS": "XIV", "W-DEPLOYMENT": "XIV",
             "W-COMPLETION": "XIV", "W-CRIT-NO-BACKUP": "VII", "W-EXPECTED-MISSING": "IV",
             "W-BRIDGE": "III", "W-CRIT-MISSING": "VI"}


def violation(d: Diagnostic) -> dict[str, Any]:
    """A quality-rule warning as the validation summary's ``violations`` record it."""
    return {"article": _ARTICLES.get(d.code, ""), "code": d.code, "description": d.message,
            "severity": "warning", "corrective_action": "continue; flagged for review"}
