"""The content-addressed cache of cognitive attempts (``[execution] cache = true``, ``--cache``).

An attempt's **key** is the SHA-256 of what decides its answer: the provider kind, the model,
the temperature, the output limit, the attempt's first request in full (messages, tools, JSON
schema) and :data:`EXECUTOR_VERSION` with the engine's version. A successful attempt is
stored under its key; a later attempt with the same key reuses the stored outcome without
calling the provider.

Only attempts whose tool calls were all read-only (``read_file``, ``list_files``) are stored:
an attempt that wrote files or ran commands changed the world in ways a cached answer would
not repeat. The read-only calls are stored with a hash of their results, and a hit runs them
again: when a file the model read has changed, the entry is not used (the inputs changed).

Entries are JSON files, ``<dir>/<key[:2]>/<key>.json``, written atomically; ``<dir>`` is
``$SPECS_CACHE_DIR``, else ``cache/`` in the state folder (``--state-dir``, default
``./.specs``). An entry that cannot be read or parsed is ignored (the caller warns) and
replaced by the next successful attempt.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specs.atomic import write_text_atomic
from specs.llm.providers.base import Request
from specs.llm.providers.replay import normalise
from specs.version import __version__

__all__ = ["EXECUTOR_VERSION", "FORMAT", "READ_ONLY_TOOLS", "CacheEntry", "ResponseCache",
           "cache_dir", "result_hash"]

#: bump when the agent loop changes what an attempt's outcome means (old entries then miss)
EXECUTOR_VERSION = "llm-1"
FORMAT = 1
READ_ONLY_TOOLS = frozenset({"read_file", "list_files"})


def cache_dir(state_dir: Path, env: dict[str, str] | None = None) -> Path:
    """``$SPECS_CACHE_DIR``, else ``<state dir>/cache``."""
    found = (env if env is not None else os.environ).get("SPECS_CACHE_DIR")
    return Path(found) if found else state_dir / "cache"


def result_hash(ok: bool, content: str) -> str:
    return hashlib.sha256(f"{int(ok)}\n{content}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """A stored successful attempt: its answer and the read-only tool calls it made."""

    key: str
    text: str
    output: Any
    usage: dict[str, int]
    model: str
    reads: tuple[tuple[str, dict[str, Any], str], ...]  # (tool, arguments, result hash)


class ResponseCache:
    """Entries under ``root``; see the module docstring."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def key(self, provider: str, model: str, request: Request) -> str:
        data = {"format": FORMAT, "executor": EXECUTOR_VERSION, "engine": __version__,
                "provider": provider, "model": model,
                "max_output_tokens": request.max_output_tokens,
                "request": normalise(request, model)}
        text = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def load(self, key: str) -> tuple[CacheEntry | None, str | None]:
        """The entry of ``key`` (None when there is none), and a warning when one is there but
        unusable."""
        path = self.path(key)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None, None
        except OSError as exc:
            return None, f"cache entry {path} cannot be read ({exc.strerror or exc}); ignored"
        try:
            entry = _parse(json.loads(raw), key)
        except (ValueError, TypeError, KeyError) as exc:
            return None, f"cache entry {path} is corrupt ({exc}); ignored, it will be replaced"
        return entry, None

    def store(self, entry: CacheEntry) -> str | None:
        """Write ``entry`` atomically; a warning when it cannot be written."""
        data = {"format": FORMAT, "key": entry.key, "created": time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "model": entry.model, "text": entry.text,
            "output": entry.output, "usage": entry.usage,
            "reads": [{"tool": t, "arguments": a, "result_sha256": h}
                      for t, a, h in entry.reads]}
        path = self.path(entry.key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(path, json.dumps(data, ensure_ascii=False, default=str))
        except OSError as exc:
            return f"cannot write the cache entry {path}: {exc.strerror or exc}"
        return None


def _parse(data: Any, key: str) -> CacheEntry:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError("not a cache entry of this version")
    if data.get("key") != key:
        raise ValueError("it holds another key")
    text, usage, reads = data["text"], data.get("usage") or {}, data.get("reads") or []
    if not isinstance(text, str) or not isinstance(usage, dict) or not isinstance(reads, list):
        raise ValueError("text, usage or reads has the wrong type")
    parsed = []
    for read in reads:
        tool, arguments, digest = read["tool"], read["arguments"], read["result_sha256"]
        if tool not in READ_ONLY_TOOLS or not isinstance(arguments, dict) or \
                not isinstance(digest, str):
            raise ValueError("a tool call that is not a read-only call")
        parsed.append((tool, arguments, digest))
    return CacheEntry(key, text, data.get("output"), {k: int(v) for k, v in usage.items()},
                      str(data.get("model") or ""), tuple(parsed))
