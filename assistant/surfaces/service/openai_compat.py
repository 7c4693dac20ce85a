"""OpenAI-compatible routes: ``GET /v1/models`` and ``POST /v1/chat/completions``.

Any OpenAI client (``base_url`` = the service's ``/v1``, ``api_key`` = its token) talks to
newsdesk as to the model ``newsdesk``: the last user message is the question, the earlier
user/assistant messages its history. The reply is the checked answer followed by its numbered
sources, as the terminal shows them in plain text. With ``stream: true`` it comes as
``chat.completion.chunk`` frames ending in ``data: [DONE]``. The stream carries the checked
answer only: an OpenAI stream cannot take back text the model wrote and the check removed.
Extra request fields ``filters`` ({since, until, source, as_of}), ``k`` and ``extractive``
are honoured (``extra_body`` in the Python client).
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console

from assistant.errors import UsageError
from assistant.redact import redact
from assistant.surfaces.render import render_sources
from assistant.surfaces.service import sse
from assistant.types import Answer, Event, Filters, Final, Turn
from assistant.wire import LOG_ID, MAX_QUESTION_CHARS, error_json

if TYPE_CHECKING:
    from assistant.surfaces.service.app import Service

MODEL = "newsdesk"
CREATED = 1_700_000_000  # the model's "created" time (fixed: it names the service, not a build)


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: the text ones, joined
            parts = [p for p in self.content if p.get("type") == "text"]
            return "\n".join(str(p.get("text", "")) for p in parts)
        return self.content or ""


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[Message] = Field(min_length=1, max_length=200)
    stream: bool = False
    filters: Filters | None = None
    k: int | None = Field(default=None, ge=1, le=50)
    extractive: bool | None = None
    stream_options: dict[str, Any] | None = None


def reply_text(answer: Answer) -> str:
    """The notice, the checked answer and its numbered sources, in plain text."""
    console = Console(file=io.StringIO(), width=10_000, no_color=True, color_system=None,
                      force_terminal=False, highlight=False, soft_wrap=True)  # fmt: skip
    if answer.citations:
        render_sources(console, answer.citations)
    assert isinstance(console.file, io.StringIO)
    sources = "\n".join(line.rstrip() for line in console.file.getvalue().splitlines())
    parts = [answer.notice, answer.text, sources.strip()]
    return "\n\n".join(p for p in parts if p)


def _history(messages: list[Message]) -> list[Turn]:
    """Earlier user messages paired with the assistant replies that followed them."""
    turns: list[Turn] = []
    pending: str | None = None
    for m in messages:
        if m.role == "user":
            pending = m.text
        elif m.role == "assistant" and pending is not None:
            text = m.text.split("\n\nSources\n")[0]
            turns.append(Turn(pending, Answer(question=pending, text=text, mode="extractive",
                                              abstained=False)))  # fmt: skip
            pending = None
    return turns


def _completion(cid: str, answer: Answer, text: str) -> dict[str, Any]:
    usage = answer.usage
    return {
        "id": cid, "object": "chat.completion", "created": int(time.time()), "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text,
                                             "refusal": None},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": usage.prompt_tokens or 0,
                  "completion_tokens": usage.completion_tokens or 0,
                  "total_tokens": usage.total_tokens or 0},
    }  # fmt: skip


def _chunk(cid: str, created: int, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "logprobs": None,
                         "finish_reason": finish}]}  # fmt: skip


def _pieces(text: str) -> list[str]:
    """The reply in line-sized pieces (each keeps its newline)."""
    return text.splitlines(keepends=True) or [""]


def add_routes(app: FastAPI, service: Service) -> None:
    desk = service.desk

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        card = {"id": MODEL, "object": "model", "created": CREATED, "owned_by": "newsdesk"}
        return {"object": "list", "data": [card]}

    @app.post("/v1/chat/completions", response_model=None)
    async def completions(body: ChatRequest, request: Request) -> Response:
        if body.model != MODEL:
            message = f"The model `{body.model}` does not exist; this service serves `{MODEL}`."
            err = error_json(message, "invalid_request_error", "model_not_found")
            err["error"]["param"] = "model"
            return JSONResponse(err, 404)
        asked = [i for i, m in enumerate(body.messages) if m.role == "user"]
        if not asked or not body.messages[asked[-1]].text.strip():
            raise UsageError("no user message with a question")
        question = body.messages[asked[-1]].text.strip()
        if len(question) > MAX_QUESTION_CHARS:
            raise UsageError(f"the question is longer than {MAX_QUESTION_CHARS} characters")
        history = _history(body.messages[: asked[-1]])
        options = {"history": history, "filters": body.filters, "k": body.k,
                   "extractive": body.extractive}  # fmt: skip
        cid = f"chatcmpl-{uuid.uuid4().hex}"

        async def record(answer: Answer) -> int | None:
            log_id = await service.record(answer, "api", None, body.filters)
            request.state.answer_id = log_id
            return log_id

        if not body.stream:
            answer = await desk.aanswer(question, **options)
            log_id = await record(answer)
            headers = {"X-Newsdesk-Log-Id": str(log_id)} if log_id else {}
            payload = _completion(cid, answer, reply_text(answer)) | {LOG_ID: log_id}
            return JSONResponse(payload, headers=headers)
        events = desk.astream(question, **options)

        async def frames(first: Event) -> AsyncIterator[bytes]:
            created = int(time.time())
            yield sse.frame(_chunk(cid, created, {"role": "assistant", "content": ""}, None))
            try:
                event: Event | None = first
                while event is not None and not isinstance(event, Final):
                    event = await anext(events, None)
                if event is None:
                    raise RuntimeError("the answer ended without a final answer")
                await record(event.answer)
                for piece in _pieces(reply_text(event.answer)):
                    yield sse.frame(_chunk(cid, created, {"content": piece}, None))
                yield sse.frame(_chunk(cid, created, {}, "stop"))
                if (body.stream_options or {}).get("include_usage"):
                    usage = _completion(cid, event.answer, "")["usage"]
                    last = _chunk(cid, created, {}, None) | {"choices": [], "usage": usage}
                    yield sse.frame(last)
            except Exception as exc:  # after the status line: OpenAI's in-stream error
                _, kind, code, message = sse.status_of(exc)
                yield sse.frame(error_json(redact(message, service.settings), kind, code or None))
            finally:
                await events.aclose()  # type: ignore[attr-defined]
            yield sse.frame("[DONE]")

        return await sse.start(events, frames)
