"""The Anthropic provider: the Messages API (``POST {base}/v1/messages``) over httpx.

Differences from the OpenAI shape, handled here so callers never see them:

- **System prompt** apart: every ``system`` message joins the top-level ``system`` string.
- **Tool use** as content blocks: an assistant's tool calls become ``tool_use`` blocks, and
  ``tool`` messages become ``tool_result`` blocks in a user turn (consecutive results share
  one turn, as the API requires). Tools are ``{name, description, input_schema}``.
- **Structured output** through a forced tool: a request with ``json_schema`` offers a tool
  named ``answer`` whose input schema is the schema and sets ``tool_choice`` to it (to
  ``{"type": "any"}`` when other tools are offered too, so the model may still use them). The
  tool's input becomes the completion's ``text`` as JSON. A schema that is not an object is
  wrapped as ``{"answer": ...}`` and unwrapped again.
- ``max_tokens`` is required by the API: 4096 when the request sets no limit.
- **Streaming**: the ``message_start`` / ``content_block_*`` / ``message_delta`` events are
  assembled into the message they describe; an ``error`` event is mapped like a status.

The base URL defaults to ``https://api.anthropic.com``; a trailing ``/v1`` is tolerated.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from specs.errors import BadResponse, ProviderUnavailable
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

__all__ = ["ANSWER_TOOL", "ANTHROPIC_BASE_URL", "ANTHROPIC_MODEL", "AnthropicProvider"]

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_MODEL = "claude-sonnet-4-0"
ANTHROPIC_VERSION = "2023-06-01"
ANSWER_TOOL = "answer"
DEFAULT_MAX_TOKENS = 4096
STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "tool_use": "tool_calls",
                "max_tokens": "length", "refusal": "content_filter"}


class AnthropicProvider(HttpProvider):
    """Claude models through the Anthropic Messages API."""

    name = "anthropic"
    check_path = "v1/models"

    def __init__(self, model: str = ANTHROPIC_MODEL, *, api_key: str | None = None,
                 base_url: str = ANTHROPIC_BASE_URL, timeout: float = DEFAULT_TIMEOUT,
                 transport: httpx.AsyncBaseTransport | None = None,
                 call_timeout: float | None = DEFAULT_CALL_TIMEOUT) -> None:
        base_url = base_url.rstrip("/").removesuffix("/v1")
        super().__init__(model, base_url=base_url, api_key=api_key, timeout=timeout,
                         transport=transport, call_timeout=call_timeout)

    def _headers(self) -> dict[str, str]:
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if self._api_key:
            headers["x-api-key"] = self._api_key
        return headers

    @staticmethod
    def key_problem_for(api_key: str | None, base_url: str) -> str | None:
        if api_key or is_local_url(base_url):
            return None
        return ("ANTHROPIC_API_KEY is not set: export it, or choose another provider with "
                "--provider")

    async def _complete(self, request: Request) -> Completion:
        body = self.body(request)
        if request.stream:
            data = await self._stream(request, body)
        else:
            data = await self.post_json("v1/messages", body)
        return self.parse(data, request)

    # --- request ----------------------------------------------------------------------------

    def body(self, request: Request) -> dict[str, Any]:
        """The JSON body of ``request``."""
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        body: dict[str, Any] = {
            "model": request.model or self.model,
            "max_tokens": request.max_output_tokens or DEFAULT_MAX_TOKENS}
        if system:
            body["system"] = system
        body["messages"] = _turns(request.messages)
        tools = [{"name": t.name, "description": t.description, "input_schema": t.parameters}
                 for t in request.tools]
        if request.json_schema is not None:
            schema, _wrapped = _answer_schema(request.json_schema)
            tools.append({"name": ANSWER_TOOL, "input_schema": schema,
                          "description": "Give your final answer: its input is the answer."})
            body["tool_choice"] = ({"type": "any"} if request.tools
                                   else {"type": "tool", "name": ANSWER_TOOL})
        if tools:
            body["tools"] = tools
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.stream:
            body["stream"] = True
        return body

    # --- answer -----------------------------------------------------------------------------

    def parse(self, data: dict[str, Any], request: Request) -> Completion:
        """A decoded Messages API answer as a :class:`Completion`."""
        content = data.get("content")
        if not isinstance(content, list):
            raise BadResponse(f"{self.name}: the answer has no content list",
                              provider=self.name)
        texts: list[str] = []
        calls: list[ToolCall] = []
        answer: Any = None
        answered = False
        for index, block in enumerate(content):
            if not isinstance(block, dict):
                raise BadResponse(f"{self.name}: content block {index} is not an object",
                                  provider=self.name)
            if block.get("type") == "text":
                texts.append(str(block.get("text") or ""))
            elif block.get("type") == "tool_use":
                call = self._tool_call(block, index)
                if request.json_schema is not None and call.name == ANSWER_TOOL:
                    answer, answered = call.arguments, True
                else:
                    calls.append(call)
        finish = data.get("stop_reason")
        finish = STOP_REASONS.get(finish, finish) if isinstance(finish, str) else None
        text = "".join(texts)
        if answered:
            _schema, wrapped = _answer_schema(request.json_schema or {})
            if wrapped:
                answer = answer.get("answer") if isinstance(answer, dict) else answer
            text = json.dumps(answer)
            if finish == "tool_calls" and not calls:
                finish = "stop"
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        assert isinstance(usage, dict)
        inputs = sum(_int(usage.get(k)) for k in (
            "input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))
        return Completion(text=text, tool_calls=tuple(calls),
                          usage=Usage(inputs, _int(usage.get("output_tokens"))),
                          model=str(data.get("model") or request.model or self.model),
                          finish_reason=finish, raw=data)

    def _tool_call(self, block: dict[str, Any], index: int) -> ToolCall:
        name = block.get("name")
        if not isinstance(name, str) or not name:
            raise BadResponse(f"{self.name}: tool_use block {index} has no name",
                              provider=self.name)
        return ToolCall(id=str(block.get("id") or f"toolu_{index}"), name=name,
                        arguments=parse_arguments(self.name, name, block.get("input")))

    async def _stream(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        stream = _Assembly()
        async with contextlib.aclosing(self.post_sse("v1/messages", body)) as events:
            async for event, data in events:
                if data is None or not isinstance(data, dict):
                    continue
                kind = data.get("type") or event
                if kind == "message_stop":
                    stream.done = True
                    break
                self._event(stream, kind, data, request)
        if not stream.done and stream.message.get("stop_reason") is None:
            raise BadResponse(f"{self.name}: the stream ended before the answer was complete",
                              provider=self.name)
        return stream.as_response()

    def _event(self, stream: _Assembly, kind: str, data: dict[str, Any],
               request: Request) -> None:
        if kind == "error":
            error = data.get("error") if isinstance(data.get("error"), dict) else {}
            assert isinstance(error, dict)
            message = f"{self.name}: error in the stream: {error.get('message') or error}"
            if error.get("type") in ("overloaded_error", "api_error"):
                raise ProviderUnavailable(message, provider=self.name)
            raise BadResponse(message, provider=self.name)
        if kind == "message_start" and isinstance(data.get("message"), dict):
            stream.message.update(data["message"])
        elif kind == "content_block_start" and isinstance(data.get("content_block"), dict):
            stream.blocks[_int(data.get("index"))] = dict(data["content_block"])
        elif kind == "content_block_delta" and isinstance(data.get("delta"), dict):
            text = stream.delta(_int(data.get("index")), data["delta"])
            if text and request.on_text is not None:
                request.on_text(text)
        elif kind == "message_delta":
            delta = data.get("delta") if isinstance(data.get("delta"), dict) else {}
            assert isinstance(delta, dict)
            if delta.get("stop_reason"):
                stream.message["stop_reason"] = delta["stop_reason"]
            if isinstance(data.get("usage"), dict):
                usage = dict(stream.message.get("usage") or {})
                usage.update(data["usage"])
                stream.message["usage"] = usage


@dataclass
class _Assembly:
    """The message a stream describes, built block by block."""

    message: dict[str, Any] = field(default_factory=dict)
    blocks: dict[int, dict[str, Any]] = field(default_factory=dict)
    json_parts: dict[int, list[str]] = field(default_factory=dict)
    done: bool = False

    def delta(self, index: int, delta: dict[str, Any]) -> str:
        """Apply one delta; the text it added, if any."""
        block = self.blocks.setdefault(index, {"type": "text", "text": ""})
        if delta.get("type") == "text_delta":
            text = str(delta.get("text") or "")
            block["text"] = str(block.get("text") or "") + text
            return text
        if delta.get("type") == "input_json_delta":
            self.json_parts.setdefault(index, []).append(str(delta.get("partial_json") or ""))
        return ""

    def as_response(self) -> dict[str, Any]:
        content = []
        for index in sorted(self.blocks):
            block = dict(self.blocks[index])
            if block.get("type") == "tool_use" and index in self.json_parts:
                block["input"] = "".join(self.json_parts[index])  # parsed like a string
            content.append(block)
        return {**self.message, "content": content}


def _turns(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Our messages as alternating user/assistant turns of content blocks."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        blocks: list[dict[str, Any]] = []
        if message.role == "tool":
            role = "user"
            blocks.append({"type": "tool_result", "tool_use_id": message.tool_call_id or "",
                           "content": message.content})
        else:
            role = message.role
            if message.content:
                blocks.append({"type": "text", "text": message.content})
            blocks.extend({"type": "tool_use", "id": c.id, "name": c.name,
                           "input": c.arguments} for c in message.tool_calls)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return turns


def _answer_schema(schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The forced tool's input schema, and whether ``schema`` had to be wrapped in an object."""
    if schema.get("type") == "object":
        return schema, False
    return {"type": "object", "properties": {"answer": schema}, "required": ["answer"]}, True


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0
