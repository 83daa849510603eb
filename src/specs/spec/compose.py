"""Spec composition: ``[composition] includes`` and SPECLets with ``spec = ...``.

A spec may include others (reference §5.4, SPEC_FORMAT.md §2 "Composition")::

    [composition]
    includes = ["../prepare", {path = "../report/parameters_report.toml", as = "rep"}]

    [[speclets]]
    id = "discovery"
    spec = "../speclet_1_discovery"     # the SPECLet's tasks are that spec's tasks

:func:`compose` (called by :func:`specs.spec.load.load_spec`) loads every included spec once and
builds one spec whose tasks are, in run order: the tasks of each include (depth first, in the
order the entries are written; an include's own includes come before its own tasks), then the
parent's own tasks. docs/composition.md is the user guide; the decisions, in short:

- An entry is a spec folder, a parameters file or a Markdown spec (``spec_<d>.md``,
  ``<d>_SPEC.md``), resolved next to the including file; a bare Markdown name that is not
  there is looked up in the sibling spec folder (``../spec_<d>/spec_<d>.md``, the original's
  ``SPECs/<DNA>/spec_<d>/`` layout).
- Included tasks are namespaced: ``Task.namespace`` is the alias path (``"rep"``, or
  ``"rep.prepare"`` for a spec that ``rep`` includes) and ``Task.ref`` is
  ``"<namespace>.<local ref>"``. The alias is ``as``, the SPECLet id for ``spec =``, or else the
  included spec's descriptor. ``depends_on`` refs and conditions written inside an included spec
  are rewritten into the composed ref space (task ``1`` -> ``"rep.1"``, step ``"1.2"`` ->
  ``"rep.1.2"``, ``steps["1.2"]`` -> ``steps["rep.1.2"]``, ``"prepare.1"`` -> the namespace that
  spec really got); plain step ids and same-task condition forms stay.
- ``Task.folder`` is the absolute folder of the spec a task comes from (None for the root's
  own tasks): an included spec's relative files resolve against its own folder.
- A spec reached twice (a diamond) is loaded once: it keeps the namespace of the first include
  met (depth first, in entry order); later includes of it are aliases of that namespace
  (``I-INCLUDE-SHARED``). A spec that includes itself, directly or not, is an error that prints
  the chain (``E-INCLUDE-CYCLE``).
- Only tasks (with their steps and backups) come from included specs. The goal, settings and
  every other section are the parent's; an included spec's goal is kept in its
  :class:`IncludedSpec` record (and becomes the description of a SPECLet that has none).
- Included specs are validated too, each on its own tasks and with its own files
  (:func:`included_diagnostics`, called by the validator's ``check_includes``).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from specs.diagnostics import Diagnostic, Location, Severity
from specs.spec.conditions import ConditionError, rebase
from specs.spec.files import LoadedSpec, find_parameters
from specs.spec.model import Include, Ref, Spec, Speclet, Step, Task, Transition, copy_with
from specs.spec.sources import DocPath, SourceMap

__all__ = [
    "ALIAS",
    "Composed",
    "ComposedSources",
    "IncludedSpec",
    "Scope",
    "compose",
    "resolve_include",
    "task_folder",
    "task_workspace",
]

ALIAS = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")
"""A valid alias: letters, digits, ``_`` and ``-`` (a ``.`` would split the task refs)."""

_MD_NAME = re.compile(r"^(?:spec_(?P<a>.+)|(?P<b>.+)_SPEC)\.md$", re.I)

# Not judged in an included spec's own check: its SPECLets and transitions are not part of the
# composition (only its tasks are), and every dependency cycle is found by the composed spec's
# check, which sees all tasks (a cycle found twice could be printed from two starting points).
OWN_VIEW_SKIPS = frozenset({"E-DEP-CYCLE", "E-SPECLET-TASK", "E-SPECLET-ASSIGN",
                            "E-TRANSITION-TASK"})


# -- records -------------------------------------------------------------------------------------


@dataclass
class IncludedSpec:
    """One included spec: loaded once, however many times it is included."""

    namespace: str  # the alias path its tasks' refs start with ("rep", "rep.prepare")
    alias: str  # the alias it was first included under
    entry: str  # the include as written ("../prepare", or the SPECLet's spec)
    location: Location  # where that entry is written (file:line of the including spec)
    loaded: LoadedSpec  # the spec loaded on its own: its own tasks, files and diagnostics
    speclet: str | None = None  # the id of the SPECLet whose ``spec`` it is, if any
    aliases: list[str] = field(default_factory=list)  # every alias path that names it
    tasks: list[str] = field(default_factory=list)  # the composed refs of its own tasks
    own: list[Task] = field(default_factory=list)  # its own tasks, as composed
    includes: list[IncludedSpec] = field(default_factory=list)  # what it includes (shared too)

    @property
    def folder(self) -> Path:
        return self.loaded.folder.resolve()

    @property
    def descriptor(self) -> str:
        return self.loaded.descriptor

    @property
    def goal(self) -> str:
        """The included spec's goal: what its tasks achieve (the goal of the run is the root's)."""
        return self.loaded.spec.goal.description if self.loaded.spec is not None else ""

    def to_dict(self) -> dict[str, Any]:
        loaded = self.loaded
        return {
            "namespace": self.namespace, "alias": self.alias, "aliases": list(self.aliases),
            "entry": self.entry, "included_from": self.location.file,
            "line": self.location.line, "speclet": self.speclet,
            "descriptor": self.descriptor, "goal": self.goal, "folder": str(self.folder),
            "parameters": str(loaded.parameters_path) if loaded.parameters_path else None,
            "markdown": str(loaded.markdown_path) if loaded.markdown_path else None,
            "tasks": list(self.tasks),
        }


@dataclass(frozen=True)
class Scope:
    """The refs a spec of the tree can write: its own task refs and its includes' aliases."""

    namespace: str  # "" for the root
    own: frozenset[str]  # local refs of its own tasks
    aliases: dict[str, str]  # alias -> namespace of the spec it names

    def qualify(self, local: str) -> str:
        return f"{self.namespace}.{local}" if self.namespace else local


