"""``specs draft "GOAL"``: a spec drafted by the configured LLM, repaired until it validates.

The provider is asked for one ``parameters_<d>.toml`` in the shape of a template (the
template's own spec, rendered with its example answers, is shown as the model to follow) and
under the constitution's rules. The answer is written to a scratch folder beside the
destination with a Markdown mirror made from it (:mod:`specs.templates.mdgen`), and validated
there, so the project constitution of the destination applies. While it has errors (with
``strict``, the quality rules count), the diagnostics, one line each with their file:line:col,
go back to the model for another round, at most ``repairs`` times. Only a spec that validates
is written; otherwise nothing is, and the rounds say what is left.

Every round's answer is kept in the draft's folder (``.specs/drafts/<id>/answer_<n>.toml``)
with ``draft.json`` (the rounds and their diagnostics); the caller may record the exchanges
there too (``exchanges.jsonl``, a cassette that ``--replay`` answers from, as for runs).
Calls go through the run's budget (:class:`~specs.llm.budget.BudgetTracker`): a call the
budget refuses stops the draft. Transient provider errors (rate limits, timeouts, 5xx) are
retried twice with a pause.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import secrets
import shutil
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit

from specs.diagnostics import Diagnostic, Severity
from specs.errors import ProviderError
from specs.llm.budget import BudgetTracker, Reservation, estimate_call
from specs.llm.providers import RecordingProvider, ReplayProvider, provider_from_settings
from specs.llm.providers.base import Message, Provider, Request
from specs.llm.providers.prices import cost
from specs.spec.load import load_spec
from specs.spec.validate import validate
from specs.templates.errors import TemplateError
from specs.templates.instantiate import (
    Created,
    Rendered,
    SpecExists,
    check_descriptor,
    create_spec,
    preview,
    spec_folder,
)
from specs.templates.mdgen import markdown_for
from specs.templates.model import Template
from specs.templates.variables import Answers

__all__ = ["CASSETTE", "RULES", "DraftFailed", "DraftResult", "DraftRound", "descriptor_for",
           "draft_provider", "draft_spec", "run_draft"]

CASSETTE = "exchanges.jsonl"

TRANSIENT_TRIES = 3
RULES = """\
You write specifications for SPEC Engine, a runner of goal -> tasks -> steps plans.
Answer with one TOML document, the spec's parameters file, in a ```toml fenced block, and
nothing else. The rules it must follow (the SPEC Engine constitution):
1. [goal] description: exactly one clear, measurable goal.
2. 2 to 5 [[tasks]] (id 1, 2, ...; description), each with 1 to 5 [[tasks.steps]]
   (id 1, 2, ... within the task).
3. Every step has description, expected_output (specific and checkable), critical_flag
   (true when its failure blocks the goal) and max_retries. Between 40 % and 60 % of all steps
   are critical, and no task with more than one step has all or none of them critical.
4. Every critical step has 1 or 2 [[tasks.steps.backups]]: a different method, not a retry
   (id 1 with trigger_condition = "primary_failure", id 2 with "backup_1_failure").
5. Executable checks where they make sense: command = "..." for a shell step, verify = [...]
   (commands that must exit 0), expected_files = [...] (files that must exist). Steps without
   a command are carried out by an LLM agent in the workspace.
6. No placeholders: no [Insert ...], no TODO, no <fill in>.
7. [completion_criteria] acceptance_criteria: at least three specific criteria.
8. If the goal says build, create, develop, app, application or system, add [software_stack]
   deployment_type and primary_language.
