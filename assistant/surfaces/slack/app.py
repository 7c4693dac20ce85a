"""The Slack app: credentials, the Web API client, and the Bolt listeners.

Triggers: ``@newsdesk question`` in a channel (answered in a thread under it), direct
messages, ``/newsdesk question`` (ephemeral, with "Share in channel"), untagged replies in a
thread the bot has answered (they continue its conversation), and the assistant side panel
(Bolt's :class:`Assistant`: suggested prompts, a status while working). Listeners only
acknowledge and hand the question to the :class:`~.answering.Responder`'s worker pool, so
Slack gets its answer well within 3 seconds.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_bolt import App, Assistant, BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

from assistant.answerlog import AnswerLog, LogError
from assistant.desk import Desk
from assistant.errors import ConfigError
from assistant.settings import Settings
from assistant.surfaces.slack import blocks as bk
from assistant.surfaces.slack.answering import Job, Responder
from assistant.surfaces.slack.threads import Seen, ThreadMemory

if TYPE_CHECKING:
    from assistant.remote import RemoteDesk, RemoteLog

log = logging.getLogger(__name__)
SUGGESTED = [
    "What are the latest developments?",
    "Which outlets covered this story, and how did they differ?",
    "Summarise what was reported about the talks, with sources.",
]
_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
_LINK = re.compile(r"<(?:[#@!][^|>]*\|)?([^>|]+)(?:\|([^>]*))?>")


def check_credentials(settings: Settings, *, socket: bool) -> None:
    """One clear line when a token or the signing secret is missing or malformed."""
    bot = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""
    if not bot:
        raise ConfigError("SLACK_BOT_TOKEN is not set (the bot token, xoxb-…, from your app's "
                          "OAuth & Permissions page)")  # fmt: skip
    if not re.fullmatch(r"xoxb-[A-Za-z0-9-]+", bot):
        raise ConfigError("SLACK_BOT_TOKEN is malformed: a bot token starts with xoxb-")
    if socket:
        app = settings.slack_app_token.get_secret_value() if settings.slack_app_token else ""
        if not re.fullmatch(r"xapp-[A-Za-z0-9-]+", app):
            raise ConfigError("SLACK_APP_TOKEN is malformed: an app-level token starts with xapp-")
        return
    secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    )
    if not secret:
        raise ConfigError("SLACK_SIGNING_SECRET is not set (Basic Information > App "
                          "Credentials), or set SLACK_APP_TOKEN for Socket Mode")  # fmt: skip
    if not re.fullmatch(r"[0-9a-fA-F]{32}", secret):
        raise ConfigError("SLACK_SIGNING_SECRET is malformed: it is 32 hexadecimal characters")


def web_client(settings: Settings) -> WebClient:
    """The Web API client: NEWSDESK_SLACK_API_URL, retries on 429 (Retry-After) and resets."""
    base = settings.slack_api_url.rstrip("/") + "/"
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return WebClient(
        token=token, base_url=base, timeout=30,
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=2),
                        RateLimitErrorRetryHandler(max_retry_count=3)],
    )  # fmt: skip


def question_text(text: str) -> str:
    """A Slack message as a question: mentions out, links and channels as their labels."""
    text = _MENTION.sub(" ", text)
    text = _LINK.sub(lambda m: m.group(2) or m.group(1), text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return " ".join(text.split())


def _quiet_token_warning(record: logging.LogRecord) -> bool:
    return "`token` will be unused" not in record.getMessage()


@dataclass
class SlackBot:
    """Everything the bot holds for its lifetime; :func:`create_bot` builds it."""

    settings: Settings
    app: App
    responder: Responder
    memory: ThreadMemory
    seen: Seen
    bot_user_id: str

    def close(self) -> None:
        self.responder.close()
        self.responder.desk.close()
        if self.responder.answer_log is not None:
            self.responder.answer_log.close()

    def allowed(self, channel: str) -> bool:
        allow = self.settings.slack_channels
        return not allow or channel in allow or channel.startswith("D")

    def enqueue(self, body: dict[str, Any], event: dict[str, Any], *, assistant: bool) -> None:
        channel, ts = event.get("channel", ""), event.get("ts", "")
        if not self.seen.first(f"message:{channel}:{ts}"):  # app_mention and message both came
            return
        question = question_text(event.get("text", ""))
        thread_ts = event.get("thread_ts") or ts
        event_id = body.get("event_id", "")
        if not question:
            self.app.client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, text="Ask me a question about the news "
                "articles, e.g. “What did the EU say about the talks?”",
            )  # fmt: skip
            return
        log.info("event %s: question in %s/%s", event_id, channel, thread_ts)
        self.responder.submit(
            Job(question=question, channel=channel, user=event.get("user", ""),
                team=body.get("team_id", "") or event.get("team", ""), thread_ts=thread_ts,
                message_ts=ts, event_id=event_id, assistant=assistant)
        )  # fmt: skip


def create_bot(
    settings: Settings, *, desk: Desk | RemoteDesk | None = None, socket: bool | None = None
) -> SlackBot:
    """The bot over ``desk`` (default: a local Desk, or the service's with
    NEWSDESK_SERVER_URL)."""
    socket = bool(settings.slack_app_token) if socket is None else socket
    check_credentials(settings, socket=socket)
    client = web_client(settings)
    try:
        auth = client.auth_test()
    except SlackApiError as exc:
        raise ConfigError(
            f"Slack refused SLACK_BOT_TOKEN ({exc.response.get('error')}); check the token"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot reach the Slack API at {client.base_url}: {exc}") from None
    bolt_log = logging.getLogger("slack_bolt")
    bolt_log.addFilter(_quiet_token_warning)  # Bolt reads SLACK_BOT_TOKEN itself; ours wins
    app = App(
        client=client,
        signing_secret=(settings.slack_signing_secret.get_secret_value()
                        if settings.slack_signing_secret else None),
        request_verification_enabled=not socket,
        ignoring_self_events_enabled=True,
        token_verification_enabled=False,  # done above, once
        logger=bolt_log,
    )  # fmt: skip
    answer_log: AnswerLog | RemoteLog | None = None
    if desk is None and settings.server_url:  # a thin client of `newsdesk serve`
        from assistant.remote import RemoteDesk, RemoteLog

        desk = RemoteDesk(settings, surface="slack")
        answer_log = RemoteLog(desk)
    else:
        try:
            answer_log = AnswerLog.open(settings)
        except LogError as exc:
            log.warning("%s; answers are not logged", exc)
    memory = ThreadMemory(answer_log)
    responder = Responder(
        desk or Desk(settings), client, answer_log, memory, workers=settings.slack_workers
    )
    bot = SlackBot(settings, app, responder, memory, Seen(), str(auth.get("user_id", "")))
    _wire(bot)
    return bot


def _wire(bot: SlackBot) -> None:
    app = bot.app

    @app.middleware
    def deduplicate(body: dict[str, Any], request: Any, next: Any) -> Any:
        """Slack retries a delivery it thinks failed (X-Slack-Retry-Num): answer once."""
        event_id = body.get("event_id")
        if event_id and not bot.seen.first(f"event:{event_id}"):
            retry = (request.headers.get("x-slack-retry-num") or ["?"])[0]
            log.info("event %s: retry %s of a delivery already handled; ignored", event_id, retry)
            return BoltResponse(status=200, body="")
        return next()

    assistant = Assistant()

    @assistant.thread_started
    def started(say: Any, set_suggested_prompts: Any) -> None:
        say("Hi! Ask me about the news articles in the archive; every answer cites its sources.")
        set_suggested_prompts(prompts=SUGGESTED, title="Try asking")

    @assistant.user_message
    def assistant_message(body: dict[str, Any], payload: dict[str, Any]) -> None:
        if not payload.get("bot_id"):
            bot.enqueue(body, payload, assistant=True)

    app.use(assistant)

    @app.event("app_mention")
    def mention(body: dict[str, Any], event: dict[str, Any], client: WebClient) -> None:
        if event.get("bot_id"):
            return
        if not bot.allowed(event.get("channel", "")):
            client.chat_postEphemeral(channel=event["channel"], user=event.get("user", ""),
                                      text="newsdesk is not enabled in this channel.")  # fmt: skip
            return
        bot.enqueue(body, event, assistant=False)

    @app.event("message")
    def message(body: dict[str, Any], event: dict[str, Any]) -> None:
        if event.get("bot_id") or event.get("subtype") not in (None, "thread_broadcast"):
            return  # other bots, edits, deletions, joins
        channel = event.get("channel", "")
        if event.get("channel_type") == "im":
            bot.enqueue(body, event, assistant=False)
            return
        if f"<@{bot.bot_user_id}>" in event.get("text", ""):
            return  # the app_mention event answers it
        thread_ts = event.get("thread_ts")
        if thread_ts and bot.allowed(channel) and bot.memory.known(channel, thread_ts):
            bot.enqueue(body, event, assistant=False)  # an untagged follow-up in our thread

    @app.command("/newsdesk")
    def command(ack: Any, command: dict[str, Any], respond: Any) -> None:
        question = question_text(command.get("text", ""))
        channel = command.get("channel_id", "")
        if not question:
            ack(text="Usage: `/newsdesk your question` (answers only you see, with a "
                "“Share in channel” button)")  # fmt: skip
            return
        if not bot.allowed(channel):
            ack(text="newsdesk is not enabled in this channel.")
            return
        ack(response_type="ephemeral", text=f"{bk.WORKING_TEXT} _{bk.escape(question)}_")
        bot.responder.submit(
            Job(question=question, channel=channel, user=command.get("user_id", ""),
                team=command.get("team_id", ""), event_id=command.get("trigger_id", ""),
                respond=respond)
        )  # fmt: skip

    @app.action(bk.SHARE_ACTION)
    def share(ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
        ack()
        channel = (body.get("channel") or {}).get("id", "")
        try:
            shared = bot.responder.share(action.get("value", ""), channel, body["user"]["id"])
        except SlackApiError as exc:
            error = exc.response.get("error")
            log.warning("sharing in %s failed: %s", channel, error)
            said = f"I can't post in this channel ({error}); invite @newsdesk first."
            respond(response_type="ephemeral", replace_original=False, text=said)
            return
        if shared:
            respond(delete_original=True)
        else:
            respond(response_type="ephemeral", replace_original=False,
                    text="That answer is no longer available to share; ask again.")  # fmt: skip

    @app.action(bk.FEEDBACK_ACTION)
    def feedback(ack: Any, body: dict[str, Any], action: dict[str, Any], client: WebClient) -> None:
        ack()
        verdict, _, answer_id = action.get("value", "").partition(":")
        user = body["user"]["id"]
        channel = (body.get("channel") or {}).get("id", "")
        if _feedback(bot, answer_id, verdict, "", user, body):
            client.chat_postEphemeral(
                channel=channel, user=user, thread_ts=_thread_of(body) or None,
                text=f"Thanks, answer #{answer_id} is marked {verdict}.",
                blocks=bk.note_prompt_blocks(verdict, int(answer_id)),
            )  # fmt: skip

    @app.action(bk.NOTE_ACTION)
    def note(ack: Any, body: dict[str, Any], action: dict[str, Any], client: WebClient) -> None:
        ack()
        verdict, _, answer_id = action.get("value", "").partition(":")
        private = f"{verdict}:{answer_id}:{(body.get('channel') or {}).get('id', '')}"
        client.views_open(trigger_id=body["trigger_id"],
                          view=bk.note_modal(verdict, int(answer_id), private))  # fmt: skip

    @app.view(bk.NOTE_ACTION)
    def note_saved(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        ack()
        verdict, answer_id, channel = (view.get("private_metadata", "") + "::").split(":")[:3]
        text = view["state"]["values"]["note"]["text"].get("value") or ""
        _feedback(bot, answer_id, verdict, text, body["user"]["id"], {"channel": {"id": channel}})


def _thread_of(body: dict[str, Any]) -> str:
    container = body.get("container") or {}
    message = body.get("message") or {}
    return str(container.get("thread_ts") or message.get("thread_ts") or "")


def _feedback(
    bot: SlackBot, answer_id: str, verdict: str, note: str, user: str, body: dict[str, Any]
) -> bool:
    """Record a click (or a note) in the answer log: who is the Slack user, the note says
    where (channel and thread) when it came from a message."""
    answer_log = bot.responder.answer_log
    if answer_log is None or not answer_id.isdigit() or verdict not in ("good", "bad"):
        return False
    channel = (body.get("channel") or {}).get("id", "")
    thread = _thread_of(body)
    where = f"[slack {channel}{' thread ' + thread if thread else ''}]" if channel else ""
    try:
        answer_log.feedback(int(answer_id), verdict, " ".join(x for x in (note, where) if x), user)
    except LogError as exc:
        log.warning("feedback on answer %s not logged: %s", answer_id, exc)
        return False
    return True