@dataclass
class Composed:
    """What :func:`compose` found: the root alone, the included specs, the include problems."""

    root: LoadedSpec  # the root spec loaded alone (its own tasks, its Markdown, its files)
    included: list[IncludedSpec]
    issues: list[Diagnostic]  # E-INCLUDE-*, I-INCLUDE-SHARED (also in the loaded diagnostics)
    scopes: dict[str, Scope]  # by namespace ("" = the root)

    def origin(self, task: Task) -> IncludedSpec | None:
        """The included spec ``task`` comes from (None: the root's own task)."""
        if not task.namespace:
            return None
        return next((r for r in self.included if r.namespace == task.namespace), None)

    def resolve(self, namespace: str | None, ref: str) -> str:
        """The composed ref of task ``ref`` as written in the spec at ``namespace``.

        ``resolve("rep", "1")`` is ``"rep.1"``; ``resolve("rep", "prepare.2")`` is the ref of
        task 2 of the spec ``rep`` includes as ``prepare`` (``"prepare.2"`` when that spec was
        first included by the root). Conditions and other refs written inside an included
        spec are resolved with it.
        """
        scope = self.scopes.get(namespace or "")
        return _resolve_ref(self.scopes, scope, ref) if scope else ref

    def resolve_step(self, namespace: str | None, ref: str) -> str:
        """The composed ref of step ``"t.s"`` as written in the spec at ``namespace``."""
        task_ref, dot, step = ref.rpartition(".")
        return f"{self.resolve(namespace, task_ref)}.{step}" if dot and task_ref else ref


class ComposedSources(SourceMap):
    """Locations in a composed spec: a task's paths resolve in the file the task came from."""

    def __init__(self, root: SourceMap, origins: list[tuple[SourceMap, int]]) -> None:
        super().__init__(root.file)
        self.root = root
        self.origins = origins

    def at(self, path: DocPath) -> Location:
        if (len(path) >= 2 and path[0] == "tasks" and isinstance(path[1], int)
                and 0 <= path[1] < len(self.origins)):
            source, index = self.origins[path[1]]
            return source.at(("tasks", index, *path[2:]))
        return self.root.at(path)


