"""LLM providers, through the real provider code against a real HTTP server on 127.0.0.1.

Every test runs under ``local_only``, which refuses (and remembers) any name lookup or
connection for a host other than 127.0.0.1, so no test can reach a real service.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import socket
import time
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from llm_server import (
    LlmServer,
    Recorded,
    Reply,
    anthropic_message,
    anthropic_stream,
    llm_server_fixture,  # noqa: F401  (the llm_server fixture)
    openai_chat,
    openai_stream,
)
from specs.errors import (
    BadResponse,
    ProviderConfigError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    ReplayMismatch,
    SpecsError,
)
from specs.llm.providers import (
    AnthropicProvider,
    Completion,
    LimitedProvider,
    Message,
    OpenAIProvider,
    Provider,
    RateLimiter,
    RecordingProvider,
    ReplayProvider,
    Request,
    ToolCall,
    ToolSpec,
    Usage,
    cost,
    parse_prices,
    price_of,
    provider_from_settings,
    resolve_settings,
    unknown_tool_calls,
)
from specs.llm.providers.base import map_provider_errors, parse_retry_after
from specs.spec.model import Llm

T = TypeVar("T")

READ_FILE = ToolSpec("read_file", "Read a file of the workspace.",
                     {"type": "object", "properties": {"path": {"type": "string"}},
                      "required": ["path"]})
SCHEMA = {"type": "object", "properties": {"verdict": {"type": "string"}},
          "required": ["verdict"]}


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def ask(text: str = "Say hi.", **kwargs: Any) -> Request:
    return Request(model=kwargs.pop("model", ""), messages=(Message("user", text),), **kwargs)


def openai(server: LlmServer, **kwargs: Any) -> OpenAIProvider:
    kwargs.setdefault("api_key", "sk-test")
    return OpenAIProvider("test-model", base_url=server.openai_url, **kwargs)


def anthropic(server: LlmServer, **kwargs: Any) -> AnthropicProvider:
    kwargs.setdefault("api_key", "sk-ant-test")
    return AnthropicProvider("claude-test", base_url=server.url, **kwargs)


async def complete(provider: Provider, request: Request) -> Completion:
    try:
        return await provider.complete(request)
    finally:
        await provider.aclose()


async def failure(provider: Provider, request: Request | None = None) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await complete(provider, request or ask())
    return caught.value


@pytest.fixture(autouse=True)
def local_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Refuse name lookups and connections for any host but 127.0.0.1; fail if one was tried."""
    attempts: list[str] = []
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in ("127.0.0.1", "localhost"):
            attempts.append(name)
            raise socket.gaierror(f"tests may not look up {name}")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and address[0] != "127.0.0.1":
            attempts.append(str(address[0]))
            raise ConnectionRefusedError(f"tests may not connect to {address[0]}")
        return real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    yield attempts
    assert attempts == [], f"a test tried to reach {attempts}"


def test_the_guard_stops_a_real_host(local_only: list[str]) -> None:
    provider = OpenAIProvider("gpt-4o-mini", api_key="sk-test")  # api.openai.com
    error = run(failure(provider))
    assert isinstance(error, ProviderUnavailable)
    assert local_only == ["api.openai.com"]
    local_only.clear()


# --- OpenAI-compatible -------------------------------------------------------------------------


def test_openai_request_content_and_answer(llm_server: LlmServer) -> None:
    llm_server.script(openai_chat("Hello there", usage=(12, 3)))
    request = Request(
        model="", temperature=0.2, max_output_tokens=100, tools=(READ_FILE,),
        messages=(Message("system", "Be brief."), Message("user", "Read a.txt"),
                  Message("assistant", "", tool_calls=(ToolCall("c1", "read_file",
                                                                {"path": "a.txt"}),)),
                  Message("tool", "contents of a", tool_call_id="c1")))
    completion = run(complete(openai(llm_server), request))

    [sent] = llm_server.requests
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert sent.body == {
        "model": "test-model", "temperature": 0.2, "max_tokens": 100,
        "tools": [{"type": "function", "function": {
            "name": "read_file", "description": "Read a file of the workspace.",
            "parameters": READ_FILE.parameters}}],
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Read a.txt"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function",
                 "function": {"name": "read_file", "arguments": '{"path": "a.txt"}'}}]},
            {"role": "tool", "content": "contents of a", "tool_call_id": "c1"}]}
    assert completion.text == "Hello there"
    assert completion.usage == Usage(12, 3)
    assert (completion.model, completion.finish_reason) == ("test-model", "stop")
    assert completion.raw["id"] == "chatcmpl-1"


def test_openai_tool_calls_are_parsed_and_unknown_tools_found(llm_server: LlmServer) -> None:
    llm_server.script(openai_chat(None, tool_calls=[
        ("c1", "read_file", {"path": "notes.md"}), ("c2", "launch_rockets", {"count": 3})]))
    request = ask(tools=(READ_FILE,))
    completion = run(complete(openai(llm_server), request))
    assert completion.text == ""
    assert completion.finish_reason == "tool_calls"
    assert completion.tool_calls == (ToolCall("c1", "read_file", {"path": "notes.md"}),
                                     ToolCall("c2", "launch_rockets", {"count": 3}))
    assert unknown_tool_calls(request, completion) == (completion.tool_calls[1],)


