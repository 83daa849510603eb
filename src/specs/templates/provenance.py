"""Provenance: ``.specs-template.toml``, the record of where a spec came from.

``specs new`` writes it beside the spec's files::

    template = "bug_fix@1.0.0"     # name@version

    [source]
    name = "bug_fix"
    version = "1.0.0"
    layer = "built-in"             # the source layer the template was found in
    descriptor = "login_crash"
    created = "2026-03-01"

    [answers]                      # every answer except secrets
    bug = "the login page crashes when the password is empty"

    [secrets]                      # secret variables: the environment variable each reads
    token = "API_TOKEN"

    [base."parameters_login_crash.toml"]   # fingerprints of what the template rendered
    "(file)" = "3f2a..."
    "tasks[1].steps[2].command" = "9b1c..."

The ``[base]`` fingerprints (:func:`specs.templates.merge.fingerprint`) let ``specs templates
update`` tell the user's edits from the template's changes without keeping the old render.
Secrets' values are never written.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomlkit

from specs.templates.errors import TemplateError
from specs.templates.merge import fingerprint

if TYPE_CHECKING:
    from specs.templates.instantiate import Rendered

__all__ = ["PROVENANCE_FILE", "Provenance", "provenance_bytes", "read_provenance"]

PROVENANCE_FILE = ".specs-template.toml"

HEADER = ("Written by `specs new`: the template this spec was made from, the answers given "
          "and fingerprints of what it rendered.\n`specs templates update` reads it; secrets "
          "are never written here.")


@dataclass
class Provenance:
    """What ``.specs-template.toml`` says."""

    name: str
    version: str
    descriptor: str
    layer: str = ""
    created: str = ""
    updated: str = ""
    answers: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    base: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


def provenance_bytes(rendered: Rendered, *, created: str | None = None,
                     updated: str | None = None) -> bytes:
    """The ``.specs-template.toml`` of a freshly rendered spec (``created``, ``updated``: the
    dates of an earlier creation and of this update)."""
    template = rendered.template
    doc = tomlkit.document()
    for line in HEADER.splitlines():
        doc.add(tomlkit.comment(line))
    doc["template"] = template.ref
    source: dict[str, Any] = {"name": template.name, "version": template.version,
                              "layer": template.layer, "descriptor": rendered.descriptor,
                              "created": created or rendered.date}
    if updated:
        source["updated"] = updated
    doc["source"] = source
    doc["answers"] = dict(rendered.answers.values)
    if rendered.answers.secrets:
        doc["secrets"] = dict(rendered.answers.secrets)
    doc["base"] = {path: fingerprint(path, data) for path, data in sorted(
        rendered.files.items())}
    return tomlkit.dumps(doc).encode("utf-8")


def read_provenance(folder: Path) -> Provenance:
    """The provenance of the spec in ``folder``; :class:`TemplateError` when it has none or
    it cannot be read."""
    path = folder / PROVENANCE_FILE
    if not path.is_file():
        raise TemplateError(f"{folder}: no {PROVENANCE_FILE}; only specs made by `specs new` "
                            "can be updated from their template")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise TemplateError(f"{path}: cannot be read: {exc}") from None
    source = doc.get("source")
    if not isinstance(source, dict) or not isinstance(source.get("name"), str):
        raise TemplateError(f"{path}: [source] name is missing; the file is not a provenance "
                            "record of `specs new`")
    base = doc.get("base", {})
    if not isinstance(base, dict):
        raise TemplateError(f"{path}: [base] must be a table of file fingerprints")
    return Provenance(
        name=source["name"], version=str(source.get("version", "0")),
        descriptor=str(source.get("descriptor") or ""), layer=str(source.get("layer", "")),
        created=str(source.get("created", "")), updated=str(source.get("updated", "")),
        answers=dict(doc.get("answers", {})), secrets=dict(doc.get("secrets", {})),
        base={str(k): {str(a): str(b) for a, b in v.items()} for k, v in base.items()
              if isinstance(v, dict)})