# -- helpers for the runner ------------------------------------------------------------------------


def task_folder(loaded: LoadedSpec, task: Task) -> Path:
    """The spec folder ``task``'s relative files resolve against (``cwd``, ``callable``
    imports, ``output_schema`` files, ``SPECS_SPEC_DIR``): its own spec's folder."""
    return Path(task.folder) if task.folder else loaded.folder


def task_workspace(loaded: LoadedSpec, task: Task) -> Path:
    """The default working directory of ``task``'s steps: the root's ``[execution] workspace``
    when it sets one (one workspace for the whole run), else the task's own spec folder."""
    workspace = loaded.spec.execution.workspace if loaded.spec is not None else None
    if workspace:
        return loaded.folder / workspace
    return task_folder(loaded, task)


# -- resolving entries ---------------------------------------------------------------------------


def resolve_include(folder: Path, target: str) -> Path | None:
    """The path an include entry names, relative to the including spec's ``folder``.

    A spec folder, a parameters file or a Markdown spec next to the file; a bare ``spec_<d>.md``
    (or ``<d>_SPEC.md``) name that is not there is looked up in the sibling spec folder
    (``../spec_<d>/`` or ``../<d>/``). None when nothing exists.
    """
    if not target.strip():
        return None
    path = folder / target
    if path.exists():
        tidy = Path(os.path.normpath(path))  # "spec/../other" -> "other": shorter diagnostics
        return tidy if tidy.exists() and tidy.resolve() == path.resolve() else path
    name = Path(target)
    match = _MD_NAME.match(name.name)
    if match and len(name.parts) == 1:
        descriptor = match.group("a") or match.group("b")
        for candidate in (folder.parent / f"spec_{descriptor}" / target,
                          folder.parent / descriptor / target):
            if candidate.is_file():
                return candidate
    return None


@dataclass(frozen=True)
class _Entry:
    target: str
    alias: str | None  # as written (``as``, or the SPECLet id); None = the descriptor
    path: DocPath  # where it is written
    speclet: int | None  # index of the SPECLet whose spec it is


def _entries(spec: Spec) -> list[_Entry]:
    found: list[_Entry] = []
    for i, item in enumerate(spec.composition.includes if spec.composition else []):
        if isinstance(item, Include):
            found.append(_Entry(item.path, item.as_, ("composition", "includes", i), None))
        else:
            found.append(_Entry(item, None, ("composition", "includes", i), None))
    for i, speclet in enumerate(spec.speclets or []):
        if speclet.spec is not None:
            found.append(_Entry(speclet.spec, str(speclet.id), ("speclets", i, "spec"), i))
    return found


# -- composing -----------------------------------------------------------------------------------


#: how :func:`compose` loads an included spec: (parameters file, project, markdown) -> the spec
#: loaded alone, without its own includes (:func:`specs.spec.load.load_spec` passes it)
Loader = Callable[[Path, bool, bool], LoadedSpec]


def compose(loaded: LoadedSpec, *, load: Loader, project: bool = True,
            markdown: bool = True) -> None:
    """Compose ``loaded`` in place when its spec includes others; otherwise leave it alone.

    Afterwards ``loaded.spec`` holds every task, ``loaded.sources`` locates each in its own
    file, ``loaded.diagnostics`` holds the included specs' loader diagnostics and the include
    problems, ``loaded.composition`` the records, and ``loaded.markdown`` is None: a composed
    spec has one Markdown per source (``composition.root.markdown``, ``record.loaded.markdown``),
    and the validator checks each against its own tasks.

    A spec whose tasks already carry a ``namespace`` is a composition written out as one file:
    it is not composed again.
    """
    spec = loaded.spec
    if spec is None or not _entries(spec) or any(task.namespace for task in spec.tasks):
        return
    root = dataclasses.replace(loaded, diagnostics=list(loaded.diagnostics))
    composer = _Composer(root, load, project=project, markdown=markdown)
    composer.run()
    loaded.spec = composer.spec()
    loaded.sources = ComposedSources(root.sources, [
        (source.sources, index) for source, index in composer.origins])
    loaded.provenance = composer.provenance()
    loaded.markdown = None
    loaded.diagnostics = list(dict.fromkeys(
        [*root.diagnostics, *composer.issues, *composer.diagnostics]))
    loaded.composition = Composed(root, list(composer.records.values()), composer.issues,
                                  composer.scopes)


