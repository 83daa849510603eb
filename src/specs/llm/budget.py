"""Budgets: ``[budget] max_cost_usd`` and ``max_tokens``, enforced before every LLM call.

One :class:`BudgetTracker` per run is shared by every cognitive step, concurrent ones too.
Before a call, the agent loop **reserves** the call's estimate (:func:`estimate_call`); the
reservation is refused when what the run has spent, plus what running calls have reserved,
plus this estimate would go past a limit. After the call the reservation is **settled**: the
estimate is replaced by the tokens the server reported and their cost (or released, when the
call failed). Reservations are taken and checked without an ``await`` between them, so
parallel steps cannot both pass the check on the same remaining budget. A call refused while
other calls run waits for them to settle (they may use less than their estimate) and asks
again; refused with nothing running, it stops the run.

The estimate of a call: its text at about four characters a token (messages, tool
definitions, the JSON schema) as input, plus ``[llm] max_output_tokens`` as output
(:data:`OUTPUT_ESTIMATE` when the spec sets none); its cost at the model's price
(:mod:`specs.llm.providers.prices`). A model with no known price has no cost estimate: only
``max_tokens`` can be enforced for it (pre-flight warns, ``W-BUDGET-NO-PRICE``). The budget is
never exceeded as long as the server's counts stay within the estimate; set
``max_output_tokens`` to make the estimate tight.

What the run spent before (a resumed run) is read once from its state, at the first
reservation: the totals of its ``llm-call`` events.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from specs.errors import ProviderError
from specs.llm.providers.base import Request
from specs.llm.providers.limits import estimate_tokens
from specs.llm.providers.prices import price_of

if TYPE_CHECKING:
    from specs.diagnostics import Diagnostic
    from specs.spec.load import LoadedSpec

__all__ = ["OUTPUT_ESTIMATE", "BudgetTracker", "Reservation", "budget_diagnostics",
           "estimate_call", "format_cost"]

#: output tokens assumed for a call when ``[llm] max_output_tokens`` is not set
OUTPUT_ESTIMATE = 4096
REASON = "budget_exceeded"


@dataclass(slots=True)
class Reservation:
    tokens: int
    cost: float


def estimate_call(request: Request, model: str,
                  prices: dict[str, Any] | None) -> tuple[int, float | None]:
    """Tokens and USD a call may use at most (see the module docstring)."""
    output = request.max_output_tokens or OUTPUT_ESTIMATE
    inputs = estimate_tokens(request) - (request.max_output_tokens or 0)
    price = _price(model, prices)
    cost = None if price is None else (inputs * price[0] + output * price[1]) / 1_000_000
    return inputs + output, cost


def _price(model: str, prices: dict[str, Any] | None) -> tuple[float, float] | None:
    try:
        found = price_of(model, prices)
    except ProviderError:  # a bad [llm.prices] entry (the provider reports it)
        return None
    return None if found is None else (found.input, found.output)


class BudgetTracker:
    """The run's spending: settled calls, reservations of running calls, the limits.

    ``spent_before`` gives the tokens and USD of calls made before this process (a resumed
    run); it is read once, at the first reservation.
    """

    def __init__(self, max_cost_usd: float | None = None, max_tokens: int | None = None, *,
                 spent_before: Callable[[], tuple[int, float]] | None = None) -> None:
        self.max_cost_usd = max_cost_usd
        self.max_tokens = max_tokens
        self.spent_before = spent_before
        self._base: tuple[int, float] | None = None
        self.tokens = 0  # settled in this process
        self.cost = 0.0
        self.reserved_tokens = 0
        self.reserved_cost = 0.0
        self.open = 0  # reservations not settled yet (calls running)
        self._changed: asyncio.Event | None = None

    @property
    def enabled(self) -> bool:
        return self.max_cost_usd is not None or self.max_tokens is not None

    def spent(self) -> tuple[int, float]:
        """Tokens and USD spent by the run so far (settled calls only)."""
        if self._base is None:
            self._base = self.spent_before() if self.spent_before is not None else (0, 0.0)
        return self._base[0] + self.tokens, self._base[1] + self.cost

    def reserve(self, tokens: int, cost: float | None, *, what: str = "the next LLM call"
                ) -> Reservation | str:
        """Take ``tokens`` and ``cost`` from the budget, or say why not (one line starting
        with ``budget_exceeded``)."""
        spent_tokens, spent_cost = self.spent()
        if self.max_tokens is not None and \
                spent_tokens + self.reserved_tokens + tokens > self.max_tokens:
            held = f", {self.reserved_tokens} reserved by running calls" \
                if self.reserved_tokens else ""
            return (f"{REASON}: {what} (about {tokens} tokens) would take the run past "
                    f"[budget] max_tokens = {self.max_tokens} ({spent_tokens} used{held})")
        if self.max_cost_usd is not None and cost is not None and \
                spent_cost + self.reserved_cost + cost > self.max_cost_usd + 1e-12:
            held = f", {format_cost(self.reserved_cost)} reserved by running calls" \
                if self.reserved_cost else ""
            return (f"{REASON}: {what} (about {format_cost(cost)}) would take the run past "
                    f"[budget] max_cost_usd = {self.max_cost_usd:g} "
                    f"({format_cost(spent_cost)} spent{held})")
        self.reserved_tokens += tokens
        self.reserved_cost += cost or 0.0
        self.open += 1
        return Reservation(tokens, cost or 0.0)

    async def changed(self) -> None:
        """Wait until a running call settles or releases its reservation."""
        if self._changed is None:
            self._changed = asyncio.Event()
        await self._changed.wait()

    def release(self, reservation: Reservation) -> None:
        """The call failed before using anything: give its reservation back."""
        self.reserved_tokens -= reservation.tokens
        self.reserved_cost -= reservation.cost
        self.open -= 1
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def settle(self, reservation: Reservation, tokens: int, cost: float | None) -> None:
        """The call ended: what it really used replaces its reservation."""
        self.release(reservation)
        self.tokens += tokens
        self.cost += cost or 0.0


def format_cost(usd: float) -> str:
    return f"${usd:.4f}" if usd < 1 else f"${usd:.2f}"


def budget_diagnostics(loaded: LoadedSpec, model: str,
                       max_cost_usd: float | None) -> list[Diagnostic]:
    """Pre-flight: ``W-BUDGET-NO-PRICE`` when a cost budget is set for a model whose price is
    unknown (the budget cannot be enforced; ``max_tokens`` still is)."""
    from specs.diagnostics import Diagnostic, Severity

    spec = loaded.require()
    if max_cost_usd is None:
        return []
    prices = spec.llm.prices if spec.llm else None
    if _price(model, prices) is not None:
        return []
    return [Diagnostic(
        Severity.WARNING, "W-BUDGET-NO-PRICE",
        f"max_cost_usd = {max_cost_usd:g} cannot be enforced: model {model!r} has no known "
        "price",
        loaded.sources.at(("budget", "max_cost_usd")),
        f'add it to [llm.prices] ("{model}" = {{ input = ..., output = ... }}, USD per '
        "million tokens), or use [budget] max_tokens")]
