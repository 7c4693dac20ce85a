"""``RemoteDesk``: the :class:`~assistant.desk.Desk` of a ``newsdesk serve`` service, over HTTP.

A thin client has the methods the surfaces use (``answer``, ``stream``, ``search``, ``stats``,
``sources``, ``passage_context``) and returns the same typed objects, parsed from the
service's JSON (:mod:`assistant.wire`), so ``ask``, ``chat`` and the Slack bot show the same
output as over a local store. The service logs the answers; :class:`RemoteLog` stands in for
the answer log on the client (the log id of an answer it received, feedback). Every failure is
one line: :class:`~assistant.errors.ServiceError` when the service cannot be reached or
refuses, else the error the service reported (a usage error stays a usage error).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

import httpx

from assistant import errors
from assistant.answerlog import LogError
from assistant.errors import ConfigError, NewsdeskError, ServiceError
from assistant.settings import Settings, load_settings
from assistant.types import (
    Answer,
    Conversation,
    Event,
    Filters,
    Passage,
    PassageContext,
    SourceInfo,
    Stats,
    Turn,
)
from assistant.wire import event_from_json, history_json, passages_from_json

_KNOWN = {"LogError": LogError}


def _error(status: int, body: bytes, url: str) -> NewsdeskError:
    """The one-line error for a refused request (OpenAI's error shape, newsdesk's class name
    in ``code``)."""
    try:
        err = json.loads(body)["error"]
        message, code = str(err["message"]), str(err.get("code") or "")
    except (ValueError, KeyError, TypeError):
        text = " ".join(body.decode("utf-8", "replace").split())[:200]
        return ServiceError(f"the newsdesk service at {url} answered HTTP {status}: {text}")
    cls = _KNOWN.get(code) or getattr(errors, code, None)
    if isinstance(cls, type) and issubclass(cls, NewsdeskError):
        return cls(message)
    if status == 401:
        return ServiceError(f"the newsdesk service at {url} refused the request: {message} "
                            "(set NEWSDESK_API_TOKEN to the service's token)")  # fmt: skip
    return ServiceError(f"the newsdesk service at {url}: {message} (HTTP {status})")


def _sse(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(event name, data) of each server-sent event."""
    name, data = "message", []
    for line in lines:
        if not line:
            if data:
                yield name, "\n".join(data)
            name, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
    if data:
        yield name, "\n".join(data)


