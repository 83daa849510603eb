"""Pre-flight validation: the checks of reference §3.2 plus our own keys.

:func:`validate` takes a :class:`~specs.spec.load.LoadedSpec` and returns every diagnostic at once
(the loader's own plus these checks), sorted by file and line. It never raises on bad input.

Two strictness levels (SPEC_FORMAT.md §1.2). Structural problems are errors: duplicate ids,
unknown references, dependency cycles, mismatched backup triggers, no tasks, leftover
placeholders. The constitution's quality rules (software stack for build goals, counts, critical
balance, critical steps without backups, the "for <users>" rule, missing expected outputs) are
warnings marked ``strict``; ``strict=True`` (``--strict`` or ``[validation] strict = true`` in the
project constitution) turns them into errors, as the original constitution demands.

Codes are stable: ``E-*`` errors, ``W-*`` warnings, ``I-*`` info. docs/validation.md lists them.
"""

from __future__ import annotations

import dataclasses
import functools
import graphlib
import operator
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

from specs.diagnostics import RANKS, Diagnostic, Location, Severity
from specs.spec import conditions as cond
from specs.spec.compose import (
    OWN_VIEW_SKIPS,
    ComposedSources,
    IncludedSpec,
    _copy,
    task_folder,
)
from specs.spec.files import LoadedSpec
from specs.spec.mcp_servers import McpConfigError, config_problems, find_servers
from specs.spec.model import Spec, Step, Task
from specs.spec.normalize import expected_trigger
from specs.spec.project import critical_range, inherits
from specs.spec.sources import DocPath, SourceMap
from specs.spec.steporder import run_index

__all__ = ["BUILD_GOAL", "FOR_USERS", "is_strict", "placeholder", "validate"]

BUILD_GOAL = re.compile(r"\b(build|create|develop|system|application|app)\b", re.I)
FOR_USERS = re.compile(
    r"\bfor\s+(?:[\w'-]+\s+){0,5}?(users?|people|customers?|clients?|volunteers?|staff|"
    r"students?|teachers?|developers?|patients?|admins?|administrators?|employees?|members?|"
    r"shoppers?|visitors?|players?|teams?|engineers?|researchers?|owners?|managers?|operators?|"
    r"listeners?|readers?|children|families|everyone|anyone|humans?|doctors?|nurses?|"
    r"clinicians?|volunteer|workers?|buyers?|sellers?|creators?|designers?|analysts?|"
    r"non-technical)\b", re.I)
EXTERNAL_API = re.compile(r"\b(api|apis|external service|third[- ]party|integration)\b", re.I)
# Placeholders are flagged only in the forms a template leaves, never as a word in prose
# ("search comments for FIXME/HACK/TODO" is a real step): the original template's slots
# anywhere in a text, a "<insert ...>" slot, "TODO:" opening a value, or a whole value that is
# one slot ("[descriptor]", "<goal>", "TODO", "TBD", "...").
PLACEHOLDER = re.compile(
    r"\[(?:Insert\b[^\]]*|Task \w+ description|Step \w+ action|Expected output description|"
    r"Backup method[^\]]*)\]"
    r"|<(?:insert|your|describe|enter|add|fill in|replace|placeholder)\b[^<>\n]{0,60}>"
    r"|^\s*(?:TODO|FIXME|TBD|XXX)\s*:", re.I | re.M)
WHOLE_PLACEHOLDER = re.compile(
    r"\s*(?:\[[A-Za-z][\w .,'/-]{0,60}\]|<[A-Za-z][\w .,'/-]{0,60}>|TODO|TBD|FIXME|XXX|\.\.\.|…)"
    r"\s*", re.I)
_MAYBE_PLACEHOLDER = re.compile(r"[\[<…]|\.\.\.|todo|tbd|fixme|xxx", re.I)
BACKUP_AS_RETRY = re.compile(r"^\s*(try again|retry|repeat)\b", re.I)
_CRITICAL = operator.attrgetter("critical_flag")
_DESCRIPTION = operator.attrgetter("description")
_ID = operator.attrgetter("id")
_EXPECTED = operator.attrgetter("expected_output")
NO_BACKUP_HINT = "add [[tasks.steps.backups]] with an alternative method"
NEEDS_PACKAGING = {"desktop_app", "mobile", "cli"}
DEPLOYED_APPS = {"desktop_app", "web_app"}


def is_strict(loaded: LoadedSpec, strict: bool = False) -> bool:
    """``--strict``, or ``[validation] strict = true`` in the project constitution."""
    return strict or bool(loaded.project and loaded.project.get("validation.strict") is True)


def validate(loaded: LoadedSpec, strict: bool = False) -> list[Diagnostic]:
    """All diagnostics for ``loaded``: the loader's and the pre-flight checks', sorted."""
    found = list(loaded.diagnostics)
    if loaded.spec is not None:
        found += Checks(loaded).run()
    if is_strict(loaded, strict):
        found = [d.escalated() if d.strict and d.severity is Severity.WARNING else d
                 for d in found]
    return _sorted_unique(found)


