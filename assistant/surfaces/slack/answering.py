"""Answering one Slack question: show work started, stream or post the answer, log it.

A :class:`Responder` runs each :class:`Job` on a bounded worker pool. Questions in one thread
go in order under the thread's lock (the second sees the first as history); different threads
run in parallel on the shared, thread-safe :class:`~assistant.desk.Desk`.

In LLM mode the text streams with slack_sdk's chat streaming helper (``chat.startStream`` /
``appendStream`` / ``stopStream``); where the workspace refuses those methods, one message is
edited with ``chat.update`` at most every ``slack_update_interval_s``. Either way the message
ends as the final checked answer, never the provisional text. Any failure becomes a short
apology in the thread, logged with the event id.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from assistant.answerlog import AnswerLog, LogError
from assistant.desk import Desk
from assistant.errors import ConfigError, EmptyCollectionError, LLMError, NewsdeskError
from assistant.redact import redact
from assistant.surfaces.slack import blocks as bk
from assistant.surfaces.slack.threads import AnswerCache, ThreadMemory
from assistant.types import Answer, Event, Final, TextDelta

if TYPE_CHECKING:
    from assistant.remote import RemoteDesk, RemoteLog

log = logging.getLogger(__name__)
WORKING_REACTION = "hourglass_flowing_sand"


@dataclass(frozen=True)
class Job:
    """One question to answer. ``thread_ts`` is where the answer goes (None: slash command)."""

    question: str
    channel: str
    user: str
    team: str = ""
    thread_ts: str | None = None
    message_ts: str | None = None  # the question's own message (for the working reaction)
    event_id: str = ""
    assistant: bool = False  # an assistant side-panel thread: status instead of a reaction
    respond: Callable[..., Any] | None = None  # slash commands answer through response_url


class Responder:
    def __init__(
        self,
        desk: Desk | RemoteDesk,  # a RemoteDesk with NEWSDESK_SERVER_URL
        client: WebClient,
        answer_log: AnswerLog | RemoteLog | None,
        memory: ThreadMemory,
        *,
        workers: int = 4,
    ) -> None:
        self.desk = desk
        self.client = client
        self.answer_log = answer_log
        self.memory = memory
        self.settings = desk.settings
        self.shared = AnswerCache()
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="newsdesk-slack")
        self.streaming = True  # off for good once the workspace refuses chat.startStream

    def submit(self, job: Job) -> Future[None]:
        return self.pool.submit(self._guarded, job)

    def _guarded(self, job: Job) -> None:
        try:
            self.run(job)
        except Exception:  # even the apology failed (Slack unreachable): at least log it
            log.exception("event %s: question in %s not answered", job.event_id, job.channel)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    # -- one job -----------------------------------------------------------------------------
    def run(self, job: Job) -> None:
        if job.thread_ts is None:
            self._command(job)
            return
        thread = self.memory.get(job.channel, job.thread_ts, create=True)
        assert thread is not None
        with thread.lock:
            self._working(job, True)
            ts: str | None = None
            try:
                events = self.desk.stream(
                    job.question, history=thread.conversation, filters=self._filters(job)
                )
                answer, ts = self._deliver(job, events)
                answer_id = self._record(answer, thread.conversation.id, job)
                blocks = bk.answer_blocks(answer, answer_id=answer_id)
                self._put(job, ts, blocks, bk.fallback_text(answer))
                thread.conversation.add(answer)
            except Exception as exc:
                self._apologise(job, ts, exc)
            finally:
                self._working(job, False)

    def _command(self, job: Job) -> None:
        """``/newsdesk question``: an ephemeral answer with a "Share in channel" button."""
        assert job.respond is not None
        try:
            answer = self.desk.answer(job.question, filters=self._filters(job))
            answer_id = self._record(answer, None, job)
            key = uuid.uuid4().hex
            self.shared.put(key, answer, answer_id)
            blocks = bk.answer_blocks(answer, answer_id=answer_id, share_key=key)
            job.respond(response_type="ephemeral", text=bk.fallback_text(answer), blocks=blocks)
        except Exception as exc:
            reason = redact(str(exc), self.settings)
            log.error("event %s: /newsdesk failed: %s", job.event_id, reason, exc_info=True)
            job.respond(response_type="ephemeral", text=_apology(exc, job.event_id))

    def share(self, key: str, channel: str, user: str) -> bool:
        """Post an ephemeral answer in the channel for everyone; False when it is forgotten."""
        found = self.shared.get(key)
        if found is None:
            return False
        answer, answer_id = found
        blocks = bk.answer_blocks(answer, answer_id=answer_id)
        asked = f"<@{user}> asked: _{bk.escape(answer.question)}_"
        shared_by = {"type": "context", "elements": [{"type": "mrkdwn", "text": asked}]}
        self.client.chat_postMessage(
            channel=channel, text=bk.fallback_text(answer), blocks=[shared_by, *blocks][:50]
        )  # SlackApiError (e.g. not_in_channel) goes to the caller
        return True

    # -- pieces ------------------------------------------------------------------------------
    def _filters(self, job: Job) -> Any:
        return self.settings.slack_channel_filters.get(job.channel)

    def _record(self, answer: Answer, conversation_id: str | None, job: Job) -> int | None:
        if self.answer_log is None:
            return None
        try:
            return self.answer_log.record(
                answer, surface="slack", conversation_id=conversation_id,
                filters=self._filters(job),
            )  # fmt: skip
        except LogError as exc:
            log.warning("event %s: answer not logged: %s", job.event_id, exc)
            return None

    def _working(self, job: Job, on: bool) -> None:
        """A status in an assistant thread, else a reaction on the question; best effort."""
        if job.assistant:
            try:
                self.client.assistant_threads_setStatus(
                    channel_id=job.channel, thread_ts=job.thread_ts or "",
                    status=bk.WORKING_TEXT if on else "",
                )  # fmt: skip
                return
            except SlackApiError as exc:  # a DM thread that is not an assistant thread
                log.debug("event %s: status: %s", job.event_id, exc.response.get("error"))
        if job.message_ts:
            method = self.client.reactions_add if on else self.client.reactions_remove
            try:
                method(channel=job.channel, timestamp=job.message_ts, name=WORKING_REACTION)
            except SlackApiError as exc:
                log.debug("event %s: reaction: %s", job.event_id, exc.response.get("error"))

    def _put(self, job: Job, ts: str | None, blocks: list[Any], text: str) -> str:
        """Edit the message ``ts`` into its final form, or post it in the thread."""
        if ts is not None:
            self.client.chat_update(channel=job.channel, ts=ts, text=text, blocks=blocks)
            return ts
        response = self.client.chat_postMessage(
            channel=job.channel, thread_ts=job.thread_ts, text=text, blocks=blocks
        )
        return str(response["ts"])

    def _deliver(self, job: Job, events: Iterable[Event]) -> tuple[Answer, str | None]:
        """Consume the stream: the final answer, and the message already showing its text
        (``None`` when nothing was shown yet: extractive mode, or no text was streamed)."""
        stream: Any = None
        ts: str | None = None
        text = ""
        last_update = 0.0
        answer: Answer | None = None
        for event in events:
            if isinstance(event, Final):
                answer = event.answer
            elif isinstance(event, TextDelta) and event.text and self._streams_text():
                text += event.text
                if self.streaming and ts is None:
                    if stream is None:
                        stream = self.client.chat_stream(
                            channel=job.channel, thread_ts=job.thread_ts or "",
                            recipient_team_id=job.team or None,
                            recipient_user_id=job.user or None, buffer_size=256,
                        )  # fmt: skip
                    try:
                        stream.append(markdown_text=event.text)
                        continue
                    except SlackApiError as exc:
                        self._refused(job, exc)
                        ts, stream = stream.ts, None
                now = time.monotonic()
                if ts is None:
                    ts = self._put(job, None, bk.provisional_blocks(text), text[:3000])
                    last_update = now
                elif now - last_update >= self.settings.slack_update_interval_s:
                    self._put(job, ts, bk.provisional_blocks(text), text[:3000])
                    last_update = now
        if answer is None:
            raise RuntimeError("the answer stream ended without a final answer")
        if stream is not None:
            try:
                stream.stop()
            except SlackApiError as exc:
                log.warning(
                    "event %s: chat.stopStream: %s", job.event_id, exc.response.get("error")
                )
            ts = stream.ts
        return answer, ts

    def _streams_text(self) -> bool:
        """Whether answers come from a model (the service's, for a thin client)."""
        if not hasattr(self.desk, "llm_configured"):
            return self.settings.use_llm
        try:
            return bool(self.desk.llm_configured) and not self.settings.extractive
        except NewsdeskError:
            return False

    def _refused(self, job: Job, exc: SlackApiError) -> None:
        error = exc.response.get("error")
        log.info("event %s: chat streaming refused (%s); editing one message instead",
                 job.event_id, error)  # fmt: skip
        if error in ("unknown_method", "not_allowed_token_type", "missing_scope",
                     "feature_not_enabled", "method_deprecated", "not_allowed"):  # fmt: skip
            self.streaming = False

    def _apologise(self, job: Job, ts: str | None, exc: BaseException) -> None:
        log.error("event %s: answering in %s/%s failed: %s", job.event_id, job.channel,
                  job.thread_ts, redact(str(exc), self.settings), exc_info=True)  # fmt: skip
        text = _apology(exc, job.event_id)
        try:
            self._put(job, ts, bk.apology_blocks(text), text)
        except Exception:
            log.exception("event %s: could not post the apology either", job.event_id)


def _apology(exc: BaseException, event_id: str) -> str:
    ref = f" (reference {event_id})" if event_id else ""
    if isinstance(exc, LLMError):
        return f"Sorry, the language model could not answer just now; please ask again{ref}."
    if isinstance(exc, EmptyCollectionError | ConfigError):  # fit to show as is, and short
        return f"Sorry, I can't answer: {redact(str(exc))[:300]}"
    return f"Sorry, something went wrong while answering; please ask again{ref}."
