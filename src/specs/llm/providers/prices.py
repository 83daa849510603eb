"""What a call cost: per-million-token prices and :func:`cost`.

**Prices change, and this table is not kept current by anyone but you.** It holds the public
list prices (USD per million tokens, standard tier, no batch or cache discounts) of a few
common models as they were when it was written, so that budgets work out of the box. Override
or extend it in the spec::

    [llm.prices]
    "gpt-4o" = { input = 2.5, output = 10.0 }
    "llama3.1:8b" = { input = 0, output = 0 }    # a local model costs nothing

A model is looked up by its exact name, then without a date or version suffix
(``claude-sonnet-4-20250514`` -> ``claude-sonnet-4``, ``gpt-4o-2024-08-06`` -> ``gpt-4o``),
then without a ``vendor/`` prefix; overrides first at each stage. A model found nowhere has
no known price: :func:`cost` returns None, and a ``max_cost_usd`` budget cannot be enforced
for it (``max_tokens`` still can).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from specs.errors import ProviderConfigError
from specs.llm.providers.base import Usage

__all__ = ["PRICES", "Price", "cost", "parse_prices", "price_of"]


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million input and output tokens."""

    input: float
    output: float


PRICES: dict[str, Price] = {
    # OpenAI
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-5": Price(1.25, 10.00),
    "gpt-5-mini": Price(0.25, 2.00),
    "gpt-5-nano": Price(0.05, 0.40),
    "o3": Price(2.00, 8.00),
    "o3-mini": Price(1.10, 4.40),
    "o4-mini": Price(1.10, 4.40),
    # Anthropic
    "claude-opus-4-5": Price(5.00, 25.00),
    "claude-opus-4-1": Price(15.00, 75.00),
    "claude-opus-4": Price(15.00, 75.00),
    "claude-sonnet-4-5": Price(3.00, 15.00),
    "claude-sonnet-4": Price(3.00, 15.00),
    "claude-haiku-4-5": Price(1.00, 5.00),
    "claude-3-7-sonnet": Price(3.00, 15.00),
    "claude-3-5-sonnet": Price(3.00, 15.00),
    "claude-3-5-haiku": Price(0.80, 4.00),
    "claude-3-haiku": Price(0.25, 1.25),
}

_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|latest|\d)$")


def parse_prices(overrides: Mapping[str, Any] | None) -> dict[str, Price]:
    """``[llm.prices]`` as :class:`Price` values; :class:`ProviderConfigError` names a bad one."""
    prices: dict[str, Price] = {}
    for model, entry in (overrides or {}).items():
        if not isinstance(entry, Mapping) or not {"input", "output"} <= set(entry):
            raise ProviderConfigError(
                f"[llm.prices] {model!r} must be a table {{input = ..., output = ...}} "
                f"(USD per million tokens)")
        values = [entry["input"], entry["output"]]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                   and v >= 0 for v in values):
            raise ProviderConfigError(
                f"[llm.prices] {model!r}: input and output must be numbers >= 0")
        prices[model] = Price(float(values[0]), float(values[1]))
    return prices


def price_of(model: str, overrides: Mapping[str, Any] | None = None) -> Price | None:
    """The price of ``model``: overrides, then the built-in table, by the lookup order above."""
    tables = (parse_prices(overrides), PRICES)
    for name in _candidates(model):
        for table in tables:
            if name in table:
                return table[name]
    return None


def cost(model: str, usage: Usage, overrides: Mapping[str, Any] | None = None) -> float | None:
    """USD for ``usage`` on ``model``, or None when its price is unknown."""
    price = price_of(model, overrides)
    if price is None:
        return None
    return (usage.input_tokens * price.input + usage.output_tokens * price.output) / 1_000_000


def _candidates(model: str) -> list[str]:
    names = [model]
    if "/" in model:
        names.append(model.rsplit("/", 1)[1])
    found: list[str] = []
    for name in names:
        found.append(name)
        stripped = _SUFFIX.sub("", name)
        while stripped != found[-1]:
            found.append(stripped)
            stripped = _SUFFIX.sub("", stripped)
    return list(dict.fromkeys(found))
