"""A shared rate limiter for every concurrent step: requests and tokens per minute.

``[llm] requests_per_minute`` and ``tokens_per_minute`` are two **token buckets**. Each holds
up to a minute's allowance, starts full and refills continuously (``per_minute / 60`` per
second). A call takes one request and its estimated tokens; when a bucket is short the call
waits until it has refilled enough. A call estimated above a whole minute's allowance waits
for a full bucket rather than forever. After the call, :meth:`RateLimiter.settle` replaces the
estimate by the tokens the server reported, so the bucket may go below zero and later calls
wait longer. A 429 from the server pauses everyone for its ``Retry-After``
(:meth:`RateLimiter.pause`).

Waiters are served first come, first served (one lock; a waiter sleeps holding it). The clock
and the sleep are injectable so tests run on a fake clock in microseconds.

:class:`LimitedProvider` wraps a provider with a limiter; build one per run and share it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from specs.errors import RateLimited
from specs.llm.deadline import MAX_WAIT_S
from specs.llm.providers.base import Completion, Provider, Request

__all__ = ["LimitedProvider", "RateLimiter", "estimate_tokens"]

EPSILON = 1e-9


@dataclass
class _Bucket:
    capacity: float
    rate: float  # per second
    level: float
    updated: float

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + max(0.0, now - self.updated) * self.rate)
        self.updated = now

    def wait(self, amount: float) -> float:
        need = min(amount, self.capacity)
        return 0.0 if self.level >= need - EPSILON else (need - self.level) / self.rate


class RateLimiter:
    """Requests-per-minute and tokens-per-minute buckets shared by all callers."""

    def __init__(self, requests_per_minute: float | None = None,
                 tokens_per_minute: float | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self._clock = clock
        self._sleep = sleep
        now = clock()
        self._requests = _bucket(requests_per_minute, now)
        self._tokens = _bucket(tokens_per_minute, now)
        self._not_before = now
        self._lock = asyncio.Lock()

    def wait_time(self, tokens: int = 0) -> float:
        """Seconds until a call needing ``tokens`` may start; 0 when it may start now."""
        now = self._clock()
        waits = [self._not_before - now]
        for bucket, amount in ((self._requests, 1.0), (self._tokens, float(tokens))):
            if bucket is not None:
                bucket.refill(now)
                waits.append(bucket.wait(amount))
        return max(0.0, *waits)

    async def acquire(self, tokens: int = 0) -> float:
        """Wait until a call needing ``tokens`` may start, then take them; the seconds waited
        (behind earlier callers too)."""
        started = self._clock()
        async with self._lock:
            while (delay := self.wait_time(tokens)) > EPSILON:
                await self._sleep(delay)
            if self._requests is not None:
                self._requests.level -= 1
            if self._tokens is not None:
                self._tokens.level -= tokens
        return max(0.0, self._clock() - started)

    def settle(self, estimated: int, actual: int) -> None:
        """Correct the token bucket once the server said how many tokens a call used."""
        if self._tokens is not None:
            self._tokens.refill(self._clock())
            self._tokens.level += estimated - actual

    def pause(self, seconds: float) -> None:
        """Let no call start for ``seconds`` (the server asked us to wait)."""
        self._not_before = max(self._not_before, self._clock() + max(0.0, seconds))


def _bucket(per_minute: float | None, now: float) -> _Bucket | None:
    if not per_minute:
        return None
    return _Bucket(capacity=per_minute, rate=per_minute / 60.0, level=per_minute, updated=now)


def estimate_tokens(request: Request) -> int:
    """A rough count of the tokens a call may use: its text at ~4 characters a token, plus
    the output limit (which is how servers count against a tokens-per-minute limit too)."""
    chars = sum(len(m.content) + sum(len(json.dumps(c.arguments)) for c in m.tool_calls)
                for m in request.messages)
    chars += sum(len(t.name) + len(t.description) + len(json.dumps(t.parameters))
                 for t in request.tools)
    if request.json_schema is not None:
        chars += len(json.dumps(request.json_schema))
    return chars // 4 + 1 + (request.max_output_tokens or 0)


class LimitedProvider:
    """A provider whose calls go through a shared :class:`RateLimiter`."""

    def __init__(self, inner: Provider, limiter: RateLimiter) -> None:
        self.inner = inner
        self.limiter = limiter
        self.name = inner.name
        self.model = inner.model

    def __repr__(self) -> str:
        return f"LimitedProvider({self.inner!r})"

    async def complete(self, request: Request) -> Completion:
        estimate = estimate_tokens(request)
        await self.limiter.acquire(estimate)
        try:
            completion = await self.inner.complete(request)
        except RateLimited as exc:
            if exc.retry_after is not None:  # at most MAX_WAIT_S: an hour's ask fails fast
                self.limiter.pause(min(exc.retry_after, MAX_WAIT_S))
            raise
        if completion.usage.total_tokens:
            self.limiter.settle(estimate, completion.usage.total_tokens)
        return completion

    async def check(self) -> None:
        await self.inner.check()

    async def aclose(self) -> None:
        await self.inner.aclose()