@pytest.mark.parametrize(("arguments", "said"), [
    ('{"path": "a', "not JSON"), ('["a"]', "not a JSON object")])
def test_openai_malformed_tool_arguments_are_bad_responses(
        llm_server: LlmServer, arguments: str, said: str) -> None:
    llm_server.script(openai_chat(None, tool_calls=[("c1", "read_file", arguments)]))
    error = run(failure(openai(llm_server), ask(tools=(READ_FILE,))))
    assert isinstance(error, BadResponse) and not error.transient
    assert said in str(error) and "read_file" in str(error)


def test_openai_local_server_needs_no_key(llm_server: LlmServer) -> None:
    completion = run(complete(openai(llm_server, api_key=None), ask()))
    assert completion.text == "ok"
    assert "authorization" not in llm_server.requests[0].headers


def test_openai_structured_output_asks_for_the_schema(llm_server: LlmServer) -> None:
    llm_server.script(openai_chat('{"verdict": "match"}'))
    completion = run(complete(openai(llm_server), ask(json_schema=SCHEMA)))
    assert llm_server.requests[0].body["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA}}
    assert completion.json() == {"verdict": "match"}


def test_openai_falls_back_to_json_object_and_remembers(llm_server: LlmServer) -> None:
    def handler(recorded: Recorded) -> Reply | dict[str, Any]:
        if recorded.body["response_format"]["type"] == "json_schema":
            return Reply.json({"error": {"message": "response_format json_schema is not "
                                                    "supported"}}, 400)
        return openai_chat('{"verdict": "partial"}')
    llm_server.handler = handler

    async def twice() -> tuple[Completion, Completion, str]:
        provider = openai(llm_server)
        try:
            first = await provider.complete(ask(json_schema=SCHEMA))
            second = await provider.complete(ask(json_schema=SCHEMA))
            return first, second, provider.structured
        finally:
            await provider.aclose()

    first, second, mode = run(twice())
    assert first.json() == second.json() == {"verdict": "partial"}
    assert mode == "json_object"
    formats = [r.body["response_format"]["type"] for r in llm_server.requests]
    assert formats == ["json_schema", "json_object", "json_object"]
    hint = llm_server.requests[1].body["messages"][-1]
    assert hint["role"] == "system" and '"verdict"' in hint["content"]


def test_openai_fallback_is_not_remembered_when_the_400_was_about_something_else(
        llm_server: LlmServer) -> None:
    llm_server.handler = lambda r: Reply.json({"error": {"message": "model is required"}}, 400)

    async def go() -> tuple[ProviderError, str]:
        provider = openai(llm_server)
        with pytest.raises(BadResponse) as caught:
            await provider.complete(ask(json_schema=SCHEMA))
        await provider.aclose()
        return caught.value, provider.structured

    error, mode = run(go())
    assert "model is required" in str(error) and error.status_code == 400
    assert mode == "json_schema"


def test_openai_streaming_assembles_text_tool_calls_and_usage(llm_server: LlmServer) -> None:
    llm_server.script(openai_stream(["Hel", "lo", "!"], tool_calls=[
        ("c1", "read_file", ['{"pa', 'th": ', '"a.txt"}']),
        ("c2", "read_file", ['{"path": "b.txt"}'])], usage=(20, 7)))
    pieces: list[str] = []
    request = ask(stream=True, tools=(READ_FILE,), on_text=pieces.append)
    completion = run(complete(openai(llm_server), request))
    body = llm_server.requests[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert completion.text == "Hello!" and pieces == ["Hel", "lo", "!"]
    assert completion.tool_calls == (ToolCall("c1", "read_file", {"path": "a.txt"}),
                                     ToolCall("c2", "read_file", {"path": "b.txt"}))
    assert completion.usage == Usage(20, 7)
    assert completion.finish_reason == "tool_calls"
    assert completion.raw["choices"][0]["message"]["content"] == "Hello!"


def test_openai_stream_without_usage_counts_zero(llm_server: LlmServer) -> None:
    llm_server.script(openai_stream(["fine"], usage=None))
    completion = run(complete(openai(llm_server), ask(stream=True)))
    assert (completion.text, completion.usage) == ("fine", Usage(0, 0))


def test_openai_stream_cut_short_is_a_bad_response(llm_server: LlmServer) -> None:
    llm_server.script(openai_stream(["half an ans"], done=False, finish=False))
    error = run(failure(openai(llm_server), ask(stream=True)))
    assert isinstance(error, BadResponse)
    assert "stream ended before the answer was complete" in str(error)


def test_openai_stream_with_garbage_chunk_is_a_bad_response(llm_server: LlmServer) -> None:
    llm_server.script(Reply.sse(["{not json"]))
    error = run(failure(openai(llm_server), ask(stream=True)))
    assert isinstance(error, BadResponse)


# --- Anthropic ----------------------------------------------------------------------------------


def test_anthropic_request_content_and_answer(llm_server: LlmServer) -> None:
    llm_server.script(anthropic_message("Done.", usage=(30, 4)))
    request = Request(
        model="", tools=(READ_FILE,), temperature=0.0,
        messages=(Message("system", "Be brief."), Message("system", "Use tools."),
                  Message("user", "Read a and b"),
                  Message("assistant", "Reading.", tool_calls=(
                      ToolCall("t1", "read_file", {"path": "a"}),
                      ToolCall("t2", "read_file", {"path": "b"}))),
                  Message("tool", "A", tool_call_id="t1"),
                  Message("tool", "B", tool_call_id="t2")))
    completion = run(complete(anthropic(llm_server), request))

    [sent] = llm_server.requests
    assert (sent.method, sent.path) == ("POST", "/v1/messages")
    assert sent.headers["x-api-key"] == "sk-ant-test"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent.headers
    assert sent.body == {
        "model": "claude-test", "max_tokens": 4096, "temperature": 0.0,
        "system": "Be brief.\n\nUse tools.",
        "tools": [{"name": "read_file", "description": "Read a file of the workspace.",
                   "input_schema": READ_FILE.parameters}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Read a and b"}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Reading."},
                {"type": "tool_use", "id": "t1", "name": "read_file", "input": {"path": "a"}},
                {"type": "tool_use", "id": "t2", "name": "read_file", "input": {"path": "b"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "A"},
                {"type": "tool_result", "tool_use_id": "t2", "content": "B"}]}]}
    assert completion.text == "Done."
    assert completion.usage == Usage(30, 4)
    assert completion.finish_reason == "stop"


