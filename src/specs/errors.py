"""The one exception tree of ``specs``.

::

    SpecsError                    base: every error ``specs`` raises on purpose
    ├── UsageError                bad command-line use (exit code 2)
    │   └── PathNotFound          a PATH given by the user does not exist
    └── SpecError                 a spec could not be loaded or is invalid (exit code 1)
        └── SpecLoadError         loading stopped; ``.diagnostics`` says why

Bad input in a spec never raises from :func:`specs.load.load_spec` or
:func:`specs.validate.validate`: they return diagnostics. ``SpecLoadError`` is raised only by the
convenience helpers that promise a model (``load_spec(...).require()``), and carries the
diagnostics that made loading impossible.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from specs.diagnostics import Diagnostic

__all__ = ["PathNotFound", "SpecError", "SpecLoadError", "SpecsError", "UsageError"]


class SpecsError(Exception):
    """Base of every error ``specs`` raises on purpose."""

    exit_code = 1


class UsageError(SpecsError):
    """The command line was used wrongly (exit code 2)."""

    exit_code = 2


class PathNotFound(UsageError):
    """A path given by the user does not exist."""

    def __init__(self, path: Path | str, what: str = "path") -> None:
        self.path = Path(path)
        super().__init__(f"{path}: {what} not found")


class SpecError(SpecsError):
    """A spec could not be loaded, or is invalid."""

    def __init__(self, message: str, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        super().__init__(message)


class SpecLoadError(SpecError):
    """Loading a spec stopped; ``diagnostics`` holds every reason found."""

    def __init__(self, diagnostics: Sequence[Diagnostic], path: Path | str | None = None) -> None:
        self.diagnostics = tuple(diagnostics)
        first = self.diagnostics[0].render() if self.diagnostics else "spec could not be loaded"
        super().__init__(first, path)
