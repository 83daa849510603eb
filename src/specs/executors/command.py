"""Command, tool and script executors: real subprocesses, bounded in time and output.

Each attempt is one process group (:func:`specs.executors.process.run_process`): killed whole
at the timeout or on cancellation, its standard output and error kept up to
``max_output_bytes`` each and saved in the run's output folder when there is one.

Structured output: the JSON object in the file named by ``output_file``, else standard output
when it is a JSON object. Exit code 0 is success; a code listed in ``retry_on_exit_codes`` is a
transient failure; 126/127 (not executable / not found) are errors that no retry mends
(``permanent``: the ladder goes on at the next method at once), as is a program that cannot be
started at all.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import sys
from pathlib import Path
from typing import Any

from specs.executors.base import Outcome, StepContext
from specs.executors.process import ProcessResult, kill_group, run_process
from specs.spec.model import Action

__all__ = ["ProcessResult", "run_command", "run_process", "run_tool",
           "step_env", "stop_leftovers", "structured_output", "working_dir"]


def step_env(ctx: StepContext, action: Action) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"SPECS_RUN_ID": ctx.run_id, "SPECS_STEP": ctx.ref, "SPECS_METHOD": ctx.method,
                "SPECS_ATTEMPT": str(ctx.attempt), "SPECS_SPEC_DIR": str(ctx.spec_folder)})
    if ctx.output_dir is not None:
        env["SPECS_OUTPUT_DIR"] = str(ctx.output_dir)
    if ctx.guidance:
        env["SPECS_GUIDANCE"] = ctx.guidance
    for key, value in (ctx.vars or {}).items():
        env[f"SPECS_VAR_{key}".upper()] = str(value)
    env.update(action.env or {})
    return env


def working_dir(ctx: StepContext, action: Action) -> Path:
    return (ctx.spec_folder / action.cwd) if action.cwd else ctx.workspace


async def run_command(action: Action, ctx: StepContext) -> Outcome:
    """``execution_method = "command"``: ``/bin/sh -c COMMAND``."""
    if not action.command:
        return Outcome("error", permanent=True, failure_reason="no command to run")
    return await _execute(["/bin/sh", "-c", action.command], action, ctx)


async def run_tool(action: Action, ctx: StepContext) -> Outcome:
    """``tool`` / ``script``: ``tool_path`` with ``tool_args`` split as a shell would."""
    if not action.tool_path:
        return Outcome("error", permanent=True, failure_reason="no tool_path to run")
    path = Path(action.tool_path)
    if not path.is_absolute() and (ctx.spec_folder / path).exists():
        path = ctx.spec_folder / path
    try:
        args = shlex.split(action.tool_args or "")
    except ValueError as exc:
        return Outcome("error", permanent=True, failure_reason=f"tool_args cannot be split: {exc}")
    argv = [str(path), *args]
    if path.suffix == ".py" and not os.access(path, os.X_OK):
        argv = [sys.executable, *argv]
    elif path.suffix == ".sh" and not os.access(path, os.X_OK):
        argv = ["/bin/sh", *argv]
    return await _execute(argv, action, ctx)


async def _execute(argv: list[str], action: Action, ctx: StepContext) -> Outcome:
    cwd = working_dir(ctx, action)
    try:
        result = await run_process(argv, cwd=cwd, env=step_env(ctx, action),
                                   timeout=ctx.timeout, cap=ctx.max_output_bytes,
                                   on_spawn=ctx.on_spawn, live=(
                                       (ctx.output_dir, f"{ctx.method}-{ctx.attempt}")
                                       if ctx.output_dir is not None else None))
    except OSError as exc:  # the working directory is checked only then (a stat per step)
        why = f"working directory {cwd} does not exist" if not cwd.is_dir() else \
            f"cannot start {argv[0]}: {exc.strerror or exc}"
        return Outcome("error", permanent=True, failure_reason=why)
    # the kept output is in the run's output folder already (``<method>-<n>.stdout``, written
    # as it came)
    return _outcome(result, action, ctx, cwd)


def _outcome(result: ProcessResult, action: Action, ctx: StepContext, cwd: Path) -> Outcome:
    code = result.returncode
    note = f" ({result.dropped:,} bytes of output dropped)" if result.dropped else ""
    base: dict[str, Any] = {"text": result.stdout, "stderr": result.stderr, "exit_code": code,
                            "truncated": _truncated(result, action, ctx)}
    if result.timed_out:
        return Outcome("failed", failure_reason=f"timed out after {ctx.timeout:g} s; the "
                       f"process group was killed{note}", transient=True, **base)
    if code is not None and code < 0:
        name = _signal_name(-code)
        return Outcome("failed", failure_reason=f"killed by signal {name}{note}", **base)
    retry_codes = action.retry_on_exit_codes or []
    if code in (126, 127) and code not in retry_codes:  # the shell's "not executable/found"
        what = "command not found" if code == 127 else "not executable"
        return Outcome("error", permanent=True,
                       failure_reason=f"{what}: {_last_line(result.stderr)}", **base)
    if code != 0:
        detail = _last_line(result.stderr) or _last_line(result.stdout)
        return Outcome("failed", failure_reason=f"exit code {code}"
                       + (f": {detail}" if detail else "") + note,
                       transient=code in retry_codes, **base)
    output, problem = structured_output(result.stdout, action, cwd)
    if problem:
        return Outcome("failed", failure_reason=problem, **base)
    return Outcome("ok", output=output, **base)


def _truncated(result: ProcessResult, action: Action, ctx: StepContext) -> str | None:
    """What was cut of the standard output, and what that cost (None: nothing was cut)."""
    if not result.stdout_dropped:
        return None
    said = (f"standard output cut at {ctx.max_output_bytes:,} bytes "
            f"({result.stdout_dropped:,} more dropped)")
    if not action.output_file and result.stdout.lstrip().startswith(("{", "[")):
        said += ": its JSON could not be read, so the step has no structured output"
    return said


def structured_output(stdout: str, action: Action, cwd: Path) -> tuple[Any, str | None]:
    """The step's structured output: ``output_file`` JSON, else a JSON object on stdout."""
    if action.output_file:
        path = cwd / action.output_file
        try:
            return json.loads(path.read_text(encoding="utf-8")), None
        except FileNotFoundError:
            return None, f"output_file {action.output_file} was not written"
        except (OSError, ValueError) as exc:
            return None, f"output_file {action.output_file} is not valid JSON: {exc}"
    text = stdout.strip()
    if text.startswith("{") and text.endswith("}"):
        with contextlib.suppress(ValueError):
            return json.loads(text), None
    return None, None


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    line = lines[-1].strip() if lines else ""
    return line if len(line) <= 300 else line[:299] + "…"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def stop_leftovers(pgids: list[int], run_id: str) -> list[int]:
    """Kill the process groups a killed engine left running (their processes carry
    ``SPECS_RUN_ID=<run_id>`` in their environment, so a reused id is never hit).

    Linux only (reads /proc); elsewhere nothing is done. Returns the groups killed.
    """
    proc = Path("/proc")
    if not run_id or not proc.is_dir():
        return []
    marker = f"SPECS_RUN_ID={run_id}".encode()
    wanted, killed = set(pgids), []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            pgid = os.getpgid(int(entry.name))
            if pgid in wanted and pgid not in killed and \
                    marker in (entry / "environ").read_bytes().split(b"\0"):
                kill_group(pgid, signal.SIGKILL)
                killed.append(pgid)
        except (OSError, ValueError):
            continue
    return killed
