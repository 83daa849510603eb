"""``specs new``, ``specs init`` and ``specs draft``: a new spec from a template, the project
constitution, a spec drafted by the LLM (docs/templates.md). Registered on
:data:`specs.cli.common.app` (imported by :mod:`specs.cli.templates`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from specs.cli.common import EXIT_INVALID, EXIT_OK, EXIT_USAGE, _display, _err, _render, app
from specs.cli.templates_shared import (
    JsonOpt,
    NoInputOpt,
    VarOpt,
    display_bool,
    interactive,
    library_of,
    parse_vars,
    report_created,
    template_of,
    terminal_asker,
)
from specs.errors import ProviderError, UsageError
from specs.templates import SpecExists, Template, new_spec

# --- specs new -----------------------------------------------------------------------------


@app.command("new")
def new_cmd(
    template_name: Annotated[str, typer.Argument(
        metavar="TEMPLATE", help="A template name (see `specs templates`) or folder.")],
    descriptor: Annotated[str | None, typer.Argument(
        help="The new spec's short name (default: the template's).", show_default=False)]
    = None,
    directory: Annotated[Path, typer.Option(
        "--dir", help="Where the spec folder (spec_DESCRIPTOR/) is made.")] = Path("."),
    var: VarOpt = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Render and validate, print what would be written; write nothing.")]
    = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Overwrite the files of an existing spec folder.")] = False,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Refuse the spec when a quality rule fails, too.")] = False,
    no_input: NoInputOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Make a new spec from a template: answer its variables (asked on a terminal, else
    --var), render, validate, write DIR/spec_DESCRIPTOR/ with a .specs-template.toml.

    Exit code 0 when the spec was written (or would be, with --dry-run), 1 when it does not
    validate or the folder exists (without --force), 2 for a bad answer or option.
    """
    template = template_of(template_name)
    ask = terminal_asker if interactive(no_input) else None
    created = new_spec(template, descriptor, directory, parse_vars(var), ask=ask,
                       force=force, dry_run=dry_run, strict=strict)
    report_created(created, template, dry_run=dry_run, as_json=as_json)
    raise typer.Exit(EXIT_INVALID if created.errors else EXIT_OK)


# --- specs init ----------------------------------------------------------------------------


