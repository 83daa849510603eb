"""Files replaced atomically: readers see the old file or the new, never half of one.

The progress file, the notepad and the LLM cache are written this way (:func:`write_bytes_atomic`:
a temp file in the same folder, fsync'd, renamed over the target); :class:`AtomicFile` does it
on a helper thread so a slow disk never holds up the run. :func:`preserve_foreign` keeps a copy
of a file specs did not write before replacing it the first time.
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

__all__ = ["AtomicFile", "dumps", "dumps_bytes", "gc_paused", "preserve_foreign",
           "write_atomic", "write_bytes_atomic", "write_text_atomic"]

FOREIGN_HEAD = 4096


def preserve_foreign(path: Path, is_ours: Callable[[str], bool]) -> Path | None:
    """Before specs first writes ``path``: if a file is there that specs did not write (the
    original's hand-kept progress log, say), copy it to ``<stem>.before-specs<suffix>`` once, so
    nothing is lost. ``is_ours`` is given the file's first :data:`FOREIGN_HEAD` bytes, decoded.
    Temp files an interrupted write left behind are removed. Returns the copy's path when one
    was made."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a kill mid-write
        with contextlib.suppress(OSError):
            stale.unlink()
    try:
        with path.open("rb") as handle:  # the head says whose it is (a big run's is MBs)
            head = handle.read(FOREIGN_HEAD).decode("utf-8", errors="replace")
    except OSError:
        return None
    if is_ours(head):
        return None
    backup = path.with_name(f"{path.stem}.before-specs{path.suffix}")
    if backup.exists():
        return None
    shutil.copy2(path, backup)
    return backup


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block (as it was, after it).

    Building a big run's document allocates thousands of dicts and lists that all live until
    it is written: the collector would scan them again and again (a few ms per 1,000 steps)
    and find nothing, since the document holds no reference cycles; refcounting frees it.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) so that readers see the old file or the new,
    never half (see :func:`write_bytes_atomic`)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` (text: its ``\n`` are written as the platform's line
    end, as a text-mode file would) so that readers see the old file or the new, never half.

    The data goes to a temp file in the same folder (same file system), is flushed and
    fsync'd, then renamed over ``path`` with ``os.replace`` (atomic on POSIX and Windows).
    """
    if os.linesep != "\n":
        data = data.replace(b"\n", os.linesep.encode())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON (indent 2, UTF-8) with :func:`write_bytes_atomic`."""
    write_bytes_atomic(path, dumps_bytes(data))


def dumps(data: dict[str, Any]) -> str:
    """JSON, indented by 2 (orjson: about 10x faster than json on big runs)."""
    return dumps_bytes(data).decode()


def dumps_bytes(data: dict[str, Any]) -> bytes:
    """:func:`dumps` encoded as UTF-8."""
    try:  # keys that are all strings, as in a progress document: a third faster
        text = orjson.dumps(data, default=str, option=orjson.OPT_INDENT_2)
    except TypeError:  # a key that is not a string (or beyond orjson: the same error again)
        text = orjson.dumps(data, default=str,
                            option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    return text + b"\n"


class AtomicFile:
    """Atomic replacements of one file (:func:`write_bytes_atomic`), some of them on a helper
    thread, so a slow disk (the fsync) never holds up the caller.

    :meth:`later` hands the data to the helper (replacing data it has not written yet: only
    the newest matters); :meth:`now` writes on the caller's thread, after a write in progress,
    and drops queued data. Every write is numbered: an older one never replaces a newer one,
    whatever the threads' order. A failed helper write is raised by the next call. The helper
    thread ends after :attr:`IDLE_S` without work.
    """

    IDLE_S = 1.0

    def __init__(self, path: Path) -> None:
        self.path = path
        self._cond = threading.Condition()
        self._io = threading.Lock()  # one write at a time
        self._queued: tuple[int, bytes] | None = None
        self._numbered = 0  # writes asked for
        self._written = 0  # the number of the newest write done
        self._thread: threading.Thread | None = None
        self._error: Exception | None = None

    def later(self, data: bytes) -> None:
        self._raise()
        with self._cond:
            self._numbered += 1
            self._queued = (self._numbered, data)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name=f"write {self.path.name}")
                self._thread.start()
            self._cond.notify()

    def now(self, data: bytes) -> None:
        self._raise()
        with self._cond:
            self._numbered += 1
            number, self._queued = self._numbered, None
        self._write(number, data)
        self._raise()

    def wait(self) -> None:
        """Until the helper has written what it was given (raises its error, if any)."""
        while True:
            with self._cond:
                if self._queued is None:
                    break
            time.sleep(0.001)
        with self._io:
            pass
        self._raise()

    def _write(self, number: int, data: bytes) -> None:
        with self._io:
            if number > self._written:
                write_bytes_atomic(self.path, data)
                self._written = number

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._queued is None:
                    self._cond.wait(self.IDLE_S)
                queued, self._queued = self._queued, None
                if queued is None:
                    self._thread = None
                    return
            try:
                self._write(*queued)
            except Exception as exc:  # the disk is full, the folder went away: raised later
                self._error = exc

    def _raise(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error
