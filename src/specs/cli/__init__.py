"""The ``specs`` command line: a thin layer over the library (:mod:`specs.api`).

Each module registers its commands on :data:`specs.cli.common.app`; see that module for the
exit codes.
"""

from __future__ import annotations

import sys

import typer

from specs.cli import (
    dashboard,
    history,
    insights,
    logs,
    plan,
    prompt,
    run,
    runs,
    spec,
    templates,
    timeline,
)
from specs.cli.common import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, _err, app
from specs.errors import SpecsError

__all__ = ["app", "dashboard", "history", "insights", "logs", "main", "plan", "prompt", "run",
           "runs", "spec", "templates", "timeline"]


def main() -> None:
    """Entry point: run the app and map our errors to one line and an exit code."""
    debug = "--debug" in sys.argv[1:]
    try:
        # without standalone mode, typer *returns* the code of a `typer.Exit` (not raises it)
        code = app(standalone_mode=False)
    except SpecsError as exc:
        if debug:
            raise
        _err().print(f"specs: error: {exc}", markup=False)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _err().print("specs: interrupted", markup=False)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # click usage errors and our own bugs
        # typer >= 0.2x vendors click (typer._click), so match click's classes by shape/name
        names = {cls.__name__ for cls in type(exc).__mro__}
        if "Abort" in names:
            sys.exit(EXIT_INTERRUPTED)
        if "NoArgsIsHelpError" in names:  # `specs` alone prints the help (exit code 2)
            show = getattr(exc, "show", None)
            if callable(show):
                show()
            sys.exit(EXIT_USAGE)
        if "ClickException" in names:
            message = " ".join(str(getattr(exc, "format_message", exc.__str__)()).split())
            _err().print(f"specs: error: {message} (see `specs --help`)", markup=False)
            sys.exit(EXIT_USAGE if "UsageError" in names else getattr(exc, "exit_code", 1))
        if debug:
            raise
        _err().print(f"specs: internal error: {exc.__class__.__name__}: {exc} "
                     "(run with --debug for a traceback, and please report it)", markup=False)
        sys.exit(70)
    sys.exit(code if isinstance(code, int) else EXIT_OK)
