"""The provider protocol: a :class:`Request` in, a :class:`Completion` out, our errors only.

A **provider** is the LLM service a cognitive step talks to. Every provider offers the same
three coroutines: ``complete`` (one model call), ``check`` (pre-flight: key present, server
reachable; raises :class:`~specs.errors.ProviderConfigError` with one clear line) and
``aclose``. Requests and completions are small frozen dataclasses in a provider-neutral shape
(OpenAI's roles, tool calls with parsed JSON arguments), so prompt assembly, the agent loop,
record/replay and the tests never see a wire format.

Errors are mapped where they happen, at the HTTP boundary (:func:`map_provider_errors`,
:func:`error_for_status`): callers only ever see :class:`~specs.errors.ProviderError` and its
subclasses, whose ``transient`` flag tells the engine whether to back off and try again.
Providers never retry by themselves.

Settings (SPEC_FORMAT.md §2, "LLM settings") are resolved by :func:`resolve_settings` with the
precedence *spec file < environment < command line*; :func:`provider_from_settings` builds the
provider they describe, wrapped in the shared rate limiter when the spec asks for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import json
import math
import ssl
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Coroutine,
    Iterator,
    Mapping,
)
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

import httpx

from specs.errors import (
    BadResponse,
    ProviderConfigError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)

__all__ = [
    "DEFAULT_CALL_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "PROVIDERS",
    "Completion",
    "HttpProvider",
    "Message",
    "Provider",
    "Request",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "error_for_status",
    "map_provider_errors",
    "parse_json",
    "parse_retry_after",
    "unknown_tool_calls",
]

_T = TypeVar("_T")
Role = Literal["system", "user", "assistant", "tool"]
PROVIDERS: tuple[str, ...] = ("openai", "anthropic")
#: seconds one read (or connect, write) may wait: a server that says nothing for this long
DEFAULT_TIMEOUT = 120.0
#: seconds one whole model call may take, from the request to the answer's last byte (a server
#: that trickles a byte at a time never trips the read timeout)
DEFAULT_CALL_TIMEOUT = 600.0
CHECK_TIMEOUT = 10.0


# --- the provider-neutral model ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call the model asks for: ``arguments`` is the parsed JSON object."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Message:
    """One turn of the conversation.

    An ``assistant`` message may carry the ``tool_calls`` it made; a ``tool`` message answers
    the call named by ``tool_call_id`` with ``content``.
    """

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool the model may call; ``parameters`` is the JSON Schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens one call consumed (as the server reports them; zeros when it reports none)."""

    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.input_tokens + other.input_tokens,
                     self.output_tokens + other.output_tokens)


@dataclass(frozen=True, slots=True)
class Request:
    """One model call.

    ``model`` empty means the provider's configured model. ``json_schema`` asks for structured
    output (the answer text is then a JSON document, see :meth:`Completion.json`). ``stream``
    reads the answer as server-sent events; ``on_text`` (not part of the request's identity)
    is told each piece of text as it arrives.
    """

    model: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    temperature: float | None = None
    max_output_tokens: int | None = None
    json_schema: dict[str, Any] | None = None
    stream: bool = False
    on_text: Callable[[str], None] | None = field(default=None, compare=False, repr=False)


FinishReason = str  # "stop", "tool_calls", "length", "content_filter", or the server's word


@dataclass(frozen=True, slots=True)
class Completion:
    """The model's answer: text, the tool calls it asks for, tokens used.

    ``finish_reason`` is normalised across providers: ``stop`` (a final answer), ``tool_calls``
    (the model waits for tool results), ``length`` (cut at ``max_output_tokens``), else the
    server's own word. ``raw`` is the decoded response (for streams, the assembled equivalent).
    """

    text: str
    tool_calls: tuple[ToolCall, ...]
    usage: Usage
    model: str
    finish_reason: FinishReason | None
    raw: dict[str, Any] = field(default_factory=dict)

    def json(self) -> Any:
        """The structured answer: ``text`` parsed as JSON (a Markdown code fence is tolerated).

        Raises :class:`BadResponse` when it does not parse, saying when the answer was cut.
        """
        text = self.text.strip()
        if text.startswith("```"):
            text = text.split("\n", 1)[1] if "\n" in text else ""
            text = text.rsplit("```", 1)[0]
        try:
            return json.loads(text)
        except ValueError as exc:
            cut = " (the answer was cut at max_output_tokens)" if (
                self.finish_reason == "length") else ""
            raise BadResponse(f"the answer is not valid JSON{cut}: {exc}") from exc


