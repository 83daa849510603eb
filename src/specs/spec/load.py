"""Loading a spec: from a folder or a parameters file to a validated-shape :class:`Spec`.

:func:`load_spec` finds the spec's files (``parameters_<d>.toml``, ``spec_<d>.md`` /
``<d>_SPEC.md`` / ``speclet_*.md``, ``exe_<d>.md`` and the project constitution), parses them,
normalises aliases (:mod:`specs.spec.normalize`), fills skeletal steps from the Markdown, applies
the project defaults (built-in < project constitution < spec < CLI) and builds the model.

It never raises on bad input: every problem becomes a :class:`~specs.diagnostics.Diagnostic`
with a file:line:col, and loading goes as far as it can so that all problems are reported at
once (a key with a wrong type is reported and left out, and the rest still loads).
"""

from __future__ import annotations

import copy
import datetime
import hashlib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from specs.diagnostics import Diagnostic, Location, Severity
from specs.spec.compose import compose
from specs.spec.files import (
    LoadedSpec,
    descriptor_of,
    find_markdown,
    find_parameters,
    load_project,
    nearest_project,
    plain_name,
)
from specs.spec.markdown import MdSpec, MdStep, parse_markdown
from specs.spec.model import Section, Spec
from specs.spec.normalize import Normalizer
from specs.spec.project import ProjectConstitution, project_defaults
from specs.spec.sources import DocPath, SourceMap
from specs.spec.tomlio import parse_toml, read_text

__all__ = ["LoadedSpec", "find_parameters", "load_project", "load_spec", "spec_from_document"]


def load_spec(path: Path | str, *, project: bool = True, markdown: bool = True,
              includes: bool = True) -> LoadedSpec:
    """Load the spec at ``path`` (a spec folder or a parameters file).

    With ``includes`` (the default), a spec with ``[composition] includes`` or SPECLets with
    ``spec = ...`` is composed (:mod:`specs.spec.compose`): the result holds every included task.
    Raises :class:`PathNotFound` only when ``path`` does not exist; every other problem is a
    diagnostic in the result.
    """
    path = Path(path)
    parameters, diagnostics = find_parameters(path)
    folder = (parameters.parent if parameters else path if path.is_dir() else path.parent)
    loaded = LoadedSpec(None, diagnostics, folder, parameters)
    if parameters is None:
        return loaded
    text, problems = read_text(parameters, "parameters file")
    loaded.diagnostics += problems
    if text is None:
        return loaded
    loaded.parameters_sha256 = hashlib.sha256(text.encode()).hexdigest()
    doc, sources, problems = parse_toml(text, str(parameters))
    loaded.sources = sources
    loaded.diagnostics += problems
    if doc is None:
        return loaded
    normalizer = Normalizer(doc, sources)
    normalizer.run()
    loaded.diagnostics += normalizer.diagnostics
    descriptor = _descriptor(doc, parameters)
    if markdown:
        _attach_markdown(loaded, doc, descriptor)
    if project:
        _attach_project(loaded, doc)
    _apply_step_defaults(loaded, doc)
    loaded.spec, problems = build_model(doc, sources)
    loaded.diagnostics += problems
    exe = folder / f"exe_{descriptor}.md"
    if exe.is_file():
        loaded.exe_path = exe
    if includes and loaded.spec is not None:
        compose(loaded, load=_load_alone, project=project, markdown=markdown)
    return loaded


def _load_alone(path: Path, project: bool, markdown: bool) -> LoadedSpec:
    """An included spec, loaded without its own includes (:func:`compose` visits them)."""
    return load_spec(path, project=project, markdown=markdown, includes=False)


def _descriptor(doc: dict[str, Any], parameters: Path) -> str:
    meta = doc.get("meta")
    value = meta.get("goal_descriptor") if isinstance(meta, dict) else None
    if isinstance(value, str) and plain_name(value):
        return value.strip()
    return descriptor_of(parameters)


