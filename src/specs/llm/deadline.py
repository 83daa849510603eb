"""Deadlines: the hard end of one attempt, one judge's verdict or one research phase.

The engine gives each attempt a timeout (``StepContext.timeout``: the method's
``timeout_seconds``, never more than what is left of the step's ``total_timeout_seconds``).
Whatever a cognitive attempt is doing when that time is up (waiting for a model's answer,
reading a stream that trickles one byte at a time, running a tool, calling an MCP server,
waiting out a 429's ``Retry-After``) is cancelled: the HTTP connection is closed, a command's
process group killed, and the attempt fails as *transient* ("timed out after N s").

:class:`Deadline` holds that end; :meth:`Deadline.timer` gives an :func:`asyncio.timeout`
scope ending at it. A wait the server asks for (``Retry-After``) is taken only when it fits in
what is left and in :data:`MAX_WAIT_S`; otherwise the caller fails at once (:meth:`Deadline.fits`).
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["MAX_WAIT_S", "Deadline"]

#: The longest a call waits for a server's ``Retry-After`` (seconds), with or without a
#: timeout: a 429 asking for an hour fails the attempt (transient) instead of sleeping it.
MAX_WAIT_S = 300.0


class Deadline:
    """The end of a piece of work ``seconds`` from now (``None``: no end)."""

    __slots__ = ("at", "seconds")

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds if seconds is not None and seconds > 0 else None
        self.at = None if self.seconds is None else time.monotonic() + self.seconds

    def left(self) -> float | None:
        """Seconds left (0 once passed), or None without an end."""
        return None if self.at is None else max(0.0, self.at - time.monotonic())

    def timer(self) -> asyncio.Timeout:
        """An :func:`asyncio.timeout` scope that ends at the deadline (``expired()`` tells
        whether it did)."""
        left = self.left()
        return asyncio.timeout(None if left is None else left)

    def fits(self, wait: float) -> bool:
        """Whether waiting ``wait`` seconds is allowed: within :data:`MAX_WAIT_S` and before
        the deadline."""
        left = self.left()
        return wait <= MAX_WAIT_S and (left is None or wait < left)

    def reason(self, doing: str = "") -> str:
        """The failure reason once the deadline has passed."""
        return f"timed out after {self.seconds or 0:g} s" + (f" ({doing})" if doing else "")