class _Composer:
    def __init__(self, root: LoadedSpec, load: Loader, *, project: bool, markdown: bool) -> None:
        self.root, self.load = root, load
        self.project, self.markdown = project, markdown
        self.records: dict[Path, IncludedSpec] = {}  # by resolved parameters file
        self.scopes: dict[str, Scope] = {}
        self.tasks: list[Task] = []
        self.origins: list[tuple[LoadedSpec, int]] = []  # per composed task: source, own index
        self.issues: list[Diagnostic] = []
        self.diagnostics: list[Diagnostic] = []
        self.speclet_tasks: dict[int, list[str]] = {}  # root SPECLet index -> its tasks' refs
        self.speclet_records: dict[int, IncludedSpec] = {}

    def run(self) -> None:
        assert self.root.parameters_path is not None
        key = self.root.parameters_path.resolve()
        self.visit(self.root, "", [(key, self.root.descriptor)], None)

    def issue(self, severity: Severity, code: str, message: str, where: Location,
              hint: str = "") -> None:
        self.issues.append(Diagnostic(severity, code, message, where, hint))

    # -- the walk --------------------------------------------------------------------------

    def visit(self, source: LoadedSpec, namespace: str, stack: list[tuple[Path, str]],
              record: IncludedSpec | None) -> None:
        """Place ``source``'s includes (depth first), then its own tasks."""
        assert source.spec is not None
        aliases: dict[str, str] = {}
        scope = Scope(namespace, frozenset(task.ref for task in source.spec.tasks), aliases)
        self.scopes[namespace] = scope
        for entry in _entries(source.spec):
            start = len(self.tasks)
            included = self.include(source, scope, entry, stack)
            if record is not None and included is not None and included not in record.includes:
                record.includes.append(included)
            if record is None and entry.speclet is not None:
                self.speclet_tasks[entry.speclet] = [t.ref for t in self.tasks[start:]]
                if included is not None:
                    self.speclet_records[entry.speclet] = included
        placed: list[Task] = []
        for index, task in enumerate(source.spec.tasks):
            placed.append(self.place(scope, task, source.folder if record else None))
            self.origins.append((source, index))
        self.tasks.extend(placed)
        if record is not None:
            record.tasks = [task.ref for task in placed]
            record.own = placed

    def include(self, source: LoadedSpec, scope: Scope, entry: _Entry,
                stack: list[tuple[Path, str]]) -> IncludedSpec | None:
        """Include what ``entry`` names into ``scope``; the record, or None when it cannot."""
        where = source.sources.at(entry.path)
        resolved = resolve_include(source.folder, entry.target)
        if resolved is None:
            self.issue(Severity.ERROR, "E-INCLUDE-MISSING",
                       f"included spec {entry.target!r} does not exist", where,
                       "give a spec folder, a parameters file or a spec_<d>.md, relative to "
                       "this spec's folder")
            return None
        parameters, problems = find_parameters(resolved)
        if parameters is None:
            for problem in problems:
                self.issue(problem.severity, problem.code,
                           f"included spec {entry.target!r}: {problem.message}", where,
                           "an included spec needs its parameters_<d>.toml (a Markdown-only "
                           "spec cannot be included); name its folder, parameters file or "
                           "spec_<d>.md")
            return None
        key = parameters.resolve()
        ancestors = [k for k, _ in stack]
        if key in ancestors:
            chain = [name for _, name in stack[ancestors.index(key):]]
            self.issue(Severity.ERROR, "E-INCLUDE-CYCLE",
                       f"include cycle: {' -> '.join([*chain, chain[0]])}", where,
                       "a spec cannot include itself, directly or through others; remove "
                       "this include")
            return None
        record = self.records.get(key)
        child = record.loaded if record is not None else self.load(
            parameters, self.project, self.markdown)
        alias = self.alias(entry, child, where)
        full = scope.qualify(alias)
        taken = scope.aliases.get(alias)
        if taken is not None and (record is None or taken != record.namespace):
            self.issue(Severity.ERROR, "E-INCLUDE-ALIAS",
                       f"alias {alias!r} is used by two includes of this spec", where,
                       "give one of them another alias: {path = \"...\", as = \"name\"}")
            return None
        if record is not None:
            scope.aliases[alias] = record.namespace
            if full not in record.aliases:
                record.aliases.append(full)
            first = record.location
            self.issue(Severity.INFO, "I-INCLUDE-SHARED",
                       f"{entry.target!r} is already included as '{record.namespace}' "
                       f"({Path(first.file).name}:{first.line}); it is loaded once and "
                       f"'{full}' names the same tasks", where)
            return record
        speclet = str(entry.alias) if entry.speclet is not None and not scope.namespace else None
        record = IncludedSpec(full, alias, entry.target, where, child, speclet, [full])
        self.records[key] = record
        scope.aliases[alias] = full
        self.diagnostics.extend(child.diagnostics)
        if child.spec is not None:
            self.visit(child, full, [*stack, (key, child.descriptor)], record)
        return record

    def alias(self, entry: _Entry, child: LoadedSpec, where: Location) -> str:
        alias = entry.alias if entry.alias is not None else child.descriptor
        if ALIAS.match(alias):
            return alias
        fixed = re.sub(r"[^A-Za-z0-9_-]", "_", alias).lstrip("-") or "include"
        whose = "alias" if entry.alias is not None else "descriptor (the default alias)"
        self.issue(Severity.ERROR, "E-INCLUDE-ALIAS",
                   f"the {whose} {alias!r} of included spec {entry.target!r} is not a valid "
                   f"alias (letters, digits, '_' and '-'); '{fixed}' is used", where,
                   "give it an alias: {path = \"...\", as = \"name\"}")
        return fixed

    # -- rewriting -------------------------------------------------------------------------

    def place(self, scope: Scope, task: Task, folder: Path | None) -> Task:
        """``task`` as the composed spec holds it: namespaced, its refs rewritten."""
        update: dict[str, Any] = {}
        if scope.namespace:
            update["namespace"] = scope.namespace
            update["folder"] = str(folder.resolve()) if folder is not None else None
        if task.depends_on:
            deps = [self.task_dep(scope, dep) for dep in task.depends_on]
            if deps != task.depends_on:
                update["depends_on"] = deps
        condition = self.condition(scope, task.condition)
        if condition != task.condition:
            update["condition"] = condition
        steps = [self.step(scope, step) for step in task.steps]
        if any(new is not old for new, old in zip(steps, task.steps, strict=True)):
            update["steps"] = steps
        return copy_with(task, update) if update else task

    def task_dep(self, scope: Scope, dep: Ref) -> Ref:
        resolved = _resolve_ref(self.scopes, scope, str(dep).strip())
        return dep if resolved == str(dep).strip() and not scope.namespace else resolved

    def step(self, scope: Scope, step: Step) -> Step:
        update: dict[str, Any] = {}
        if step.depends_on:
            deps = [self.step_dep(scope, dep) for dep in step.depends_on]
            if deps != step.depends_on:
                update["depends_on"] = deps
        condition = self.condition(scope, step.condition)
        if condition != step.condition:
            update["condition"] = condition
        return copy_with(step, update) if update else step

    def condition(self, scope: Scope, text: str | None) -> str | None:
        """A condition with its explicit task refs (``steps["T.N"]``, ``taskT_stepN_output``)
        rewritten like ``depends_on``; same-task forms (``stepN_output``) stay. A condition that
        does not parse is left as written (the validator reports it)."""
        if not text:
            return text

        def rename(task_ref: str) -> str | None:
            resolved = _resolve_ref(self.scopes, scope, task_ref)
            return None if resolved == task_ref else resolved

        try:
            return rebase(text, rename)
        except ConditionError:
            return text

    def step_dep(self, scope: Scope, dep: Ref) -> Ref:
        if isinstance(dep, int) or not isinstance(dep, str):
            return dep
        text = dep.strip()
        task_ref, dot, step_id = text.rpartition(".")
        if text.isdigit() or not dot or not task_ref:
            return dep
        resolved = f"{_resolve_ref(self.scopes, scope, task_ref)}.{step_id}"
        return dep if resolved == text else resolved

    # -- the result ------------------------------------------------------------------------

    def spec(self) -> Spec:
        root = self.root.spec
        assert root is not None
        scope = self.scopes[""]
        update: dict[str, Any] = {"tasks": self.tasks}
        if root.speclets:
            update["speclets"] = [self.speclet(scope, i, s) for i, s in enumerate(root.speclets)]
        if root.transitions:
            update["transitions"] = [self.transition(scope, t) for t in root.transitions]
        return copy_with(root, update)

    def speclet(self, scope: Scope, index: int, speclet: Speclet) -> Speclet:
        listed: list[Ref] = [self.task_dep(scope, ref) for ref in speclet.tasks]
        placed = self.speclet_tasks.get(index, [])
        update: dict[str, Any] = {}
        tasks = [*listed, *(ref for ref in placed if ref not in {str(r) for r in listed})]
        if tasks != speclet.tasks:
            update["tasks"] = tasks
        record = self.speclet_records.get(index)
        if not speclet.description.strip() and record is not None and record.goal.strip():
            update["description"] = record.goal
        return copy_with(speclet, update) if update else speclet

    def transition(self, scope: Scope, transition: Transition) -> Transition:
        update = {key: self.task_dep(scope, getattr(transition, key))
                  for key in ("from_task", "to_task")}
        changed: dict[str, Any] = {k: v for k, v in update.items()
                                   if v != getattr(transition, k)}
        when = self.condition(scope, transition.when)
        if when != transition.when:
            changed["when"] = when
        return copy_with(transition, changed) if changed else transition

    def provenance(self) -> dict[DocPath, str]:
        """The loaders' provenance, with each task's paths renumbered as composed."""
        by_task: dict[int, dict[int, list[tuple[DocPath, str]]]] = {}
        for source in {id(s): s for s, _ in self.origins}.values():
            table = by_task.setdefault(id(source), {})
            for path, origin in source.provenance.items():
                if len(path) >= 2 and path[0] == "tasks" and isinstance(path[1], int):
                    table.setdefault(path[1], []).append((path[2:], origin))
        out = {path: origin for path, origin in self.root.provenance.items()
               if not (path and path[0] == "tasks")}
        for index, (source, own) in enumerate(self.origins):
            for rest, origin in by_task.get(id(source), {}).get(own, []):
                out[("tasks", index, *rest)] = origin
        return out


def _resolve_ref(scopes: dict[str, Scope], scope: Scope, ref: str) -> str:
    """The composed ref of task ``ref`` written in ``scope``'s spec (see Composed.resolve)."""
    if ref in scope.own:
        return scope.qualify(ref)
    head, dot, rest = ref.partition(".")
    target = scope.aliases.get(head)
    if dot and rest and target is not None and target in scopes:
        return _resolve_ref(scopes, scopes[target], rest)
    return scope.qualify(ref)


def walk(loaded: LoadedSpec) -> Iterator[tuple[Task, IncludedSpec | None]]:
    """Every task of ``loaded`` with the included spec it comes from (None: the root's own)."""
    if loaded.spec is None:
        return
    composed = loaded.composition
    for task in loaded.spec.tasks:
        yield task, composed.origin(task) if composed is not None else None
