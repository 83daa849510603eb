"""The one exception tree of ``specs``.

::

    SpecsError                    base: every error ``specs`` raises on purpose
    ├── UsageError                bad command-line use (exit code 2)
    │   ├── PathNotFound          a PATH given by the user does not exist
    │   ├── AnswerError           an answer that does not fit a template's variable
    │   │                         (specs.templates.variables)
    │   └── PatchError            an insight that cannot be applied to this file
    │                             (specs.insights.patch)
    ├── SpecError                 a spec could not be loaded or is invalid (exit code 1)
    │   ├── SpecLoadError         loading stopped; ``.diagnostics`` says why
    │   ├── PlanError             a dependency cycle the plan finds (specs.plan.graph)
    │   └── ConditionError        a condition that does not parse or evaluate
    │                             (specs.spec.conditions)
    ├── TemplateError             a template unusable as written, file:line:col (exit code 1;
    │   │                         specs.templates)
    │   ├── SpecExists            the new spec's folder exists and --force was not given
    │   ├── UpdateRefused         an update would lose something: conflicts, a step past runs
    │   │                         used, an invalid result (specs.templates.update)
    │   └── DraftFailed           a draft stopped: the budget refused a call, the provider
    │                             failed (specs.templates.draft)
    ├── HistoryError              the run history database cannot be opened, read or written
    │                             (exit code 1; specs.history.store)
    ├── McpConfigError            an MCP server definition that cannot be read (exit code 2;
    │                             specs.spec.mcp_servers)
    ├── McpUnavailable            a required MCP server is not available (exit code 2;
    │                             specs.llm.mcp)
    └── ProviderError             an LLM provider call failed; ``.provider``, ``.status_code``
        ├── ProviderConfigError   missing key, bad base URL, rejected key: before a run starts
        ├── ProviderUnavailable   connection errors, 5xx, 529 overloaded        (transient)
        ├── RateLimited           429; ``.retry_after`` seconds or None         (transient)
        ├── ProviderTimeout       no answer within the timeout                  (transient)
        ├── BadResponse           malformed, truncated or garbage answer; wrong tool-call shape
        └── ReplayMismatch        replay: the request differs from the cassette

``specs.llm.mcp.McpStartError`` (a server that could not start) never leaves that module: it
becomes one sentence in a tool result or an MCP check's finding.

Bad input in a spec never raises from :func:`specs.spec.load.load_spec` or
:func:`specs.spec.validate.validate`: they return diagnostics. ``SpecLoadError`` is raised only by
the convenience helpers that promise a model (``load_spec(...).require()``), and carries the
diagnostics that made loading impossible.

``ProviderError.transient`` is true for the failures worth retrying after a pause (the engine's
backoff does that; providers never retry). ``BadResponse`` is an attempt failure that feeds the
method ladder; ``ProviderConfigError`` and ``ReplayMismatch`` stop the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from specs.diagnostics import Diagnostic

__all__ = [
    "BadResponse",
    "PathNotFound",
    "ProviderConfigError",
    "ProviderError",
    "ProviderTimeout",
    "ProviderUnavailable",
    "RateLimited",
    "ReplayMismatch",
    "SpecError",
    "SpecLoadError",
    "SpecsError",
    "UsageError",
]


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


class ProviderError(SpecsError):
    """An LLM provider call failed.

    ``provider`` names the provider (``openai``, ``anthropic``, ``replay``); ``status_code`` is
    the HTTP status when the server answered. ``transient`` says whether waiting and trying the
    same call again may succeed.
    """

    transient = False

    def __init__(self, message: str, *, provider: str | None = None,
                 status_code: int | None = None) -> None:
        self.provider = provider
        self.status_code = status_code
        super().__init__(message)


class ProviderConfigError(ProviderError):
    """The provider cannot be used as configured (missing key, bad base URL, rejected key,
    server unreachable at pre-flight). Raised before a run starts; never transient."""


class ProviderUnavailable(ProviderError):
    """The server could not be reached or failed (connection error, 5xx, 529 overloaded)."""

    transient = True


class RateLimited(ProviderError):
    """The server answered 429. ``retry_after`` is how long it asked us to wait, in seconds."""

    transient = True

    def __init__(self, message: str, *, provider: str | None = None,
                 status_code: int | None = 429, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message, provider=provider, status_code=status_code)


class ProviderTimeout(ProviderError):
    """No answer (or no next chunk) arrived within the timeout."""

    transient = True


class BadResponse(ProviderError):
    """The answer is unusable: not JSON, truncated, missing fields, a malformed tool call, or a
    4xx the server explains. An attempt failure, not transient."""


class ReplayMismatch(ProviderError):
    """Replaying a cassette: the request differs from the recorded one (or none is left)."""
