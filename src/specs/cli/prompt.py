"""The ``specs prompt`` command: the prompt one step's attempt would send to the model.

Registered on :data:`specs.cli.common.app`; see that module for the exit codes. There is no run, so
prior steps show as "not yet run" and there are no failure reasons, guidance or notes; the
project's prohibited actions come from the spec's project constitution. A spec that cannot be
loaded exits 1 with its errors; an unknown step or method exits 2 with one line naming the
valid ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from specs.cli.common import EXIT_INVALID, _err, _render, app
from specs.errors import UsageError
from specs.spec.load import load_spec
from specs.spec.model import Spec, Step, Task

if TYPE_CHECKING:
    from specs.engine.policy import Method
    from specs.llm.prompt import Prompt


@app.command("prompt")
def prompt_cmd(
    path: Annotated[Path, typer.Argument(help="A spec folder or parameters file.")],
    step: Annotated[str, typer.Argument(help="The step, as TASK.STEP (e.g. 1.2).",
                                        show_default=False)],
    method_label: Annotated[str, typer.Option(
        "--method", help="The method being tried: primary or backup_N.")] = "primary",
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the prompt and its sections as JSON.")] = False,
) -> None:
    """Print the prompt a step's attempt sends to the model (system, then user).

    Exit code 0 when printed, 1 when the spec cannot be loaded, 2 for an unknown step or
    method or a missing path.
    """
    from specs.llm.prompt import build_prompt, guardrails_of, step_ref
    loaded = load_spec(path)
    if loaded.spec is None:
        for d in loaded.errors or loaded.diagnostics:
            _err().print(_render(d), markup=False)
        raise typer.Exit(EXIT_INVALID)
    spec = loaded.spec
    task, found = find_step(spec, step)
    method = find_method(found, method_label, step_ref(task, found))
    prompt = build_prompt(spec, task, found, method=method, guardrails=guardrails_of(
        loaded.project), spec_folder=Path(task.folder) if task.folder else loaded.folder)
    if as_json:
        typer.echo(json.dumps({"step": step_ref(task, found), "method": method.label,
                               **prompt.to_dict()}, indent=2, ensure_ascii=False))
        return
    typer.echo(render_text(prompt))
    cut = f"{prompt.truncated_chars:,} characters cut" if prompt.truncated_chars else "nothing cut"
    _err().print(f"prompt of step {step_ref(task, found)} ({method.label}): "
                 f"{prompt.chars:,} characters, {cut}", markup=False)


def render_text(prompt: Prompt) -> str:
    return f"=== system ===\n{prompt.system}\n\n=== user ===\n{prompt.user}"


def find_step(spec: Spec, ref: str) -> tuple[Task, Step]:
    """The (task, step) named ``ref``, or :class:`UsageError` listing the valid refs."""
    from specs.llm.prompt import step_ref
    wanted = ref.strip()
    pairs = [(step_ref(t, s), t, s) for t, s in spec.steps()]
    for name, task, step in pairs:
        if name == wanted:
            return task, step
    refs = [name for name, _, _ in pairs]
    shown = ", ".join(refs[:12]) + (f" ... ({len(refs)} in all)" if len(refs) > 12 else "")
    raise UsageError(f"unknown step {ref!r}; valid steps: {shown or '(the spec has none)'}")


def find_method(step: Step, label: str, ref: str) -> Method:
    from specs.engine.policy import ladder
    methods = ladder(step)
    for method in methods:
        if method.label == label.strip():
            return method
    valid = ", ".join(r.label for r in methods)
    raise UsageError(f"unknown method {label!r} for step {ref}; valid methods: {valid}")
