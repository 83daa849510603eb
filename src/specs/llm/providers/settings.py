"""LLM settings: the spec's ``[llm]`` < the environment < the command line, and the provider
they select (OpenAI-compatible or Anthropic, behind the shared rate limiter when limits are set).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from specs.errors import ProviderConfigError
from specs.llm.providers.anthropic import ANTHROPIC_BASE_URL, ANTHROPIC_MODEL, AnthropicProvider
from specs.llm.providers.base import (
    DEFAULT_CALL_TIMEOUT,
    DEFAULT_TIMEOUT,
    PROVIDERS,
    Provider,
    check_base_url,
)
from specs.llm.providers.limits import LimitedProvider, RateLimiter
from specs.llm.providers.openai_compat import OPENAI_BASE_URL, OPENAI_MODEL, OpenAIProvider

if TYPE_CHECKING:
    from specs.spec.model import Llm


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """The resolved LLM settings; ``sources`` says where each came from (for messages)."""

    provider: str
    model: str
    base_url: str
    api_key: str | None = field(default=None, repr=False)
    temperature: float | None = None
    max_output_tokens: int | None = None
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    prices: Mapping[str, Any] | None = None
    sources: Mapping[str, str] = field(default_factory=dict)


def resolve_settings(llm: Llm | None, env: Mapping[str, str], *, provider: str | None = None,
                     model: str | None = None) -> ProviderSettings:
    """Apply the precedence spec file < environment < command line.

    The file's ``model`` and ``base_url`` apply when the file names no provider or names the
    one chosen (a ``claude-*`` model is no use to the OpenAI provider). API keys come from the
    environment only, never from a spec file.
    """

    sources: dict[str, str] = {}
    chosen, sources["provider"] = _first(
        (provider, "--provider"), (env.get("SPECS_LLM_PROVIDER"), "SPECS_LLM_PROVIDER"),
        (llm.provider if llm else None, "[llm] provider"), ("openai", "default"))
    chosen = chosen.strip().lower()
    if chosen not in PROVIDERS:
        raise ProviderConfigError(
            f"unknown LLM provider {chosen!r} (from {sources['provider']}); choose one of "
            f"{', '.join(PROVIDERS)} (use openai for any OpenAI-compatible server)")
    file_applies = llm is not None and llm.provider in (None, chosen)
    file_model = llm.model if llm and file_applies else None
    file_url = llm.base_url if llm and file_applies else None
    if chosen == "openai":
        url_var, key_var, default_url, default_model = (
            "OPENAI_BASE_URL", "OPENAI_API_KEY", OPENAI_BASE_URL, OPENAI_MODEL)
    else:
        url_var, key_var, default_url, default_model = (
            "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", ANTHROPIC_BASE_URL, ANTHROPIC_MODEL)
    chosen_model, sources["model"] = _first(
        (model, "--model"), (env.get("SPECS_LLM_MODEL"), "SPECS_LLM_MODEL"),
        (file_model, "[llm] model"), (default_model, "default"))
    base_url, sources["base_url"] = _first(
        (env.get(url_var), url_var), (file_url, "[llm] base_url"), (default_url, "default"))
    base_url = check_base_url(chosen, base_url, f"base URL (from {sources['base_url']})")
    return ProviderSettings(
        provider=chosen, model=chosen_model, base_url=base_url,
        api_key=env.get(key_var) or None,
        temperature=llm.temperature if llm else None,
        max_output_tokens=llm.max_output_tokens if llm else None,
        requests_per_minute=llm.requests_per_minute if llm else None,
        tokens_per_minute=llm.tokens_per_minute if llm else None,
        prices=llm.prices if llm else None, sources=sources)


def _first(*candidates: tuple[str | None, str]) -> tuple[str, str]:
    for value, source in candidates:
        if value is not None and value.strip():
            return value.strip(), source
    raise AssertionError("the last candidate is a default")  # pragma: no cover


def provider_from_settings(llm: Llm | None, env: Mapping[str, str], *,
                           provider: str | None = None, model: str | None = None,
                           transport: httpx.AsyncBaseTransport | None = None,
                           timeout: float = DEFAULT_TIMEOUT,
                           call_timeout: float | None = DEFAULT_CALL_TIMEOUT) -> Provider:
    """The provider the settings describe (see :func:`resolve_settings`).

    Raises :class:`ProviderConfigError` (one line) for an unknown provider, a bad base URL or
    a missing API key. Wrapped in a :class:`~specs.llm.providers.limits.LimitedProvider` when
    ``[llm] requests_per_minute`` or ``tokens_per_minute`` is set: build it once per run so
    every concurrent step shares the limiter. Nothing touches the network until a call (or
    :meth:`Provider.check`).
    """

    settings = resolve_settings(llm, env, provider=provider, model=model)
    cls: type[OpenAIProvider | AnthropicProvider] = (
        OpenAIProvider if settings.provider == "openai" else AnthropicProvider)
    problem = cls.key_problem_for(settings.api_key, settings.base_url)
    if problem:
        raise ProviderConfigError(problem, provider=settings.provider)
    built = cls(settings.model, api_key=settings.api_key, base_url=settings.base_url,
                timeout=timeout, transport=transport, call_timeout=call_timeout)
    if settings.requests_per_minute or settings.tokens_per_minute:
        limiter = RateLimiter(settings.requests_per_minute, settings.tokens_per_minute)
        return LimitedProvider(built, limiter)
    return built
