"""From proven work back to a template: ``specs templates extract PATH``.

A spec that worked (or some of its tasks: ``--tasks 1,3``) becomes a template folder: its files
copied with the texts the user names replaced by variables (``--var NAME=TEXT``: every
``TEXT`` becomes ``{{ NAME }}``, a variable whose default is ``TEXT``), and a ``template.toml``
that declares them. :func:`candidates` proposes the texts worth a variable (paths, file names,
identifiers, terms in backticks, repeated proper names), most frequent first; nothing is
replaced that the user did not confirm.

With every default left as it is, ``specs new`` on the template makes the same spec again.
Values are replaced inside TOML strings only (a string that gains a placeholder is written as
a basic string, so any later answer can be escaped), and a ``{{`` already in the text is
written ``{{ '{{' }}`` so that it stays text.
"""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import AoT, Table

from specs.errors import UsageError
from specs.spec.load import load_spec
from specs.spec.model import Spec
from specs.templates.errors import TemplateError
from specs.templates.instantiate import template_files
from specs.templates.merge import segments
from specs.templates.model import BUILTIN_NAMES, NAME, TEMPLATE_FILE, Template, load_template

__all__ = ["Candidate", "candidates", "default_destination", "extract_template",
           "parse_tasks"]

_PATH = re.compile(r"(?<![\w/.$\\-])(?:[\w.-]+/)+[\w.-]*\w|(?<![\w/.$\\-])[\w-]+\.(?:py|js|ts|md|"
                   r"txt|json|csv|toml|ya?ml|sh|go|rs|java|rb|html|css|sql|log|ini|cfg)\b")
_IDENT = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b|\b[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]+)+\b"
                    r"|\b\w+\(\)")
_TICKS = re.compile(r"`([^`\n]{2,60})`")
_SPEC_WORDS = {"goal_descriptor", "critical_flag", "expected_output", "max_retries",
               "primary_method", "trigger_condition", "primary_failure", "expected_files",
               "output_schema", "parallel_group", "depends_on", "execution_method"}


@dataclass(frozen=True)
class Candidate:
    """A text of the spec that may deserve a variable: how often it appears, a name for it."""

    text: str
    name: str
    count: int
    kind: str  # path | identifier | term


def parse_tasks(text: str | None) -> list[int] | None:
    """``--tasks 1,3`` as task ids (None: every task)."""
    if text is None:
        return None
    ids = []
    for part in text.split(","):
        if not part.strip().isdigit():
            raise UsageError(f"--tasks {text!r}: give task ids separated by commas, e.g. 1,3")
        ids.append(int(part))
    return ids


def _texts(spec: Spec) -> tuple[list[str], list[str]]:
    """The spec's prose (goal, descriptions, expected outputs, checked files) and its
    commands (where only paths are worth a variable: the rest is code)."""
    prose = [spec.goal.description]
    code: list[str] = []
    for task in spec.tasks:
        prose.append(task.description)
        for step in task.steps:
            for action in (step, *step.backups):
                prose += [getattr(action, "description", ""), *(action.expected_files or [])]
                code += [action.command or "", *(action.verify or [])]
            prose += [step.expected_output or "", step.primary_method or ""]
    return [t for t in prose if t], [t for t in code if t]


def candidates(folder: Path, *, limit: int = 12) -> list[Candidate]:
    """The texts of the spec in ``folder`` most worth a variable (see the module docstring)."""
    loaded = load_spec(folder)
    spec = loaded.require()
    prose, code = _texts(spec)
    if loaded.markdown_path is not None:
        prose += _TICKS.findall(loaded.markdown_path.read_text(encoding="utf-8"))
    own = {p.name for p in folder.iterdir()} | {Path(p.name).stem for p in folder.iterdir()}
    own.add(loaded.descriptor)
    counts: Counter[str] = Counter()
    kinds: dict[str, str] = {}
    sources: list[tuple[str, tuple[tuple[str, re.Pattern[str]], ...]]] = [
        (text, (("path", _PATH), ("identifier", _IDENT))) for text in prose]
    sources += [(text, (("path", _PATH),)) for text in code]
    for text, patterns in sources:
        for kind, pattern in patterns:
            for found in pattern.findall(text):
                token = found.strip(".,;:")
                if len(token) > 2 and token not in own and token not in _SPEC_WORDS and \
                        not token.startswith(("progress_", "notepad_", "parameters_")):
                    counts[token] += 1
                    kinds.setdefault(token, kind)
    names: set[str] = set()
    found_list = []
    for token, count in counts.most_common():
        name = _name_for(token, kinds[token], names)
        names.add(name)
        found_list.append(Candidate(token, name, count, kinds[token]))
    return found_list[:limit]


