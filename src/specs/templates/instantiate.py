"""From a template and answers to a new spec folder: render, validate, then write.

:func:`render_template` renders every file of the template in memory (placeholders replaced,
the template's descriptor in file names and file references replaced by the new one).
:func:`create_spec` writes the result into a hidden folder beside the destination, validates
it there (so the project constitution of the destination applies), and only then moves it
into place: a spec that does not validate is never written, ``--dry-run`` writes nothing, and
an existing folder is never overwritten without ``force``. The provenance file
(:mod:`specs.templates.provenance`) is written with it.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from specs.diagnostics import Diagnostic, Location, Severity
from specs.errors import UsageError
from specs.spec.load import LoadedSpec, load_spec
from specs.spec.validate import validate
from specs.templates.errors import TemplateError
from specs.templates.model import Template
from specs.templates.provenance import PROVENANCE_FILE, provenance_bytes
from specs.templates.render import Context, render_text
from specs.templates.variables import Answers, Asker, resolve_answers

__all__ = ["Created", "Rendered", "SpecExists", "check_descriptor", "create_spec", "new_spec",
           "preview", "render_template", "sample_answers", "spec_folder", "template_files"]

_SKIP_DIRS = {".git", "__pycache__", ".specs", ".pytest_cache"}
_SKIP_FILES = re.compile(r"^(?:template\.toml|\.specs-template\.toml|progress_.*\.json|"
                         r"notepad_.*\.md)$")
_DESCRIPTOR = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
_TEXT_SUFFIXES_TOML = {".toml"}


class SpecExists(TemplateError):
    """The destination already holds files and ``--force`` was not given."""


@dataclass
class Rendered:
    """A template rendered in memory: ``files`` maps a relative path to its bytes."""

    template: Template
    descriptor: str
    answers: Answers
    files: dict[str, bytes]
    date: str = ""


@dataclass
class Created:
    """What :func:`create_spec` did (or would do, for a dry run)."""

    folder: Path
    files: list[str]
    diagnostics: list[Diagnostic] = field(default_factory=list)
    written: bool = False
    loaded: LoadedSpec | None = field(default=None, repr=False)  # as validated (in memory)
    rendered: Rendered | None = field(default=None, repr=False)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]


def check_descriptor(text: str) -> str:
    """``text`` if it can name a spec (a folder and its files), else :class:`UsageError`."""
    value = text.strip()
    if not value:
        raise UsageError("the descriptor is empty; give a short name such as login_bug")
    if "/" in value or "\\" in value or os.sep in value:
        raise UsageError(f"descriptor {value!r} holds a path separator; give a plain name "
                         "(use --dir to choose where the spec goes)")
    if ".." in value:
        raise UsageError(f"descriptor {value!r} holds '..'; give a plain name")
    if not _DESCRIPTOR.match(value):
        raise UsageError(f"descriptor {value!r} is not a plain name: use letters, digits, _, "
                         "- and . (starting with a letter or digit, at most 80 characters)")
    return value


def spec_folder(directory: Path, descriptor: str) -> Path:
    """Where ``specs new`` puts a spec: ``DIR/spec_<descriptor>`` (the original's layout)."""
    return directory / f"spec_{descriptor}"


def template_files(template: Template) -> Iterator[tuple[str, Path]]:
    """The template's files to instantiate, as (relative posix path, file), sorted."""
    root = template.folder
    for current, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        here = Path(current)
        for name in sorted(names):
            if here == root and _SKIP_FILES.match(name):
                continue
            path = here / name
            if path.is_file():
                yield path.relative_to(root).as_posix(), path


def render_template(template: Template, descriptor: str, answers: Answers, *,
                    today: dt.date | None = None) -> Rendered:
    """Every file of ``template`` rendered with ``answers`` for the spec ``descriptor``."""
    date = (today or dt.date.today()).isoformat()
    values = {**answers.values, "descriptor": descriptor, "date": date,
              "template": template.name, "template_version": template.version}
    context = Context(values, answers.secrets)
    files: dict[str, bytes] = {}
    for relative, path in template_files(template):
        data = path.read_bytes()
        target = _renamed(relative, template.descriptor, descriptor)
        text = _text(data)
        if text is None or any(fnmatch.fnmatch(relative, g) for g in template.render_exclude):
            files[target] = data
            continue
        if template.has_manifest:
            toml = Path(relative).suffix in _TEXT_SUFFIXES_TOML
            text = render_text(text, context, kind="toml" if toml else "text",
                               file=f"{template.name}/{relative}")
        files[target] = _rereference(text, template.descriptor, descriptor).encode("utf-8")
    return Rendered(template, descriptor, answers, files, date)


def _text(data: bytes) -> str | None:
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _renamed(relative: str, old: str, new: str) -> str:
    if "/" in relative or old == new:
        return relative
    for pattern in ("parameters_{}.toml", "spec_{}.md", "{}_SPEC.md", "exe_{}.md"):
        if relative == pattern.format(old):
            return pattern.format(new)
    return relative


def _rereference(text: str, old: str, new: str) -> str:
    """File names and descriptor keys that name the template's descriptor, renamed."""
    if old == new:
        return text
    quoted = re.escape(old)
    for pattern in ("parameters_{}.toml", "spec_{}.md", "{}_SPEC.md", "exe_{}.md",
                    "progress_{}.json", "notepad_{}.md"):
        head, tail = pattern.split("{}")
        text = re.sub(rf"(?<![\w-]){re.escape(head)}{quoted}{re.escape(tail)}(?![\w-])",
                      (head + new + tail).replace("\\", "\\\\"), text)
    return re.sub(rf'^(\s*(?:goal_descriptor|descriptor)\s*=\s*")({quoted})(")',
                  lambda m: m.group(1) + new + m.group(3), text, flags=re.M)


def new_spec(template: Template, descriptor: str | None, directory: Path,
             given: Mapping[str, Any], *, ask: Asker | None = None,
             env: Mapping[str, str] | None = None, cwd: Path | None = None,
             force: bool = False, dry_run: bool = False, strict: bool = False,
             today: dt.date | None = None) -> Created:
    """``specs new``: answer ``template``'s questions, render it, validate it and write it to
    ``directory/spec_<descriptor>`` (see :func:`create_spec`)."""
    name = check_descriptor(template.default_descriptor if descriptor is None else descriptor)
    cwd = Path.cwd() if cwd is None else cwd
    folder = spec_folder(cwd / directory, name)
    _refuse_existing(folder, force)
    date = (today or dt.date.today()).isoformat()
    builtins = {"descriptor": name, "date": date, "template": template.name,
                "template_version": template.version}
    answers = resolve_answers(template.variables, given, ask=ask, env=env, cwd=cwd,
                              spec_folder=folder, builtins=builtins)
    rendered = render_template(template, name, answers, today=today)
    return create_spec(rendered, folder, force=force, dry_run=dry_run, strict=strict)


def sample_answers(template: Template) -> dict[str, Any]:
    """Answers for a preview or a check: each variable's example (defaults do the rest)."""
    return {v.name: v.example for v in template.variables
            if v.example is not None and not v.secret}


def preview(template: Template, given: Mapping[str, Any] | None = None, *,
            strict: bool = True, env: Mapping[str, str] | None = None,
            today: dt.date | None = None) -> Created:
    """``template`` rendered with ``given`` (default: its examples) in a scratch folder,
    validated, and removed: what ``specs templates show`` and ``check`` look at."""
    with tempfile.TemporaryDirectory(prefix="specs-template-") as scratch:
        return new_spec(template, None, Path(scratch),
                        sample_answers(template) if given is None else given,
                        env={} if env is None else env, cwd=Path(scratch), dry_run=True,
                        strict=strict, today=today)


def _refuse_existing(folder: Path, force: bool) -> None:
    if folder.exists() and not folder.is_dir():
        raise SpecExists(f"{folder} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not force:
        raise SpecExists(f"{folder} already exists and is not empty; choose another "
                         "descriptor or --dir, or pass --force to overwrite its files")


def create_spec(rendered: Rendered, folder: Path, *, force: bool = False, dry_run: bool = False,
                strict: bool = False, provenance: bool = True) -> Created:
    """Validate ``rendered`` at ``folder`` and write it there unless it has errors (or this
    is a dry run), with its ``.specs-template.toml`` when ``provenance``.

    Raises :class:`SpecExists` when ``folder`` holds files and ``force`` is false.
    """
    folder = Path(os.path.abspath(folder))
    _refuse_existing(folder, force)
    files = dict(rendered.files)
    if provenance:
        files[PROVENANCE_FILE] = provenance_bytes(rendered)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{folder.name}.specs-new-{secrets.token_hex(4)}"
    try:
        _write_files(staging, files)
        loaded = load_spec(staging)
        diagnostics = [relocated(d, staging, folder) for d in validate(loaded, strict=strict)]
        created = Created(folder, sorted(files), diagnostics, loaded=loaded, rendered=rendered)
        if created.errors or dry_run:
            return created
        if folder.is_dir():
            for relative in files:
                target = folder / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / relative, target)
        else:
            os.replace(staging, folder)
        created.written = True
        return created
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _write_files(root: Path, files: dict[str, bytes]) -> None:
    root.mkdir(parents=True)
    for relative, data in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        if data.startswith(b"#!"):
            target.chmod(0o755)


def relocated(diagnostic: Diagnostic, staging: Path, folder: Path) -> Diagnostic:
    """``diagnostic`` with its location in ``folder`` instead of the staging folder."""
    where = diagnostic.location
    if not where.file.startswith(str(staging)):
        return diagnostic
    moved = Location(str(folder) + where.file[len(str(staging)):], where.line, where.col)
    return Diagnostic(diagnostic.severity, diagnostic.code, diagnostic.message, moved,
                      diagnostic.hint, diagnostic.strict, excerpt=diagnostic.excerpt)