def unknown_tool_calls(request: Request, completion: Completion) -> tuple[ToolCall, ...]:
    """The calls in ``completion`` to tools the request did not offer."""
    offered = {tool.name for tool in request.tools}
    return tuple(call for call in completion.tool_calls if call.name not in offered)


@runtime_checkable
class Provider(Protocol):
    """What the engine needs from an LLM service."""

    name: str
    model: str

    async def complete(self, request: Request) -> Completion:
        """One model call. Raises only :class:`~specs.errors.ProviderError` subclasses."""
        ...

    async def check(self) -> None:
        """Pre-flight: key present, server reachable; else :class:`ProviderConfigError`."""
        ...

    async def aclose(self) -> None:
        """Release connections. The provider is not used afterwards."""
        ...


# --- the HTTP boundary ---------------------------------------------------------------------------


@contextlib.contextmanager
def map_provider_errors(provider: str, url: str = "") -> Iterator[None]:
    """Turn httpx's exceptions into ours, the most specific type, ``from exc``.

    Messages name the exception type rather than quoting it where the text could hold a header
    value (an API key).
    """
    where = f" ({url})" if url else ""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise ProviderTimeout(f"{provider}: no answer within the timeout{where}",
                              provider=provider) from exc
    except httpx.RemoteProtocolError as exc:
        raise ProviderUnavailable(
            f"{provider}: the server broke the connection mid-answer{where}: {exc}",
            provider=provider) from exc
    except httpx.LocalProtocolError as exc:
        raise ProviderConfigError(
            f"{provider}: the request could not be sent (an invalid header value? check the "
            f"API key){where}", provider=provider) from exc
    except httpx.UnsupportedProtocol as exc:
        raise ProviderConfigError(f"{provider}: unsupported URL scheme{where}",
                                  provider=provider) from exc
    except httpx.TransportError as exc:
        reason = str(exc) or type(exc).__name__
        raise ProviderUnavailable(f"{provider}: cannot reach the server{where}: {reason}",
                                  provider=provider) from exc
    except httpx.DecodingError as exc:
        raise BadResponse(f"{provider}: the answer could not be decoded{where}: {exc}",
                          provider=provider) from exc
    except httpx.HTTPError as exc:
        raise BadResponse(f"{provider}: {type(exc).__name__}{where}: {exc}",
                          provider=provider) from exc
    except httpx.InvalidURL as exc:
        raise ProviderConfigError(f"{provider}: invalid URL{where}",
                                  provider=provider) from exc


