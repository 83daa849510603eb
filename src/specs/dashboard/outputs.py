"""A step's output, as its panel on the run page shows it, and followed while it runs.

Commands' captured stdout and stderr are files of the run folder,
``outputs/<step>/<method>-<n>.stdout|.stderr`` (``specs logs``); cognitive steps' model and
tool calls are events (``llm-call``, ``tool-called``) and their answer's summary is in
``attempt-ended``. Paths are made only from a step the run has and from the attempts its
events recorded (``primary`` or ``backup_<k>``, a number), never from what a request says.

Those files are raw captures (the engine masks secrets in events, not in what a process
printed), so every line is masked here with the dashboard's own environment's secrets
(:class:`specs.secrets.Masker`) before it leaves the server; the page shows it as text.
:class:`OutputTail` gives whole lines only, so a secret is never cut in two across messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from specs.secrets import Masker

__all__ = ["MAX_SHOWN", "OutputTail", "step_outputs"]

STREAMS = ("stdout", "stderr")
METHOD = re.compile(r"^(primary|backup_\d{1,4})$")
#: bytes of one output file shown on a page (the end of it; the file has the rest)
MAX_SHOWN = 256 * 1024


def output_path(run_dir: Path, step: str, method: str, attempt: int, stream: str) -> Path:
    if not METHOD.match(method) or stream not in STREAMS or attempt < 0:
        raise ValueError(f"not an attempt's output: {method}-{attempt}.{stream}")
    return run_dir / "outputs" / step / f"{method}-{attempt}.{stream}"


def _read_end(path: Path, limit: int = MAX_SHOWN) -> tuple[str, int]:
    """The last ``limit`` bytes of a file as text, and how many bytes came before."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            data = handle.read()
    except OSError:
        return "", 0
    return data.decode(errors="replace"), max(0, size - limit)


def step_outputs(run_dir: Path, step: dict[str, Any], calls: list[tuple[str, int, str]],
                 masker: Masker) -> list[dict[str, Any]]:
    """Each attempt of a step record's lane with its output: stdout, stderr (masked, the
    last :data:`MAX_SHOWN` bytes), and its model and tool calls."""
    out = []
    for entry in step["lane"]:
        if entry["kind"] not in ("primary", "retry", "backup"):
            continue
        method, attempt = entry["method"], int(entry["attempt"])
        item = dict(entry)
        for stream in STREAMS:
            text, cut = _read_end(output_path(run_dir, step["ref"], method, attempt, stream))
            item[stream] = masker.text(text)
            item[f"{stream}_cut"] = cut
        item["calls"] = [line for m, n, line in calls if m == method and n == attempt]
        out.append(item)
    return out


@dataclass
class OutputTail:
    """Follows the output files of one step's attempts: :meth:`read` gives the lines
    written since the last call (a line still being written waits for its newline, or for
    its attempt's end)."""

    run_dir: Path
    step: str
    masker: Masker
    offsets: dict[tuple[str, int, str], int] = field(default_factory=dict)
    partial: dict[tuple[str, int, str], bytes] = field(default_factory=dict)

    def read(self, attempts: Iterable[tuple[str, int, bool]]) -> list[dict[str, Any]]:
        """New lines of the given attempts ((method, number, ended)), as chunks
        ``{"method", "attempt", "stream", "text"}``."""
        chunks = []
        for method, attempt, ended in attempts:
            for stream in STREAMS:
                key = (method, attempt, stream)
                path = output_path(self.run_dir, self.step, method, attempt, stream)
                offset = self.offsets.get(key, 0)
                try:
                    with path.open("rb") as handle:
                        handle.seek(offset)
                        data = handle.read(MAX_SHOWN)
                except OSError:
                    continue
                self.offsets[key] = offset + len(data)
                data = self.partial.pop(key, b"") + data
                cut = len(data) if ended else data.rfind(b"\n") + 1
                if cut < len(data):
                    self.partial[key] = data[cut:]
                if cut:
                    chunks.append({"method": method, "attempt": attempt, "stream": stream,
                                   "text": self.masker.text(data[:cut].decode(
                                       errors="replace"))})
        return chunks
