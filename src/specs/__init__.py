"""specs: run SPEC Engine specifications for real.

The public API is :mod:`specs.api`, re-exported here (docs/api.md)::

    import specs

    loaded = specs.open_spec("examples/hello")
    result = specs.run_spec(loaded, specs.RunOptions(no_input=True))
    print(result.status, result.goal)

The names load on first use, so ``import specs`` (and every ``specs`` command's start-up)
stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from specs.version import __version__

if TYPE_CHECKING:
    from specs.api import (
        Answer,
        AttemptLog,
        Diagnostic,
        LlmChoice,
        LoadedSpec,
        Plan,
        Run,
        RunOptions,
        RunResult,
        RunSummary,
        RunView,
        Severity,
        answer_gate,
        dry_run,
        find_run,
        list_runs,
        open_spec,
        plan_spec,
        read_run,
        resume_run,
        run_spec,
        show_run,
        start_run,
        state_dir,
        step_prompt,
        validate,
    )

__all__ = [
    "Answer", "AttemptLog", "Diagnostic", "LlmChoice", "LoadedSpec", "Plan", "Run",
    "RunOptions", "RunResult", "RunSummary", "RunView", "Severity", "__version__",
    "answer_gate", "dry_run", "find_run", "list_runs", "open_spec", "plan_spec", "read_run",
    "resume_run", "run_spec", "show_run", "start_run", "state_dir", "step_prompt",
    "validate"
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        value = getattr(importlib.import_module("specs.api"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'specs' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