def _sorted_unique(found: list[Diagnostic]) -> list[Diagnostic]:
    """``found`` without repeats (the first of equal diagnostics stays), sorted by file, line,
    column, severity and code; ties keep their order.

    Equal diagnostics have equal sort keys, so after a stable sort every repeat sits in the run
    of its key, behind its first: only runs of two or more need comparing, and the thousands
    of one-of-a-kind diagnostics of a big spec are never hashed.
    """
    ranks = RANKS
    keys = [(d.location.file, d.location.line, d.location.col, ranks[d.severity._value_],
             d.code) for d in found]
    result: list[Diagnostic] = []
    run: list[Diagnostic] = []
    previous: object = None
    for index in sorted(range(len(found)), key=keys.__getitem__):
        key, diagnostic = keys[index], found[index]
        if key != previous:
            previous, run = key, [diagnostic]
        elif diagnostic in run:
            continue
        else:
            run.append(diagnostic)
        result.append(diagnostic)
    return result


class Checks:
    """The pre-flight rules over one loaded spec; each ``check_*`` method yields diagnostics."""

    def __init__(self, loaded: LoadedSpec) -> None:
        assert loaded.spec is not None
        self.loaded = loaded
        self.spec: Spec = loaded.spec
        self.out: list[Diagnostic] = []

    def run(self) -> list[Diagnostic]:
        for name in CHECK_NAMES:
            self.out.extend(getattr(self, name)())
        return self.out

    # -- helpers -----------------------------------------------------------------------------

    def at(self, path: DocPath) -> Location:
        return self.loaded.sources.at(path)

    def diag(self, severity: Severity, code: str, message: str, path: DocPath,
             hint: str = "", strict: bool = False) -> Diagnostic:
        return Diagnostic(severity, code, message, self.at(path), hint, strict)

    def error(self, code: str, message: str, path: DocPath, hint: str = "") -> Diagnostic:
        return self.diag(Severity.ERROR, code, message, path, hint)

    def rule(self, code: str, message: str, path: DocPath, hint: str = "") -> Diagnostic:
        """A constitution quality rule: a warning that ``--strict`` makes an error."""
        return self.diag(Severity.WARNING, code, message, path, hint, strict=True)

    def steps(self) -> Iterator[tuple[int, Task, int, Step, DocPath]]:
        for ti, task in enumerate(self.spec.tasks):
            for si, step in enumerate(task.steps):
                yield ti, task, si, step, ("tasks", ti, "steps", si)

    @property
    def goal(self) -> str:
        return self.spec.goal.description or ""

    @property
    def build_goal(self) -> bool:
        return bool(BUILD_GOAL.search(self.goal))

    # -- 1.4 goal, 1.5 tasks, 1.6 steps, 1.7 backups ------------------------------------------

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

    # -- Art. II counts, Art. VI balance, Art. V placeholders ---------------------------------

    def check_counts(self) -> Iterable[Diagnostic]:
        tasks = self.spec.tasks
        if self.spec.speclets:
            for si, speclet in enumerate(self.spec.speclets):
                if speclet.tasks and not 2 <= len(speclet.tasks) <= 5:
                    yield self.rule("W-COUNT-TASKS", f"SPECLet {speclet.id} has "
                                    f"{len(speclet.tasks)} tasks; Art. II asks for 2-5",
                                    ("speclets", si))
        elif tasks and not 2 <= len(tasks) <= 5:
            yield self.rule("W-COUNT-TASKS", f"{len(tasks)} tasks; Art. II asks for 2-5",
                            ("tasks",), "split or merge tasks, or group them in SPECLets")
        for ti, task in enumerate(tasks):
            if len(task.steps) > 5:
                yield self.rule("W-COUNT-STEPS", f"task {task.ref} has {len(task.steps)} steps;"
                                " Art. II asks for 1-5", ("tasks", ti),
                                "split the task")

    @functools.cached_property
    def critical_counts(self) -> list[int]:
        """How many steps of each task are critical."""
        return [sum(map(_CRITICAL, task.steps)) for task in self.spec.tasks]

    def check_critical_balance(self) -> Iterable[Diagnostic]:
        total = self.spec.step_count()
        if not total:
            return
        critical = sum(self.critical_counts)
        low, high = self.critical_range()
        ratio = critical / total
        if not low <= ratio <= high:
            yield self.rule("W-CRIT-BALANCE", f"{critical} of {total} steps are critical "
                            f"({ratio:.0%}); the range is {low:.0%}-{high:.0%} (Art. VI)",
                            ("tasks",), "review which steps really block the goal")
        for ti, (task, c) in enumerate(zip(self.spec.tasks, self.critical_counts, strict=True)):
            n = len(task.steps)
            if n > 1 and c in (0, n):
                yield self.rule("W-CRIT-TASK", f"task {task.ref}: {'all' if c else 'none'} of "
                                f"its {n} steps are critical (Art. VI)", ("tasks", ti))

    def critical_range(self) -> tuple[float, float]:
        return critical_range(self.spec, self.loaded.project)

    def inherits(self, project_key: str) -> bool:
        return inherits(self.spec, project_key)

    def check_placeholders(self) -> Iterable[Diagnostic]:
        if _placeholder_free(self.spec):
            return
        for path, text in _texts(self.spec):
            found = placeholder(text)
            if found:
                yield self.error("E-PLACEHOLDER", f"leftover template placeholder "
                                 f"{found!r} (Art. V)", path, "replace it with the real text")

    # -- 1.1a build goals (Art. XIV) -------------------------------------------------------------

    def check_build_goal(self) -> Iterable[Diagnostic]:
        if not self.build_goal:
            return
        stack = self.spec.software_stack
        word = BUILD_GOAL.search(self.goal)
        keyword = word.group(0) if word else "build"
        missing = [key for key in ("deployment_type", "primary_language")
                   if not _filled(getattr(stack, key, None) if stack else None)]
        if missing:
            yield self.rule("W-STACK", f"the goal says '{keyword}' but [software_stack] lacks "
                            f"{' and '.join(missing)} (Art. XIV, P-STACK)",
                            ("software_stack",) if stack else ("goal",),
                            "name the deployment type and primary language")
        kind = (stack.deployment_type or "").lower() if stack else ""
        if kind in NEEDS_PACKAGING and not _filled(stack.packaging_method if stack else None):
            yield self.rule("W-STACK", f"deployment_type '{kind}' needs packaging_method",
                            ("software_stack",), "set packaging_method (or \"none\")")
        if kind in DEPLOYED_APPS:
            deployment = self.spec.deployment
            lacking = [k for k in ("target_platform", "installation_type", "startup_method")
                       if not _filled(getattr(deployment, k, None) if deployment else None)]
            if lacking:
                yield self.rule("W-DEPLOYMENT", f"deployment_type '{kind}' needs [deployment] "
                                f"{', '.join(lacking)}", ("deployment",) if deployment else
                                ("software_stack", "deployment_type"))
        yield from self.completion()

    def completion(self) -> Iterable[Diagnostic]:
        criteria = self.spec.completion_criteria
        ui = self.spec.user_interface
        if criteria is None:
            yield self.rule("W-COMPLETION", "a build goal needs [completion_criteria] "
                            "(Art. XIV)", ("goal",), "list at least 3 acceptance_criteria")
            return
        flags = [k for k in ("production_ready", "user_tested", "functional_complete",
                             "interface_complete", "deployment_complete",
                             "documentation_complete") if getattr(criteria, k) is True]
        count = len(criteria.acceptance_criteria or []) + len(flags) + len(
            criteria.core_features or []) + len(criteria.quality_standards or [])
        if count < 3:
            yield self.rule("W-COMPLETION", f"[completion_criteria] has {count} criteria; at "
                            "least 3 are needed (Art. XIV)", ("completion_criteria",))
        if ui is not None and ui.required and criteria.interface_complete is None:
            yield self.rule("W-COMPLETION", "the UI is required but interface_complete is not "
                            "among the completion criteria", ("completion_criteria",))
        if EXTERNAL_API.search(self.goal) and criteria.production_ready is None:
            yield self.rule("W-COMPLETION", "the goal mentions external APIs but "
                            "production_ready is not set", ("completion_criteria",))

    def check_user_interface(self) -> Iterable[Diagnostic]:
        ui = self.spec.user_interface
        match = FOR_USERS.search(self.goal)
        if match and not (ui and ui.required):
            yield self.rule("W-UI-USERS", f"the goal is '{match.group(0)}' but "
                            "[user_interface] required is not true (Art. XIV)",
                            ("user_interface",) if ui else ("goal",),
                            "set required = true and describe the interface")
        if ui is not None and ui.required:
            lacking = [k for k in ("interface_type", "target_users", "skill_level")
                       if not _filled(getattr(ui, k))]
            if lacking:
                yield self.rule("W-UI-FIELDS", f"[user_interface] is required but lacks "
                                f"{', '.join(lacking)}", ("user_interface",))

    # -- references: depends_on, SPECLets, transitions, includes --------------------------------

    def check_dependencies(self) -> Iterable[Diagnostic]:
        tasks_by_ref = {task.ref: task for task in self.spec.tasks}
        if len(tasks_by_ref) == len(self.spec.tasks) and not any(
                task.depends_on for task in self.spec.tasks) and all(
                _depends_backwards(task) for task in self.spec.tasks):
            return  # nothing unknown, nothing on itself, and no cycle can form
        graph: dict[str, set[str]] = {}
        where: dict[str, DocPath] = {}
        # Cycles can only run through declared edges: a task's start/end nodes are needed only
        # when some task declares depends_on (then every step hangs between them).
        task_level = any(task.depends_on for task in self.spec.tasks)
        # step id -> node name, per task: an int depends_on entry resolves by one lookup
        names = [{step.id: f"{task.ref}.{step.id}" for step in task.steps}
                 for task in self.spec.tasks]
        # Every node gets a rank (its first place in the spec); while each edge goes to a lower
        # rank, as in any spec whose steps depend on earlier ones, there can be no cycle.
        rank = {name: i for i, name in enumerate(dict.fromkeys(
            name for nodes in names for name in nodes.values()))}
        forward = not task_level
        for ti, task in enumerate(self.spec.tasks):
            start, end = f"task {task.ref} start", f"task {task.ref}"
            if task_level:
                graph.setdefault(start, set())
                graph.setdefault(end, set())
            for dep in task.depends_on or []:
                target = tasks_by_ref.get(str(dep))
                if target is None:
                    yield self.error("E-DEP-UNKNOWN", f"task {task.ref} depends on task {dep}, "
                                     "which does not exist", ("tasks", ti, "depends_on"))
                else:
                    graph[start].add(f"task {target.ref}")
                    where.setdefault(start, ("tasks", ti, "depends_on"))
            nodes = names[ti]
            for si, step in enumerate(task.steps):
                if not task_level and not step.depends_on:
                    continue
                node = nodes[step.id]
                node_rank = rank[node]
                if task_level:
                    graph.setdefault(node, set()).add(start)
                    graph[end].add(node)
                edges: set[str] | None = None
                for dep in step.depends_on or []:
                    if type(dep) is int:
                        target_node = nodes.get(dep)
                    else:
                        target_node = _step_ref(dep, task, nodes.keys(), tasks_by_ref)
                    if target_node is None:
                        yield self.error("E-DEP-UNKNOWN", f"step {node} depends on {dep!r}, "
                                         "which is not a step of this spec",
                                         ("tasks", ti, "steps", si, "depends_on"),
                                         "use a step id of the same task or \"task.step\"")
                    elif target_node == node:
                        yield self.error("E-DEP-SELF", f"step {node} depends on itself",
                                         ("tasks", ti, "steps", si, "depends_on"))
                    else:
                        if edges is None:
                            edges = graph.setdefault(node, set())
                            where.setdefault(node, ("tasks", ti, "steps", si, "depends_on"))
                        edges.add(target_node)
                        if forward and rank.get(target_node, node_rank) >= node_rank:
                            forward = False
        if not forward:
            yield from self.cycle(graph, where, "E-DEP-CYCLE", "dependency cycle")

    def cycle(self, graph: dict[str, set[str]], where: dict[str, DocPath], code: str,
              what: str) -> Iterable[Diagnostic]:
        if _acyclic(graph):
            return
        try:
            graphlib.TopologicalSorter(graph).prepare()
        except graphlib.CycleError as exc:
            nodes = [str(n) for n in exc.args[1]][::-1]  # first == last
            shown = [n for n in nodes[:-1] if not n.endswith(" start")]
            shown += shown[:1]  # close the loop even when it passes a task's start
            first = next((n for n in nodes if n in where), nodes[0])
            yield self.error(code, f"{what}: {' -> '.join(shown)}", where.get(first, ()),
                             "remove one of these dependencies")

    def check_speclets(self) -> Iterable[Diagnostic]:
        speclets = self.spec.speclets
        if not speclets:
            return
        ids = [str(s.id) for s in speclets]
        counts = Counter(ids)
        task_refs = {task.ref for task in self.spec.tasks}
        task_ids = {str(task.id) for task in self.spec.tasks}
        owners: dict[str, list[str]] = {}
        graph: dict[str, set[str]] = {}
        where: dict[str, DocPath] = {}
        for si, speclet in enumerate(speclets):
            sid, path = str(speclet.id), ("speclets", si)
            if counts[sid] > 1:
                yield self.error("E-DUP-SPECLET", f"SPECLet id {sid} is used {counts[sid]} "
                                 "times", (*path, "id"))
                counts[sid] = 0
            graph.setdefault(sid, set())
            for dep in speclet.depends_on:
                if str(dep) == sid:
                    yield self.error("E-SPECLET-SELF", f"SPECLet {sid} depends on itself",
                                     (*path, "depends_on"))
                elif str(dep) not in counts:
                    yield self.error("E-SPECLET-UNKNOWN", f"SPECLet {sid} depends on {dep!r}, "
                                     "which is not a SPECLet", (*path, "depends_on"))
                else:
                    graph[sid].add(str(dep))
                    where.setdefault(sid, (*path, "depends_on"))
            if not speclet.tasks and not speclet.spec:
                yield self.diag(Severity.WARNING, "W-SPECLET-EMPTY", f"SPECLet {sid} has no "
                                "tasks", path)
            for listed in speclet.tasks:
                ref = f"{sid}.{listed}" if f"{sid}.{listed}" in task_refs else str(listed)
                if ref not in task_refs and str(listed) not in task_ids:
                    yield self.error("E-SPECLET-TASK", f"SPECLet {sid} lists task {listed}, "
                                     "which does not exist", (*path, "tasks"))
                owners.setdefault(ref, []).append(sid)
        for ti, task in enumerate(self.spec.tasks):
            claimed = owners.get(task.ref, owners.get(str(task.id), []))
            if len(claimed) != 1:
                yield self.error("E-SPECLET-ASSIGN", f"task {task.ref} belongs to "
                                 f"{len(claimed)} SPECLets; each task belongs to exactly one",
                                 ("tasks", ti))
        yield from self.cycle(graph, where, "E-SPECLET-CYCLE", "SPECLet dependency cycle")
        if len(speclets) == 1:
            yield self.diag(Severity.WARNING, "W-SPECLET-SINGLE", "only one SPECLet; the "
                            "plain task structure is simpler", ("speclets",))
        if all(s.parallel_allowed is False for s in speclets) and len(speclets) > 1:
            yield self.diag(Severity.WARNING, "W-SPECLET-SERIAL", "no SPECLet allows parallel "
                            "execution", ("speclets",))
        depth = _depth(graph)
        if depth > 4:
            yield self.diag(Severity.WARNING, "W-SPECLET-DEEP", f"the SPECLet dependency chain "
                            f"is {depth} deep (more than 4)", ("speclets",))

    def check_transitions(self) -> Iterable[Diagnostic]:
        refs = {task.ref for task in self.spec.tasks}
        for i, transition in enumerate(self.spec.transitions or []):
            for key in ("from_task", "to_task"):
                value = str(getattr(transition, key))
                if value not in refs:
                    yield self.error("E-TRANSITION-TASK", f"transition {key} = {value!r} is "
                                     "not a task of this spec", ("transitions", i, key))

    def check_includes(self) -> Iterable[Diagnostic]:
        """A composed spec (specs.spec.compose): the root's Markdown against its own tasks, and each
        included spec checked on its own tasks, with its own files. The include problems
        (missing, cycle, alias, shared) are the loader's: they are in the loaded diagnostics."""
        yield from included_diagnostics(self.loaded)

    def check_conditions(self) -> Iterable[Diagnostic]:
        """Every task/step ``condition`` and ``[[transitions]] when`` parses (E-COND-SYNTAX) and
        reads only steps that exist (E-COND-REF) and run before it (E-COND-ORDER), fields the
        step's inline ``output_schema`` allows (E-/W-COND-FIELD) with operand types that fit
        (E-COND-TYPE), and ``vars`` that ``[vars]`` defines (W-COND-VAR). docs/conditions.md
        defines "runs before"; locations point at the offending character when they can."""

        tasks, files = self.spec.tasks, dict[str, list[str]]()
        by_ref = {task.ref: task for task in tasks}
        found: list[tuple[DocPath, str, int, Any]] = []  # (path, text, task index, reader)
        for ti, task in enumerate(tasks):
            if task.condition:
                found.append((("tasks", ti, "condition"), task.condition, ti, None))
            found += [(("tasks", ti, "steps", si, "condition"), step.condition, ti, step)
                      for si, step in enumerate(task.steps) if step.condition]
        for i, item in enumerate(self.spec.transitions or []):
            origin = by_ref.get(str(item.from_task))
            if item.when and origin is not None:
                at = next(ti for ti, task in enumerate(tasks) if task is origin)
                found.append((("transitions", i, "when"), item.when, at, "end"))
        if not found:
            return
        steps = {f"{t.ref}.{s.id}": (ti, s) for ti, t in reversed(list(enumerate(tasks)))
                 for s in reversed(t.steps)}  # reversed: the first of duplicates wins
        task_ids = {t.ref: {x.id for x in t.steps} for t in tasks}
        deps = {f"{t.ref}.{s.id}": {r for d in s.depends_on or [] if (r := _step_ref(
            d, t, task_ids[t.ref], by_ref))} for t in tasks for s in t.steps}

        def upstream(node: str) -> set[str]:  # depends_on, directly or transitively
            seen, todo = set[str](), [node]
            while todo:
                new = deps.get(todo.pop(), set()) - seen
                seen |= new
                todo += new
            return seen

        def diag(code: str, message: str, path: DocPath, text: str, offset: int | None,
                 hint: str = "") -> Diagnostic:
            loc = self.at(path)
            try:
                lines = files.get(loc.file) or files.setdefault(loc.file, Path(
                    loc.file).read_text(encoding="utf-8").removeprefix("\ufeff").split("\n"))
                line = lines[loc.line - 1] if loc.line > 0 and offset is not None else ""
            except (OSError, UnicodeError):
                line = ""
            key = re.escape(str(path[-1]))
            m = re.compile(rf"""(?:{key}|"{key}"|'{key}')[ \t]*=[ \t]*(["'])""").match(
                line, max(loc.col - 1, 0))
            if m and offset is not None:
                start, quote = m.end(1), m[1]
                if (line[start:start + len(text) + 1] == text + quote and quote * 3 != line[
                        start - 1:start + 2] and (quote == "'" or "\\" not in text)):
                    loc = Location(loc.file, loc.line, start + offset + 1)
            severity = Severity.WARNING if code.startswith("W") else Severity.ERROR
            return Diagnostic(severity, code, message, loc, hint,
                              excerpt=cond.excerpt(text, offset))

        for path, text, ti, reader in found:
            task = tasks[ti]
            try:
                parsed = cond.parse(text)
            except cond.ConditionError as exc:
                yield diag("E-COND-SYNTAX", f"condition: {exc}", path, text, exc.offset,
                           "see docs/conditions.md")
                continue
            me = f"{task.ref}.{reader.id}" if isinstance(reader, Step) else None
            schemas: dict[cond.Reference, frozenset[str] | None] = {}
            for ref in parsed.references():
                if ref.kind == "var":
                    if str(ref.field[0]) not in (self.spec.vars or {}):
                        yield diag("W-COND-VAR", f"condition reads vars.{ref.field[0]}, which "
                                   "[vars] does not define", path, text, ref.offset,
                                   f"add it to [vars] or pass --var {ref.field[0]}=...")
                    continue
                target = cond.step_ref(ref, task.ref) or ""
                if target not in steps:
                    yield diag("E-COND-REF", f"condition refers to step {target}, which does not "
                               "exist", path, text, ref.offset)
                    continue
                tpos, tstep = steps[target]
                if target == me:
                    why = "is the step itself"
                elif reader == "end":
                    why = "" if tpos <= ti else "runs after the transition's task"
                elif reader is None:
                    why = "" if tpos < ti else "is not in an earlier task (a task's condition " \
                        "is checked before its steps run)"
                else:
                    if tpos == ti:  # the implicit step order: by id, parallel groups aside
                        runs = run_index(sorted(task.steps, key=_ID))
                        before = runs[tstep.id] < runs[reader.id]
                    else:
                        before = tpos < ti
                    why = "" if before or target in upstream(me or "") else \
                        f"does not run before step {me}"
                if why:
                    yield diag("E-COND-ORDER", f"condition refers to step {target}, which {why}",
                               path, text, ref.offset, "a step reads earlier steps of its task, "
                               "steps it depends_on and steps of earlier tasks")
                schema = tstep.output_schema
                if ref.kind != "output" or not isinstance(schema, dict) or any(
                        b.output_schema not in (None, schema) for b in tstep.backups):
                    continue
                missing, forbidden, kinds = cond.schema_lookup(schema, ref.field)
                schemas[ref] = kinds
                if missing is not None:
                    yield diag("E-COND-FIELD" if forbidden else "W-COND-FIELD",
                               f"condition reads {ref.source()}, but step {target}'s "
                               f"output_schema {'does not allow' if forbidden else 'does not list'}"
                               f" {missing!r}", path, text, ref.offset)
            for message, offset in cond.type_errors(parsed, schemas.get):
                yield diag("E-COND-TYPE", f"condition: {message}", path, text, offset)

    # -- files, bridging (1.8), self-reported stats (A35), modes, notepad ----------------------

    def check_files(self) -> Iterable[Diagnostic]:
        if self.loaded.exe_path is not None:
            yield Diagnostic(Severity.INFO, "I-EXE-PRESENT", f"{self.loaded.exe_path.name} is "
                             "documentation; specs does not interpret it",
                             Location(str(self.loaded.exe_path)))

    def check_bridging(self) -> Iterable[Diagnostic]:
        md = self.loaded.markdown
        if md is None or not self.spec.verification.check_task_alignment or not md.tasks:
            return
        if len(md.tasks) == len(self.spec.tasks) and all(
                t.id == m.id and [s.id for s in t.steps] == [s.id for s in m.steps]
                for t, m in zip(self.spec.tasks, md.tasks, strict=True)):
            return  # the same steps in both files (the common case, told without sets)
        toml_refs = {(task.id, step.id) for task in self.spec.tasks for step in task.steps}
        md_refs = {(t.id, s.id) for t in md.tasks for s in t.steps}
        md_file = str(self.loaded.markdown_path)
        only_md = sorted(md_refs - toml_refs)
        only_toml = sorted(toml_refs - md_refs)
        if only_md:
            first = next(s for t in md.tasks for s in t.steps if (t.id, s.id) == only_md[0])
            yield Diagnostic(Severity.WARNING, "W-BRIDGE", f"steps {_refs(only_md)} are in the "
                             "Markdown but not in the TOML (Art. III)",
                             Location(md_file, first.line), "keep both files in step",
                             strict=True)
        if only_toml and md_refs:
            yield self.rule("W-BRIDGE", f"steps {_refs(only_toml)} are in the TOML but not in "
                            "the Markdown (Art. III)", ("tasks",), "keep both files in step")

    def check_self_reported(self) -> Iterable[Diagnostic]:
        stats = self.spec.validation or {}
        total = self.spec.step_count()
        critical = sum(self.critical_counts)
        claims = {"total_steps": total, "critical_steps": critical}
        for key, actual in claims.items():
            claimed = stats.get(key)
            if isinstance(claimed, int) and claimed != actual:
                yield self.diag(Severity.WARNING, "W-STATS", f"[validation] {key} = {claimed}, "
                                f"but the spec has {actual}", ("validation", key),
                                "update or remove the self-reported number")
        claimed_pct = stats.get("critical_percentage_actual")
        if isinstance(claimed_pct, int | float) and not isinstance(claimed_pct, bool) and total:
            actual_pct = 100 * critical / total
            value = claimed_pct * 100 if claimed_pct <= 1 else claimed_pct
            if abs(value - actual_pct) >= 1:
                yield self.diag(Severity.WARNING, "W-STATS", f"[validation] "
                                f"critical_percentage_actual = {claimed_pct}, but {critical} of "
                                f"{total} steps are critical ({actual_pct:.0f} %)",
                                ("validation", "critical_percentage_actual"),
                                "update or remove the self-reported number")

    def check_mcp_tools(self) -> Iterable[Diagnostic]:
        """``[mcp_tools]``: server definitions of the wrong shape (E-MCP-CONFIG) and servers
        named but not defined anywhere ``specs run`` looks (docs/mcp.md)."""
        mcp = self.spec.mcp_tools
        if mcp is None:
            return
        for name, entry in (mcp.config or {}).items():
            for key, problem in config_problems(entry):
                path = ("mcp_tools", "config", name) + ((key,) if key in entry else ())
                yield self.error("E-MCP-CONFIG", f"[mcp_tools.config.{name}] {problem}", path)
        try:
            servers, broken = find_servers(self.loaded)
        except McpConfigError as exc:
            yield self.error("E-MCP-CONFIG", str(exc), ("mcp_tools",))
            return
        halts = mcp.verification.check_on_startup and mcp.verification.halt_if_required_missing
        for kind, names in (("required", mcp.required), ("recommended", mcp.recommended)):
            for index, name in enumerate(names):
                if name in servers:
                    continue
                why = broken.get(name) or "it is not configured"
                severity = Severity.WARNING if kind == "required" and halts else Severity.INFO
                code = "W-MCP-UNCONFIGURED" if severity is Severity.WARNING \
                    else "I-MCP-UNCONFIGURED"
                effect = "`specs run` stops before the run" if severity is Severity.WARNING \
                    else "its tools will be missing"
                yield self.diag(severity, code, f"{kind} MCP server {name!r}: {why}; "
                                f"{effect}", ("mcp_tools", kind, index),
                                f"define it with [mcp_tools.config.{name}] command = \"...\" "
                                "or in .mcp.json (docs/mcp.md)")

    def check_modes(self) -> Iterable[Diagnostic]:
        execution = self.spec.execution
        education = self.spec.education
        if execution.default_mode == "education" and education is not None and not \
                education.enabled:
            yield self.diag(Severity.WARNING, "W-EDU-DISABLED", "default_mode is 'education' "
                            "but [education] enabled = false; education mode is used",
                            ("execution", "default_mode"))
        ep = self.spec.error_propagation
        if not ep.enabled or not ep.read_prior_steps:
            yield self.diag(Severity.WARNING, "W-ART-VIII", "error propagation is switched off;"
                            " specs still reads prior steps and logs an Art. VIII violation",
                            ("error_propagation",))
        if not self.spec.knowledge_capture.enabled:
            yield self.diag(Severity.WARNING, "W-ART-XV", "knowledge capture is off; the "
                            "notepad is mandatory under Art. XV", ("knowledge_capture",))