@app.command("init")
def init_cmd(
    directory: Annotated[Path, typer.Option(
        "--dir", help="Where project_constitution.toml goes.")] = Path("."),
    dna_folder: Annotated[bool, typer.Option(
        "--dna-folder", help="Write it in DIR/<DNA code>/ (the original's SPECs/<DNA>/ "
        "layout); another project's code there is avoided.")] = False,
    name: Annotated[str | None, typer.Option("--name", help="The project's name.")] = None,
    purpose: Annotated[str | None, typer.Option(
        "--purpose", help="What the project is trying to achieve.")] = None,
    stack: Annotated[str | None, typer.Option(
        "--stack", help="The required software stack, or flexible.")] = None,
    dependency: Annotated[list[str] | None, typer.Option(
        "--dependency", help="An external dependency (repeatable).")] = None,
    backup_tool: Annotated[list[str] | None, typer.Option(
        "--backup-tool", help="A custom backup tool (repeatable).")] = None,
    autonomy: Annotated[str | None, typer.Option(
        "--autonomy", metavar="silent|dynamic|collaborative",
        help="How autonomous runs are.")] = None,
    risk: Annotated[str | None, typer.Option(
        "--risk", metavar="high|moderate|low", help="Risk tolerance (default: inferred "
        "from the purpose).")] = None,
    testing: Annotated[str | None, typer.Option(
        "--testing", metavar="basic|standard|comprehensive", help="Testing rigour.")] = None,
    user_facing: Annotated[bool | None, typer.Option(
        "--user-facing/--not-user-facing", help="Whether it faces users (default: "
        "inferred).", show_default=False)] = None,
    complexity: Annotated[str | None, typer.Option(
        "--complexity", metavar="simple|moderate|complex", help="Default: inferred.")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Replace an existing constitution (its version history is kept).")]
    = False,
    no_input: NoInputOpt = False,
) -> None:
    """Write project_constitution.toml from a short interview (or these options), with the
    deterministic DNA code of the project's name.

    Asks on a terminal what the options do not say; without a terminal, --name and --purpose
    are needed and the rest has defaults (risk, complexity and user-facing are inferred from
    the purpose). Exit code 0 when written, 1 when the file exists (without --force), 2 for a
    bad answer.
    """
    import tomllib

    from specs.atomic import write_text_atomic
    from specs.templates.dna import constitution_document, dna_code, interview, unique_dna_code

    given: dict[str, Any] = {k: v for k, v in {
        "name": name, "purpose": purpose, "stack": stack, "dependencies": dependency,
        "backup_tools": backup_tool, "autonomy": autonomy, "risk": risk, "testing": testing,
        "user_facing": user_facing, "complexity": complexity}.items() if v is not None}
    answers = interview(given, ask=terminal_asker if interactive(no_input) else None)
    code = unique_dna_code(answers["name"], directory) if dna_folder else \
        dna_code(answers["name"])
    path = (directory / code if dna_folder else directory) / "project_constitution.toml"
    history: list[dict[str, Any]] = []
    if path.exists():
        if not force:
            raise SpecExists(f"{path} already exists; pass --force to replace it (its version "
                             "history is kept)")
        try:
            history = list(tomllib.loads(path.read_text(encoding="utf-8")).get(
                "version_history", []))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            history = []
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, constitution_document(answers, code, history=history))
    inferred = answers["inferred"]
    typer.echo(f"wrote {_display(str(path))}: DNA code {code} for {answers['name']!r}")
    typer.echo(f"  risk {answers['risk']} ({inferred['risk_reason']}), mode "
               f"{answers['autonomy']}, testing {answers['testing']}, complexity "
               f"{answers['complexity']}, user-facing {display_bool(answers['user_facing'])}, "
               f"domain {inferred['domain']}")


# --- specs draft ---------------------------------------------------------------------------


