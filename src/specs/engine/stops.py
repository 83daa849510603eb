"""How a run stops before its end: a gate nobody can answer now (:class:`Paused`), or a halt or
an abort (:class:`Stopped`). Raised inside the run, caught by its lifecycle, which records the
run's pause or end; never seen by callers of the library."""

from __future__ import annotations

__all__ = ["Paused", "Stopped", "WriteFailed"]


class Paused(Exception):
    """A gate needs a human and none can answer now."""

    def __init__(self, gate: str, reason: str = "awaiting a human decision") -> None:
        super().__init__(reason)
        self.gate, self.reason = gate, reason


class Stopped(Exception):
    """The run stops: ``halted`` (halt_on_critical, interrupted) or ``aborted``."""

    def __init__(self, status: str, reason: str, step: str | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.step = status, reason, step


class WriteFailed(Stopped):
    """What the run must write could not be written (a full disk, an unwritable folder): the
    run halts, resumable once the cause is fixed. The log keeps what was written before."""

    def __init__(self, what: str, exc: OSError) -> None:
        where = exc.filename or what
        super().__init__("halted", f"cannot write {where}: {exc.strerror or exc}")
