"""What every command of the ``specs`` command line shares: the app, exit codes, messages.

Exit codes, everywhere (SPEC_FORMAT.md §3):

====  ==========================================================================
0     success (the spec is valid; the goal was ACHIEVED)
1     the spec is invalid, or the run ended failed/halted/NOT_ACHIEVED/PARTIAL
2     usage error (bad option, path not found)
3     paused, waiting for a human decision
130   interrupted (resumable)
====  ==========================================================================

User errors are one line on stderr and never a traceback; ``--debug`` shows tracebacks for
everything, including our own bugs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from specs.diagnostics import Diagnostic, Location, Severity
from specs.spec.load import LoadedSpec, load_spec
from specs.spec.model import Spec
from specs.spec.validate import validate as run_checks
from specs.version import __version__

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_PAUSED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

app = typer.Typer(
    name="specs",
    help="Run SPEC Engine specifications for real: validate, plan, run (with retries, backups, "
    "human gates, parallel steps), resume, and inspect runs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"specs {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    """specs: run SPEC Engine specifications (spec_X.md + parameters_X.toml) for real."""
    _state["debug"] = debug


def _err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _display(path: str) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return path


def _render(d: Diagnostic) -> str:
    where = Location(_display(d.location.file), d.location.line, d.location.col)
    return Diagnostic(d.severity, d.code, d.message, where, d.hint, excerpt=d.excerpt).render()


def _load_or_exit(path: Path) -> tuple[LoadedSpec, Spec]:
    """The loaded spec, or exit 1 printing its errors (the same ones `specs validate` gives)."""
    loaded = load_spec(path)
    errors = [d for d in run_checks(loaded) if d.severity is Severity.ERROR]
    if loaded.spec is None or errors:
        for d in errors or loaded.diagnostics:
            _err().print(_render(d), markup=False)
        raise typer.Exit(EXIT_INVALID)
    return loaded, loaded.spec
