"""Expected-output checks: turn a step's ``expected_output`` into a verdict (R-VER-1).

A backup uses its own checks when it declares any, else the step's. The verdict is
three-valued (reference A16):

- ``match``: every check passed; the attempt succeeded;
- ``partial``: the output is usable but incomplete (a callable said so); the step completes with
  ``expected_output_match = false``;
- ``mismatch``: a check failed; the attempt failed and the reason feeds the next attempt;
- ``unchecked``: nothing executable to check; success rests on the action's own status.

Checks: ``verify`` (shell commands that must all exit 0, run in the step's working directory),
``expected_files`` (paths or globs that must exist and be non-empty), ``output_schema`` (a JSON
Schema, inline or a file next to the spec, that the structured output must satisfy), and last,
when the others passed, ``verify_with = "llm"`` (an LLM judge's match / partial / mismatch:
:mod:`specs.llm.judge`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from specs.executors.base import Outcome, StepContext
from specs.executors.command import run_process, step_env, working_dir
from specs.spec.model import Action

VERIFY_TIMEOUT_S = 300.0

#: The LLM judge: (the action tried, context, outcome, working directory, the expected files)
#: -> (verdict, reason).
Judge = Callable[[Action, StepContext, Outcome, Path, list[str]],
                 Awaitable[tuple[str, str | None]]]


def checks_of(action: Action, step: Action) -> Action:
    """The action whose checks apply: the backup's own, else the step's."""
    if action is not step and (action.verify or action.expected_files or action.output_schema
                               or action.verify_with):
        return action
    return step


async def verdict(action: Action, step: Action, ctx: StepContext, outcome: Outcome,
                  judge: Judge | None = None) -> tuple[str, str | None]:
    """(verdict, reason) for a successful attempt's outcome; ``judge`` answers for
    ``verify_with = "llm"`` (without one, such a check is a mismatch saying so)."""
    source = checks_of(action, step)
    if not (source.expected_files or source.output_schema is not None or source.verify
            or outcome.verdict or source.verify_with):
        return "unchecked", None
    checked = False
    if source.expected_files:
        checked = True
        missing = missing_files(working_dir(ctx, action), source.expected_files)
        if missing:
            return "mismatch", f"expected file missing or empty: {', '.join(missing[:3])}"
    if source.output_schema is not None:
        checked = True
        problem = schema_problem(source.output_schema, outcome.output, ctx.spec_folder)
        if problem:
            return "mismatch", problem
    for command in source.verify or []:
        checked = True
        result = await run_process(["/bin/sh", "-c", command], cwd=working_dir(ctx, action),
                                   env=step_env(ctx, action),
                                   timeout=ctx.timeout or VERIFY_TIMEOUT_S, cap=65536)
        if result.returncode != 0:
            detail = (result.stderr.strip() or result.stdout.strip()).splitlines()
            why = "timed out" if result.timed_out else f"exit code {result.returncode}"
            return "mismatch", f"verify `{command}` failed ({why})" + (
                f": {detail[-1][:200]}" if detail else "")
    own: tuple[str, str | None] = ("match" if checked else "unchecked"), None
    if outcome.verdict in ("match", "partial", "mismatch"):
        reason = outcome.failure_reason if outcome.verdict != "match" else None
        own = outcome.verdict, reason or (
            "the step judged its output incomplete" if outcome.verdict == "partial" else
            "the step judged its output wrong" if outcome.verdict == "mismatch" else None)
    if source.verify_with != "llm" or own[0] == "mismatch":
        return own
    if judge is None:
        return "mismatch", "verify_with = \"llm\" and no LLM judge is configured"
    judged = await judge(action, ctx, outcome, working_dir(ctx, action),
                         list(source.expected_files or []))
    return own if own[0] == "partial" and judged[0] == "match" else judged


def missing_files(folder: Path, patterns: list[str]) -> list[str]:
    missing = []
    for pattern in patterns:
        if any(ch in pattern for ch in "*?["):
            found = [p for p in folder.glob(pattern) if p.is_file() and p.stat().st_size > 0]
        else:
            path = folder / pattern
            found = [path] if path.is_file() and path.stat().st_size > 0 else []
        if not found:
            missing.append(pattern)
    return missing


def load_schema(schema: dict[str, Any] | str, folder: Path) -> dict[str, Any]:
    if isinstance(schema, dict):
        return schema
    loaded = json.loads((folder / schema).read_text(encoding="utf-8"))
    if not isinstance(loaded, dict):
        raise ValueError("the schema file does not hold a JSON object")
    return loaded


def schema_error(value: Any, schema: dict[str, Any]) -> str | None:
    """``where: message`` for the first way ``value`` breaks ``schema`` (no ``where`` at the
    top level), or None when it fits. The schema itself must be valid."""
    import jsonschema  # here: importing it costs ~0.1 s, and most runs never check a schema

    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        return f"{where + ': ' if where else ''}{exc.message}"
    return None


def schema_problem(schema: dict[str, Any] | str, output: Any, folder: Path) -> str | None:
    """A one-line reason why ``output`` does not satisfy ``schema``, or None."""
    try:
        document = load_schema(schema, folder)
    except (OSError, ValueError) as exc:
        return f"output_schema cannot be read: {exc}"
    if output is None:
        return "no structured output (print a JSON object or write output_file)"
    import jsonschema  # here: importing it costs ~0.1 s, and most runs never check a schema

    try:
        jsonschema.validate(output, document)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "output"
        return f"output does not match output_schema at {where}: {exc.message}"
    except jsonschema.SchemaError as exc:
        return f"output_schema is not a valid JSON Schema: {exc.message}"
    return None
