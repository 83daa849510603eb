"""Who may read the dashboard and act on runs: :class:`Guard`, an ASGI middleware in front of
every route (pages, their JSON twins, the event streams, the actions).

- **Host**: a request must name the host the dashboard was bound to (or, bound to the
  loopback, ``localhost``/``127.0.0.1``/``[::1]``), so a web page whose name was made to
  resolve to 127.0.0.1 (DNS rebinding) cannot read it.
- **Token** (when the dashboard has one): every request carries it, as
  ``Authorization: Bearer TOKEN``, the ``specs_dashboard`` cookie, or ``?token=TOKEN`` (which
  sets the cookie, so a link opens the dashboard and the page's own requests, the
  ``EventSource`` included, carry it from then on). Missing: 401; wrong: 403.
- **Actions** are POSTs; each needs the action token in ``X-Specs-Token`` (the token, or the
  random value written into the served pages when there is none) and must come from the
  dashboard's own pages: an ``Origin`` (or, without it, ``Sec-Fetch-Site``) of another site
  is refused with 403. Anything but GET, HEAD and POST is 405.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from specs.dashboard.config import DashboardConfig, is_loopback

__all__ = ["COOKIE", "Guard", "error_body"]

COOKIE = "specs_dashboard"
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]", "::1")


def error_body(status: int, message: str) -> dict[str, Any]:
    """The one error shape of every JSON answer."""
    return {"ok": False, "error": message, "status": status}


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def _host_name(host: str) -> str:
    """``name`` of ``name:port`` (an IPv6 literal keeps its brackets)."""
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Guard:
    """See the module docstring."""

    def __init__(self, app: ASGIApp, config: DashboardConfig) -> None:
        self.app = app
        self.config = config

    def _host_ok(self, host: str) -> bool:
        if not is_loopback(self.config.host):
            return True  # bound beyond this machine: the token (required) guards it
        name = _host_name(host).lower()
        return name in LOOPBACK_NAMES or is_loopback(name.strip("[]"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        method = scope["method"]
        if method not in ("GET", "HEAD", "POST"):
            await self._refuse(scope, send, 405, f"{method} is not allowed here")
            return
        if not self._host_ok(headers.get("host", "")):
            await self._refuse(scope, send, 403, "this dashboard does not answer to that "
                               "host name")
            return
        set_cookie = None
        token = self.config.token
        if token is not None:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = _bearer(headers) or _cookie(headers) or (query.get("token") or [None])[0]
            if given is None:
                await self._refuse(scope, send, 401, "this dashboard needs its token: open "
                                   "it with ?token=TOKEN or send Authorization: Bearer TOKEN")
                return
            if not _same(given, token):
                await self._refuse(scope, send, 403, "wrong token")
                return
            if query.get("token") and not _cookie(headers):
                set_cookie = (f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict")
        if method == "POST":
            problem = self._action_problem(headers, scope)
            if problem is not None:
                await self._refuse(scope, send, problem[0], problem[1])
                return
        if set_cookie is None:
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []),
                                      (b"set-cookie", set_cookie.encode())]
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _action_problem(self, headers: dict[str, str], scope: Scope) -> tuple[int, str] | None:
        given = headers.get("x-specs-token")
        if given is None:
            return 401, "an action needs the X-Specs-Token header (the page sends it)"
        if not _same(given, self.config.action_token):
            return 403, "wrong action token"
        origin = headers.get("origin")
        if origin is not None:
            parts = urlsplit(origin)
            if origin == "null" or parts.netloc.lower() != headers.get("host", "").lower():
                return 403, f"a cross-origin request ({origin}) may not act on runs"
        elif headers.get("sec-fetch-site") not in (None, "same-origin", "none"):
            return 403, "a cross-site request may not act on runs"
        return None

    async def _refuse(self, scope: Scope, send: Send, status: int, message: str) -> None:
        path = scope.get("path", "")
        accept = ""
        for key, value in scope.get("headers", []):
            if key.lower() == b"accept":
                accept = value.decode("latin-1")
        if scope["method"] == "GET" and "text/html" in accept and not path.endswith(".json"):
            body = (f"<!doctype html><meta charset=utf-8><title>{status}</title>"
                    f"<p>{_html(message)}</p>").encode()
            kind = b"text/html; charset=utf-8"
        else:
            body = orjson.dumps(error_body(status, message))
            kind = b"application/json"
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", kind),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _bearer(headers: dict[str, str]) -> str | None:
    value = headers.get("authorization", "")
    return value[7:].strip() if value.lower().startswith("bearer ") else None


def _cookie(headers: dict[str, str]) -> str | None:
    raw = headers.get("cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # a malformed Cookie header is no token
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None else None
