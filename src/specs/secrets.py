"""Secrets kept out of everything a run writes: the events, and so every projection of them
(progress_X.json, notepad_X.md, the ``--json`` stream, the history, the dashboard).

The secrets are the values of the environment's variables that hold keys: the providers' keys
(``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``) and every variable whose name ends in ``_KEY``,
``_TOKEN``, ``_SECRET`` or ``_PASSWORD`` (or is ``PASSWORD``/``TOKEN``), when its value is at least
:data:`MIN_LENGTH` characters (shorter values would mask ordinary words). A model's answer, a
tool's error message or a command's output that contains one is recorded with the value
replaced by ``[secret NAME]``.

What is not masked: files a step writes itself, and the captured stdout/stderr of commands in
the run folder's ``outputs/`` (raw captures, kept as the process wrote them); the run folder
is the user's, like the workspace.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["MIN_LENGTH", "Masker", "secret_names"]

MIN_LENGTH = 8
_NAMES = re.compile(r"(^|_)(API_KEY|KEY|TOKEN|SECRET|PASSWORD|PASSWD)$", re.IGNORECASE)
_ALWAYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")


def secret_names(environ: Mapping[str, str]) -> list[str]:
    """The names of the variables of ``environ`` that hold a secret (see the module)."""
    return sorted(name for name, value in environ.items()
                  if (name in _ALWAYS or _NAMES.search(name)) and len(value) >= MIN_LENGTH)


class Masker:
    """Replaces the secrets of an environment in text and in events, in place."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        found = {env[name]: name for name in secret_names(env)}
        # longest first: a secret that contains another is replaced whole
        self.secrets = sorted(found.items(), key=lambda item: -len(item[0]))

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def text(self, value: str) -> str:
        for secret, name in self.secrets:
            if secret in value:
                value = value.replace(secret, f"[secret {name}]")
        return value

    def value(self, value: Any) -> Any:
        """``value`` with every secret in its strings replaced (dicts and lists walked; other
        values as they are). Returns the same object when nothing changed."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            changed = {self.value(k): self.value(v) for k, v in value.items()}
            return value if changed == value else changed
        if isinstance(value, list | tuple):
            items = [self.value(v) for v in value]
            return value if items == list(value) else type(value)(items)
        return value

    def event(self, event: Any) -> None:
        """Mask every field of an event (a dataclass) in place."""
        for item in dataclasses.fields(event):
            current = getattr(event, item.name)
            if isinstance(current, str | dict | list | tuple):
                masked = self.value(current)
                if masked is not current:
                    setattr(event, item.name, masked)