def parse_retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms``, or ``Retry-After`` (seconds or an HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        with contextlib.suppress(ValueError):
            value = float(millis) / 1000.0
            if math.isfinite(value):
                return max(0.0, value)
    text = (headers.get("retry-after") or "").strip()
    if not text:
        return None
    try:
        value = float(text)
        return max(0.0, value) if math.isfinite(value) else None
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def server_message(response: httpx.Response, limit: int = 300, *,
                   secret: str | None = None) -> str:
    """The error message a server put in its body (OpenAI, Anthropic, Ollama shapes); the API
    key ``secret`` is blanked out should the server quote it."""
    text = response.text
    if secret:
        text = text.replace(secret, "[API key]")
    with contextlib.suppress(ValueError):
        data = json.loads(text)
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict) and error.get("message"):
            text = str(error["message"])
        elif isinstance(error, str):
            text = error
        elif isinstance(data, dict) and data.get("message"):
            text = str(data["message"])
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_for_status(provider: str, response: httpx.Response,
                     now: datetime | None = None, *,
                     secret: str | None = None) -> ProviderError | None:
    """The error a non-2xx answer means, or None for success (read the body first); the
    message never quotes the API key ``secret``."""
    status = response.status_code
    if status < 300:
        return None
    detail = server_message(response, secret=secret)
    said = f": {detail}" if detail else ""
    if status == 429:
        retry_after = parse_retry_after(response.headers, now)
        wait = f" (retry after {retry_after:g} s)" if retry_after is not None else ""
        return RateLimited(f"{provider}: rate limited (HTTP 429){wait}{said}",
                           provider=provider, retry_after=retry_after)
    if status in (401, 403):
        return ProviderConfigError(f"{provider} rejected the API key (HTTP {status}){said}",
                                   provider=provider, status_code=status)
    if status == 408:
        return ProviderTimeout(f"{provider}: the server timed out (HTTP 408){said}",
                               provider=provider, status_code=status)
    if status >= 500:
        word = "overloaded" if status == 529 else "unavailable"
        return ProviderUnavailable(f"{provider}: server {word} (HTTP {status}){said}",
                                   provider=provider, status_code=status)
    return BadResponse(f"{provider}: request refused (HTTP {status}){said}",
                       provider=provider, status_code=status)