@app.command("draft")
def draft_cmd(
    goal: Annotated[str, typer.Argument(metavar="GOAL", help="The goal, in a sentence.",
                                        show_default=False)],
    template_name: Annotated[str | None, typer.Option(
        "--template", metavar="NAME", help="The template whose shape to follow (default: the "
        "best `specs templates suggest` finds; `none` for none).")] = None,
    directory: Annotated[Path, typer.Option(
        "--dir", help="Where the spec folder (spec_DESCRIPTOR/) is made.")] = Path("."),
    descriptor: Annotated[str | None, typer.Option(
        "--descriptor", help="The spec's short name (default: from the goal).")] = None,
    provider: Annotated[str | None, typer.Option(
        "--provider", metavar="openai|anthropic", help="The LLM provider (openai: any "
        "OpenAI-compatible server, see OPENAI_BASE_URL).")] = None,
    model: Annotated[str | None, typer.Option("--model", help="The LLM model name.")] = None,
    repairs: Annotated[int, typer.Option(
        "--repairs", min=0, max=10, help="Repair rounds after the first answer.")] = 3,
    strict: Annotated[bool, typer.Option(
        "--strict/--no-strict", help="The quality rules must pass too (the default).")] = True,
    record: Annotated[bool, typer.Option(
        "--record", help="Store the exchanges in the draft's folder (exchanges.jsonl).")]
    = False,
    replay: Annotated[str | None, typer.Option(
        "--replay", metavar="DRAFT", help="Answer from that draft's recorded exchanges (no "
        "network).")] = None,
    max_cost: Annotated[float | None, typer.Option(
        "--max-cost", min=0, metavar="USD", help="Stop before a call would cost more.")]
    = None,
    max_tokens: Annotated[int | None, typer.Option(
        "--max-tokens", min=0, metavar="N", help="Stop before a call would use more tokens.")]
    = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Draft and validate, but write no spec.")] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Overwrite the files of an existing spec folder.")] = False,
    state_dir: Annotated[Path | None, typer.Option(
        "--state-dir", help="Where drafts are kept (default: $SPECS_STATE_DIR or ./.specs).")]
    = None,
) -> None:
    """Draft a spec for GOAL with the configured LLM, in a template's shape; feed the
    validator's diagnostics back for up to --repairs rounds; write it only when it validates.

    Every answer is kept in .specs/drafts/<id>/. Exit code 0 when the spec validated (and was
    written), 1 when it still has errors after the repairs (nothing written), 2 for a usage or
    provider configuration error.
    """
    import asyncio
    import os
    import secrets
    import time

    from specs.api.runs import state_dir as default_state_dir
    from specs.templates.draft import CASSETTE, draft_provider, run_draft
    from specs.templates.suggest import suggest

    if not goal.strip():
        raise UsageError("the goal is empty; describe what the spec should achieve")
    if record and replay:
        raise UsageError("--record and --replay exclude each other")
    library = library_of()
    template: Template | None = None
    if template_name not in (None, "none"):
        template = template_of(template_name or "", library)
    elif template_name is None:
        ranked = suggest(goal, library.templates.values(), limit=1)
        template = ranked[0].template if ranked else None
        if template is not None:
            _err().print(f"specs: drafting in the shape of {template.ref} "
                         f"({'; '.join(ranked[0].reasons)}); --template to choose another",
                         markup=False)
    drafts = default_state_dir(state_dir) / "drafts"
    draft_id = f"draft_{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}_{secrets.token_hex(2)}"
    record_dir = drafts / draft_id
    cassette = drafts / replay / CASSETTE if replay else None
    if cassette is not None and not cassette.is_file():
        raise UsageError(f"--replay {replay}: {cassette} not found (record with --record)")
    try:
        llm = draft_provider(os.environ, provider=provider, model=model,
                             record_to=record_dir / CASSETTE if record else None,
                             replay_from=cassette)
        result = asyncio.run(run_draft(
            goal, llm, max_cost_usd=max_cost, max_tokens=max_tokens, directory=directory,
            descriptor=descriptor, template=template, repairs=repairs, strict=strict,
            force=force, dry_run=dry_run, record_dir=record_dir))
    except ProviderError as exc:  # a bad configuration, or the pre-flight check failed
        _err().print(f"specs: error: {exc}", markup=False)
        raise typer.Exit(EXIT_USAGE) from None
    for round_ in result.rounds:
        state = "validates" if not round_.errors else f"{len(round_.errors)} errors"
        _err().print(f"specs: round {round_.number}: {state}", markup=False)
    where = _display(str(result.folder))
    kept = _display(str(record_dir))
    if not result.valid:
        for d in result.rounds[-1].diagnostics:
            _err().print(f"  {_render(d)}", markup=False)
        _err().print(f"specs: {where} not written: the draft still has "
                     f"{len(result.rounds[-1].errors)} errors after "
                     f"{len(result.rounds) - 1} repairs; the "
                     f"answers are in {kept}/", markup=False)
        raise typer.Exit(EXIT_INVALID)
    created = result.created
    if created is not None and created.errors:
        for d in created.errors:
            _err().print(_render(d), markup=False)
        raise typer.Exit(EXIT_INVALID)
    spent = f"{result.tokens} tokens" + (f", ${result.cost_usd:.4f}" if result.cost_usd else "")
    verb = "drafted (dry run, nothing written)" if dry_run else "wrote"
    typer.echo(f"{verb} {where}/ in {len(result.rounds)} rounds ({spent}; draft {draft_id}); "
               f"next: specs run {where}")