def test_anthropic_tool_use_is_parsed(llm_server: LlmServer) -> None:
    llm_server.script(anthropic_message("Let me look.", tool_uses=[
        ("toolu_1", "read_file", {"path": "x.py"}), ("toolu_2", "delete_all", {})]))
    request = ask(tools=(READ_FILE,))
    completion = run(complete(anthropic(llm_server), request))
    assert completion.text == "Let me look."
    assert completion.finish_reason == "tool_calls"
    assert completion.tool_calls == (ToolCall("toolu_1", "read_file", {"path": "x.py"}),
                                     ToolCall("toolu_2", "delete_all", {}))
    assert [c.name for c in unknown_tool_calls(request, completion)] == ["delete_all"]


def test_anthropic_tool_use_without_a_name_is_a_bad_response(llm_server: LlmServer) -> None:
    llm_server.script({"content": [{"type": "tool_use", "id": "t", "input": {}}],
                       "stop_reason": "tool_use"})
    error = run(failure(anthropic(llm_server)))
    assert isinstance(error, BadResponse) and "no name" in str(error)


def test_anthropic_structured_output_through_a_forced_tool(llm_server: LlmServer) -> None:
    llm_server.script(anthropic_message(tool_uses=[("t", "answer", {"verdict": "match"})]))
    completion = run(complete(anthropic(llm_server), ask(json_schema=SCHEMA)))
    body = llm_server.requests[0].body
    assert body["tool_choice"] == {"type": "tool", "name": "answer"}
    assert body["tools"][-1]["name"] == "answer"
    assert body["tools"][-1]["input_schema"] == SCHEMA
    assert completion.json() == {"verdict": "match"}
    assert completion.tool_calls == () and completion.finish_reason == "stop"


def test_anthropic_structured_output_wraps_a_non_object_schema(llm_server: LlmServer) -> None:
    schema = {"type": "array", "items": {"type": "integer"}}
    llm_server.script(anthropic_message(tool_uses=[("t", "answer", {"answer": [1, 2]})]))
    completion = run(complete(anthropic(llm_server), ask(json_schema=schema)))
    sent = llm_server.requests[0].body["tools"][-1]["input_schema"]
    assert sent == {"type": "object", "properties": {"answer": schema}, "required": ["answer"]}
    assert completion.json() == [1, 2]


def test_anthropic_structured_output_with_tools_lets_the_model_use_them(
        llm_server: LlmServer) -> None:
    llm_server.script(anthropic_message(tool_uses=[("t", "read_file", {"path": "a"})]))
    completion = run(complete(anthropic(llm_server), ask(json_schema=SCHEMA,
                                                         tools=(READ_FILE,))))
    body = llm_server.requests[0].body
    assert body["tool_choice"] == {"type": "any"}
    assert [t["name"] for t in body["tools"]] == ["read_file", "answer"]
    assert completion.tool_calls == (ToolCall("t", "read_file", {"path": "a"}),)