class RemoteDesk:
    """Thread-safe, like :class:`~assistant.desk.Desk`; one per process and service."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        url: str | None = None,
        token: str | None = None,
        surface: str = "api",
    ) -> None:
        self.settings = settings or load_settings()
        url = url or self.settings.server_url
        if not url:
            raise ConfigError("no newsdesk service: give --server URL or NEWSDESK_SERVER_URL")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"the service URL must start with http:// or https://, not {url!r}")
        self.url = url.rstrip("/")
        secret = self.settings.api_token
        token = token or (secret.get_secret_value() if secret is not None else None)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        read = self.settings.answer_deadline_s + 120  # an LLM answer with its retries
        self._http = httpx.Client(
            base_url=self.url, headers=headers,
            timeout=httpx.Timeout(read, connect=5.0), limits=httpx.Limits(max_connections=64),
        )  # fmt: skip
        self.surface = surface
        self._log_ids: OrderedDict[int, tuple[Answer, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._stats: Stats | None = None

    # -- life cycle --------------------------------------------------------------------------
    def __enter__(self) -> RemoteDesk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- HTTP --------------------------------------------------------------------------------
    def _unreachable(self, exc: httpx.HTTPError) -> ServiceError:
        if isinstance(exc, httpx.TimeoutException):
            return ServiceError(f"the newsdesk service at {self.url} did not answer in time")
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        return ServiceError(f"cannot reach the newsdesk service at {self.url}: {reason}")

    def _call(self, method: str, path: str, **options: Any) -> Any:
        try:
            response = self._http.request(method, path, **options)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        if response.status_code >= 400:
            raise _error(response.status_code, response.content, self.url)
        try:
            return response.json()
        except ValueError:
            raise ServiceError(f"the newsdesk service at {self.url} sent no JSON") from None

    def _body(self, question: str, options: dict[str, Any]) -> dict[str, Any]:
        history = options.get("history")
        turns: Sequence[Turn] = ()
        body: dict[str, Any] = {"question": question, "surface": self.surface}
        if isinstance(history, Conversation):
            turns, body["conversation_id"] = history.turns, history.id
        elif history:
            turns = history
        filters: Filters | None = options.get("filters")
        if options.get("as_of") is not None:
            filters = (filters or Filters()).model_copy(update={"as_of": options["as_of"]})
        extractive = options.get("extractive")
        if extractive is None and self.settings.extractive:
            extractive = True
        body.update(
            history=history_json(turns),
            filters=filters.model_dump(mode="json", exclude_none=True) if filters else None,
            k=options.get("k"), extractive=extractive, timeline=options.get("timeline"),
            choices=list(options.get("choices") or ()),
        )  # fmt: skip
        return body

    def _remember(self, answer: Answer, log_id: int | None) -> None:
        if log_id is None:
            return
        with self._lock:
            self._log_ids[id(answer)] = (answer, int(log_id))
            while len(self._log_ids) > 256:
                self._log_ids.popitem(last=False)

    def log_id(self, answer: Answer) -> int | None:
        """The service's answer-log id of an answer this client received (None: not logged)."""
        with self._lock:
            found = self._log_ids.get(id(answer))
        return found[1] if found is not None and found[0] is answer else None

    # -- answers -----------------------------------------------------------------------------
    def answer(self, question: str, **options: Any) -> Answer:
        data = self._call("POST", "/v1/answer", json=self._body(question, options))
        answer = Answer.from_contract(data)
        self._remember(answer, data.get("log_id"))
        return answer

    async def aanswer(self, question: str, **options: Any) -> Answer:
        return await asyncio.to_thread(lambda: self.answer(question, **options))

    def stream(self, question: str, **options: Any) -> Iterator[Event]:
        """The service's events as they come: PassagesFound, TextDelta/Notice, Final."""
        body = {**self._body(question, options), "stream": True}
        headers = {"Accept": "text/event-stream"}
        try:
            with self._http.stream("POST", "/v1/answer", json=body, headers=headers) as response:
                if response.status_code >= 400:
                    raise _error(response.status_code, response.read(), self.url)
                for name, data in _sse(response.iter_lines()):
                    payload = json.loads(data)
                    if name == "error":
                        err = {"error": payload}
                        raise _error(int(payload.get("status", 500)), json.dumps(err).encode(),
                                     self.url)  # fmt: skip
                    event, log_id = event_from_json(payload)
                    if event.type == "final":
                        self._remember(event.answer, log_id)  # type: ignore[union-attr]
                    yield event
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        except ValueError as exc:  # a cut or garbled event
            bad = f"the newsdesk service at {self.url} sent a bad event: {exc}"
            raise ServiceError(bad) from None

    # -- search, stats, sources, feedback -----------------------------------------------------
    def search(
        self,
        query: str,
        *,
        filters: Filters | None = None,
        k: int | None = None,
        as_of: date | None = None,
        resolve_dates: bool = True,
    ) -> list[Passage]:
        params: dict[str, Any] = {"q": query}
        if k is not None:
            params["k"] = k
        if filters is not None:
            params.update(filters.model_dump(mode="json", exclude_none=True))
        if as_of is not None:
            params["as_of"] = as_of.isoformat()
        if not resolve_dates:
            params["resolve_dates"] = "false"
        return passages_from_json(self._call("GET", "/v1/search", params=params)["results"])

    def stats(self) -> Stats:
        self._stats = Stats.model_validate(self._call("GET", "/v1/stats"))
        return self._stats

    @property
    def llm_configured(self) -> bool:
        """Whether the service answers with a language model (from its stats)."""
        return (self._stats or self.stats()).llm is not None

    def sources(self) -> list[SourceInfo]:
        return [SourceInfo.model_validate(s) for s in self._call("GET", "/v1/sources")["sources"]]

    def passage_context(self, passage: Passage) -> PassageContext:
        data = self._call("GET", "/v1/context", params={"chunk_id": passage.chunk_id})
        return PassageContext(passage=passage, **{k: data.get(k, "") for k in
                                                  ("before", "after", "path")})  # fmt: skip

    def feedback(self, answer_id: int, verdict: str, note: str = "", who: str = "") -> None:
        body = {"answer_id": answer_id, "verdict": verdict, "note": note, "who": who}
        self._call("POST", "/v1/feedback", json=body)

    def health(self) -> dict[str, Any]:
        return dict(self._call("GET", "/healthz"))


class RemoteLog:
    """The answer log as a thin client sees it: the service logged every answer; feedback goes
    to it. Conversations stay on the service (not listed here)."""

    def __init__(self, desk: RemoteDesk) -> None:
        self.desk = desk

    def record(self, answer: Answer, *, surface: str, **_: Any) -> int:
        found = self.desk.log_id(answer)
        if found is None:
            raise LogError("the service did not log this answer (its answer log is off)")
        return found

    def feedback(self, answer_id: int, verdict: str, note: str = "", who: str = "") -> None:
        try:
            self.desk.feedback(answer_id, verdict, note, who)
        except LogError:
            raise
        except NewsdeskError as exc:  # the service is down or refused: the log's own error
            raise LogError(str(exc)) from None

    def list(self, limit: int = 20, conversation_id: str | None = None) -> list[Any]:
        return []

    def conversations(self, limit: int = 20, surface: str | None = None) -> list[Any]:
        raise LogError(
            "the conversations are in the service's answer log (`newsdesk log` there); "
            "/history and --continue are not available with --server"
        )

    def conversation(self, conversation_id: str) -> Conversation | None:
        return None

    def close(self) -> None:
        return None
