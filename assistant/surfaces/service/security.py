"""The service's edge, one ASGI middleware in front of every route: bearer-token auth on /v1,
the request size limit, the per-client concurrency limit, and one structured access-log line
per request.

A client is its remote address, with its token (hashed, never logged as is) when it sends one:
a team sharing one token is limited per machine, not as a whole. The
access line holds method, path (never the query string: a search query is a question too),
status, milliseconds, client and the answer's log id; question text never reaches it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from assistant.settings import Settings
from assistant.wire import error_json

log = logging.getLogger(__name__)
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
RETRY_AFTER_S = 1


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""


def bearer(scope: Scope) -> str:
    """The token of an ``Authorization: Bearer …`` header ("" when there is none)."""
    scheme, _, token = _header(scope, b"authorization").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


async def reply(
    send: Send,
    status: int,
    message: str,
    kind: str,
    code: str | None = None,
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    """An error response in OpenAI's shape (``{"error": {"message", "type", "code"}}``)."""
    body = json.dumps(error_json(message, kind, code)).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()), *headers],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})


class Guard:
    """Auth, size and concurrency limits, access log (pure ASGI: streaming stays streaming)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        secret = settings.api_token
        self.token = secret.get_secret_value() if secret is not None else None
        self.max_bytes = settings.serve_max_request_kb * 1024
        self.limit = settings.serve_client_concurrency
        self.active: dict[str, int] = {}  # only touched on the event loop's thread

    def client(self, scope: Scope) -> str:
        token = bearer(scope)
        host = (scope.get("client") or ("unknown", 0))[0]
        if token:
            return f"token:{hashlib.sha256(token.encode()).hexdigest()[:10]}@{host}"
        return f"addr:{host}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state: dict[str, Any] = scope.setdefault("state", {})
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        client = self.client(scope)
        try:
            await self._guarded(scope, receive, sending, client)
        finally:
            line = {
                "method": scope.get("method"), "path": scope.get("path"), "status": status,
                "ms": round((time.perf_counter() - started) * 1e3, 1), "client": client,
                "answer_id": state.get("answer_id"),
            }  # fmt: skip
            log.info("%s", json.dumps(line))

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, client: str) -> None:
        api = scope.get("path", "").startswith("/v1/")
        if (
            api
            and self.token is not None
            and not hmac.compare_digest(bearer(scope).encode(), self.token.encode())
        ):
            await reply(send, 401, "a valid 'Authorization: Bearer <token>' header is required",
                        "authentication_error", "invalid_api_key",
                        ((b"www-authenticate", b"Bearer"),))  # fmt: skip
            return
        declared = _header(scope, b"content-length")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(send)
            return
        if scope.get("method") in ("POST", "PUT", "PATCH"):
            body = await self._body(receive)
            if body is None:
                await self._too_large(send)
                return
            receive = _replay(body, receive)
        if not api:
            await self.app(scope, receive, send)
            return
        if self.active.get(client, 0) >= self.limit:
            await reply(send, 429, f"too many requests at once from this client (at most "
                        f"{self.limit}); retry in a moment", "rate_limit_error",
                        "rate_limit_exceeded",
                        ((b"retry-after", str(RETRY_AFTER_S).encode()),))  # fmt: skip
            return
        self.active[client] = self.active.get(client, 0) + 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active[client] -= 1
            if not self.active[client]:
                del self.active[client]

    async def _body(self, receive: Receive) -> bytes | None:
        """The whole request body, or None once it passes the limit."""
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = bytes(message.get("body", b""))
            size += len(chunk)
            if size > self.max_bytes:
                return None
            parts.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(parts)

    async def _too_large(self, send: Send) -> None:
        await reply(send, 413, f"the request is larger than {self.max_bytes // 1024} KB "
                    "(NEWSDESK_SERVE_MAX_REQUEST_KB)", "invalid_request_error",
                    "request_too_large")  # fmt: skip


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands over the buffered body, then waits on the real one (for the
    client's disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