def _attach_markdown(loaded: LoadedSpec, doc: dict[str, Any], descriptor: str) -> None:
    md_path = find_markdown(loaded.folder, descriptor)
    if md_path is None and loaded.parameters_path is not None:
        md_path = find_markdown(loaded.folder, descriptor_of(loaded.parameters_path))
    if md_path is None:
        loaded.diagnostics.append(Diagnostic(
            Severity.WARNING, "W-FILE-MD-MISSING",
            f"no Markdown spec (spec_{descriptor}.md or {descriptor}_SPEC.md) beside the "
            "parameters file", Location(str(loaded.parameters_path)),
            "write the human-readable spec next to it", strict=True))
        return
    text, problems = read_text(md_path, "Markdown spec")
    loaded.diagnostics += problems
    if text is None:
        return
    loaded.markdown_path = md_path
    loaded.markdown = parse_markdown(text)
    fill_from_markdown(doc, loaded.markdown, loaded.sources, SourceMap(str(md_path)),
                       loaded.provenance)


def fill_from_markdown(doc: dict[str, Any], md: MdSpec, sources: SourceMap,
                       md_sources: SourceMap, provenance: dict[DocPath, str]) -> None:
    """Fill what skeletal TOML leaves out (goal, step text, backups) from the Markdown."""

    def take(path: DocPath, table: dict[str, Any], key: str, value: Any, line: int) -> None:
        if value in (None, "", []) or table.get(key) not in (None, ""):
            return
        table[key] = value
        md_sources.set(("line", line), line, 1)
        sources.redirect((*path, key), ("line", line), md_sources)
        provenance[(*path, key)] = "markdown"

    goal = doc.setdefault("goal", {})
    if isinstance(goal, dict):
        take(("goal",), goal, "description", md.goal, md.goal_line)
    by_ref: dict[tuple[Any, Any], MdStep] = {}
    md_tasks = {md_task.id: md_task for md_task in reversed(md.tasks)}
    for md_task in md.tasks:
        for md_step in md_task.steps:
            by_ref.setdefault((md_task.id, md_step.id), md_step)
    tasks = doc.get("tasks")
    for ti, task in enumerate(tasks if isinstance(tasks, list) else []):
        md_match = md_tasks.get(task.get("id"))
        if md_match is not None and task.get("speclet") is None:
            take(("tasks", ti), task, "description", md_match.title, md_match.line)
        for si, step in enumerate(task.get("steps") or []):
            if not isinstance(step, dict):
                continue
            found = by_ref.get((task.get("id"), step.get("id")))
            if found is None:
                continue
            path: DocPath = ("tasks", ti, "steps", si)
            skeletal = not step.get("description")
            take(path, step, "description", found.title, found.line)
            take(path, step, "expected_output", found.expected_output, found.line)
            take(path, step, "primary_method", found.primary_method, found.line)
            take(path, step, "details", list(found.details), found.line)
            if found.critical is not None and "critical_flag" not in step:
                take(path, step, "critical_flag", found.critical, found.line)
            if found.mode in ("silent", "collaborative", "dynamic") and "mode" not in step:
                take(path, step, "mode", found.mode, found.line)
            if skeletal and found.backups and not step.get("backups"):
                step["backups"] = [
                    {"id": b.id, "description": b.text,
                     "trigger_condition": "primary_failure" if b.id == 1
                     else f"backup_{b.id - 1}_failure"} for b in found.backups]
                provenance[(*path, "backups")] = "markdown"