def test_anthropic_streaming_assembles_text_tool_use_and_usage(llm_server: LlmServer) -> None:
    llm_server.script(anthropic_stream(["Look", "ing."], tool_uses=[
        ("toolu_1", "read_file", ['{"path"', ': "a.txt"}'])], usage=(40, 9)))
    pieces: list[str] = []
    request = ask(stream=True, tools=(READ_FILE,), on_text=pieces.append)
    completion = run(complete(anthropic(llm_server), request))
    assert llm_server.requests[0].body["stream"] is True
    assert completion.text == "Looking." and pieces == ["Look", "ing."]
    assert completion.tool_calls == (ToolCall("toolu_1", "read_file", {"path": "a.txt"}),)
    assert completion.usage == Usage(40, 9)
    assert completion.finish_reason == "tool_calls"


def test_anthropic_stream_error_event_overloaded_is_transient(llm_server: LlmServer) -> None:
    llm_server.script(Reply.sse([("error", {"type": "error", "error": {
        "type": "overloaded_error", "message": "Overloaded"}})]))
    error = run(failure(anthropic(llm_server), ask(stream=True)))
    assert isinstance(error, ProviderUnavailable) and "Overloaded" in str(error)


def test_anthropic_stream_cut_short_is_a_bad_response(llm_server: LlmServer) -> None:
    llm_server.script(anthropic_stream(["Half"], complete=False))
    error = run(failure(anthropic(llm_server), ask(stream=True)))
    assert isinstance(error, BadResponse)


# --- errors, both APIs ------------------------------------------------------------------------

APIS = ["openai", "anthropic"]


def make(api: str, server: LlmServer, **kwargs: Any) -> Provider:
    return openai(server, **kwargs) if api == "openai" else anthropic(server, **kwargs)


def good_body(api: str) -> dict[str, Any]:
    return openai_chat("fine") if api == "openai" else anthropic_message("fine")


@pytest.mark.parametrize("api", APIS)
def test_429_with_retry_after_seconds(api: str, llm_server: LlmServer) -> None:
    llm_server.script(Reply.json({"error": {"message": "slow down"}}, 429,
                                 {"Retry-After": "7"}))
    error = run(failure(make(api, llm_server)))
    assert isinstance(error, RateLimited) and error.transient
    assert error.retry_after == 7.0 and "slow down" in str(error)


@pytest.mark.parametrize("api", APIS)
def test_429_with_retry_after_http_date(api: str, llm_server: LlmServer) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    llm_server.script(Reply.json({}, 429, {"Retry-After": when}))
    error = run(failure(make(api, llm_server)))
    assert isinstance(error, RateLimited)
    assert error.retry_after is not None and 25 <= error.retry_after <= 30


@pytest.mark.parametrize(("api", "status"), [("openai", 500), ("openai", 503),
                                             ("anthropic", 500), ("anthropic", 529)])
def test_server_errors_are_unavailable(api: str, status: int, llm_server: LlmServer) -> None:
    llm_server.script(Reply.json({"type": "error", "error": {
        "type": "overloaded_error" if status == 529 else "api_error", "message": "busy"}},
        status))
    error = run(failure(make(api, llm_server)))
    assert isinstance(error, ProviderUnavailable) and error.transient
    assert error.status_code == status and "busy" in str(error)
    assert ("overloaded" in str(error)) == (status == 529)


@pytest.mark.parametrize("api", APIS)
def test_a_hang_past_the_timeout_is_a_provider_timeout(api: str, llm_server: LlmServer) -> None:
    llm_server.script(Reply.hang(30))
    started = time.monotonic()
    error = run(failure(make(api, llm_server, timeout=0.5)))
    assert isinstance(error, ProviderTimeout) and error.transient
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("api", APIS)
def test_garbage_json_is_a_bad_response(api: str, llm_server: LlmServer) -> None:
    llm_server.script(Reply.garbage())
    error = run(failure(make(api, llm_server)))
    assert isinstance(error, BadResponse) and not error.transient
    assert "invalid JSON" in str(error) and "proxy says hi" in str(error)


@pytest.mark.parametrize("api", APIS)
def test_truncated_json_is_a_bad_response(api: str, llm_server: LlmServer) -> None:
    llm_server.script(Reply.truncated_json(good_body(api)))
    error = run(failure(make(api, llm_server)))
    assert isinstance(error, BadResponse) and "truncated JSON" in str(error)


@pytest.mark.parametrize("api", APIS)
def test_a_connection_dropped_mid_body_is_unavailable(api: str, llm_server: LlmServer) -> None:
    llm_server.script(Reply.dropped(good_body(api)))
    error = run(failure(make(api, llm_server)))
    assert isinstance(error, ProviderUnavailable) and "mid-answer" in str(error)


@pytest.mark.parametrize(("api", "body", "said"), [
    ("openai", {"id": "x", "model": "m"}, "no choices"),
    ("openai", {"choices": [{"index": 0}]}, "no message"),
    ("openai", [1, 2], "not a JSON object"),
    ("anthropic", {"id": "x", "type": "message"}, "no content list"),
    ("anthropic", {"content": ["text"]}, "not an object")])
def test_answers_missing_their_parts_are_bad_responses(
        api: str, body: Any, said: str, llm_server: LlmServer) -> None:
    llm_server.script(Reply.json(body))
    error = run(failure(make(api, llm_server)))
    assert isinstance(error, BadResponse) and said in str(error)


