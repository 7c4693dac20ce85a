"""Server-sent events: the frames, and errors as the HTTP edge reports them.

``/v1/answer`` streams the desk's typed events, each as ``event: <type>`` with its JSON as
``data``, ending with ``final`` (the checked answer) or ``error``; the chat-completions route
streams OpenAI's ``data:``-only frames ending in ``data: [DONE]``.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi.responses import JSONResponse, StreamingResponse

from assistant import errors
from assistant.redact import redact
from assistant.settings import Settings
from assistant.types import Answer, Event, Final
from assistant.wire import error_json, event_json

log = logging.getLogger(__name__)
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

# newsdesk's errors at the edge: (HTTP status, OpenAI error type)
_STATUS: list[tuple[type[Exception], int, str]] = [
    (errors.UsageError, 400, "invalid_request_error"),
    (errors.InputError, 400, "invalid_request_error"),
    (errors.EmptyCollectionError, 503, "server_error"),
    (errors.StoreError, 503, "server_error"),
    (errors.ConfigError, 503, "server_error"),
    (errors.LLMError, 502, "server_error"),
]


def frame(data: Any, event: str | None = None) -> bytes:
    """One server-sent event (a JSON ``data`` line, named when ``event`` is given)."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()


def status_of(exc: BaseException) -> tuple[int, str, str, str]:
    """(status, OpenAI error type, newsdesk error class, one-line message) for ``exc``."""
    if isinstance(exc, errors.NewsdeskError):
        status, kind = 500, "server_error"
        for cls, code, name in _STATUS:
            if isinstance(exc, cls):
                status, kind = code, name
                break
        if type(exc).__name__ == "LogError":
            missing = str(exc).startswith("no answer")
            status, kind = (404, "invalid_request_error") if missing else (503, "server_error")
        return status, kind, type(exc).__name__, " ".join(str(exc).split())
    reference = uuid.uuid4().hex[:8]
    log.error("request failed (reference %s)", reference, exc_info=exc)
    return 500, "server_error", "", f"internal error (reference {reference})"


def error_response(exc: BaseException, settings: Settings) -> JSONResponse:
    status, kind, code, message = status_of(exc)
    return JSONResponse(error_json(redact(message, settings), kind, code or None), status)


Recorder = Callable[[Answer], Awaitable[int | None]]


async def answer_stream(
    first: Event,
    events: AsyncIterator[Event],
    record: Recorder,
    settings: Settings,
) -> AsyncIterator[bytes]:
    """The desk's events as SSE frames; the final one carries the answer's log id. A failure
    after the first event is an ``error`` event (the status line is already sent)."""
    try:
        event: Event | None = first
        while event is not None:
            log_id = await record(event.answer) if isinstance(event, Final) else None
            yield frame(event_json(event, log_id), event.type)
            event = await anext(events, None)
    except Exception as exc:
        status, kind, code, message = status_of(exc)
        payload = {**error_json(redact(message, settings), kind, code or None)["error"],
                   "status": status}  # fmt: skip
        yield frame(payload, "error")
    finally:
        await _close(events)


async def _close(events: AsyncIterator[Event]) -> None:
    close = getattr(events, "aclose", None)
    if close is not None:
        await close()


async def start(
    events: AsyncIterator[Event], body: Callable[[Event], AsyncIterator[bytes]]
) -> StreamingResponse:
    """The first event before the response starts, so a failure to answer at all (nothing
    ingested, an unknown source, the store down) is an HTTP status, not a broken stream."""
    try:
        first = await anext(events)
    except BaseException:
        await _close(events)
        raise
    return StreamingResponse(body(first), media_type="text/event-stream", headers=HEADERS)