Optional keys you may use: [execution] default_mode ("dynamic"), step depends_on
(["1.2"]), parallel_group, condition ("steps['1.2'].output.field == 'x'" or "vars.name"),
output_schema (an inline JSON Schema for a step's JSON answer), mode = "collaborative" for a
step a human must approve first."""


class DraftFailed(TemplateError):
    """The draft could not be made: the budget refused a call, or the provider failed."""


@dataclass
class DraftRound:
    """One answer of the model and what the validator said about it."""

    number: int
    text: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    tokens: int = 0

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]


@dataclass
class DraftResult:
    """The rounds of a draft, and the spec written (``created``) when one validated."""

    descriptor: str
    folder: Path
    template: Template | None
    rounds: list[DraftRound] = field(default_factory=list)
    created: Created | None = None
    record_dir: Path | None = None
    tokens: int = 0
    cost_usd: float | None = None

    @property
    def valid(self) -> bool:
        return bool(self.rounds) and not self.rounds[-1].errors


def descriptor_for(goal: str) -> str:
    """A descriptor from the goal's first significant words: ``"Write the weekly sales
    report"`` -> ``weekly_sales_report``."""
    skip = {"a", "an", "the", "to", "of", "for", "and", "or", "in", "on", "with", "my", "our",
            "write", "make", "create", "build", "do", "please", "that", "this", "from", "by"}
    words = [w for w in re.findall(r"[a-z0-9]+", goal.lower()) if w not in skip]
    name = "_".join(words[:3])[:40].strip("_")
    return name if name and name[0].isalnum() else "draft"


def _shape(template: Template | None) -> str:
    if template is None:
        return ""
    # a fixed date: the same goal and template make the same request (record and replay)
    created = preview(template, strict=False, today=dt.date(2026, 1, 1))
    rendered = created.rendered
    if rendered is None:
        return ""
    params = next((data for name, data in rendered.files.items()
                   if re.fullmatch(r"parameters_.*\.toml", name)), b"")
    lines = params.decode("utf-8", "replace").splitlines()
    body = "\n".join(line for line in lines if not line.startswith("#")).strip()
    return (f"\n\nFollow the shape of the template {template.ref} ({template.summary}): its "
            "tasks, steps, checks and sections, adapted to this goal. The template's spec, "
            "rendered with example answers:\n```toml\n"
            f"{body}\n```")


def _toml_of(text: str, descriptor: str) -> str:
    match = re.search(r"```(?:toml)?[ \t]*\n(.*?)```", text, re.S)
    body = (match.group(1) if match else text).strip() + "\n"
    try:
        doc = tomlkit.parse(body)
    except Exception:  # not TOML: the validator says where (E-TOML-SYNTAX)
        return body
    meta = doc.get("meta")
    if not isinstance(meta, dict):
        doc["meta"] = meta = tomlkit.table()
    meta["goal_descriptor"] = descriptor
    return tomlkit.dumps(doc)


def _check(text: str, descriptor: str, directory: Path, strict: bool) -> list[Diagnostic]:
    """The diagnostics of the drafted parameters ``text``, validated beside ``directory``'s
    destination (its project constitution applies)."""
    directory.mkdir(parents=True, exist_ok=True)
    staging = directory / f".spec_{descriptor}.specs-draft-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        (staging / f"parameters_{descriptor}.toml").write_text(text, encoding="utf-8")
        loaded = load_spec(staging)
        if loaded.spec is not None:
            (staging / f"spec_{descriptor}.md").write_text(
                markdown_for(loaded.spec, descriptor), encoding="utf-8")
            loaded = load_spec(staging)
        return [d for d in validate(loaded, strict=strict) if d.severity is not Severity.INFO]
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _feedback(diagnostics: list[Diagnostic], descriptor: str) -> str:
    lines = []
    for d in diagnostics:
        where = d.location
        name = Path(where.file).name
        at = f"{name}:{where.line}:{where.col}" if where.line else name
        hint = f" ({d.hint})" if d.hint else ""
        lines.append(f"- {at}: {d.severity.value} {d.code} {d.message}{hint}")
    return ("The spec does not validate yet. Fix every problem below and answer with the whole "
            f"corrected parameters_{descriptor}.toml in a ```toml block:\n" + "\n".join(lines))


async def draft_spec(goal: str, provider: Provider, *, directory: Path,
                     descriptor: str | None = None, template: Template | None = None,
                     repairs: int = 3, strict: bool = True, force: bool = False,
                     dry_run: bool = False, budget: BudgetTracker | None = None,
                     record_dir: Path | None = None,
                     sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> DraftResult:
    """Draft the spec for ``goal`` (see the module docstring)."""
    name = check_descriptor(descriptor or descriptor_for(goal))
    folder = spec_folder(directory, name)
    if folder.is_dir() and any(folder.iterdir()) and not force:
        raise SpecExists(f"{folder} already exists and is not empty; choose another "
                         "--descriptor or --dir, or pass --force to overwrite its files")
    result = DraftResult(name, folder, template, record_dir=record_dir)
    messages = [Message("system", RULES),
                Message("user", f"Goal: {goal.strip()}\nDescriptor: {name}{_shape(template)}")]
    for number in range(1, repairs + 2):
        request = Request(model="", messages=tuple(messages), temperature=0.2)
        completion = await _complete(provider, request, budget, result, sleep)
        text = _toml_of(completion.text, name)
        current = DraftRound(number, text, _check(text, name, directory, strict),
                             completion.usage.total_tokens)
        result.rounds.append(current)
        _keep(result, goal)
        if not current.errors:
            break
        messages += [Message("assistant", completion.text),
                     Message("user", _feedback(current.diagnostics, name))]
    if result.valid:
        files = {f"parameters_{name}.toml": result.rounds[-1].text.encode("utf-8")}
        spec = _markdown_of(result.rounds[-1].text, name, directory)
        if spec is not None:
            files[f"spec_{name}.md"] = spec.encode("utf-8")
        rendered = Rendered(template or Template(name="draft", folder=directory), name,
                            Answers(), files, time.strftime("%Y-%m-%d"))
        result.created = create_spec(rendered, folder, force=force, dry_run=dry_run,
                                     strict=strict, provenance=False)
        _keep(result, goal)
    return result


def draft_provider(env: Mapping[str, str], *, provider: str | None = None,
                   model: str | None = None, record_to: Path | None = None,
                   replay_from: Path | None = None) -> Provider:
    """The provider of a draft: the configured one (``[llm]`` does not exist yet, so the
    environment and the options decide, as for runs), recording to the cassette
    ``record_to``, or answering from the cassette ``replay_from``. Raises
    :class:`~specs.errors.ProviderConfigError` (one line) for a bad configuration."""
    if replay_from is not None:
        return ReplayProvider(replay_from)
    built = provider_from_settings(None, env, provider=provider, model=model)
    return RecordingProvider(built, record_to) if record_to is not None else built


async def run_draft(goal: str, provider: Provider, *, max_cost_usd: float | None = None,
                    max_tokens: int | None = None, **options: Any) -> DraftResult:
    """:func:`draft_spec` with the provider checked first (pre-flight: key present, server
    reachable; a :class:`~specs.errors.ProviderError` says why not) and closed after, within
    a budget of ``max_cost_usd`` and ``max_tokens``."""
    try:
        await provider.check()
        return await draft_spec(goal, provider, budget=BudgetTracker(max_cost_usd, max_tokens),
                                **options)
    finally:
        await provider.aclose()


def _markdown_of(text: str, descriptor: str, directory: Path) -> str | None:
    """The Markdown mirror of the parameters ``text`` (None when it does not load)."""
    staging = directory / f".spec_{descriptor}.specs-draft-{secrets.token_hex(4)}"
    staging.mkdir(parents=True)
    try:
        (staging / f"parameters_{descriptor}.toml").write_text(text, encoding="utf-8")
        loaded = load_spec(staging, markdown=False)
        return markdown_for(loaded.spec, descriptor) if loaded.spec is not None else None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


async def _complete(provider: Provider, request: Request, budget: BudgetTracker | None,
                    result: DraftResult, sleep: Callable[[float], Awaitable[None]]) -> Any:
    for attempt in range(1, TRANSIENT_TRIES + 1):
        reservation: Reservation | None = None
        if budget is not None and budget.enabled:
            tokens, estimate = estimate_call(request, provider.model, None)
            taken = budget.reserve(tokens, estimate, what="the next draft call")
            if isinstance(taken, str):
                raise DraftFailed(taken)
            reservation = taken
        try:
            completion = await provider.complete(request)
        except ProviderError as exc:
            if budget is not None and reservation is not None:
                budget.release(reservation)
            if exc.transient and attempt < TRANSIENT_TRIES:
                await sleep(getattr(exc, "retry_after", None) or 2.0 * attempt)
                continue
            raise DraftFailed(f"the provider failed: {exc}") from exc
        spent = cost(completion.model or provider.model, completion.usage)
        if budget is not None and reservation is not None:
            budget.settle(reservation, completion.usage.total_tokens, spent)
        result.tokens += completion.usage.total_tokens
        if spent is not None:
            result.cost_usd = (result.cost_usd or 0.0) + spent
        return completion
    raise DraftFailed("the provider failed")  # not reached: the loop returns or raises


def _keep(result: DraftResult, goal: str) -> None:
    """Write the rounds to the draft's folder (when it has one)."""
    if result.record_dir is None:
        return
    result.record_dir.mkdir(parents=True, exist_ok=True)
    for round_ in result.rounds:
        (result.record_dir / f"answer_{round_.number}.toml").write_text(round_.text,
                                                                       encoding="utf-8")
    summary = {
        "goal": goal, "descriptor": result.descriptor,
        "template": result.template.ref if result.template else None,
        "valid": result.valid, "tokens": result.tokens, "cost_usd": result.cost_usd,
        "written": str(result.created.folder) if result.created and result.created.written
        else None,
        "rounds": [{"round": r.number, "errors": len(r.errors),
                    "diagnostics": [d.to_dict() for d in r.diagnostics]}
                   for r in result.rounds]}
    (result.record_dir / "draft.json").write_text(json.dumps(summary, indent=2),
                                                  encoding="utf-8")