def _attach_project(loaded: LoadedSpec, doc: dict[str, Any]) -> None:
    link = doc.get("project_constitution")
    applies: list[str] | None = None
    path: Path | None = None
    if isinstance(link, dict):
        if isinstance(link.get("applies_settings"), list):
            applies = [str(key) for key in link["applies_settings"]]
        named = link.get("constitution_file")
        if isinstance(named, str):
            path = (loaded.folder / named).resolve()
            if not path.is_file():
                loaded.diagnostics.append(Diagnostic(
                    Severity.WARNING, "W-PROJECT-MISSING",
                    f"project constitution '{named}' does not exist",
                    loaded.sources.at(("project_constitution", "constitution_file")),
                    "fix constitution_file, or remove it to use the nearest one"))
                path = None
    path = path or nearest_project(loaded.folder)
    inline = doc.get("constitution")
    layers: list[ProjectConstitution] = []
    if isinstance(inline, dict):
        pseudo = {"project": {"risk_level": inline.get("risk_level")},
                  "quality": {"critical_percentage": inline.get("critical_percentage_target")},
                  "metadata": {"dna_code": inline.get("dna_code")}}
        layers.append(ProjectConstitution(loaded.parameters_path or loaded.folder, pseudo,
                                          loaded.sources))
    if path is not None:
        project = load_project(path)
        if project is not None:
            loaded.project = project
            loaded.diagnostics += project.diagnostics
            layers.append(project)
    for layer in layers:
        for spec_path, (value, key) in project_defaults(layer, applies).items():
            _offer(doc, spec_path, value, f"project:{key}", loaded.provenance)


def _offer(doc: dict[str, Any], path: DocPath, value: Any, origin: str,
           provenance: dict[DocPath, str]) -> None:
    """Set ``path`` in ``doc`` to ``value`` if the spec does not set it ('*' = every task)."""
    if path[:2] == ("tasks", "*"):
        for index, task in enumerate(doc.get("tasks") or []):
            if isinstance(task, dict) and path[2] not in task:
                task[path[2]] = value
                provenance[("tasks", index, path[2])] = origin
        return
    node: Any = doc
    for part in path[:-1]:
        if not isinstance(node, dict):
            return
        node = node.setdefault(part, {})
    if isinstance(node, dict) and path[-1] not in node:
        node[path[-1]] = value
        provenance[path] = origin


def _apply_step_defaults(loaded: LoadedSpec, doc: dict[str, Any]) -> None:
    """Task-level critical/mode/max_retries, project retries, then built-in defaults (A4, A28)."""
    retry = doc.get("retry")
    project_retries = retry.get("max_retries") if isinstance(retry, dict) else None
    tasks = doc.get("tasks")
    for ti, task in enumerate(tasks if isinstance(tasks, list) else []):
        for si, step in enumerate(task.get("steps") or []):
            path: DocPath = ("tasks", ti, "steps", si)
            if "critical_flag" not in step:
                if isinstance(task.get("critical"), bool):
                    step["critical_flag"] = task["critical"]
                    loaded.provenance[(*path, "critical_flag")] = "task"
                else:
                    step["critical_flag"] = True
                    loaded.provenance[(*path, "critical_flag")] = "default"
                    loaded.diagnostics.append(Diagnostic(
                        Severity.WARNING, "W-CRIT-MISSING",
                        f"step {task.get('id')}.{step.get('id')} has no critical flag; "
                        "true is assumed", loaded.sources.at(path),
                        "add `critical_flag = true` or `false`", strict=True))
            if "mode" not in step and task.get("mode") is not None:
                step["mode"] = task["mode"]
                loaded.provenance[(*path, "mode")] = "task"
            if "max_retries" not in step:
                for origin, value in (("task", task.get("max_retries")),
                                      ("project", project_retries)):
                    if isinstance(value, int) and not isinstance(value, bool):
                        step["max_retries"] = value
                        loaded.provenance[(*path, "max_retries")] = origin
                        break


def build_model(doc: dict[str, Any], sources: SourceMap) -> tuple[Spec | None, list[Diagnostic]]:
    """Validate ``doc`` into a Spec; wrong values are reported, dropped, and validation retried."""
    diagnostics: list[Diagnostic] = []
    work = doc
    for _ in range(12):
        try:
            spec = Spec.model_validate(work)
        except ValidationError as exc:
            if work is doc:
                work = copy.deepcopy(doc)
            removed = False
            for error in exc.errors():
                loc = tuple(error["loc"])
                path = _existing_path(work, loc)
                diagnostics.append(Diagnostic(
                    Severity.ERROR, "E-TYPE", _type_message(path or loc, error),
                    sources.at(path or loc), _type_hint(error)))
                removed |= _remove(work, path)
            if not removed:
                return None, diagnostics
            continue
        diagnostics += unknown_key_diagnostics(spec, sources)
        return spec, diagnostics
    return None, diagnostics