@pytest.mark.parametrize(("status", "kind"), [(401, ProviderConfigError),
                                              (403, ProviderConfigError),
                                              (404, BadResponse), (422, BadResponse),
                                              (408, ProviderTimeout)])
@pytest.mark.parametrize("api", APIS)
def test_client_errors(api: str, status: int, kind: type[ProviderError],
                       llm_server: LlmServer) -> None:
    llm_server.script(Reply.json({"error": {"message": f"the server says {status}"}}, status))
    error = run(failure(make(api, llm_server)))
    assert type(error) is kind and error.status_code == status
    assert f"the server says {status}" in str(error)
    assert "sk-" not in str(error)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("api", APIS)
def test_connection_refused_is_unavailable(api: str) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    provider: Provider = (OpenAIProvider("m", base_url=url + "/v1") if api == "openai"
                          else AnthropicProvider("m", base_url=url))
    error = run(failure(provider))
    assert isinstance(error, ProviderUnavailable) and error.transient
    assert "cannot reach the server" in str(error)


def test_every_httpx_error_is_mapped_to_ours() -> None:
    request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = httpx.Response(500, request=request)
    classes = [c for c in vars(httpx).values()
               if inspect.isclass(c) and issubclass(c, Exception) and c.__module__.startswith(
                   "httpx") and (issubclass(c, httpx.HTTPError) or c is httpx.InvalidURL)]
    assert len(classes) > 15
    for cls in classes:
        if issubclass(cls, httpx.HTTPStatusError):
            exc: Exception = cls("boom", request=request, response=response)
        elif issubclass(cls, httpx.RequestError):
            exc = cls("boom", request=request)
        else:
            exc = cls("boom")
        with pytest.raises(ProviderError) as caught, map_provider_errors("openai"):
            raise exc
        assert caught.value.__cause__ is exc, cls
        transient = issubclass(cls, httpx.TransportError) and not issubclass(
            cls, httpx.LocalProtocolError | httpx.UnsupportedProtocol)
        assert caught.value.transient == transient, cls


NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("headers", "expected"), [
    ({}, None),
    ({"retry-after": "3"}, 3.0),
    ({"retry-after": "0.5"}, 0.5),
    ({"retry-after": "-4"}, 0.0),
    ({"retry-after": "Wed, 01 Jan 2025 12:00:20 GMT"}, 20.0),
    ({"retry-after": "Wed, 01 Jan 2025 11:00:00 GMT"}, 0.0),
    ({"retry-after": "soon"}, None),
    ({"retry-after": "nan"}, None),
    ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
])
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, NOW) == expected


def test_provider_errors_are_specs_errors() -> None:
    for cls in (ProviderConfigError, ProviderUnavailable, RateLimited, ProviderTimeout,
                BadResponse, ReplayMismatch):
        assert issubclass(cls, ProviderError) and issubclass(cls, SpecsError)
    assert [c.__name__ for c in (ProviderUnavailable, RateLimited, ProviderTimeout)
            if c.transient] == ["ProviderUnavailable", "RateLimited", "ProviderTimeout"]
    assert not any(c.transient for c in (ProviderConfigError, BadResponse, ReplayMismatch))


def test_completion_json_says_when_the_answer_was_cut() -> None:
    cut = Completion('{"verdict": "ma', (), Usage(), "m", "length")
    with pytest.raises(BadResponse, match="cut at max_output_tokens"):
        cut.json()
    fenced = Completion('```json\n{"a": 1}\n```', (), Usage(), "m", "stop")
    assert fenced.json() == {"a": 1}


# --- pre-flight -------------------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
def test_check_passes_when_the_server_answers(api: str, llm_server: LlmServer) -> None:
    async def go() -> None:
        provider = make(api, llm_server)
        await provider.check()
        await provider.aclose()
    run(go())
    path = "/v1/models"
    assert [(r.method, r.path) for r in llm_server.requests] == [("GET", path)]


@pytest.mark.parametrize("api", APIS)
def test_check_reports_a_rejected_key_in_one_line(api: str, llm_server: LlmServer) -> None:
    llm_server.handler = lambda r: Reply.json({"error": {"message": "invalid x-api-key"}}, 401)

    async def go() -> None:
        provider = make(api, llm_server)
        try:
            await provider.check()
        finally:
            await provider.aclose()
    with pytest.raises(ProviderConfigError) as caught:
        run(go())
    message = str(caught.value)
    assert "\n" not in message and "rejected the API key" in message
    assert "invalid x-api-key" in message


