"""A spec's files: finding them (the parameters file, the Markdown, the project constitution)
and :class:`LoadedSpec`, everything known about one spec after loading (:mod:`specs.spec.load`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from specs.diagnostics import Diagnostic, Location, Severity
from specs.errors import PathNotFound, SpecLoadError
from specs.spec.markdown import MdSpec
from specs.spec.model import Spec
from specs.spec.project import ProjectConstitution
from specs.spec.sources import DocPath, SourceMap
from specs.spec.tomlio import parse_toml, read_text

if TYPE_CHECKING:
    from specs.spec.compose import Composed

__all__ = ["PROJECT_FILE", "LoadedSpec", "descriptor_of", "find_markdown", "find_parameters",
           "load_project", "nearest_project"]

PROJECT_FILE = "project_constitution.toml"


@dataclass
class LoadedSpec:
    """Everything known about one spec after loading; ``spec`` is None when it could not load."""

    spec: Spec | None
    diagnostics: list[Diagnostic]
    folder: Path
    parameters_path: Path | None = None
    markdown_path: Path | None = None
    exe_path: Path | None = None
    markdown: MdSpec | None = None
    project: ProjectConstitution | None = None
    sources: SourceMap = field(default_factory=lambda: SourceMap(""))
    provenance: dict[DocPath, str] = field(default_factory=dict)
    parameters_sha256: str | None = None
    # set when the spec includes others (specs.spec.compose): the records of what was included
    composition: Composed | None = None

    @property
    def descriptor(self) -> str:
        """The spec's short name: ``[meta] goal_descriptor`` when it is a plain name, else
        the parameters file's stem (it names the progress and notepad files, so a value
        with a path separator, ``..`` or a template placeholder is not used)."""
        given = self.spec.meta.goal_descriptor if self.spec is not None else None
        if given and plain_name(given):
            return given.strip()
        return descriptor_of(self.parameters_path) if self.parameters_path else self.folder.name

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]

    def require(self) -> Spec:
        """The spec, or :class:`SpecLoadError` carrying the errors that prevent loading."""
        if self.spec is None or self.errors:
            raise SpecLoadError(self.errors or self.diagnostics, self.parameters_path)
        return self.spec

    def file_stem_path(self, configured: str | None, default: str) -> Path:
        """Resolve an output path the spec names (relative to the spec folder; A48)."""
        return self.folder / (configured or default)

    @property
    def progress_path(self) -> Path:
        configured = self.spec.logging.output_file if self.spec else None
        return self.file_stem_path(configured, f"progress_{self.descriptor}.json")

    @property
    def notepad_path(self) -> Path:
        configured = self.spec.knowledge_capture.notepad_path if self.spec else None
        return self.file_stem_path(configured, f"notepad_{self.descriptor}.md")


def plain_name(text: str) -> bool:
    text = text.strip()
    return bool(text) and not any(c in text for c in "/\\[]") and text not in (".", "..")


def descriptor_of(parameters: Path) -> str:
    stem = parameters.stem
    return stem[len("parameters_"):] if stem.startswith("parameters_") else stem


def find_parameters(path: Path) -> tuple[Path | None, list[Diagnostic]]:
    """The parameters file for a folder or file argument (raises PathNotFound if absent)."""
    if not path.exists():
        raise PathNotFound(path)
    if path.is_file() or _directory_named_like_parameters(path):
        if path.suffix.lower() == ".md":
            match = _md_descriptor(path.name)
            candidates = sorted(path.parent.glob(f"parameters_{match}.toml")) if match else []
            if len(candidates) == 1:
                return candidates[0], []
            return None, [Diagnostic(
                Severity.ERROR, "E-SPEC-NO-PARAMS",
                "no parameters_*.toml matches this Markdown spec", Location(str(path)),
                "pass the spec folder or its parameters_<d>.toml")]
        return path, []
    found = sorted(p for p in path.glob("parameters_*.toml") if p.is_file())
    if not found:
        # a *directory* named like a parameters file: reading it reports "is a directory"
        found = sorted(p for p in path.glob("parameters_*.toml") if p.is_dir())[:1]
    if not found:
        return None, [Diagnostic(
            Severity.ERROR, "E-SPEC-NO-PARAMS", "folder holds no parameters_*.toml file",
            Location(str(path)), "pass a spec folder, or a parameters file")]
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        return None, [Diagnostic(
            Severity.ERROR, "E-SPEC-AMBIGUOUS", f"folder holds {len(found)} parameters files "
            f"({names})", Location(str(path)), "pass the one to use as PATH")]
    return found[0], []


def _directory_named_like_parameters(path: Path) -> bool:
    """A directory called parameters_*.toml that is no spec folder (reading it says so)."""
    return (path.name.startswith("parameters_") and path.suffix == ".toml"
            and not any(path.glob("parameters_*.toml")))


def _md_descriptor(name: str) -> str | None:
    for pattern in (r"^spec_(.+)\.md$", r"^(.+)_SPEC\.md$", r"^(speclet_.+)\.md$"):
        match = re.match(pattern, name, re.I)
        if match:
            return match.group(1)
    return None


def find_markdown(folder: Path, descriptor: str) -> Path | None:
    names = [f"spec_{descriptor}.md", f"{descriptor}_SPEC.md"]
    if descriptor.startswith("speclet_"):
        names.append(f"{descriptor}.md")
    by_lower = {p.name.lower(): p for p in folder.glob("*.md")}
    for name in names:
        if name.lower() in by_lower:
            return by_lower[name.lower()]
    return None


def load_project(path: Path) -> ProjectConstitution | None:
    """Load a project constitution, tolerating ``null`` with a warning."""
    text, diagnostics = read_text(path, "project constitution")
    doc: dict[str, Any] | None = None
    sources = SourceMap(str(path))
    if text is not None:
        doc, sources, more = parse_toml(text, str(path), null_tolerant=True)
        diagnostics += more
    return ProjectConstitution(path, doc or {}, sources, diagnostics)


def nearest_project(folder: Path) -> Path | None:
    for parent in [folder, *folder.parents]:
        candidate = parent / PROJECT_FILE
        if candidate.is_file():
            return candidate
    return None
