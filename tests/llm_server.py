"""A real HTTP server on 127.0.0.1 that speaks the OpenAI and Anthropic APIs, for tests.

It serves ``POST /v1/chat/completions`` (JSON and SSE streaming), ``POST /v1/messages`` (JSON
and SSE) and ``GET /v1/models`` on a random free port, from a thread. Each test scripts it:

- ``server.script(reply, ...)`` queues replies for the next POST requests, in order (a ``dict``
  is a 200 JSON reply);
- ``server.handler = fn`` answers every request: ``fn(recorded) -> Reply | dict``;
- with neither, POSTs get a short default answer in the API the path names.

Every request is recorded (``server.requests``: method, path, lower-cased headers, decoded JSON
body, arrival time) for assertions. :class:`Reply` builds the faults: ``status`` with
``headers`` (429 with ``Retry-After``, 500, 529), ``Reply.garbage()``,
``Reply.truncated_json()`` (a complete HTTP body holding cut JSON), ``Reply.dropped()`` (the
connection closes mid-body), ``Reply.hang(seconds)`` (no answer until then, or until the
server stops) and ``Reply.trickle(reply, every)`` (the answer one byte every ``every``
seconds: a server that never trips a read timeout); ``Reply.connection_reset()`` resets the
connection instead of answering. A request whose client closed the
connection before its answer was complete (a hang or a trickle cut short) is also in
``server.abandoned``.

Use the ``llm_server`` fixture for a server per test: import ``llm_server_fixture`` into the
test module (it registers under the name ``llm_server``).
"""

from __future__ import annotations

import io
import json
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

__all__ = [
    "LlmServer",
    "Recorded",
    "Reply",
    "anthropic_message",
    "anthropic_stream",
    "llm_server_fixture",
    "openai_chat",
    "openai_stream",
]


@dataclass
class Recorded:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes = b""
    at: float = field(default_factory=time.monotonic)  # when it arrived (time.monotonic)


@dataclass
class Reply:
    """What the server answers: a status, headers, a body (or SSE chunks), and faults."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] | None = None  # server-sent events, written one by one
    delay: float = 0.0  # seconds to wait before answering (a hang)
    drop_after: int | None = None  # bytes of body sent before the connection is closed
    every: float | None = None  # a trickle: one byte of the body (or chunks) this often
    reset: bool = False  # no answer: the connection is reset (TCP RST)

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None
             ) -> Reply:
        return cls(status, json.dumps(data).encode(),
                   {"Content-Type": "application/json", **(headers or {})})

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain") -> Reply:
        return cls(status, text.encode(), {"Content-Type": content_type})

    @classmethod
    def garbage(cls) -> Reply:
        return cls.text("<html>502 proxy says hi</html> not json", 200, "application/json")

    @classmethod
    def truncated_json(cls, data: Any, keep: float = 0.5) -> Reply:
        """A complete HTTP answer whose JSON stops part way."""
        text = json.dumps(data)
        return cls.text(text[: int(len(text) * keep)], 200, "application/json")

    @classmethod
    def dropped(cls, data: Any, keep: float = 0.5) -> Reply:
        """The server announces the whole body, sends part of it, and closes the connection."""
        reply = cls.json(data)
        reply.drop_after = int(len(reply.body) * keep)
        return reply

    @classmethod
    def hang(cls, seconds: float = 30.0) -> Reply:
        reply = cls.json(openai_chat("too late"))
        reply.delay = seconds
        return reply

    @classmethod
    def connection_reset(cls) -> Reply:
        return cls(reset=True)

    @classmethod
    def trickle(cls, reply: Reply | dict[str, Any], every: float = 0.5) -> Reply:
        """``reply`` (a JSON answer or an SSE stream) sent one byte every ``every`` seconds."""
        found = reply if isinstance(reply, Reply) else cls.json(reply)
        return Reply(found.status, found.body, dict(found.headers), found.chunks,
                     found.delay, found.drop_after, every, found.reset)

    @classmethod
    def sse(cls, events: Iterable[Any], *, done: bool = False) -> Reply:
        """Server-sent events: each item is a JSON value (``data:``), an ``(event, value)``
        pair, or raw text; ``done`` adds OpenAI's ``data: [DONE]``."""
        chunks = []
        for item in events:
            if isinstance(item, tuple):
                name, value = item
                chunks.append(f"event: {name}\ndata: {json.dumps(value)}\n\n".encode())
            elif isinstance(item, str):
                chunks.append(f"data: {item}\n\n".encode())
            else:
                chunks.append(f"data: {json.dumps(item)}\n\n".encode())
        if done:
            chunks.append(b"data: [DONE]\n\n")
        return cls(200, b"", {"Content-Type": "text/event-stream"}, chunks)