def _name_for(token: str, kind: str, taken: set[str]) -> str:
    stem = Path(token).stem if kind == "path" else token
    base = re.sub(r"[^0-9a-z]+", "_", re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", stem).lower())
    base = base.strip("_") or "value"
    if not base[0].isalpha():
        base = f"v_{base}"
    if kind == "path":
        base += "_path" if not base.endswith("_path") else ""
    name, n = base, 2
    while name in taken or name in BUILTIN_NAMES:
        name, n = f"{base}_{n}", n + 1
    return name


def extract_template(folder: Path, destination: Path, *, name: str | None = None,
                     tasks: list[int] | None = None, variables: Mapping[str, str] | None = None,
                     force: bool = False) -> Template:
    """Write the template made from the spec in ``folder`` to ``destination``; the template.

    ``variables`` maps a variable name to the text it replaces. Raises :class:`UsageError`
    for a bad name, a text the spec does not hold, or a task selection that leaves out a step
    a kept one depends on; :class:`TemplateError` when the spec does not load.
    """
    loaded = load_spec(folder)
    if loaded.spec is None or loaded.errors or loaded.parameters_path is None:
        first = loaded.errors[0].render() if loaded.errors else f"{folder}: no spec"
        raise TemplateError(f"{folder} does not load, so it cannot become a template: {first}")
    spec = loaded.spec
    variables = dict(variables or {})
    template_name = name or re.sub(r"[^0-9a-z]+", "_", loaded.descriptor.lower()).strip("_")
    if not NAME.match(template_name):
        raise UsageError(f"template name {template_name!r} must be lower-case letters, digits "
                         "and _ (starting with a letter); pass --name")
    for var_name, text in variables.items():
        if not NAME.match(var_name) or var_name in BUILTIN_NAMES:
            raise UsageError(f"--var {var_name}=...: {var_name!r} cannot name a variable "
                             "(lower-case letters, digits and _; not a built-in name)")
        if not text:
            raise UsageError(f"--var {var_name}=: give the text the variable replaces")
    kept = _check_tasks(spec, tasks)
    if destination.exists() and any(destination.iterdir()) and not force:
        raise UsageError(f"{destination} already exists; pass --force to overwrite it")
    files = _template_texts(folder, loaded.parameters_path, loaded.markdown_path, kept)
    missing = [t for t in variables.values() if not any(t in text for text in files.values())]
    if missing:
        raise UsageError(f"--var: {missing[0]!r} does not appear in the spec")
    order = sorted(variables.items(), key=lambda item: -len(item[1]))  # longest text first
    rendered = {path: _substitute(path, text, order) for path, text in files.items()}
    if destination.exists():
        shutil.rmtree(destination)
    destination.mkdir(parents=True)
    for relative, text in rendered.items():
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    for relative, path in _binary_files(folder, set(files)):
        (destination / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination / relative)
    (destination / TEMPLATE_FILE).write_text(_manifest(template_name, loaded.descriptor, spec,
                                                       variables), encoding="utf-8")
    return load_template(destination)


def _check_tasks(spec: Spec, tasks: list[int] | None) -> set[int] | None:
    if tasks is None:
        return None
    ids = {task.id for task in spec.tasks}
    unknown = [t for t in tasks if t not in ids]
    if unknown:
        raise UsageError(f"--tasks: the spec has no task {unknown[0]} (it has "
                         f"{', '.join(map(str, sorted(ids)))})")
    if spec.speclets or spec.transitions:
        raise UsageError("--tasks: the spec has SPECLets or transitions; extract it whole")
    kept = set(tasks)
    for task in spec.tasks:
        if task.id not in kept:
            continue
        needs = [str(d) for d in task.depends_on or []]
        for step in task.steps:
            needs += [str(d) for d in step.depends_on or [] if "." in str(d)]
            needs += [m.group(1) or m.group(2) for m in re.finditer(
                r"steps\[['\"](\d+)\.\d+['\"]\]|task(\d+)_step\d+_output",
                step.condition or "")]
        for need in needs:
            task_id = need.split(".")[0]
            if task_id.isdigit() and int(task_id) not in kept:
                raise UsageError(f"--tasks: task {task.id} depends on task {task_id}, which "
                                 f"is left out; add it (--tasks "
                                 f"{','.join(map(str, sorted(kept | {int(task_id)})))})")
    return kept


def _template_texts(folder: Path, parameters: Path, markdown: Path | None,
                    kept: set[int] | None) -> dict[str, str]:
    """The spec's text files (relative path -> text), the tasks not kept removed."""
    probe = Template(name="x", folder=folder)
    out: dict[str, str] = {}
    for relative, path in template_files(probe):
        if relative == ".specs-template.toml":
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if "\x00" in text:
            continue
        if path == parameters and kept is not None:
            doc = tomlkit.parse(text)
            items = doc.get("tasks")
            if isinstance(items, AoT):
                for index in reversed(range(len(items))):
                    if items[index].get("id") not in kept:
                        del items[index]
            text = tomlkit.dumps(doc)
        elif markdown is not None and path == markdown and kept is not None:
            text = _markdown_tasks(text, kept)
        out[relative] = text
    return out


def _markdown_tasks(text: str, kept: set[int]) -> str:
    out = []
    for key, part in segments(text):
        match = re.match(r"(?:task|step) (\d+)", key)
        if match and int(match.group(1)) not in kept:
            continue
        out.append(part)
    return "".join(out)


def _binary_files(folder: Path, texts: set[str]) -> list[tuple[str, Path]]:
    probe = Template(name="x", folder=folder)
    return [(r, p) for r, p in template_files(probe)
            if r not in texts and r != ".specs-template.toml"]


def _substitute(path: str, text: str, order: list[tuple[str, str]]) -> str:
    if path.endswith(".toml"):
        doc = tomlkit.parse(text)
        _toml_strings(doc, order)
        return tomlkit.dumps(doc)
    return _replace(text, order)


def _replace(text: str, order: list[tuple[str, str]]) -> str:
    """``text`` with ``{{`` kept as text and each variable's text replaced, longest first,
    never inside a placeholder made earlier."""
    pieces: list[str | tuple[str]] = [text.replace("{{", "\x00")]
    for name, literal in order:
        nxt: list[str | tuple[str]] = []
        for piece in pieces:
            if isinstance(piece, tuple):
                nxt.append(piece)
                continue
            parts = piece.split(literal)
            for i, part in enumerate(parts):
                if i:
                    nxt.append((f"{{{{ {name} }}}}",))
                nxt.append(part)
        pieces = nxt
    return "".join(p[0] if isinstance(p, tuple) else p.replace("\x00", "{{ '{{' }}")
                   for p in pieces)


def _toml_strings(node: Any, order: list[tuple[str, str]]) -> None:
    items = node.items() if isinstance(node, dict | Table) else enumerate(node)
    for key, value in list(items):
        if isinstance(value, str):
            new = _replace(value, order)
            if new != value:
                node[key] = tomlkit.string(new)
        elif isinstance(value, dict | list | Table | AoT):
            _toml_strings(value, order)


def _manifest(name: str, descriptor: str, spec: Spec, variables: Mapping[str, str]) -> str:
    goal = " ".join(spec.goal.description.split())
    words = [w for w in re.findall(r"[a-z][a-z-]{4,}", goal.lower())
             if w not in {"which", "their", "there", "about", "after", "before", "every"}]
    doc = tomlkit.document()
    doc.add(tomlkit.comment(f"Made by `specs templates extract` from the spec {descriptor}."))
    doc["template"] = {
        "name": name, "version": "1.0.0", "title": descriptor.replace("_", " ").capitalize(),
        "summary": goal if len(goal) <= 160 else goal[:157] + "...",
        "category": "other", "keywords": list(dict.fromkeys(words))[:8],
        "pick_when": f"work like the spec {descriptor}: {goal}"[:200],
        "descriptor": descriptor}
    table: dict[str, Any] = {}
    for var_name, literal in variables.items():
        is_path = _PATH.fullmatch(literal) is not None and "\n" not in literal
        entry: dict[str, Any] = {"prompt": f"What replaces {literal!r}?",
                                 "type": "path" if is_path else "str"}
        if is_path:
            entry["base"] = "as_given"
        if "\n" in literal:
            entry["multiline"] = True
        entry["default"] = literal
        entry["example"] = literal
        table[var_name] = entry
    doc["variables"] = table
    return tomlkit.dumps(doc)


def default_destination(cwd: Path, name: str) -> Path:
    """Where an extracted template goes by default: the project's ``.specs/templates/``
    (the nearest parent that has ``.specs/``, else the working directory)."""
    for folder in [cwd.resolve(), *cwd.resolve().parents]:
        if (folder / ".specs").is_dir():
            return folder / ".specs" / "templates" / name
    return Path(os.path.abspath(cwd)) / ".specs" / "templates" / name