def parse_json(provider: str, text: str) -> Any:
    """Decode a response body; garbage or a truncated document is :class:`BadResponse`."""
    try:
        return json.loads(text)
    except ValueError as exc:
        if not text.strip():
            raise BadResponse(f"{provider}: empty answer", provider=provider) from exc
        head = text[:60] + ("…" if len(text) > 60 else "")
        cut = isinstance(exc, json.JSONDecodeError) and (
            exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"))
        kind = "truncated" if cut else "invalid"
        raise BadResponse(f"{provider}: {kind} JSON in the answer ({exc}): {head!r}",
                          provider=provider) from exc


def parse_arguments(provider: str, name: str, arguments: Any) -> dict[str, Any]:
    """A tool call's arguments as a dict (servers send a JSON string, a few send an object)."""
    if isinstance(arguments, dict):
        return arguments
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        return {}
    if isinstance(arguments, str):
        try:
            value = json.loads(arguments)
        except ValueError as exc:
            raise BadResponse(f"{provider}: the call to tool {name!r} has arguments that are "
                              f"not JSON: {arguments[:80]!r}", provider=provider) from exc
        if isinstance(value, dict):
            return value
    raise BadResponse(f"{provider}: the call to tool {name!r} has arguments that are not a "
                      f"JSON object", provider=provider)


def is_local_url(url: str) -> bool:
    """True when ``url`` points at this machine or a private network (no key needed there)."""
    host = httpx.URL(url).host
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_unspecified


def check_base_url(provider: str, url: str, source: str = "base URL") -> str:
    """``url`` without a trailing slash, or :class:`ProviderConfigError` when it is unusable."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ProviderConfigError(f"{provider}: {source} {url!r} is not a URL",
                                  provider=provider) from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ProviderConfigError(
            f"{provider}: {source} {url!r} must be an http:// or https:// URL with a host",
            provider=provider)
    return url.rstrip("/")


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """httpx's default TLS context, built once: loading the CA bundle takes ~0.1 s."""
    return httpx.create_ssl_context()


async def iter_sse(response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    """Server-sent events as ``(event, data)``; ``event`` is ``""`` when the server names none."""
    event = ""
    data: list[str] = []
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "", []
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if data:
        yield event, "\n".join(data)


class HttpProvider:
    """Shared plumbing of the HTTP providers: one client, JSON and SSE calls, pre-flight.

    Subclasses set ``name``, build the body and parse the answer (``_complete``); every
    network error and non-2xx status is mapped here. Two limits bound a call: ``timeout`` for
    each read, connect and write, and ``call_timeout`` for the whole call (also a stream that
    keeps sending, slowly); a cancelled call closes its connection.
    """

    name = "http"
    check_path = "models"

    def __init__(self, model: str, *, base_url: str, api_key: str | None,
                 timeout: float = DEFAULT_TIMEOUT,
                 transport: httpx.AsyncBaseTransport | None = None,
                 call_timeout: float | None = DEFAULT_CALL_TIMEOUT) -> None:
        self.model = model
        self.base_url = check_base_url(self.name, base_url)
        self.timeout = timeout
        self.call_timeout = call_timeout
        self._api_key = api_key or None
        self._client = httpx.AsyncClient(base_url=self.base_url + "/", timeout=timeout,
                                         transport=transport, headers=self._headers(),
                                         verify=ssl_context())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r})"

    def _headers(self) -> dict[str, str]:
        raise NotImplementedError

    def key_problem(self) -> str | None:
        """Why the provider cannot be used as configured (one line), or None."""
        return self.key_problem_for(self._api_key, self.base_url)

    @staticmethod
    def key_problem_for(api_key: str | None, base_url: str) -> str | None:
        """Why a provider with this key and base URL cannot work (one line), or None."""
        return None

    async def complete(self, request: Request) -> Completion:
        """One model call (:meth:`_complete`), ended as :class:`ProviderTimeout` when it takes
        longer than ``call_timeout`` in all."""
        return await self._bounded(self._complete(request), self.call_timeout,
                                   "the answer did not end within call_timeout")

    async def _complete(self, request: Request) -> Completion:
        raise NotImplementedError

    async def _bounded(self, work: Coroutine[Any, Any, _T], seconds: float | None,
                       what: str) -> _T:
        timer = asyncio.timeout(seconds)
        try:
            async with timer:
                return await work
        except TimeoutError as exc:
            if not timer.expired():
                raise
            raise ProviderTimeout(f"{self.name}: {what} ({seconds:g} s)",
                                  provider=self.name) from exc

    async def check(self) -> None:
        problem = self.key_problem()
        if problem:
            raise ProviderConfigError(problem, provider=self.name)
        limit = min(self.timeout, CHECK_TIMEOUT)
        try:
            with map_provider_errors(self.name):
                response = await self._bounded(self._client.get(self.check_path, timeout=limit),
                                               limit, "no answer")
        except ProviderConfigError:
            raise
        except ProviderError as exc:
            cause = exc.__cause__
            if isinstance(exc, ProviderTimeout):
                reason = f"no answer within {limit:g} s"
            elif isinstance(cause, httpx.ConnectError):
                reason = str(cause) or "connection failed"
            else:
                reason = str(exc).removeprefix(f"{self.name}: ")
            raise ProviderConfigError(f"cannot reach {self.name} at {self.base_url}: {reason}",
                                      provider=self.name) from exc
        if response.status_code in (401, 403):
            raise ProviderConfigError(str(error_for_status(self.name, response,
                                                           secret=self._api_key)),
                                      provider=self.name, status_code=response.status_code)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body``; the decoded JSON object answered, or our error."""
        url = f"{self.base_url}/{path}"
        with map_provider_errors(self.name, url):
            response = await self._client.post(path, json=body)
        error = error_for_status(self.name, response, secret=self._api_key)
        if error is not None:
            raise error
        data = parse_json(self.name, response.text)
        if not isinstance(data, dict):
            raise BadResponse(f"{self.name}: the answer is not a JSON object",
                              provider=self.name)
        return data

    async def post_sse(self, path: str, body: dict[str, Any]
                       ) -> AsyncGenerator[tuple[str, Any], None]:
        """POST ``body`` and yield the stream's events as ``(event, decoded data)``.

        ``data: [DONE]`` is yielded as ``("done", None)``. Iterate it inside
        ``contextlib.aclosing`` so the connection is released when the caller stops early.
        """
        url = f"{self.base_url}/{path}"
        with map_provider_errors(self.name, url):
            async with self._client.stream("POST", path, json=body) as response:
                if response.status_code >= 300:
                    await response.aread()
                    error = error_for_status(self.name, response, secret=self._api_key)
                    assert error is not None
                    raise error
                async for event, data in iter_sse(response):
                    if data.strip() == "[DONE]":
                        yield "done", None
                    else:
                        yield event, parse_json(self.name, data)
