"""Executors: how one attempt of one method runs.

Every executor has the same shape: ``async (action, context) -> Outcome``. It never raises for
a failed step: a command that exits non-zero, a callable that raises, a timeout, all come back
as an :class:`Outcome` with ``status`` ``failed`` (ran and did not succeed) or ``error`` (could
not run). Retries, backups, timeouts across attempts and mode decisions live in the engine.

======================  ======================================================
``command``             ``/bin/sh -c COMMAND`` (:mod:`specs.executors.command`)
``tool`` / ``script``   ``tool_path`` with ``tool_args`` split as a shell would
``python``              ``callable = "module:function"`` (:mod:`specs.executors.python`)
``human``               a person does the step and confirms (handled by the engine's gates)
``cognitive``           an LLM agent (needs a provider; not available yet)
======================  ======================================================
"""

from specs.executors.base import Executor, Outcome, StepContext

__all__ = ["Executor", "Outcome", "StepContext"]
