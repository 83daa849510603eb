"""The library API: what the CLI, the dashboard and ``specs mcp`` call, and nothing else
(docs/api.md). Everything here is also importable from :mod:`specs` itself.

Specs: :func:`open_spec`, :func:`validate`, :func:`plan_spec`, :func:`dry_run`.
Runs: :func:`start_run`, :func:`resume_run` (a :class:`Run` handle: await it, watch its
events, answer its gates, cancel it), :func:`run_spec` (one blocking call).
The state folder: :func:`state_dir`, :func:`list_runs`, :func:`show_run`, :func:`find_run`,
:func:`answer_gate` (``specs approve``/``reject`` from another process).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from specs.api.logs import AttemptLog
    from specs.api.preview import dry_run, step_prompt
    from specs.api.runs import (
        Answer,
        RunSummary,
        RunView,
        answer_gate,
        find_run,
        list_runs,
        read_run,
        show_run,
        state_dir,
    )
    from specs.api.session import Run, resume_run, run_spec, start_run
    from specs.api.wiring import LlmChoice
    from specs.diagnostics import Diagnostic, Severity
    from specs.engine.runner import RunOptions, RunResult
    from specs.plan.graph import Plan
    from specs.spec.files import LoadedSpec

#: where each name lives: loaded on first use, so importing one part of the API (the CLI's
#: start-up, `specs --version`) does not load the others (the LLM providers, the database)
_WHERE = {
    "dry_run": "specs.api.preview", "step_prompt": "specs.api.preview",
    "Answer": "specs.api.runs", "RunSummary": "specs.api.runs", "RunView": "specs.api.runs",
    "answer_gate": "specs.api.runs", "find_run": "specs.api.runs",
    "list_runs": "specs.api.runs", "read_run": "specs.api.runs", "show_run": "specs.api.runs",
    "state_dir": "specs.api.runs",
    "Run": "specs.api.session", "resume_run": "specs.api.session",
    "run_spec": "specs.api.session", "start_run": "specs.api.session",
    "LlmChoice": "specs.api.wiring", "Diagnostic": "specs.diagnostics",
    "Severity": "specs.diagnostics", "RunOptions": "specs.engine.runner",
    "RunResult": "specs.engine.runner", "Plan": "specs.plan.graph",
    "LoadedSpec": "specs.spec.files", "AttemptLog": "specs.api.logs",
}


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'specs.api' has no attribute {name!r}")
    value = getattr(importlib.import_module(where), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "Answer", "AttemptLog", "Diagnostic", "LlmChoice", "LoadedSpec", "Plan", "Run",
    "RunOptions", "RunResult", "RunSummary", "RunView", "Severity", "answer_gate",
    "dry_run", "find_run", "list_runs", "open_spec", "plan_spec", "read_run", "resume_run",
    "run_spec", "show_run", "start_run", "state_dir", "step_prompt", "validate"
]


def open_spec(path: Path | str) -> LoadedSpec:
    """Load the spec at ``path`` (a spec folder or a parameters file). Never raises for bad
    input (only :class:`~specs.errors.PathNotFound` when nothing is there): the problems are
    ``loaded.diagnostics``, and ``loaded.spec`` is None when it could not load."""
    from specs.spec.load import load_spec

    return load_spec(Path(path))


def validate(loaded: LoadedSpec, *, strict: bool = False) -> list[Diagnostic]:
    """Every problem of a loaded spec, as ``specs validate`` reports them (``strict``: the
    constitution's quality rules are errors)."""
    from specs.spec.validate import validate as check

    return check(loaded, strict=strict)


def plan_spec(loaded: LoadedSpec, *, sequential: bool = False) -> Plan:
    """The dependency graph of a spec that loaded: phases, critical path, conflicts
    (``sequential``: the plan of a strictly sequential run). Raises
    :class:`~specs.errors.SpecLoadError` when it did not load,
    :class:`~specs.plan.graph.PlanError` for a dependency cycle."""
    from specs.plan.graph import build_plan

    return build_plan(loaded.require(), sequential=sequential)