#: the ``check_*`` methods of :class:`Checks`, by name (the order they run and report in)
CHECK_NAMES = sorted(n for n in dir(Checks) if n.startswith("check_"))


def _acyclic(graph: dict[str, set[str]]) -> bool:
    """Kahn's count: True when ``graph`` (node -> predecessors) has no cycle (fast path)."""
    indegree = {node: len(preds) for node, preds in graph.items()}
    followers: dict[str, list[str]] = {}
    for node, preds in graph.items():
        for pred in preds:
            if pred in followers:
                followers[pred].append(node)
            else:
                followers[pred] = [node]
                indegree.setdefault(pred, 0)
    ready = [node for node, count in indegree.items() if count == 0]
    seen = 0
    while ready:
        node = ready.pop()
        seen += 1
        for follower in followers.get(node, ()):
            indegree[follower] -= 1
            if indegree[follower] == 0:
                ready.append(follower)
    return seen == len(indegree)


def _depends_backwards(task: Task) -> bool:
    """True when every ``depends_on`` entry of ``task``'s steps is the int id of a step placed
    before the depending one (the first step with each id counts): no such entry can be unknown
    or the step itself, and edges that all point back in the spec cannot close a cycle."""
    ids = [step.id for step in task.steps]
    first = dict(zip(reversed(ids), range(len(ids) - 1, -1, -1), strict=True))  # first index
    for step in task.steps:
        if step.depends_on:
            me = first[step.id]
            for dep in step.depends_on:
                if type(dep) is not int or first.get(dep, me) >= me:
                    return False
    return True


