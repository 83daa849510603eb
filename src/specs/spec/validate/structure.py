"""The shape of the spec (reference 1.4-1.7): the goal, the tasks, the steps, their actions
and backups."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from specs.diagnostics import Diagnostic, Severity
from specs.spec.compose import task_folder
from specs.spec.model import Step
from specs.spec.normalize import expected_trigger
from specs.spec.sources import DocPath
from specs.spec.validate.base import (
    _ID,
    Checker,
    _has_action,
    _norm,
)

BACKUP_AS_RETRY = re.compile(r"^\s*(try again|retry|repeat)\b", re.I)
NO_BACKUP_HINT = "add [[tasks.steps.backups]] with an alternative method"


class StructureChecks(Checker):
    """Goal, tasks, steps, actions and backups (reference 1.4-1.7)."""

    def check_goal(self) -> Iterable[Diagnostic]:
        if not self.goal.strip():
            yield self.error("E-GOAL-MISSING", "the spec has no goal",
                             ("goal",), "set [goal] description = \"...\"")
        md = self.loaded.markdown
        if md and md.goal and self.goal and _norm(md.goal) != _norm(self.goal):
            yield self.diag(Severity.WARNING, "W-GOAL-DRIFT",
                            "the goal in the Markdown differs from [goal] in the TOML",
                            ("goal", "description"), "make the two say the same")

    def check_tasks(self) -> Iterable[Diagnostic]:
        tasks = self.spec.tasks
        if not tasks:
            yield self.error("E-NO-TASKS", "the spec has no tasks", (),
                             "add [[tasks]] with [[tasks.steps]]")
            return
        counts = Counter(task.ref for task in tasks)
        for ti, task in enumerate(tasks):
            path: DocPath = ("tasks", ti)
            if counts[task.ref] > 1:
                yield self.error("E-DUP-TASK", f"task id {task.ref} is used "
                                 f"{counts[task.ref]} times", (*path, "id"),
                                 "give every task its own id")
                counts[task.ref] = 0
            if not task.description.strip():
                yield self.error("E-TASK-DESC", f"task {task.ref} has no description", path,
                                 "add `description = \"...\"`")
            if not task.steps:
                yield self.error("E-TASK-EMPTY", f"task {task.ref} has no steps", path,
                                 "add [[tasks.steps]] to it")
        if len(tasks) > 20:
            yield self.rule("W-TASKS-MANY", f"{len(tasks)} tasks; more than 20 is hard to "
                            "follow", ("tasks",), "split the spec or group tasks in SPECLets")

    def check_steps(self) -> Iterable[Diagnostic]:
        check_outputs = self.spec.verification.check_expected_outputs
        for ti, task in enumerate(self.spec.tasks):
            counts = Counter(map(_ID, task.steps))
            task_ref = task.ref
            repeated = {id_ for id_, count in counts.items() if count > 1}
            for si, step in enumerate(task.steps):
                if (not repeated or step.id not in repeated) and step.description.strip() and not (
                        check_outputs and not (step.expected_output or "").strip()) and \
                        _plain_action(step):
                    continue  # nothing below would report (the common case, told cheaply)
                path: DocPath = ("tasks", ti, "steps", si)
                ref = f"{task_ref}.{step.id}"
                if counts[step.id] > 1:
                    yield self.error("E-DUP-STEP", f"step id {step.id} is used "
                                     f"{counts[step.id]} times in task {task_ref}",
                                     (*path, "id"), "give every step of a task its own id")
                    counts[step.id] = 0
                if not step.description.strip() and not _has_action(step):
                    yield self.error("E-STEP-ACTION", f"step {ref} says nothing to do", path,
                                     "add `description = \"...\"` (or a command)")
                if check_outputs and not (step.expected_output or "").strip():
                    yield self.rule("W-EXPECTED-MISSING", f"step {ref} has no expected output",
                                    path, "add `expected_output = \"...\"`")
                yield from self.action(step, path, ref)

    def action(self, action: Any, path: DocPath, ref: str) -> list[Diagnostic]:
        """What is wrong with a step's or backup's action (a list: called once per step)."""
        found: list[Diagnostic] = []
        method = action.execution_method
        if method == "command" and not action.command:
            found.append(self.error("E-ACTION", f"{ref}: execution_method is 'command' but no "
                                    "command is given", path, "add `command = \"...\"`"))
        if method == "python" and not action.callable:
            found.append(self.error("E-ACTION", f"{ref}: execution_method is 'python' but no "
                                    "callable is given", path,
                                    "add `callable = \"module:function\"`"))
        if method in ("tool", "script") and not action.tool_path and not action.command:
            found.append(self.diag(Severity.WARNING, "W-ACTION-TOOL",
                                   f"{ref}: execution_method is '{method}' but no tool_path is "
                                   "given; it runs as a cognitive step", path,
                                   "add `tool_path = \"...\"`"))
        if action.callable and ":" not in action.callable:
            found.append(self.error("E-ACTION", f"{ref}: callable {action.callable!r} is not "
                                    "'module:function'", (*path, "callable")))
        schema = action.output_schema
        if not isinstance(schema, str):
            return found
        folder = self.loaded.folder
        if len(path) > 1 and isinstance(path[1], int) and path[0] == "tasks":

            folder = task_folder(self.loaded, self.spec.tasks[path[1]])
        if not (folder / schema).is_file():
            found.append(self.error("E-SCHEMA-MISSING", f"{ref}: output_schema file {schema!r} "
                                    "does not exist", (*path, "output_schema")))
        return found

    def check_backups(self) -> Iterable[Diagnostic]:
        check_triggers = self.spec.verification.validate_backup_trigger_conditions
        limit = 2
        if self.loaded.project:
            value = self.loaded.project.get("backups.max_backups_per_step")
            limit = value if isinstance(value, int) and value >= 0 else 2
        coverage = self.spec.verification.validate_backup_coverage
        at = self.loaded.sources.at
        for ti, task in enumerate(self.spec.tasks):
            task_ref = task.ref
            for si, step in enumerate(task.steps):
                if step.backups:
                    yield from self.backups(task_ref, step, ("tasks", ti, "steps", si), limit,
                                            check_triggers)
                elif step.critical_flag and coverage:
                    # a rule (self.rule), made here directly: big specs have one per step
                    yield Diagnostic(Severity.WARNING, "W-CRIT-NO-BACKUP",
                                     f"critical step {task_ref}.{step.id} has no backup",
                                     at(("tasks", ti, "steps", si)), NO_BACKUP_HINT, True)

    def backups(self, task_ref: str, step: Step, path: DocPath, limit: int,
                check_triggers: bool) -> Iterable[Diagnostic]:
        """The backups of one step that has some: ids, triggers, alternatives, count."""
        ref = f"{task_ref}.{step.id}"
        counts = Counter(b.id for b in step.backups)
        previous: int | None = None
        for bi, backup in sorted(enumerate(step.backups), key=lambda p: p[1].id):
            bpath = (*path, "backups", bi)
            bref = f"{ref} backup {backup.id}"
            if counts[backup.id] > 1:
                yield self.error("E-DUP-BACKUP", f"backup id {backup.id} is used "
                                 f"{counts[backup.id]} times in step {ref}",
                                 (*bpath, "id"), "number backups 1, 2, ...")
                counts[backup.id] = 0
            if not backup.description.strip() and not _has_action(backup):
                yield self.error("E-BACKUP-DESC", f"{bref} has no description", bpath,
                                 "describe the alternative method")
            want = "primary_failure" if previous is None else expected_trigger(previous + 1)
            if check_triggers and backup.trigger_condition != want:
                yield self.error("E-BACKUP-TRIGGER",
                                 f"{bref} has trigger_condition "
                                 f"{backup.trigger_condition!r}, expected {want!r}",
                                 (*bpath, "trigger_condition"),
                                 "backups run in id order: backup 1 on primary_failure, "
                                 "backup k+1 on backup_k_failure")
            text = backup.description.strip()
            primary = (step.primary_method or step.description).strip()
            if text and (BACKUP_AS_RETRY.match(text) or text == primary):
                yield self.diag(Severity.WARNING, "W-BACKUP-RETRY",
                                f"{bref} repeats the primary method instead of offering "
                                "an alternative (Art. VII)", (*bpath, "description"),
                                "describe a different way to reach the expected output")
            yield from self.action(backup, bpath, bref)
            previous = backup.id
        if len(step.backups) > limit:
            yield self.rule("W-BACKUPS-MANY", f"step {ref} has {len(step.backups)} backups; "
                            f"at most {limit} (Art. II)", (*path, "backups"))


def _plain_action(action: Any) -> bool:
    """True when :meth:`StructureChecks.action` has nothing to report on ``action`` (a step or
    backup): the common case, told without making the step's ref and path. Keep the two in
    step."""
    method, call = action.execution_method, action.callable
    if call:
        if ":" not in call:
            return False  # not 'module:function'
    elif method == "python":
        return False  # python without a callable
    if not action.command and (method == "command" or (
            method in ("tool", "script") and not action.tool_path)):
        return False  # command without a command; tool or script without a tool
    return not isinstance(action.output_schema, str)  # a schema file to look for