@pytest.mark.parametrize("api", APIS)
def test_check_reports_an_unreachable_server_in_one_line(api: str) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    provider: Provider = (OpenAIProvider("m", base_url=url + "/v1") if api == "openai"
                          else AnthropicProvider("m", base_url=url))

    async def go() -> None:
        try:
            await provider.check()
        finally:
            await provider.aclose()
    with pytest.raises(ProviderConfigError) as caught:
        run(go())
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"cannot reach {api} at {url}")


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("llm", "env", "cli", "expected"), [
    (None, {}, {}, ("openai", "gpt-4o-mini", "https://api.openai.com/v1")),
    (Llm(provider="anthropic"), {}, {}, ("anthropic", "claude-sonnet-4-0",
                                         "https://api.anthropic.com")),
    (Llm(model="llama3.1", base_url="http://localhost:11434/v1"), {}, {},
     ("openai", "llama3.1", "http://localhost:11434/v1")),
    (Llm(model="llama3.1"), {"SPECS_LLM_MODEL": "qwen2.5"}, {},
     ("openai", "qwen2.5", "https://api.openai.com/v1")),
    (Llm(model="llama3.1"), {"SPECS_LLM_MODEL": "qwen2.5"}, {"model": "phi4"},
     ("openai", "phi4", "https://api.openai.com/v1")),
    (Llm(provider="openai"), {"SPECS_LLM_PROVIDER": "anthropic"}, {},
     ("anthropic", "claude-sonnet-4-0", "https://api.anthropic.com")),
    (Llm(provider="openai"), {"SPECS_LLM_PROVIDER": "anthropic"}, {"provider": "openai"},
     ("openai", "gpt-4o-mini", "https://api.openai.com/v1")),
    (Llm(base_url="http://localhost:8000/v1"), {"OPENAI_BASE_URL": "http://10.0.0.5:8000/v1/"},
     {}, ("openai", "gpt-4o-mini", "http://10.0.0.5:8000/v1")),
    # the file's model and base URL belong to the file's provider
    (Llm(provider="anthropic", model="claude-x", base_url="http://localhost:9/"), {},
     {"provider": "openai"}, ("openai", "gpt-4o-mini", "https://api.openai.com/v1")),
    (Llm(provider="anthropic"), {"ANTHROPIC_BASE_URL": "http://127.0.0.1:1/",
                                 "OPENAI_BASE_URL": "http://127.0.0.1:2/v1"}, {},
     ("anthropic", "claude-sonnet-4-0", "http://127.0.0.1:1")),
])
def test_settings_precedence_file_env_cli(llm: Llm | None, env: dict[str, str],
                                          cli: dict[str, str],
                                          expected: tuple[str, str, str]) -> None:
    settings = resolve_settings(llm, env, **cli)
    assert (settings.provider, settings.model, settings.base_url) == expected


def test_settings_carry_the_rest_of_llm_and_hide_the_key() -> None:
    llm = Llm(temperature=0.3, max_output_tokens=500, requests_per_minute=30,
              prices={"m": {"input": 1, "output": 2}})
    settings = resolve_settings(llm, {"OPENAI_API_KEY": "sk-secret"})
    assert settings.api_key == "sk-secret" and "sk-secret" not in repr(settings)
    assert (settings.temperature, settings.max_output_tokens) == (0.3, 500)
    assert settings.sources["model"] == "default"
    assert resolve_settings(llm, {"SPECS_LLM_MODEL": "x"}).sources["model"] == "SPECS_LLM_MODEL"


@pytest.mark.parametrize(("llm", "env", "cli", "said"), [
    (None, {}, {}, "OPENAI_API_KEY is not set"),
    (Llm(provider="anthropic"), {"OPENAI_API_KEY": "sk-x"}, {},
     "ANTHROPIC_API_KEY is not set"),
    (None, {"OPENAI_API_KEY": "sk-x"}, {"provider": "anthropic"}, "ANTHROPIC_API_KEY is not set"),
    (None, {"OPENAI_API_KEY": ""}, {}, "OPENAI_API_KEY is not set"),
    (None, {"SPECS_LLM_PROVIDER": "gemini"}, {}, "unknown LLM provider 'gemini'"),
    (None, {"OPENAI_BASE_URL": "localhost:11434"}, {}, "must be an http:// or https:// URL"),
    (Llm(base_url="ftp://example.org"), {}, {}, "[llm] base_url"),
])
def test_provider_from_settings_refuses_in_one_line(llm: Llm | None, env: dict[str, str],
                                                    cli: dict[str, str], said: str) -> None:
    with pytest.raises(ProviderConfigError) as caught:
        provider_from_settings(llm, env, **cli)
    message = str(caught.value)
    assert said in message and "\n" not in message


def test_provider_from_settings_builds_a_working_provider(llm_server: LlmServer) -> None:
    env = {"OPENAI_BASE_URL": llm_server.openai_url}  # local: no key needed
    provider = provider_from_settings(Llm(model="llama3.1"), env)
    assert isinstance(provider, OpenAIProvider) and isinstance(provider, Provider)
    assert run(complete(provider, ask())).text == "ok"
    assert llm_server.requests[0].body["model"] == "llama3.1"

    env = {"ANTHROPIC_BASE_URL": llm_server.url, "ANTHROPIC_API_KEY": "sk-ant-1"}
    provider = provider_from_settings(None, env, provider="anthropic", model="claude-z")
    assert isinstance(provider, AnthropicProvider)
    assert run(complete(provider, ask())).text == "ok"
    assert llm_server.requests[1].headers["x-api-key"] == "sk-ant-1"