def _filled(value: Any) -> bool:
    if isinstance(value, dict):
        return bool(value)
    return isinstance(value, str) and value.strip().lower() not in ("", "n/a", "not_applicable")


def _plain_action(action: Any) -> bool:
    """True when :meth:`Checks.action` has nothing to report on ``action`` (a step or backup):
    the common case, told without making the step's ref and path. Keep the two in step."""
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


def _has_action(action: Any) -> bool:
    return bool(action.command or action.callable or action.tool_path)


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[*_`]", "", text).split()).lower().rstrip(".")


def _refs(pairs: list[tuple[int, int]], limit: int = 5) -> str:
    shown = ", ".join(f"{t}.{s}" for t, s in pairs[:limit])
    return shown + (f" and {len(pairs) - limit} more" if len(pairs) > limit else "")


def _step_ref(dep: Any, task: Task, ids: AbstractSet[int], tasks: dict[str, Task]) -> str | None:
    """Resolve a ``depends_on`` entry (``2`` or ``"1.2"``) to a step node name."""
    if isinstance(dep, int) and not isinstance(dep, bool):
        return f"{task.ref}.{dep}" if dep in ids else None
    if isinstance(dep, str):
        text = dep.strip()
        if text.isdigit():
            return f"{task.ref}.{text}" if int(text) in ids else None
        task_ref, _, step_id = text.rpartition(".")
        target = tasks.get(task_ref)
        if target is not None and step_id.isdigit() and any(
                s.id == int(step_id) for s in target.steps):
            return f"{target.ref}.{step_id}"
    return None


def _depth(graph: dict[str, set[str]]) -> int:
    memo: dict[str, int] = {}

    def depth(node: str, seen: frozenset[str]) -> int:
        if node in memo:
            return memo[node]
        if node in seen:
            return 0
        value = 1 + max((depth(d, seen | {node}) for d in graph.get(node, ())), default=0)
        memo[node] = value
        return value

    return max((depth(n, frozenset()) for n in graph), default=0)


def _texts(spec: Spec) -> Iterator[tuple[DocPath, str]]:
    """Every user-written text that a placeholder could be left in, with its path."""
    yield from _head_texts(spec)
    for ti, task in enumerate(spec.tasks):
        yield ("tasks", ti, "description"), task.description
        for si, step in enumerate(task.steps):
            path: DocPath = ("tasks", ti, "steps", si)
            yield (*path, "description"), step.description
            yield (*path, "expected_output"), step.expected_output or ""
            for bi, backup in enumerate(step.backups):
                yield (*path, "backups", bi, "description"), backup.description


def _placeholder_free(spec: Spec) -> bool:
    """True when no text of :func:`_texts` can hold a placeholder: every placeholder form has a
    "[", "<", "..." or a TODO-like word. One joined string is searched instead of thousands."""
    steps = [step for task in spec.tasks for step in task.steps]
    joined = "\0".join([
        *(text for _, text in _head_texts(spec)), *map(_DESCRIPTION, spec.tasks),
        *map(_DESCRIPTION, steps), *filter(None, map(_EXPECTED, steps)),
        *(backup.description for step in steps for backup in step.backups)])
    return not _MAYBE_PLACEHOLDER.search(joined)


def placeholder(text: str) -> str | None:
    """The template placeholder left in ``text``, if any (see :data:`PLACEHOLDER`)."""
    if WHOLE_PLACEHOLDER.fullmatch(text):
        return text.strip()
    match = PLACEHOLDER.search(text)
    return match.group(0).strip() if match else None


def _head_texts(spec: Spec) -> Iterator[tuple[DocPath, str]]:
    """The texts of :func:`_texts` outside the tasks: goal, descriptor, completion criteria."""
    yield ("goal", "description"), spec.goal.description
    if spec.meta.goal_descriptor:
        yield ("meta", "goal_descriptor"), spec.meta.goal_descriptor
    criteria = spec.completion_criteria
    if criteria is not None:
        for key in ("primary_deliverable", "verification_method"):
            value = getattr(criteria, key)
            if isinstance(value, str):
                yield ("completion_criteria", key), value
        for key in ("acceptance_criteria", "quality_standards", "core_features"):
            for i, value in enumerate(getattr(criteria, key) or []):
                yield ("completion_criteria", key, i), value


# -- validation ----------------------------------------------------------------------------------


def included_diagnostics(loaded: LoadedSpec) -> list[Diagnostic]:
    """What the validator adds for a composed spec (its ``check_includes``).

    The validator checks the composed spec as one spec (every task in view: dependencies,
    duplicate refs, SPECLets, the quality rules of the run as a whole). This adds: the root's
    Markdown against the root's own tasks (bridging, goal drift; a composed spec has no single
    Markdown), and each included spec checked as ``specs validate`` checks it (its tasks and
    those of the specs it includes, its own folder, Markdown and files), in the composed refs,
    keeping what is located in its own files (the specs it includes report theirs). The include
    problems themselves are loader diagnostics (``loaded.diagnostics``).
    """
    composed = loaded.composition
    if composed is None:
        return []
    found: list[Diagnostic] = []
    if composed.root.spec is not None:
        root = Checks(composed.root)
        found += [*root.check_goal(), *root.check_bridging()]
    for record in composed.included:
        spec = record.loaded.spec
        if spec is None:
            continue
        own = Checks(dataclasses.replace(record.loaded, spec=_copy(
            spec, {"tasks": record.own})))
        found += [*own.check_goal(), *own.check_bridging()]
        reach = _reach(record)
        view = dataclasses.replace(
            record.loaded, spec=_copy(spec, {"tasks": [t for t, _, _ in reach]}),
            sources=ComposedSources(record.loaded.sources, [(m, i) for _, m, i in reach]),
            markdown=None)
        files = {str(path) for path in (record.loaded.parameters_path,
                                        record.loaded.markdown_path, record.loaded.exe_path)
                 if path is not None}
        found += [d for d in Checks(view).run()
                  if d.code not in OWN_VIEW_SKIPS and d.location.file in files]
    return found


def _reach(record: IncludedSpec) -> list[tuple[Task, SourceMap, int]]:
    """The tasks of ``record``'s spec as composed on its own: its includes' first, then its
    own; each with the source map and index it has in its own file."""
    out: list[tuple[Task, SourceMap, int]] = []
    seen: set[int] = set()

    def visit(item: IncludedSpec) -> None:
        if id(item) in seen:
            return
        seen.add(id(item))
        for child in item.includes:
            visit(child)
        out.extend((task, item.loaded.sources, i) for i, task in enumerate(item.own))

    visit(record)
    return out
