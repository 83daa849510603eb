"""LLM providers: one small protocol, an OpenAI-compatible and an Anthropic implementation,
a shared rate limiter, prices and cost, and record/replay cassettes.

See :mod:`specs.llm.providers.base` for the protocol and docs/providers.md for configuration.
"""

from specs.llm.providers.anthropic import AnthropicProvider
from specs.llm.providers.base import (
    Completion,
    Message,
    Provider,
    Request,
    ToolCall,
    ToolSpec,
    Usage,
    unknown_tool_calls,
)
from specs.llm.providers.limits import LimitedProvider, RateLimiter, estimate_tokens
from specs.llm.providers.openai_compat import OpenAIProvider
from specs.llm.providers.prices import PRICES, Price, cost, parse_prices, price_of
from specs.llm.providers.replay import RecordingProvider, ReplayProvider
from specs.llm.providers.settings import ProviderSettings, provider_from_settings, resolve_settings

__all__ = [
    "PRICES",
    "AnthropicProvider",
    "Completion",
    "LimitedProvider",
    "Message",
    "OpenAIProvider",
    "Price",
    "Provider",
    "ProviderSettings",
    "RateLimiter",
    "RecordingProvider",
    "ReplayProvider",
    "Request",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "cost",
    "estimate_tokens",
    "parse_prices",
    "price_of",
    "provider_from_settings",
    "resolve_settings",
    "unknown_tool_calls",
]