Handler = Callable[[Recorded], "Reply | dict[str, Any]"]


class LlmServer:
    """The server; ``url`` is its root, ``openai_url`` the OpenAI-style base (``/v1``)."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.abandoned: list[Recorded] = []  # the client closed before the answer ended
        self.handler: Handler | None = None
        self._queue: list[Reply | dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_url(self) -> str:
        return f"{self.url}/v1"

    def start(self) -> LlmServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LlmServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def script(self, *replies: Reply | dict[str, Any]) -> None:
        """Queue replies for the next POST requests, in order."""
        with self._lock:
            self._queue.extend(replies)

    @property
    def posts(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST"]

    def _answer(self, recorded: Recorded) -> Reply:
        with self._lock:
            self.requests.append(recorded)
            queued = self._queue.pop(0) if self._queue and recorded.method == "POST" else None
        if queued is None and self.handler is not None:
            queued = self.handler(recorded)
        if queued is None:
            queued = _default(recorded)
        return queued if isinstance(queued, Reply) else Reply.json(queued)


def _default(recorded: Recorded) -> Reply | dict[str, Any]:
    if recorded.method == "GET" and recorded.path.endswith("/models"):
        return {"object": "list", "data": [{"id": "test-model", "object": "model"}]}
    if recorded.path.endswith("/messages"):
        return anthropic_message("ok")
    if recorded.path.endswith("/chat/completions"):
        return openai_chat("ok")
    return Reply.json({"error": {"message": f"no route {recorded.path}"}}, 404)


def _make_handler(server: LlmServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # headers and body are separate writes: without this, Nagle's algorithm and the
            # client's delayed ACK add ~40 ms to every answer
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._serve(b"")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self._serve(self.rfile.read(length) if length else b"")

        def _serve(self, raw: bytes) -> None:
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            headers = {k.lower(): v for k, v in self.headers.items()}
            recorded = Recorded(self.command, self.path, headers, body, raw)
            reply = server._answer(recorded)
            if reply.delay and not self._pause(reply.delay):
                self.close_connection = True
                if not server._stopping.is_set():
                    server.abandoned.append(recorded)
                return
            try:
                self._send(reply)
            except (OSError, _Gone):  # the client gave up (a timeout) and closed its end
                self.close_connection = True
                server.abandoned.append(recorded)

        def _pause(self, seconds: float) -> bool:
            """Wait ``seconds``; False when the server stops or the client goes first."""
            end = time.monotonic() + seconds
            while (left := end - time.monotonic()) > 0:
                if server._stopping.wait(min(left, 0.05)) or self._client_gone():
                    return False
            return True

        def _client_gone(self) -> bool:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            try:
                return bool(self.connection.recv(1, socket.MSG_PEEK) == b"")
            except OSError:
                return True

        def _write(self, data: bytes, every: float | None) -> None:
            if every is None:
                self.wfile.write(data)
                self.wfile.flush()
                return
            for index in range(len(data)):
                self.wfile.write(data[index:index + 1])
                self.wfile.flush()
                if not self._pause(every):
                    raise _Gone

        def _send(self, reply: Reply) -> None:
            if reply.reset:  # linger 0: close() sends RST instead of FIN
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
                self.close_connection = True
                self.rfile.close()
                self.wfile.close()
                self.connection.close()  # the last reference: the socket closes now
                self.wfile = io.BytesIO()  # what the handler writes after this goes nowhere
                return
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if reply.chunks is not None:
                self.send_header("Connection", "close")
                self.end_headers()
                for chunk in reply.chunks:
                    self._write(chunk, reply.every)
                self.close_connection = True
                return
            self.send_header("Content-Length", str(len(reply.body)))
            if reply.drop_after is not None:
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(reply.body[: reply.drop_after])
                self.wfile.flush()
                self.close_connection = True
                return
            self.end_headers()
            self._write(reply.body, reply.every)

    return _Handler


class _Gone(Exception):
    """The client closed the connection (or the server stops) during a trickle."""


# --- answers in each API's shape ----------------------------------------------------------------


def openai_chat(text: str | None = "", *, tool_calls: Sequence[tuple[str, str, Any]] = (),
                usage: tuple[int, int] | None = (10, 5), model: str = "test-model",
                finish_reason: str | None = None) -> dict[str, Any]:
    """A chat-completion object; ``tool_calls`` are ``(id, name, arguments)`` (arguments: a
    dict, sent JSON-encoded as the API does, or a raw string)."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_calls:
        message["tool_calls"] = [
            {"id": cid, "type": "function", "function": {
                "name": name, "arguments": args if isinstance(args, str) else json.dumps(args)}}
            for cid, name, args in tool_calls]
    data: dict[str, Any] = {
        "id": "chatcmpl-1", "object": "chat.completion", "model": model,
        "choices": [{"index": 0, "message": message,
                     "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop")}]}
    if usage is not None:
        data["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                         "total_tokens": sum(usage)}
    return data


def openai_stream(pieces: Sequence[str] = (), *,
                  tool_calls: Sequence[tuple[str, str, Sequence[str]]] = (),
                  usage: tuple[int, int] | None = (10, 5), model: str = "test-model",
                  done: bool = True, finish: bool = True) -> Reply:
    """An SSE stream: one chunk per text piece, then each tool call as ``(id, name,
    argument pieces)`` deltas, the finish chunk, the usage chunk and ``[DONE]``."""
    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}

    events: list[Any] = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": piece}) for piece in pieces]
    for index, (cid, name, parts) in enumerate(tool_calls):
        events.append(chunk({"tool_calls": [{"index": index, "id": cid, "type": "function",
                                             "function": {"name": name, "arguments": ""}}]}))
        events += [chunk({"tool_calls": [{"index": index, "function": {"arguments": part}}]})
                   for part in parts]
    if finish:
        events.append(chunk({}, "tool_calls" if tool_calls else "stop"))
    if usage is not None and finish:
        events.append({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": model,
                       "choices": [], "usage": {"prompt_tokens": usage[0],
                                                "completion_tokens": usage[1]}})
    return Reply.sse(events, done=done)


