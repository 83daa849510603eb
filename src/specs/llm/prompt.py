"""Prompt assembly: what the model is told for one attempt of one cognitive step.

:func:`build_prompt` turns a step, the method being tried and what the run knows so far into a
:class:`Prompt` of titled :class:`Section` s, always in this order (docs/prompts.md):

``rules``
    the constitution's rules for a step executor (a fixed list), the project's
    ``prohibited_actions`` (guardrails) and the spec's ``[constraints]``; this is the system
    prompt, everything below is the user prompt;
``goal``, ``task``, ``step``
    the single goal, the task (with its other steps, so the model does only this one), the step
    with its expected output, what the engine checks and the critical flag;
``method``
    primary, or backup N after the earlier methods failed, with the failure reasons of this
    round;
``inputs``
    the outputs of the steps it depends on (declared ``depends_on``, else the most recent prior
    steps of the run);
``research``, ``guidance``, ``notes``
    the task's research findings, human guidance, notepad insights (each only when there is any);
``answer``
    free text, or one JSON object matching ``output_schema``.

Assembly is a pure function of its inputs: no clock, no randomness, no environment, so the
same inputs give the same text (which makes prompts cacheable and replayable). The only I/O is
reading an ``output_schema`` that names a file.

Sizes are bounded by :class:`PromptLimits`: each section to ``section_chars``, the whole prompt
to ``total_chars``. A cut keeps the head of the text and says what it removed
(``[... 12,345 characters of the output of step 1.2 cut ...]``). Parts of a section are cut in
order of importance (the oldest prior output first, each first down to a small floor, then
entirely), and the whole prompt is brought under its limit by cutting whole sections in
:data:`CUT_ORDER`: the notepad first, then the older prior outputs, then research.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from specs.engine.checks import checks_of, load_schema
from specs.engine.policy import Method, ladder
from specs.engine.state import AttemptRecord, RunState, StepState
from specs.llm.prompt_fit import Draft, Part, Prompt, PromptLimits, Section
from specs.spec.model import Action, Spec, Step, Task
from specs.spec.project import ProjectConstitution

__all__ = [
    "CUT_ORDER",
    "EXECUTOR_RULES",
    "FAILURE_PREFIX",
    "Prompt",
    "PromptLimits",
    "Section",
    "build_prompt",
    "guardrails_of",
    "research_findings",
    "step_ref",
]

#: The answer a model gives when it could not meet the expected output (the agent loop reads it).
FAILURE_PREFIX = "FAILED:"

SYSTEM_PREAMBLE = (
    "You are the step executor of a SPEC Engine run. You carry out exactly one step of a "
    "specification with the method you are given, and answer with what the step produced. "
    "The engine checks your answer against the step's expected output and decides on retries, "
    "backups and escalation to a human; you do not.")

#: What the SPEC Engine constitution asks of whoever executes a step (article in brackets).
EXECUTOR_RULES: tuple[str, ...] = (
    "Serve the single goal below; do nothing that does not contribute to it (Art. I).",
    "Do this step only: not the work of other steps or tasks (Art. II.2).",
    "Meet the expected output exactly: specific, complete, no placeholders; if you cannot, "
    "say so plainly instead of presenting partial work as done (Art. V).",
    "Attempt the method you are given, as described, before anything else; never switch to "
    "another approach for speed or convenience: when the method fails, report the specific "
    "reason and the engine tries the backups in order (Art. VII, Art. XI).",
    "Take the outputs and failures of earlier steps into account; if an input you need is "
    "missing or failed, say so (Art. VIII).",
    "Log your decisions: state what you attempted, what you decided and why, and every "
    "failure with its specific reason (Art. X, Art. XI.3).",
    "Note insights, technical decisions and ideas worth keeping for the notepad (Art. XV).",
    "Stay within the guardrails and constraints below; when the step seems to need a "
    "prohibited action, stop and explain instead (Art. IX).",
)

#: Sections in the order of the prompt.
ORDER: tuple[str, ...] = ("rules", "goal", "task", "step", "method", "inputs", "research",
                          "guidance", "notes", "answer")
#: Sections cut to bring the whole prompt under ``total_chars``, least important first.
CUT_ORDER: tuple[str, ...] = ("notes", "inputs", "research", "task", "guidance", "goal",
                              "method", "step", "rules", "answer")
# --- the prompt ---------------------------------------------------------------------------------


def step_ref(task: Task, step: Step) -> str:
    return f"{task.ref}.{step.id}"


def guardrails_of(project: ProjectConstitution | None) -> list[str]:
    """The project constitution's ``constraints.prohibited_actions`` (reference §2.4)."""
    found = project.get("constraints.prohibited_actions") if project is not None else None
    return [str(item).strip() for item in found or [] if str(item).strip()] \
        if isinstance(found, list) else []


