"""The OpenAI-compatible provider: ``POST {base}/chat/completions`` over httpx.

One wire format serves OpenAI itself and the local servers that copy it (Ollama's ``/v1``,
vLLM, llama.cpp server, LM Studio): the base URL defaults to ``https://api.openai.com/v1``
and the API key is optional when the base URL points at this machine or a private network.

- **Messages and tools**: our messages map one to one (``tool`` messages carry
  ``tool_call_id``; assistant tool calls are sent back with JSON-encoded arguments); tools are
  ``{"type": "function", "function": {name, description, parameters}}``.
- **Structured output**: ``response_format = {"type": "json_schema", ...}``. Servers that
  answer 400 to it get ``{"type": "json_object"}`` with the schema in a system message
  instead; the provider remembers that and sends ``json_object`` from then on. This re-send is
  the only request a provider ever repeats.
- **Streaming**: ``stream: true`` with ``stream_options.include_usage``; content and
  tool-call deltas are assembled, usage comes from the final chunk when the server sends it.
- **Output limit**: sent as ``max_tokens``, the name every compatible server understands.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from specs.errors import BadResponse
from specs.llm.providers.base import (
    DEFAULT_CALL_TIMEOUT,
    DEFAULT_TIMEOUT,
    Completion,
    HttpProvider,
    Message,
    Request,
    ToolCall,
    Usage,
    is_local_url,
    parse_arguments,
)

__all__ = ["OPENAI_BASE_URL", "OPENAI_MODEL", "OpenAIProvider"]

OPENAI_BASE_URL = "https://api.openai.com/v1"
OPENAI_MODEL = "gpt-4o-mini"
SCHEMA_NAME = "answer"

Structured = Literal["json_schema", "json_object"]


class OpenAIProvider(HttpProvider):
    """Chat completions on any OpenAI-compatible server."""

    name = "openai"
    check_path = "models"

    def __init__(self, model: str = OPENAI_MODEL, *, api_key: str | None = None,
                 base_url: str = OPENAI_BASE_URL, timeout: float = DEFAULT_TIMEOUT,
                 transport: httpx.AsyncBaseTransport | None = None,
                 call_timeout: float | None = DEFAULT_CALL_TIMEOUT) -> None:
        super().__init__(model, base_url=base_url, api_key=api_key, timeout=timeout,
                         transport=transport, call_timeout=call_timeout)
        self.structured: Structured = "json_schema"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    @staticmethod
    def key_problem_for(api_key: str | None, base_url: str) -> str | None:
        if api_key or is_local_url(base_url):
            return None
        return (f"OPENAI_API_KEY is not set (needed for {base_url}): export it, point "
                f"OPENAI_BASE_URL at a local server (Ollama, vLLM, ...), or choose another "
                f"provider with --provider")

    async def _complete(self, request: Request) -> Completion:
        structured = self.structured
        try:
            return await self._send(request, self.body(request, structured))
        except BadResponse as exc:
            if not (exc.status_code == 400 and request.json_schema is not None
                    and structured == "json_schema"):
                raise
        completion = await self._send(request, self.body(request, "json_object"))
        self.structured = "json_object"
        return completion

    async def _send(self, request: Request, body: dict[str, Any]) -> Completion:
        if request.stream:
            return await self._stream(request, body)
        data = await self.post_json("chat/completions", body)
        return self.parse(data, request)

    # --- request ----------------------------------------------------------------------------

    def body(self, request: Request, structured: Structured = "json_schema") -> dict[str, Any]:
        """The JSON body of ``request`` (``structured``: how a ``json_schema`` is asked for)."""
        messages = [self._message(m) for m in request.messages]
        body: dict[str, Any] = {"model": request.model or self.model}
        if request.tools:
            body["tools"] = [{"type": "function", "function": {
                "name": t.name, "description": t.description, "parameters": t.parameters}}
                for t in request.tools]
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_output_tokens is not None:
            body["max_tokens"] = request.max_output_tokens
        if request.json_schema is not None:
            if structured == "json_schema":
                body["response_format"] = {"type": "json_schema", "json_schema": {
                    "name": SCHEMA_NAME, "schema": request.json_schema}}
            else:
                body["response_format"] = {"type": "json_object"}
                hint = ("Answer with one JSON object that satisfies this JSON Schema, and "
                        "nothing else:\n" + json.dumps(request.json_schema, sort_keys=True))
                messages.append({"role": "system", "content": hint})
        if request.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        body["messages"] = messages
        return body

    @staticmethod
    def _message(message: Message) -> dict[str, Any]:
        out: dict[str, Any] = {"role": message.role, "content": message.content}
        if message.tool_calls:
            out["content"] = message.content or None
            out["tool_calls"] = [{"id": c.id, "type": "function", "function": {
                "name": c.name, "arguments": json.dumps(c.arguments)}}
                for c in message.tool_calls]
        if message.tool_call_id is not None:
            out["tool_call_id"] = message.tool_call_id
        return out

    # --- answer -----------------------------------------------------------------------------

    def parse(self, data: dict[str, Any], request: Request) -> Completion:
        """A decoded chat-completion object as a :class:`Completion`."""
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            detail = f": {data['error']}" if "error" in data else ""
            raise BadResponse(f"{self.name}: the answer has no choices{detail}",
                              provider=self.name)
        choice = choices[0]
        message = choice.get("message")
        if not isinstance(message, dict):
            raise BadResponse(f"{self.name}: the answer's choice has no message",
                              provider=self.name)
        calls = message.get("tool_calls") or []
        if not isinstance(calls, list):
            raise BadResponse(f"{self.name}: tool_calls is not a list", provider=self.name)
        return Completion(
            text=_content_text(message.get("content")),
            tool_calls=tuple(self._tool_call(call, i) for i, call in enumerate(calls)),
            usage=_usage(data.get("usage")),
            model=str(data.get("model") or request.model or self.model),
            finish_reason=choice.get("finish_reason"),
            raw=data)

    def _tool_call(self, call: Any, index: int) -> ToolCall:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or (
                not function["name"]):
            raise BadResponse(f"{self.name}: tool call {index} has no function name",
                              provider=self.name)
        name = function["name"]
        return ToolCall(id=str(call.get("id") or f"call_{index}"), name=name,
                        arguments=parse_arguments(self.name, name, function.get("arguments")))

    async def _stream(self, request: Request, body: dict[str, Any]) -> Completion:
        stream = _Assembly()
        async with contextlib.aclosing(self.post_sse("chat/completions", body)) as events:
            async for _event, chunk in events:
                if chunk is None:
                    stream.done = True
                    break
                self._chunk(stream, chunk, request)
        if not stream.done and stream.finish_reason is None:
            raise BadResponse(f"{self.name}: the stream ended before the answer was complete",
                              provider=self.name)
        return self.parse(stream.as_response(), request)

    def _chunk(self, stream: _Assembly, chunk: Any, request: Request) -> None:
        if not isinstance(chunk, dict):
            raise BadResponse(f"{self.name}: a stream chunk is not a JSON object",
                              provider=self.name)
        if "error" in chunk:
            raise BadResponse(f"{self.name}: error in the stream: {chunk['error']}",
                              provider=self.name)
        stream.id = chunk.get("id") or stream.id
        stream.model = chunk.get("model") or stream.model
        if chunk.get("usage"):
            stream.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                stream.text.append(text)
                if request.on_text is not None:
                    request.on_text(text)
            for call in delta.get("tool_calls") or []:
                stream.tool_delta(call)
            if choice.get("finish_reason"):
                stream.finish_reason = choice["finish_reason"]


@dataclass
class _Assembly:
    """The pieces of a streamed answer, collected until ``[DONE]``."""

    id: str | None = None
    model: str | None = None
    text: list[str] = field(default_factory=list)
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    usage: Any = None
    finish_reason: str | None = None
    done: bool = False

    def tool_delta(self, delta: Any) -> None:
        if not isinstance(delta, dict):
            return
        index = delta.get("index", len(self.calls))
        call = self.calls.setdefault(index, {"id": None, "type": "function",
                                             "function": {"name": "", "arguments": ""}})
        call["id"] = call["id"] or delta.get("id")
        function = delta.get("function") or {}
        if function.get("name") and not call["function"]["name"]:
            call["function"]["name"] = function["name"]
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            call["function"]["arguments"] += arguments
        elif isinstance(arguments, dict):
            call["function"]["arguments"] = json.dumps(arguments)

    def as_response(self) -> dict[str, Any]:
        """The chat-completion object the stream amounts to."""
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.text)}
        if self.calls:
            message["tool_calls"] = [self.calls[i] for i in sorted(self.calls)]
        response: dict[str, Any] = {
            "id": self.id, "object": "chat.completion", "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}]}
        if self.usage is not None:
            response["usage"] = self.usage
        return response


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, list):  # content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def _usage(usage: Any) -> Usage:
    if not isinstance(usage, dict):
        return Usage()
    return Usage(_int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens")))


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0