def test_provider_from_settings_adds_the_rate_limiter(llm_server: LlmServer) -> None:
    provider = provider_from_settings(Llm(requests_per_minute=60),
                                      {"OPENAI_BASE_URL": llm_server.openai_url})
    assert isinstance(provider, LimitedProvider) and isinstance(provider, Provider)
    assert provider.limiter.requests_per_minute == 60
    assert run(complete(provider, ask())).text == "ok"


# --- rate limiter -----------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(0)  # let other tasks run, as a real sleep would
        self.now += seconds


@pytest.mark.parametrize(("rpm", "tpm", "calls", "waits"), [
    (60, None, [(0, 0)] * 3, [0, 0, 0]),
    (2, None, [(0, 0)] * 3, [0, 0, 30]),
    (2, None, [(0, 0), (0, 0), (60, 0)], [0, 0, 0]),
    (2, None, [(0, 0), (0, 0), (15, 0), (15, 0)], [0, 0, 15, 30]),
    (None, 1000, [(0, 600), (0, 600)], [0, 12]),
    (None, 1000, [(0, 600), (30, 600)], [0, 0]),
    (None, 1000, [(0, 5000), (0, 10)], [0, 240.6]),  # bigger than a minute: waits for full
    (60, 1000, [(0, 900), (0, 200)], [0, 6]),
    (None, None, [(0, 10**9)] * 3, [0, 0, 0]),
])
def test_rate_limiter(rpm: float | None, tpm: float | None, calls: list[tuple[float, int]],
                      waits: list[float]) -> None:
    clock = FakeClock()

    async def go() -> list[float]:
        limiter = RateLimiter(rpm, tpm, clock=clock, sleep=clock.sleep)
        got = []
        for at, tokens in calls:
            clock.now = max(clock.now, at)
            got.append(await limiter.acquire(tokens))
        return got

    assert run(go()) == pytest.approx(waits)


def test_rate_limiter_pause_and_settle() -> None:
    clock = FakeClock()

    async def go() -> list[float]:
        limiter = RateLimiter(None, 1000, clock=clock, sleep=clock.sleep)
        limiter.pause(5)
        first = await limiter.acquire(100)
        limiter.settle(100, 1000)  # the call used far more than estimated: bucket at 0
        second = await limiter.acquire(100)
        return [first, second]

    assert run(go()) == pytest.approx([5, 6])


def test_rate_limiter_is_shared_by_concurrent_callers() -> None:
    clock = FakeClock()

    async def go() -> list[float]:
        limiter = RateLimiter(1, None, clock=clock, sleep=clock.sleep)
        return list(await asyncio.gather(*(limiter.acquire() for _ in range(3))))

    assert sorted(run(go())) == pytest.approx([0, 60, 120])


def test_limited_provider_pauses_everyone_after_a_429(llm_server: LlmServer) -> None:
    llm_server.script(Reply.json({}, 429, {"Retry-After": "20"}), openai_chat("later"))
    clock = FakeClock()

    async def go() -> tuple[ProviderError, Completion]:
        provider = LimitedProvider(openai(llm_server),
                                   RateLimiter(600, None, clock=clock, sleep=clock.sleep))
        with pytest.raises(RateLimited) as caught:
            await provider.complete(ask())
        completion = await complete(provider, ask())
        return caught.value, completion

    error, completion = run(go())
    assert isinstance(error, RateLimited) and completion.text == "later"
    assert clock.sleeps == pytest.approx([20])


# --- prices and cost --------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "usage", "overrides", "expected"), [
    ("gpt-4o", Usage(1_000_000, 1_000_000), None, 12.5),
    ("gpt-4o-mini", Usage(2_000_000, 0), None, 0.30),
    ("gpt-4o-2024-08-06", Usage(1000, 1000), None, 0.0125),
    ("claude-sonnet-4-20250514", Usage(1000, 100), None, 0.0045),
    ("claude-sonnet-4-0", Usage(1000, 100), None, 0.0045),
    ("claude-3-5-haiku-latest", Usage(1_000_000, 0), None, 0.80),
    ("openai/gpt-4o-mini", Usage(0, 1_000_000), None, 0.60),
    ("gpt-4o", Usage(1_000_000, 0), {"gpt-4o": {"input": 1, "output": 2}}, 1.0),
    ("llama3.1:8b", Usage(5000, 5000), {"llama3.1:8b": {"input": 0, "output": 0}}, 0.0),
    ("llama3.1:8b", Usage(5000, 5000), None, None),
    ("my-model-20250101", Usage(1_000_000, 0), {"my-model": {"input": 3, "output": 4}}, 3.0),
])
def test_cost(model: str, usage: Usage, overrides: dict[str, Any] | None,
              expected: float | None) -> None:
    assert cost(model, usage, overrides) == (None if expected is None
                                             else pytest.approx(expected))


@pytest.mark.parametrize("bad", [{"m": 3}, {"m": {"input": 1}}, {"m": {"input": -1, "output": 1}},
                                 {"m": {"input": "a", "output": 1}}])