def build_prompt(spec: Spec, task: Task, step: Step, *, method: Method | None = None,
                 state: RunState | None = None, research: list[str] | None = None,
                 guidance: str | None = None, notes: list[str] | None = None,
                 guardrails: list[str] | None = None, spec_folder: Path | None = None,
                 limits: PromptLimits = PromptLimits()) -> Prompt:
    """The prompt for one attempt of ``step`` (see the module docstring for its content).

    ``method`` defaults to the primary; ``state`` supplies earlier failures, prior outputs,
    the task's research findings, guidance and notepad entries (without it, prior steps show
    as "not yet run"); ``research``, ``guidance`` and ``notes`` given here replace what the
    state holds. ``guardrails`` are the
    project's prohibited actions (:func:`guardrails_of`); ``spec_folder`` is where an
    ``output_schema`` file is read from (default: the task's own folder).
    """
    rungs = ladder(step)
    method = method or rungs[0]
    ref = step_ref(task, step)
    st = state.steps.get(ref) if state is not None else None
    if guidance is None and state is not None:
        guidance = _state_guidance(state, ref)
    if notes is None and state is not None:
        notes = _state_notes(state)
    if research is None and state is not None:
        research = research_findings(state, task.ref)
    folder = spec_folder or (Path(task.folder) if task.folder else None)
    drafts = [
        _rules(spec, guardrails or []),
        Draft("goal", "Goal", [Part("the goal", spec.goal.description.strip()
                                      or "(the spec states no goal)")]),
        _task(spec, task, step),
        _step(task, step, method),
        _method(method, rungs, st),
        _inputs(spec, task, step, state, limits.prior_steps),
        _research(task, research),
        _guidance(guidance),
        _notes(notes),
        _answer(method.action, step, folder),
    ]
    present = [d for d in drafts if d is not None]
    for draft in present:
        draft.fit(limits.section_chars)
    _fit_total(present, limits.total_chars)
    return _assemble([d.section() for d in present])


def _assemble(sections: list[Section]) -> Prompt:
    rules = [s.render() for s in sections if s.name == "rules"]
    system = "\n\n".join([SYSTEM_PREAMBLE, *rules])
    user = "\n\n".join(s.render() for s in sections if s.name != "rules")
    return Prompt(system, user, sections)


def _fit_total(drafts: list[Draft], total: int) -> None:
    by_name = {d.name: d for d in drafts}
    for name in CUT_ORDER:
        draft = by_name.get(name)
        over = _assemble([d.section() for d in drafts]).chars - total
        if over <= 0:
            return
        if draft is not None:
            draft.fit(max(0, len(draft.text()) - over))


# --- the sections -------------------------------------------------------------------------------


def _bullets(items: Iterable[str]) -> str:
    return "\n".join(f"- {item}" for item in items)


