"""``newsdesk serve``'s routes over one shared :class:`~assistant.desk.Desk`.

``POST /v1/answer`` (JSON, or server-sent events with ``Accept: text/event-stream`` or
``"stream": true``), ``GET /v1/search``, ``/v1/stats``, ``/v1/sources``, ``/v1/context``,
``POST /v1/feedback``, ``GET /healthz`` (no auth), and the OpenAI-compatible routes of
:mod:`~assistant.surfaces.service.openai_compat`. Blocking desk work runs in worker threads;
errors leave as one-line JSON in OpenAI's shape (:mod:`~assistant.surfaces.service.sse`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from assistant.answerlog import AnswerLog, LogError
from assistant.desk import Desk
from assistant.errors import NewsdeskError, UsageError
from assistant.redact import redact
from assistant.settings import Settings
from assistant.surfaces.service import sse
from assistant.surfaces.service.security import Guard
from assistant.types import Answer, Event, Filters, Passage
from assistant.wire import (
    LOG_ID,
    VERDICT_WORDS,
    AnswerRequest,
    FeedbackRequest,
    error_json,
    history_from_json,
)

log = logging.getLogger(__name__)
SURFACES = ("ask", "chat", "slack")  # a thin client's answers are logged under its surface


@dataclass
class Service:
    """What every route shares: the one desk, the answer log, the settings."""

    settings: Settings
    desk: Desk
    answer_log: AnswerLog | None

    async def record(
        self, answer: Answer, surface: str, conversation_id: str | None, filters: Filters | None
    ) -> int | None:
        if self.answer_log is None:
            return None
        try:
            return await asyncio.to_thread(
                self.answer_log.record, answer, surface=surface,
                conversation_id=conversation_id, filters=filters,
            )  # fmt: skip
        except LogError as exc:
            log.warning("answer not logged: %s", exc)
            return None

    def options(self, body: AnswerRequest) -> dict[str, Any]:
        return {
            "history": history_from_json(body.history), "filters": body.filters, "k": body.k,
            "extractive": body.extractive, "timeline": body.timeline, "choices": body.choices,
        }  # fmt: skip


def create_app(settings: Settings, desk: Desk | None = None) -> FastAPI:
    """The app; ``desk`` (default: a new one) is closed when the app shuts down."""
    answer_log = AnswerLog.open(settings)
    service = Service(settings, desk or Desk(settings), answer_log)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # answers run in the loop's default executor (Desk.aanswer/astream): room for many
        loop = asyncio.get_running_loop()
        loop.set_default_executor(
            ThreadPoolExecutor(max_workers=64, thread_name_prefix="newsdesk-serve")
        )
        loop.run_in_executor(None, _warm, service.desk)  # while the first requests come in
        yield
        service.desk.close()
        if service.answer_log is not None:
            service.answer_log.close()

    app = FastAPI(title="newsdesk", lifespan=lifespan, redoc_url=None)
    app.state.service = service
    _errors(app, settings)
    _routes(app, service)
    from assistant.surfaces.service.openai_compat import add_routes

    add_routes(app, service)
    app.add_middleware(Guard, settings=settings)
    return app


def _warm(desk: Desk) -> None:
    """Load the embedder and the lexical index now, not on the first question."""
    try:
        desk.search("news", k=1)
    except Exception as exc:  # nothing ingested, the store down: the requests will say so
        log.debug("warm-up: %s", exc)


def _errors(app: FastAPI, settings: Settings) -> None:
    @app.exception_handler(NewsdeskError)
    async def newsdesk_error(request: Request, exc: NewsdeskError) -> JSONResponse:
        return sse.error_response(exc, settings)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query"))
        message = f"{where}: {first.get('msg', 'invalid request')}" if where else "invalid JSON"
        return JSONResponse(error_json(message, "invalid_request_error", "invalid_request"), 400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return JSONResponse(error_json(str(exc.detail), kind), exc.status_code)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        return sse.error_response(exc, settings)


def _routes(app: FastAPI, service: Service) -> None:
    desk = service.desk

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        try:
            stats = desk.stats()
        except Exception as exc:
            reason = redact(sse.status_of(exc)[3], service.settings)
            return JSONResponse({"status": "unavailable", "store": False, "error": reason}, 503)
        return JSONResponse({"status": "ok", "store": True, "collection": stats.collection,
                             "documents": stats.documents, "chunks": stats.chunks})  # fmt: skip

    @app.post("/v1/answer", response_model=None)
    async def answer(body: AnswerRequest, request: Request) -> Response:
        surface = body.surface if body.surface in SURFACES else "api"

        async def record(found: Answer) -> int | None:
            log_id = await service.record(found, surface, body.conversation_id, body.filters)
            request.state.answer_id = log_id
            return log_id

        options = service.options(body)
        if body.stream or "text/event-stream" in request.headers.get("accept", ""):
            events = desk.astream(body.question, **options)

            def frames(first: Event) -> AsyncIterator[bytes]:
                return sse.answer_stream(first, events, record, service.settings)

            return await sse.start(events, frames)
        found = await desk.aanswer(body.question, **options)
        return JSONResponse({**found.as_json(), LOG_ID: await record(found)})

    @app.get("/v1/search")
    def search(
        q: Annotated[str, Query(min_length=1, max_length=4000)],
        k: Annotated[int | None, Query(ge=1, le=50)] = None,
        since: date | None = None,
        until: date | None = None,
        source: str | None = None,
        as_of: date | None = None,
        resolve_dates: bool = True,
    ) -> dict[str, Any]:
        if not q.strip():
            raise UsageError("the query is empty")
        filters = Filters(since=since, until=until, source=source or None)
        found = desk.search(q, filters=filters, k=k, as_of=as_of, resolve_dates=resolve_dates)
        return {"query": q, "results": [p.as_json() for p in found]}

    @app.get("/v1/stats")
    def stats() -> dict[str, Any]:
        return desk.stats().model_dump()

    @app.get("/v1/sources")
    def sources() -> dict[str, Any]:
        return {"sources": [s.model_dump() for s in desk.sources()]}

    @app.get("/v1/context")
    def context(chunk_id: Annotated[str, Query(min_length=1, max_length=300)]) -> dict[str, Any]:
        probe = Passage(rank=0, chunk_id=chunk_id, doc_id="", text="", score=0.0)
        found = desk.passage_context(probe)
        return {"chunk_id": chunk_id, "before": found.before, "after": found.after,
                "path": found.path}  # fmt: skip

    @app.post("/v1/feedback")
    def feedback(body: FeedbackRequest) -> dict[str, Any]:
        if service.answer_log is None:
            raise LogError("the service's answer log is off (NEWSDESK_LOG=false)")
        verdict = VERDICT_WORDS.get(body.verdict.strip().lower())
        if verdict is None:
            raise UsageError(f"verdict must be good or bad (👍/👎), not {body.verdict!r}")
        service.answer_log.feedback(body.answer_id, verdict, body.note, body.who)
        return {"answer_id": body.answer_id, "verdict": verdict, "note": body.note}