def test_bad_price_overrides_are_config_errors(bad: dict[str, Any]) -> None:
    with pytest.raises(ProviderConfigError, match=r"\[llm.prices\] 'm'"):
        parse_prices(bad)


def test_usage_and_cost_of_a_real_call(llm_server: LlmServer) -> None:
    llm_server.script(openai_chat("hi", usage=(1200, 300), model="gpt-4o-mini-2024-07-18"))
    completion = run(complete(openai(llm_server), ask(model="gpt-4o-mini")))
    assert completion.usage == Usage(1200, 300) and completion.usage.total_tokens == 1500
    assert price_of(completion.model) == price_of("gpt-4o-mini")
    assert cost(completion.model, completion.usage) == pytest.approx(
        (1200 * 0.15 + 300 * 0.60) / 1e6)
    assert completion.usage + Usage(1, 2) == Usage(1201, 302)


# --- record and replay ------------------------------------------------------------------------


def conversation() -> list[Request]:
    return [ask("first", tools=(READ_FILE,)), ask("second", json_schema=SCHEMA),
            ask("third", temperature=0.5, stream=True), ask("fourth")]


def test_record_then_replay_without_a_server(tmp_path: Path) -> None:
    cassette = tmp_path / "run" / "exchanges.jsonl"
    with LlmServer() as server:
        server.script(openai_chat(None, tool_calls=[("c1", "read_file", {"path": "a"})]),
                      openai_chat('{"verdict": "match"}'),
                      openai_stream(["str", "eamed"]),
                      Reply.json({}, 500))

        async def record() -> tuple[list[Completion], ProviderError]:
            provider = RecordingProvider(openai(server), cassette)
            got = [await provider.complete(r) for r in conversation()[:3]]
            with pytest.raises(ProviderUnavailable) as caught:
                await provider.complete(conversation()[3])
            await provider.aclose()
            return got, caught.value

        recorded, recorded_error = run(record())
        assert len(server.requests) == 4

    lines = [json.loads(line) for line in cassette.read_text().splitlines()]
    assert [sorted(line) for line in lines] == [["completion", "provider", "request"]] * 3 + [
        ["error", "provider", "request"]]
    assert "sk-test" not in cassette.read_text()

    async def replay() -> tuple[list[Completion], ProviderError, ReplayProvider]:
        provider = ReplayProvider(cassette)
        got = [await provider.complete(r) for r in conversation()[:3]]
        with pytest.raises(ProviderUnavailable) as caught:
            await provider.complete(conversation()[3])
        return got, caught.value, provider

    replayed, replayed_error, provider = run(replay())
    assert replayed == recorded
    assert str(replayed_error) == str(recorded_error)
    assert replayed_error.status_code == 500
    assert (provider.name, provider.model, provider.remaining) == ("openai", "test-model", 0)


def write_cassette(path: Path, *texts: str) -> None:
    with path.open("w") as stream:
        for text in texts:
            stream.write(json.dumps({"provider": "openai",
                                     "request": {"model": "m", "messages": [
                                         {"role": "user", "content": text}], "tools": [],
                                         "json_schema": None, "temperature": None},
                                     "completion": {"text": f"re: {text}"}}) + "\n")


def test_replay_mismatch_is_one_line_naming_the_difference(tmp_path: Path) -> None:
    cassette = tmp_path / "c.jsonl"
    write_cassette(cassette, "Summarise the report in three bullet points.")

    with pytest.raises(ReplayMismatch) as caught:
        run(ReplayProvider(cassette).complete(
            ask("Summarise the report in four bullet points.", model="m")))
    message = str(caught.value)
    assert "\n" not in message
    assert "request 1 differs from exchange 1" in message
    assert "messages[0].content (character 24)" in message
    assert "three" in message and "four" in message

    with pytest.raises(ReplayMismatch, match="at model: recorded 'm', got 'other'"):
        run(ReplayProvider(cassette).complete(
            ask("Summarise the report in three bullet points.", model="other")))


def test_replay_runs_out_and_matches_out_of_order(tmp_path: Path) -> None:
    cassette = tmp_path / "c.jsonl"
    write_cassette(cassette, "a", "b")

    async def go() -> list[str]:
        provider = ReplayProvider(cassette)
        texts = [(await provider.complete(ask(t, model="m"))).text for t in ("b", "a")]
        with pytest.raises(ReplayMismatch, match="request 3 has no recorded exchange"):
            await provider.complete(ask("a", model="m"))
        return texts

    assert run(go()) == ["re: b", "re: a"]


@pytest.mark.parametrize(("content", "said"), [
    (None, "cannot read the cassette"), ("not json\n", ":1 is not a JSON line"),
    ('{"request": {}}\n', ":1 is not a recorded exchange")])
def test_a_bad_cassette_is_a_config_error(tmp_path: Path, content: str | None,
                                          said: str) -> None:
    cassette = tmp_path / "c.jsonl"
    if content is not None:
        cassette.write_text(content)
    with pytest.raises(ProviderConfigError, match=said):
        ReplayProvider(cassette)