def anthropic_message(text: str = "", *, tool_uses: Sequence[tuple[str, str, Any]] = (),
                      usage: tuple[int, int] = (10, 5), model: str = "test-model",
                      stop_reason: str | None = None) -> dict[str, Any]:
    """A Messages API answer; ``tool_uses`` are ``(id, name, input)``."""
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    content += [{"type": "tool_use", "id": tid, "name": name, "input": value}
                for tid, name, value in tool_uses]
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": model,
            "content": content,
            "stop_reason": stop_reason or ("tool_use" if tool_uses else "end_turn"),
            "usage": {"input_tokens": usage[0], "output_tokens": usage[1]}}


def anthropic_stream(pieces: Sequence[str] = (), *,
                     tool_uses: Sequence[tuple[str, str, Sequence[str]]] = (),
                     usage: tuple[int, int] = (10, 5), model: str = "test-model",
                     complete: bool = True) -> Reply:
    """A Messages API SSE stream: a text block from ``pieces``, then each tool use as
    ``(id, name, partial JSON pieces)``."""
    events: list[Any] = [("message_start", {"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "usage": {"input_tokens": usage[0], "output_tokens": 1}}}),
        ("ping", {"type": "ping"})]
    index = 0
    if pieces:
        events.append(("content_block_start", {"type": "content_block_start", "index": 0,
                                               "content_block": {"type": "text", "text": ""}}))
        events += [("content_block_delta", {"type": "content_block_delta", "index": 0,
                                            "delta": {"type": "text_delta", "text": piece}})
                   for piece in pieces]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
        index = 1
    for tid, name, parts in tool_uses:
        events.append(("content_block_start", {
            "type": "content_block_start", "index": index,
            "content_block": {"type": "tool_use", "id": tid, "name": name, "input": {}}}))
        events += [("content_block_delta", {
            "type": "content_block_delta", "index": index,
            "delta": {"type": "input_json_delta", "partial_json": part}}) for part in parts]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    if complete:
        events.append(("message_delta", {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use" if tool_uses else "end_turn"},
            "usage": {"output_tokens": usage[1]}}))
        events.append(("message_stop", {"type": "message_stop"}))
    return Reply.sse(events)


@pytest.fixture(name="llm_server")
def llm_server_fixture() -> Iterator[LlmServer]:
    """A started :class:`LlmServer`, stopped after the test."""
    with LlmServer() as server:
        yield server
