"""What every request passes before the application sees it: the token, when the server has
one, else the host name it was sent to; a bound on the body's size, and on the time the body
takes to arrive.

A server on this machine's loopback address without a token answers only requests addressed
to a loopback name (localhost, 127.0.0.1, [::1]): a web page on a domain that its owner points
at 127.0.0.1 (DNS rebinding) sends its requests with that domain as the host, and is refused,
so it cannot read the collection.

A token may come as ``Authorization: Bearer TOKEN``, as ``?token=TOKEN`` (so a link opens the
page), or in the cookie the server sets when a request carried it right (so the page's own
requests, scripts and styles carry it without the token in every address).
"""

from __future__ import annotations

import asyncio
import hmac
import json
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

COOKIE = "semsearch_token"
#: host names a tokenless loopback server answers to
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
#: methods that send a body (and may write): only as JSON, never from another site's page (a
#: form or a script of another origin cannot send JSON here without asking first)
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
#: seconds a request's body may take to arrive (a client that sends less than it declared
#: would otherwise hold its connection open for as long as it likes)
BODY_SECONDS = 10.0


class Guard:
    """ASGI middleware: 401 without the token, 403 for a host name a tokenless server does not
    answer to, 413 for a body over ``max_body`` bytes, 408 for one that does not arrive in
    BODY_SECONDS; answered as JSON with a message, like every other error. ``any_host``: a
    server deliberately open to other machines without a token answers every host name."""

    def __init__(self, app, token: str | None, max_body: int, any_host: bool = False):
        self.app = app
        self.token = token
        self.max_body = max_body
        self.any_host = any_host

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {name.decode("latin-1").lower(): value.decode("latin-1")
                   for name, value in scope.get("headers", [])}
        from_address = False
        if self.token is None and not self.any_host and \
                host_name(headers.get("host", "")) not in LOOPBACK_NAMES:
            return await _answer(send, 403, "this server answers only requests addressed to "
                                            "localhost, 127.0.0.1 or [::1]; serve with --token "
                                            "to be reached by other names")
        if self.token is not None:
            carried, from_address = self._carried(scope, headers)
            if carried is None or not hmac.compare_digest(carried.encode(), self.token.encode()):
                return await _answer(send, 401, "this server needs its token: "
                                                "Authorization: Bearer TOKEN, or ?token=TOKEN")
        if scope.get("method") in WRITES:
            if headers.get("content-type", "").split(";")[0].strip().lower() != \
                    "application/json":
                return await _answer(send, 415, "send the request body as JSON "
                                                "(Content-Type: application/json)")
            origin = headers.get("origin")
            if origin and host_name(origin.split("//", 1)[-1].split("/", 1)[0]) != \
                    host_name(headers.get("host", "")):
                return await _answer(send, 403, "a page of another site cannot write here")
        declared = headers.get("content-length", "0")
        if not declared.isdigit() or int(declared) > self.max_body:
            return await _answer(send, 413, f"the request body is over {self.max_body:,} bytes")
        try:
            body, whole = await asyncio.wait_for(_read_body(receive, self.max_body),
                                                 BODY_SECONDS)
        except asyncio.TimeoutError:
            return await _answer(send, 408, f"the request body did not arrive within "
                                            f"{BODY_SECONDS:.0f} s")
        if not whole:
            return await _answer(send, 413, f"the request body is over {self.max_body:,} bytes")
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def remembering(message):
            if from_address and message["type"] == "http.response.start":
                cookie = (f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict")
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"set-cookie", cookie.encode("latin-1"))]}
            await send(message)

        await self.app(scope, replay, remembering)

    def _carried(self, scope, headers: dict[str, str]) -> tuple[str | None, bool]:
        """The token the request carries, and whether it came in the address."""
        authorization = headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            return authorization[7:].strip(), False
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if query.get("token"):
            return query["token"][0], True
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # a malformed cookie header carries no token
            return None, False
        return (cookie[COOKIE].value if COOKIE in cookie else None), False


def host_name(header: str) -> str:
    """The name in a Host header, without its port: "[::1]:8000" is "::1"."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


async def _read_body(receive, limit: int) -> tuple[bytes, bool]:
    """The whole body, or (what was read, False) once it passes ``limit`` bytes."""
    parts, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(parts), True
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", False
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts), True


async def _answer(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
