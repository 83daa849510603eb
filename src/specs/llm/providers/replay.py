"""Record and replay: a run's provider exchanges as a **cassette**, replayed with no network.

A cassette is a JSON Lines file, one exchange a line::

    {"provider": "openai", "request": {...}, "completion": {...}}
    {"provider": "openai", "request": {...}, "error": {"type": "RateLimited", ...}}

The request is *normalised* (:func:`normalise`): model, messages, tools, json_schema and
temperature, the parts that decide the answer; streaming and the output limit are left out.
Failed calls are recorded too, so a replay takes the same retries and backups as the run did.

:class:`RecordingProvider` wraps a real provider and appends each exchange as it happens.
:class:`ReplayProvider` answers from a cassette: the next unused exchange when its request is
the same, else the first unused exchange with the same request (parallel steps may ask in a
different order), else :class:`~specs.errors.ReplayMismatch` with a one-line summary of the
first difference against the next exchange in order. It opens no connection, ever.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from specs import errors
from specs.errors import ProviderConfigError, ProviderError, ReplayMismatch
from specs.llm.providers.base import Completion, Provider, Request, ToolCall, Usage

__all__ = ["RecordingProvider", "ReplayProvider", "first_difference", "normalise"]


def normalise(request: Request, default_model: str = "") -> dict[str, Any]:
    """The parts of ``request`` that decide the answer, as plain JSON values."""
    messages = []
    for m in request.messages:
        message: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.tool_calls:
            message["tool_calls"] = [{"id": c.id, "name": c.name, "arguments": c.arguments}
                                     for c in m.tool_calls]
        if m.tool_call_id is not None:
            message["tool_call_id"] = m.tool_call_id
        messages.append(message)
    value = {
        "model": request.model or default_model,
        "messages": messages,
        "tools": [{"name": t.name, "description": t.description, "parameters": t.parameters}
                  for t in request.tools],
        "json_schema": request.json_schema,
        "temperature": request.temperature,
    }
    result: dict[str, Any] = json.loads(json.dumps(value))
    return result


def completion_to_dict(completion: Completion) -> dict[str, Any]:
    return {
        "text": completion.text,
        "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments}
                       for c in completion.tool_calls],
        "usage": {"input_tokens": completion.usage.input_tokens,
                  "output_tokens": completion.usage.output_tokens},
        "model": completion.model,
        "finish_reason": completion.finish_reason,
        "raw": completion.raw,
    }


def completion_from_dict(data: dict[str, Any]) -> Completion:
    usage = data.get("usage") or {}
    return Completion(
        text=data.get("text") or "",
        tool_calls=tuple(ToolCall(c["id"], c["name"], c["arguments"])
                         for c in data.get("tool_calls") or []),
        usage=Usage(int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))),
        model=data.get("model") or "",
        finish_reason=data.get("finish_reason"),
        raw=data.get("raw") or {})


def error_to_dict(exc: ProviderError) -> dict[str, Any]:
    return {"type": type(exc).__name__, "message": str(exc), "provider": exc.provider,
            "status_code": exc.status_code, "retry_after": getattr(exc, "retry_after", None)}


def error_from_dict(data: dict[str, Any]) -> ProviderError:
    cls = getattr(errors, str(data.get("type")), None)
    if not (isinstance(cls, type) and issubclass(cls, ProviderError)):
        cls = ProviderError
    kwargs: dict[str, Any] = {"provider": data.get("provider"),
                              "status_code": data.get("status_code")}
    if cls is errors.RateLimited:
        kwargs["retry_after"] = data.get("retry_after")
    return cls(str(data.get("message") or cls.__name__), **kwargs)


class RecordingProvider:
    """Passes calls to ``inner`` and appends each exchange to the cassette at ``path``."""

    def __init__(self, inner: Provider, path: Path | str) -> None:
        self.inner = inner
        self.path = Path(path)
        self.name = inner.name
        self.model = inner.model
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"RecordingProvider({self.inner!r}, {str(self.path)!r})"

    async def complete(self, request: Request) -> Completion:
        entry: dict[str, Any] = {"provider": self.inner.name,
                                 "request": normalise(request, self.inner.model)}
        try:
            completion = await self.inner.complete(request)
        except ProviderError as exc:
            entry["error"] = error_to_dict(exc)
            self._append(entry)
            raise
        entry["completion"] = completion_to_dict(completion)
        self._append(entry)
        return completion

    def _append(self, entry: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as stream:
            stream.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")

    async def check(self) -> None:
        await self.inner.check()

    async def aclose(self) -> None:
        await self.inner.aclose()


class ReplayProvider:
    """Answers from a cassette; a request the cassette does not hold is :class:`ReplayMismatch`.

    Raises :class:`ProviderConfigError` at construction when the cassette is missing or not
    a cassette. ``name`` and ``model`` are the recorded provider's (override with arguments).
    """

    def __init__(self, path: Path | str, *, name: str | None = None,
                 model: str | None = None) -> None:
        self.path = Path(path)
        self.entries = _load(self.path)
        first = self.entries[0] if self.entries else {}
        self.name = name or str(first.get("provider") or "replay")
        self.model = model or str(first.get("request", {}).get("model") or "")
        self.used = [False] * len(self.entries)
        self.calls = 0

    def __repr__(self) -> str:
        return f"ReplayProvider({str(self.path)!r})"

    @property
    def remaining(self) -> int:
        """Exchanges not replayed yet."""
        return self.used.count(False)

    async def complete(self, request: Request) -> Completion:
        self.calls += 1
        got = normalise(request, self.model)
        index = self._find(got)
        self.used[index] = True
        entry = self.entries[index]
        if "error" in entry:
            raise error_from_dict(entry["error"])
        completion = completion_from_dict(entry.get("completion") or {})
        if request.on_text is not None and completion.text:
            request.on_text(completion.text)
        return completion

    def _find(self, got: dict[str, Any]) -> int:
        unused = [i for i, used in enumerate(self.used) if not used]
        for i in unused:
            if self.entries[i].get("request") == got:
                return i
        if not unused:
            raise ReplayMismatch(
                f"replay: request {self.calls} has no recorded exchange (the cassette "
                f"{self.path} holds {len(self.entries)})", provider=self.name)
        expected = unused[0]
        where, recorded, actual = first_difference(self.entries[expected].get("request"), got)
        raise ReplayMismatch(
            f"replay: request {self.calls} differs from exchange {expected + 1} of "
            f"{self.path} at {where or 'the top'}: recorded {recorded}, got {actual}",
            provider=self.name)

    async def check(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


def _load(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ProviderConfigError(f"replay: cannot read the cassette {path}: "
                                  f"{exc.strerror or exc}") from exc
    entries = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError as exc:
            raise ProviderConfigError(f"replay: {path}:{number} is not a JSON line") from exc
        if not isinstance(entry, dict) or "request" not in entry or not (
                "completion" in entry or "error" in entry):
            raise ProviderConfigError(f"replay: {path}:{number} is not a recorded exchange")
        entries.append(entry)
    return entries


def first_difference(recorded: Any, got: Any, where: str = "") -> tuple[str, str, str]:
    """Where two JSON values first differ, and both sides there, shortened for one line.

    The path reads like ``messages[1].content (character 12)``; equal values give
    ``(where, "", "")``.
    """
    if isinstance(recorded, dict) and isinstance(got, dict):
        for key in list(recorded) + [k for k in got if k not in recorded]:
            if recorded.get(key, _MISSING) != got.get(key, _MISSING):
                return first_difference(recorded.get(key, _MISSING), got.get(key, _MISSING),
                                        f"{where}.{key}" if where else str(key))
        return where, "", ""
    if isinstance(recorded, list) and isinstance(got, list):
        for i, (a, b) in enumerate(zip(recorded, got, strict=False)):
            if a != b:
                return first_difference(a, b, f"{where}[{i}]")
        if len(recorded) != len(got):
            return (f"{where} (length)", f"{len(recorded)} items", f"{len(got)} items")
        return where, "", ""
    if isinstance(recorded, str) and isinstance(got, str):
        at = next((i for i, (a, b) in enumerate(zip(recorded, got, strict=False)) if a != b),
                  min(len(recorded), len(got)))
        start = max(0, at - 20)
        where = f"{where} (character {at})" if at else where
        return where, _excerpt(recorded, start), _excerpt(got, start)
    return where, _short(recorded), _short(got)


class _Missing:
    def __repr__(self) -> str:
        return "(nothing)"


_MISSING: Any = _Missing()


def _excerpt(text: str, start: int, width: int = 50) -> str:
    piece = text[start: start + width]
    return ("…" if start else "") + repr(piece) + ("…" if start + width < len(text) else "")


def _short(value: Any, width: int = 60) -> str:
    text = repr(value) if isinstance(value, _Missing) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"
