"""The template library's error: a template unusable as written (exit code 1)."""

from __future__ import annotations

from specs.errors import SpecsError

__all__ = ["TemplateError"]


class TemplateError(SpecsError):
    """A template is unusable as written (its ``template.toml``, or a placeholder): the
    message is one line naming file:line:col."""