def _rules(spec: Spec, guardrails: list[str]) -> Draft:
    rules = "\n".join(f"{n}. {rule}" for n, rule in enumerate(EXECUTOR_RULES, 1))
    constraints = dict(spec.constraints or {})
    prohibited = constraints.pop("prohibited_actions", None)
    merged = list(dict.fromkeys(
        [*guardrails, *(str(p) for p in prohibited if str(p).strip())]
        if isinstance(prohibited, list) else guardrails))
    parts = [Part("the rules", rules, "Follow these rules of the SPEC Engine constitution:",
                   rank=2)]
    if merged:
        parts.append(Part("the guardrails", _bullets(merged),
                           "Guardrails: never do any of the following (the project's "
                           "prohibited actions):", rank=1))
    if constraints:
        lines = [f"{key}: {_value(value)}" for key, value in constraints.items()]
        parts.append(Part("the spec's constraints", _bullets(lines),
                           "Constraints of this spec ([constraints]):", rank=0))
    return Draft("rules", "Rules", parts)


def _value(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _line(text: str, limit: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _task(spec: Spec, task: Task, step: Step) -> Draft:
    lines = [f"{step_ref(task, s)} {_line(s.description) or '(no description)'}"
             + ("  <- this step" if s.id == step.id else "") for s in task.steps]
    parts = [Part("the task description", task.description.strip() or "(no description)",
                   rank=1),
             Part("the task's step list", _bullets(lines), "The task's steps:", rank=0)]
    title = f"Task {task.ref}" + (f" (of {len(spec.tasks)})" if len(spec.tasks) > 1 else "")
    return Draft("task", title, parts)


def _step(task: Task, step: Step, method: Method) -> Draft:
    expected = (step.expected_output or "").strip() or \
        "(not stated: describe precisely what you produced)"
    critical = ("yes: a failure after every method blocks the goal and is escalated"
                if step.critical_flag else
                "no: a failure is logged as a warning and the run continues")
    checks = _checks(checks_of(method.action, step))
    parts = [Part("the step description", step.description.strip() or "(no description)"),
             Part("the expected output", expected, "Expected output:", rank=2)]
    if step.details:  # the Markdown's Description, Verification ... bullets, whole
        parts.append(Part("the step details", _bullets(d.strip() for d in step.details),
                           "From the Markdown spec:", rank=0))
    if checks:
        parts.append(Part("the checks", _bullets(checks), "The engine checks:", rank=1))
    parts.append(Part("", "", f"Critical: {critical}."))
    return Draft("step", f"Step {step_ref(task, step)}", parts)


def _checks(action: Action) -> list[str]:
    checks = [f"file `{f}` exists and is not empty" for f in action.expected_files or []]
    checks += [f"the command `{c}` exits with 0" for c in action.verify or []]
    if action.output_schema is not None:
        checks.append("your answer is a JSON object valid against the output schema below")
    if action.verify_with == "llm":
        checks.append("a reviewer compares your answer with the expected output")
    return checks


def _method(method: Method, rungs: list[Method], st: StepState | None) -> Draft:
    labels = [r.label for r in rungs]
    index = labels.index(method.label) if method.label in labels else 0
    earlier = labels[:index]
    attempts = st.round_attempts() if st is not None else []
    number = 1 + sum(1 for a in attempts if a.method == method.label and a.outcome)
    where = f"attempt {number} of {method.tries}"
    if method.backup_id is None:
        intro = (f"The primary method, {where}. It is the intended way to do this step: "
                 "attempt it as described.")
        title = "Method: primary"
    else:
        intro = (f"Backup {method.backup_id}, {where}: an alternative tried because the earlier "
                 f"method{'s' * (len(earlier) > 1)} failed ({', '.join(earlier)}). Take this "
                 "different approach; do not repeat what failed.")
        title = f"Method: backup {method.backup_id}"
    description = method.description.strip() or "(no description: use the step description)"
    parts = [Part("the method description", description, rank=1)]
    how = _how(method.action)
    if how:
        parts.append(Part("", "", f"The engine carries this method out as {how}.", rank=2))
    failed = [a for a in attempts if a.outcome is not None and a.outcome != "success"]
    if failed:
        parts.append(Part("the earlier failure reasons", _bullets(_failure(a) for a in failed),
                           "Earlier attempts of this step that failed (this round):", rank=0))
    elif earlier:
        why = "no run state" if st is None else "none in this round's log"
        parts.append(Part("", "", f"Earlier failure reasons: none recorded ({why})."))
    return Draft("method", title, parts, intro)


def _how(action: Action) -> str:
    kind = action.effective_method
    if kind == "command" and action.command:
        return f"a command: `{action.command}`"
    if kind == "python" and action.callable:
        return f"a Python callable: `{action.callable}`"
    if kind == "tool" and action.tool_path:
        return f"a tool: `{' '.join(filter(None, (action.tool_path, action.tool_args)))}`"
    return "" if kind == "cognitive" else f"a {kind} step"


def _failure(a: AttemptRecord) -> str:
    label = a.method.replace("_", " ")
    extra = " (transient)" if a.transient else ""
    return f"{label}, attempt {a.attempt}{extra}: {a.failure_reason or 'no reason recorded'}"


def _resolve_dep(spec: Spec, task: Task, dep: Any) -> str | None:
    """A ``depends_on`` entry as a step ref (the same rules as the plan's)."""
    if isinstance(dep, bool):
        return None
    text = str(dep).strip()
    if text.isdecimal():
        return f"{task.ref}.{int(text)}"
    other, _, number = text.rpartition(".")
    if number.isdecimal() and any(t.ref == other for t in spec.tasks):
        return f"{other}.{int(number)}"
    return None


def _inputs(spec: Spec, task: Task, step: Step, state: RunState | None,
            recent: int) -> Draft:
    pairs = {step_ref(t, s): (t, s) for t, s in spec.steps()}
    order = list(pairs)
    ref = step_ref(task, step)
    hidden: list[str] = []
    if step.depends_on:
        refs = [r for d in step.depends_on if (r := _resolve_dep(spec, task, d))]
        refs = sorted(dict.fromkeys(refs), key=lambda r: order.index(r) if r in order else 0)
        title = "Outputs of the steps this step depends on"
        empty = "The declared dependencies could not be found in the spec."
    else:
        before = order[: order.index(ref)] if ref in order else []
        refs = before[-recent:] if recent else []
        hidden = before[: len(before) - len(refs)]
        title = "Outputs of earlier steps"
        empty = "This is the first step of the run: there are no earlier outputs."
    parts = []
    for rank, dep in enumerate(refs):
        found = pairs.get(dep)
        description = _line(found[1].description) if found else "(not in this spec)"
        head, body = _outcome(state.steps.get(dep) if state is not None else None)
        parts.append(Part(f"the output of step {dep}", body,
                           f"### Step {dep}: {description}\n{head}", rank=rank))
    intro = empty if not refs else ""
    if hidden:
        intro = (f"{len(hidden)} earlier step{'s' * (len(hidden) != 1)} not shown "
                 f"({_shorten(hidden)}); the {len(refs)} most recent:")
    return Draft("inputs", title, parts, intro)


def _outcome(st: StepState | None) -> tuple[str, str]:
    """(status line, body) for a prior step."""
    if st is None or st.status == "pending":
        return "Status: not yet run.", ""
    if st.status == "skipped":
        return f"Status: skipped ({st.skip_reason or 'no reason recorded'}).", ""
    if st.status != "completed":
        reasons = [a.failure_reason for a in st.round_attempts() if a.failure_reason]
        why = st.message or (reasons[-1] if reasons else "")
        return f"Status: {st.status}" + (f": {why}" if why else "") + ".", ""
    method = f" (method: {st.method_used})" if st.method_used else ""
    match = "" if st.expected_output_match is not False else \
        " Its expected output was only partly met."
    lines = [f"Summary: {st.output_summary}"] if st.output_summary else []
    if st.output is not None:
        dumped = st.output if isinstance(st.output, str) else json.dumps(
            st.output, indent=2, ensure_ascii=False, default=str)
        lines.append(f"Output:\n{dumped}")
    return f"Status: completed{method}.{match}", "\n".join(lines) or "(no output recorded)"


def _shorten(refs: list[str], limit: int = 8) -> str:
    shown = ", ".join(refs[:limit])
    return shown + (f" and {len(refs) - limit} more" if len(refs) > limit else "")


def _research(task: Task, research: list[str] | None) -> Draft | None:
    findings = [r.strip() for r in research or [] if r.strip()]
    if not findings and not task.research_enabled:
        return None
    title = f"Research findings for task {task.ref}"
    if not findings:
        return Draft("research", title, [], "Research is enabled for this task, but the "
                      "research phase produced no findings.")
    parts = [Part(f"research finding {n}", f"- {text}", rank=len(findings) - n)
             for n, text in enumerate(findings, 1)]
    return Draft("research", title, parts, plural="research findings")


def _guidance(guidance: str | None) -> Draft | None:
    if not guidance or not guidance.strip():
        return None
    return Draft("guidance", "Human guidance", [Part("the human guidance", guidance.strip())],
                  "The human supervising this run says (follow it; it overrides the method "
                  "where they conflict):")


def _notes(notes: list[str] | None) -> Draft | None:
    items = [n.strip() for n in notes or [] if n.strip()]
    if not items:
        return None
    parts = [Part(f"notepad entry {n}", f"- {text}", rank=n)
             for n, text in enumerate(items, 1)]
    return Draft("notes", "Notepad insights so far", parts, plural="notepad entries")


def _answer(action: Action, step: Step, folder: Path | None) -> Draft:
    source = checks_of(action, step)
    if source.output_schema is None:
        body = ("Answer in plain text. Your final answer is this step's output: the expected "
                "output itself or, when it is a file, the path you wrote it to. Then, under a "
                "line `Decisions:`, say briefly what you did and why.\n"
                f"If you could not achieve the expected output, start your final answer with "
                f"`{FAILURE_PREFIX}` followed by the specific reason.")
        return Draft("answer", "Answer format", [Part("the answer format", body)])
    schema: Any = source.output_schema
    note = ""
    if isinstance(schema, str):
        try:
            schema = load_schema(schema, folder) if folder is not None else None
        except (OSError, ValueError) as exc:
            note, schema = f" (the schema file `{source.output_schema}` cannot be read: {exc})", \
                None
        if schema is None:
            note = note or f" (in the file `{source.output_schema}`)"
    intro = ("Your final answer must be one JSON object and nothing else (no prose, no code "
             f"fence), valid against this JSON Schema{note}:")
    parts = []
    if schema is not None:
        dumped = json.dumps(schema, indent=2, ensure_ascii=False, default=str)
        parts.append(Part("the output schema", f"```json\n{dumped}\n```"))
    parts.append(Part("", "", f"If you cannot produce it, answer `{FAILURE_PREFIX} <the "
                               "specific reason>` instead.", rank=1))
    return Draft("answer", "Answer format", parts, intro)


# --- what the run state knows ---------------------------------------------------------------


def _state_guidance(state: RunState, ref: str) -> str | None:
    """The latest guidance a human gave for this step (as the run loop reads it)."""
    guidance = None
    for gate in state.gates.values():
        if gate.step != ref or gate.response is None:
            continue
        verb, _, arg = gate.response.partition(":")
        if verb == "guidance":
            guidance = gate.guidance or arg or guidance
    return guidance


def _state_notes(state: RunState) -> list[str]:
    """The notepad entries of the run so far, oldest first."""
    out = []
    for note in state.notes:
        where = f"task {note.task}" + (f", step {note.step}" if note.step else "")
        for kind, items in (("insight", note.insights), ("technical", note.technical_notes),
                            ("idea", note.ideas), ("human", note.human)):
            out += [f"({where}) {kind}: {item}" for item in items]
    return out


def research_findings(state: RunState, task_ref: str) -> list[str] | None:
    """The findings of the task's research phase (the key findings, then one line with the
    confidence and the sources consulted), or None when it has not run or found nothing."""
    found = state.research.get(task_ref)
    if found is None or found.status != "done" or not found.key_findings:
        return None
    sources = ", ".join(found.sources) or "none named"
    return [*found.key_findings,
            f"(research confidence: {found.confidence or 'not stated'}; sources consulted: "
            f"{sources})"]
