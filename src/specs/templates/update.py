"""``specs templates update PATH``: a spec re-rendered from a newer version of its template,
merged with the user's edits.

:func:`plan_update` reads the spec's provenance (template, version, answers, fingerprints),
renders the template as the library has it now with the same answers (asking only for
variables the new version added), and merges every file three ways
(:mod:`specs.templates.merge`). It also validates the merged spec and lists the steps the
merge removes that a past run's history references. :func:`apply_update` writes the result,
but refuses while conflicts are unresolved, while the merged spec has errors, and (unless
``force``) when a removed step appears in a past run.

The history of past runs is read from the run folders of the state folder
(``.specs/runs/*/events.jsonl``); a ``history`` callback can add another source (the history
database, once it exists).
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
import re
import secrets
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from specs.atomic import write_bytes_atomic
from specs.diagnostics import Diagnostic, Severity
from specs.events import RunOpened, read_events
from specs.spec.load import load_spec
from specs.spec.validate import validate
from specs.templates.errors import TemplateError
from specs.templates.instantiate import Rendered, relocated, render_template
from specs.templates.merge import Conflict, FileMerge, Prefer, merge_file, removed_steps
from specs.templates.model import Template
from specs.templates.provenance import (
    PROVENANCE_FILE,
    Provenance,
    provenance_bytes,
    read_provenance,
)
from specs.templates.sources import Library
from specs.templates.variables import Asker, resolve_answers

__all__ = ["UpdatePlan", "UpdateRefused", "apply_update", "plan_update", "runs_referencing",
           "version_key"]

#: ``history(spec_folder)`` -> step ref -> the runs that reference it (another history source)
History = Callable[[Path], Mapping[str, list[str]]]


class UpdateRefused(TemplateError):
    """The update would lose something: conflicts, a step past runs used, an invalid result."""


@dataclass
class UpdatePlan:
    """What an update would do; :func:`apply_update` carries it out."""

    folder: Path
    provenance: Provenance
    template: Template
    rendered: Rendered
    merges: list[FileMerge]
    removed: list[str] = field(default_factory=list)  # step refs the merge removes
    history: dict[str, list[str]] = field(default_factory=dict)  # removed ref -> run ids
    diagnostics: list[Diagnostic] = field(default_factory=list)
    dropped_answers: list[str] = field(default_factory=list)  # variables the version dropped
    prefer: Prefer = None  # how conflicts were resolved (None: they were not)

    @property
    def conflicts(self) -> list[Conflict]:
        return [c for m in self.merges for c in m.conflicts]

    @property
    def changed(self) -> list[FileMerge]:
        return [m for m in self.merges if m.changed]

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]

    @property
    def same_version(self) -> bool:
        return self.template.version == self.provenance.version

    @property
    def older(self) -> bool:
        return version_key(self.template.version) < version_key(self.provenance.version)

    def diff(self) -> str:
        """The changes as a unified diff (what ``--dry-run`` prints)."""
        out: list[str] = []
        for merge in self.changed:
            before = _lines(self.folder / merge.path)
            after = [] if merge.data is None else merge.data.decode("utf-8", "replace") \
                .splitlines(keepends=True)
            out += difflib.unified_diff(before, after, f"a/{merge.path}", f"b/{merge.path}")
        return "".join(out)


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines(keepends=True)
    except (OSError, UnicodeDecodeError):
        return []


def version_key(version: str) -> tuple[Any, ...]:
    """``"1.10.0"`` > ``"1.9.2"``: numbers compare as numbers, other parts as text."""
    return tuple((0, int(part)) if part.isdigit() else (1, part)
                 for part in re.split(r"[.\-+]", version))


def plan_update(folder: Path, library: Library, *, given: Mapping[str, Any] | None = None,
                ask: Asker | None = None, env: Mapping[str, str] | None = None,
                prefer: Prefer = None, state_dir: Path | None = None,
                history: History | None = None, template: Template | None = None
                ) -> UpdatePlan:
    """Everything an update of the spec in ``folder`` would do (nothing is written).

    ``template`` is the new version (default: the library's template of the recorded name).
    """
    folder = Path(os.path.abspath(folder))
    provenance = read_provenance(folder)
    template = template or library.get(provenance.name)
    declared = {v.name for v in template.variables}
    recorded = {k: v for k, v in provenance.answers.items() if k in declared}
    created = _date(provenance.created)
    builtins = {"descriptor": provenance.descriptor, "date": created.isoformat(),
                "template": template.name, "template_version": template.version}
    answers = resolve_answers(template.variables, {**recorded, **(given or {})}, ask=ask,
                              env=env, cwd=folder, spec_folder=folder,
                              final=set(recorded) - set(given or {}), builtins=builtins)
    rendered = render_template(template, provenance.descriptor, answers, today=created)
    paths = sorted(set(provenance.base) | set(rendered.files))
    merges = [merge_file(path, provenance.base.get(path), _read(folder / path),
                         rendered.files.get(path), prefer) for path in paths]
    plan = UpdatePlan(folder, provenance, template, rendered, merges,
                      dropped_answers=sorted(set(provenance.answers) - declared), prefer=prefer)
    parameters = next((m for m in merges if re.fullmatch(r"parameters_.*\.toml", m.path)),
                      None)
    if parameters is not None:
        plan.removed = removed_steps(_read(folder / parameters.path), parameters.data)
    if plan.removed:
        used = runs_referencing(folder, state_dir or Path(".specs"))
        for ref, runs in (history(folder) if history else {}).items():
            used.setdefault(ref, []).extend(r for r in runs if r not in used.get(ref, []))
        plan.history = {ref: used[ref] for ref in plan.removed if used.get(ref)}
    plan.diagnostics = _validate(folder, merges)
    return plan


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return dt.date.today()


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _validate(folder: Path, merges: list[FileMerge]) -> list[Diagnostic]:
    """The merged spec's diagnostics, checked in a copy beside the folder."""
    staging = folder.parent / f".{folder.name}.specs-update-{secrets.token_hex(4)}"
    try:
        shutil.copytree(folder, staging, ignore=shutil.ignore_patterns(".specs"))
        for merge in merges:
            target = staging / merge.path
            if merge.data is None:
                target.unlink(missing_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(merge.data)
        found = validate(load_spec(staging))
        return [relocated(d, staging, folder) for d in found]
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def runs_referencing(folder: Path, state_dir: Path) -> dict[str, list[str]]:
    """Step ref -> the ids of the runs of the spec in ``folder`` (in ``state_dir/runs``)
    whose events name that step."""
    found: dict[str, list[str]] = {}
    target = str(Path(os.path.abspath(folder)).resolve())
    for log in sorted((state_dir / "runs").glob("*/events.jsonl")):
        try:
            events = list(read_events(log))
        except (OSError, ValueError):
            continue
        opened = next((e for e in events if isinstance(e, RunOpened)), None)
        if opened is None or str(opened.spec.get("folder")) != target:
            continue
        for event in events:
            ref = getattr(event, "step", None)
            if isinstance(ref, str) and opened.run_id not in found.setdefault(ref, []):
                found[ref].append(opened.run_id)
    return found


def apply_update(plan: UpdatePlan, *, force: bool = False,
                 today: dt.date | None = None) -> list[str]:
    """Write the update; the files written or removed. Raises :class:`UpdateRefused`."""
    if plan.older and not force:
        raise UpdateRefused(
            f"{plan.template.ref} ({plan.template.layer}) is older than the version this spec "
            f"was made from ({plan.provenance.version}); pass --force to go back to it")
    if plan.conflicts and plan.prefer is None:
        raise UpdateRefused(f"{len(plan.conflicts)} conflicts between your edits and "
                            f"{plan.template.ref}; nothing was written (resolve them by hand, "
                            "or choose a side with --keep-mine or --take-template)")
    if plan.history and not force:
        used = "; ".join(f"step {ref} (runs {', '.join(runs)})"
                         for ref, runs in sorted(plan.history.items()))
        raise UpdateRefused(f"{plan.template.ref} removes steps that past runs used: {used}; "
                            "pass --force to remove them anyway")
    if plan.errors:
        raise UpdateRefused(f"the updated spec would have {len(plan.errors)} errors; nothing "
                            "was written")
    written = []
    for merge in plan.changed:
        target = plan.folder / merge.path
        if merge.data is None:
            target.unlink(missing_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(target, merge.data)
        written.append(merge.path)
    updated = (today or dt.date.today()).isoformat()
    write_bytes_atomic(plan.folder / PROVENANCE_FILE, provenance_bytes(
        plan.rendered, created=plan.provenance.created, updated=updated))
    return written
