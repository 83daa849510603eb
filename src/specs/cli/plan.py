"""The ``specs plan`` command: a spec's dependency graph, phases and critical path.

Registered on :data:`specs.cli.common.app`; see that module for the exit codes. The spec is loaded
and validated first, exactly as ``specs show`` does (errors on stderr, exit 1); a cycle that only
the plan sees (one that passes through the implicit step or task order) is one line
``file: error E-DEP-CYCLE dependency cycle: ...`` on stderr, exit 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from specs.cli.common import EXIT_INVALID, _display, _err, _load_or_exit, app
from specs.diagnostics import Diagnostic, Location, Severity
from specs.errors import UsageError
from specs.plan.graph import PlanError, build_plan
from specs.plan.render import FORMATS, render


@app.command("plan")
def plan_cmd(
    path: Annotated[Path, typer.Argument(help="A spec folder or parameters file.")],
    fmt: Annotated[str, typer.Option(
        "--format", "-f", help=f"Output format: {', '.join(FORMATS)}.")] = "text",
    sequential: Annotated[bool, typer.Option(
        "--sequential", help="The plan of a strictly sequential run (one step at a time).")]
    = False,
) -> None:
    """Show the dependency graph: phases, critical path, SPECLet stages, parallel conflicts.

    Exit code 0 when the spec is valid and plans, 1 when it is invalid or has a dependency
    cycle, 2 for a usage error (unknown format, missing path).
    """
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    loaded, spec = _load_or_exit(path)
    try:
        plan = build_plan(spec, sequential=sequential)
    except PlanError as exc:
        where = Location(_display(str(loaded.parameters_path or path)))
        _err().print(Diagnostic(Severity.ERROR, exc.code, str(exc), where).render(),
                     markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    typer.echo(render(plan, fmt), nl=False)