def _existing_path(doc: Any, loc: tuple[Any, ...]) -> DocPath:
    """The longest prefix of a pydantic error location that exists in ``doc``."""
    node, found = doc, []
    for part in loc:
        if (isinstance(node, dict) and part in node) or (
                isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)):
            node = node[part]
        else:
            break
        found.append(part)
    return tuple(found)


def _remove(doc: dict[str, Any], path: DocPath) -> bool:
    """Drop the innermost *key* on ``path`` (list items are kept so indices stay stable)."""
    keys = [i for i, part in enumerate(path) if isinstance(part, str)]
    if not keys:
        return False
    cut = keys[-1]
    node: Any = doc
    for part in path[:cut]:
        node = node[part]
    if isinstance(node, dict) and path[cut] in node:
        del node[path[cut]]
        return True
    return False


def _type_message(path: DocPath, error: Any) -> str:
    where = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in path).replace(".[", "[")
    message = str(error.get("msg", "invalid value")).rstrip(".")
    value = error.get("input")
    shown = "" if isinstance(value, dict | list) else f" (got {_shown(value)})"
    return f"'{where or 'document'}': {message[0].lower() + message[1:]}{shown}"


def _shown(value: Any, limit: int = 40) -> str:
    """A value as the TOML file wrote it, cut to ``limit`` characters."""
    if isinstance(value, datetime.date | datetime.time):
        text = f"the date/time {value.isoformat()}"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _type_hint(error: Any) -> str:
    if error.get("type") == "literal_error":
        return "use one of the values listed"
    return "see `specs schema` for the expected type"


def unknown_key_diagnostics(spec: Spec, sources: SourceMap) -> list[Diagnostic]:
    """An ``info`` per key the format does not define (kept in the model, never dropped)."""
    out: list[Diagnostic] = []

    def visit(node: Section, path: DocPath) -> None:
        for key in node.model_extra or ():
            out.append(Diagnostic(
                Severity.INFO, "I-UNKNOWN-KEY",
                f"'{'.'.join(str(p) for p in (*path, key))}' is not a known key; "
                "it is kept but not used", sources.at((*path, key))))
        for name in _section_fields(type(node)):
            value = getattr(node, name)
            if isinstance(value, Section):
                visit(value, (*path, name))
            elif isinstance(value, list):
                for index, item in enumerate(value):
                    if isinstance(item, Section):
                        visit(item, (*path, name, index))

    visit(spec, ())
    return out


_SECTION_FIELDS: dict[type[Section], tuple[str, ...]] = {}


def _section_fields(cls: type[Section]) -> tuple[str, ...]:
    """The fields of ``cls`` whose values can hold sections (the others are never visited)."""
    if cls not in _SECTION_FIELDS:
        _SECTION_FIELDS[cls] = tuple(
            name for name, info in cls.model_fields.items()
            if "Section" in _mro_names(info.annotation))
    return _SECTION_FIELDS[cls]


def _mro_names(annotation: Any) -> set[str]:
    names: set[str] = set()
    stack = [annotation]
    while stack:
        item = stack.pop()
        if isinstance(item, type) and issubclass(item, Section):
            names.add("Section")
        stack.extend(getattr(item, "__args__", ()))
    return names


def spec_from_document(doc: dict[str, Any], file: str = "<document>") -> tuple[
        Spec | None, list[Diagnostic]]:
    """Normalise and validate a parsed document alone (no Markdown, no project)."""
    doc = copy.deepcopy(doc)
    sources = SourceMap(file)
    normalizer = Normalizer(doc, sources)
    normalizer.run()
    loaded = LoadedSpec(None, normalizer.diagnostics, Path("."))
    _apply_step_defaults(loaded, doc)
    spec, problems = build_model(doc, sources)
    return spec, loaded.diagnostics + problems
