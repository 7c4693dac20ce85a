"""The Slack bot over the real wire: signed requests to its real HTTP endpoint, a fake Slack
Web API on loopback recording every call, answers from a private copy of the example
collection (extractive) and from the scripted OpenAI-compatible server (LLM mode)."""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from assistant.answerlog import AnswerLog
from assistant.desk import Desk
from assistant.errors import ConfigError
from assistant.settings import Settings, load_settings
from assistant.surfaces.slack import blocks as bk
from assistant.surfaces.slack.app import SlackBot, check_credentials, create_bot, question_text
from assistant.surfaces.slack.server import SlackHTTPServer
from assistant.types import Answer, Citation, Passage
from tests.conftest import _ENV_KEYS
from tests.fake_openai import FakeOpenAI
from tests.fake_slack import (
    BOT_USER,
    SECRET,
    FakeSlack,
    mention,
    message,
    new_ts,
    post,
    post_event,
    post_form,
)
from tests.prompt_reading import passages_in, prompt_of, quotable

BIDEN = "What did Biden tell Xi in their video call?"
HOW_LONG = "How long did it last?"
BIDEN_TITLE = "Biden warns Xi of consequences"
OLYMPICS = "Where did the Winter Olympics close?"


def bot_settings(home: Path, slack: FakeSlack, **extra: Any) -> Settings:
    with pytest.MonkeyPatch.context() as mp:
        for key in _ENV_KEYS:
            mp.delenv(key, raising=False)
        return load_settings(
            home=home, SLACK_BOT_TOKEN="xoxb-test-0001", SLACK_SIGNING_SECRET=SECRET,
            slack_api_url=slack.base_url, slack_workers=4, **extra,
        )  # fmt: skip


@dataclass
class Running:
    bot: SlackBot
    server: SlackHTTPServer
    home: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}/slack/events"

    def log(self) -> list[Any]:
        with AnswerLog(self.home / "logs.db") as answer_log:
            return answer_log.list(1000)[::-1]


def start(settings: Settings, embedder: Any) -> Running:
    bot = create_bot(settings, desk=Desk(settings, embedder=embedder))
    server = SlackHTTPServer(bot.app, "127.0.0.1", 0, bot.bot_user_id)
    server.start()
    return Running(bot, server, settings.home)


def stop(running: Running) -> None:
    running.server.shutdown()
    running.server.server_close()
    running.bot.close()


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture(autouse=True)
def _fresh_calls(slack: FakeSlack) -> None:
    slack.reset()


@pytest.fixture(scope="module")
def home(examples_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("slack") / "home"
    shutil.copytree(examples_home, target)
    return target


@pytest.fixture(scope="module")
def bot(home: Path, slack: FakeSlack, embedder: Any) -> Iterator[Running]:
    settings = bot_settings(home, slack, slack_channel_filters={"CWINTER": {"until": "2022-02-28"}})
    running = start(settings, embedder)
    yield running
    stop(running)


def texts(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def check_limits(blocks: list[dict[str, Any]]) -> None:
    assert 0 < len(blocks) <= 50
    for b in blocks:
        if b["type"] == "section":
            assert len(b["text"]["text"]) <= 3000
        if b["type"] == "context":
            assert all(len(e["text"]) <= 3000 for e in b["elements"]) and len(b["elements"]) <= 10


def feedback_value(blocks: list[dict[str, Any]], verdict: str) -> str:
    (actions,) = [b for b in blocks if b["type"] == "context_actions"]
    button = actions["elements"][0]
    assert button["type"] == "feedback_buttons"
    return button["positive_button" if verdict == "good" else "negative_button"]["value"]


def test_mention_follow_up_feedback_and_eval_case(
    bot: Running, slack: FakeSlack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = mention("CNEWS01", BIDEN)
    status, _, took = post_event(bot.url, event)
    assert status == 200 and took < 3

    answer = slack.answer_message("CNEWS01")
    assert answer.method == "chat.postMessage" and answer.params["thread_ts"] == event["ts"]
    blocks = answer.blocks()
    check_limits(blocks)
    shown = texts(blocks)
    assert "Extractive answer" in shown and "*Sources*" in shown
    source = next(b for b in blocks if b["type"] == "context" and BIDEN_TITLE in texts([b]))
    line = source["elements"][0]["text"]
    assert line.startswith("*[1]* <https://") and f"|{BIDEN_TITLE}" in line
    assert re.search(r" · 20\d\d-\d\d-\d\d\n> _“", line)  # outlet, date, the quoted span
    assert re.search(r"\(\d sources? in the message\)$", answer.params["text"])  # the fallback
    slack.wait(lambda: slack.of("reactions.remove"))  # the working reaction, taken back
    reactions = slack.of("reactions.add", "reactions.remove")
    assert [c.method for c in reactions] == ["reactions.add", "reactions.remove"]
    assert reactions[0].params["timestamp"] == event["ts"]

    # an untagged reply in the thread continues the conversation
    follow = message("CNEWS01", HOW_LONG, thread_ts=event["ts"])
    assert post_event(bot.url, follow)[0] == 200
    slack.wait(lambda: len(slack.of("chat.postMessage", channel="CNEWS01")) == 2)
    second = slack.of("chat.postMessage", channel="CNEWS01")[-1]
    assert second.params["thread_ts"] == event["ts"]
    assert "one hour and 50 minutes" in texts(second.blocks())
    # …while a reply in a thread the bot never answered is not for it
    post_event(bot.url, message("CNEWS01", HOW_LONG, thread_ts=new_ts()))

    entries = [e for e in bot.log() if e.conversation_id == f"slack:CNEWS01:{event['ts']}"]
    assert [e.question for e in entries] == [BIDEN, HOW_LONG]
    assert entries[1].standalone_question == f"{BIDEN} {HOW_LONG}"
    assert entries[0].surface == "slack"

    # after a restart the thread is rebuilt from the answer log
    from assistant.surfaces.slack.threads import ThreadMemory

    with AnswerLog(bot.home / "logs.db") as answer_log:
        rebuilt = ThreadMemory(answer_log).get("CNEWS01", event["ts"], create=False)
        assert rebuilt is not None
        assert [t.question for t in rebuilt.conversation.turns] == [BIDEN, HOW_LONG]
        assert ThreadMemory(answer_log).get("CNEWS01", "1.1", create=False) is None

    # 👎 on the follow-up, then a note through the modal
    value = feedback_value(second.blocks(), "bad")
    assert value == f"bad:{entries[1].id}"
    click = {
        "type": "block_actions", "user": {"id": "UHUMAN02"}, "team": {"id": "T0000001"},
        "channel": {"id": "CNEWS01"}, "trigger_id": "trig-1",
        "container": {"type": "message", "channel_id": "CNEWS01", "thread_ts": event["ts"]},
        "message": {"ts": "1.0", "thread_ts": event["ts"]},
        "actions": [{"type": "feedback_buttons", "action_id": bk.FEEDBACK_ACTION,
                     "value": value, "block_id": "b1", "action_ts": "1"}],
    }  # fmt: skip
    assert post_form(bot.url, {"payload": json.dumps(click)})[0] == 200
    thanks = slack.wait(lambda: slack.of("chat.postEphemeral"))[0]
    assert thanks.params["user"] == "UHUMAN02" and "marked bad" in thanks.params["text"]
    note_button = thanks.blocks()[0]["accessory"]
    click["actions"] = [
        {
            "type": "button",
            "action_id": note_button["action_id"],
            "value": note_button["value"],
            "block_id": "b2",
            "action_ts": "2",
        }
    ]
    assert post_form(bot.url, {"payload": json.dumps(click)})[0] == 200
    view = slack.wait(lambda: slack.of("views.open"))[0].params["view"]
    view = json.loads(view) if isinstance(view, str) else view
    submitted = {
        "type": "view_submission", "user": {"id": "UHUMAN02"}, "team": {"id": "T0000001"},
        "view": {**view, "id": "V1", "state": {"values": {"note": {"text": {
            "type": "plain_text_input", "value": "it lasted two hours"}}}}},
    }  # fmt: skip
    assert post_form(bot.url, {"payload": json.dumps(submitted)})[0] == 200
    feedback = next(e for e in bot.log() if e.id == entries[1].id).feedback
    assert [(f.verdict, f.who) for f in feedback] == [("bad", "UHUMAN02"), ("bad", "UHUMAN02")]
    assert feedback[0].note == f"[slack CNEWS01 thread {event['ts']}]"
    assert feedback[1].note.startswith("it lasted two hours [slack CNEWS01")

    # the flagged Slack answer becomes an eval case, with its thread's earlier question
    from assistant.surfaces.cli import main

    monkeypatch.setenv("NEWSDESK_HOME", str(bot.home))
    cases = tmp_path / "cases.jsonl"
    right = entries[1].answer["citations"][0]["chunk_id"]
    assert (
        main(["eval", "add-case", str(cases), "--log", str(entries[1].id), "--passage", right]) == 0
    )
    case = json.loads(cases.read_text())
    assert case["question"] == HOW_LONG and BIDEN in json.dumps(case)


def test_bad_signature_and_stale_timestamp_do_nothing(bot: Running, slack: FakeSlack) -> None:
    body = json.dumps({"type": "event_callback", "event_id": "EvBAD", "team_id": "T0000001",
                       "event": mention("CNEWS02", BIDEN)})  # fmt: skip
    assert post(bot.url, body, secret="f" * 32)[0] == 401
    assert post(bot.url, body, timestamp=int(time.time()) - 600)[0] == 401
    raw = post(bot.url, body, headers={"X-Slack-Signature": "v0=00"})
    assert raw[0] == 401
    time.sleep(1)
    assert slack.calls == []
    # and /healthz answers
    import urllib.request

    with urllib.request.urlopen(bot.url.replace("/slack/events", "/healthz")) as health:
        assert json.loads(health.read())["ok"] is True


def test_retried_delivery_is_answered_once(bot: Running, slack: FakeSlack) -> None:
    event = mention("CNEWS03", OLYMPICS)
    assert post_event(bot.url, event, event_id="EvRETRY1")[0] == 200
    retry = post_event(
        bot.url,
        event,
        event_id="EvRETRY1",
        headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    )
    assert retry[0] == 200  # fmt: skip
    # Slack also sends the same message as a `message` event (another event id)
    same = message("CNEWS03", event["text"], ts=event["ts"])
    assert post_event(bot.url, same)[0] == 200
    slack.answer_message("CNEWS03")
    time.sleep(1)
    assert len(slack.of("chat.postMessage", channel="CNEWS03")) == 1


def test_bots_are_ignored(bot: Running, slack: FakeSlack) -> None:
    """Its own messages and other bots' messages, even in a thread it answered, and edits."""
    event = mention("CNEWS07", OLYMPICS)
    post_event(bot.url, event)
    slack.answer_message("CNEWS07")
    slack.reset()
    thread = {"thread_ts": event["ts"]}
    own = message("CNEWS07", "Sources…", user=BOT_USER, bot_id="BBOT0001", **thread)
    other = message("CNEWS07", "How long did it last?", user="UOTHERBOT", bot_id="BOTHER01",
                    **thread)  # fmt: skip
    edit = message("CNEWS07", "edited", subtype="message_changed", **thread)
    for e in (own, other, edit, mention("CNEWS07", OLYMPICS, user="UOTHERBOT") | {"bot_id": "B2"}):
        assert post_event(bot.url, e)[0] == 200
    time.sleep(1)
    assert slack.calls == []


def test_rate_limited_post_is_retried(bot: Running, slack: FakeSlack) -> None:
    slack.fail("chat.postMessage", status=429, headers={"Retry-After": "1"})
    event = mention("CNEWS04", OLYMPICS)
    post_event(bot.url, event)
    answer = slack.answer_message("CNEWS04")
    posts = slack.of("chat.postMessage", channel="CNEWS04")
    assert [c.status for c in posts] == [429, 200] and answer.params["thread_ts"] == event["ts"]


def test_ten_concurrent_mentions_each_in_their_own_thread(bot: Running, slack: FakeSlack) -> None:
    questions = [BIDEN, OLYMPICS, "What did Borrell say China must do?"]
    events = [mention(f"CPAR{i:03d}", questions[i % 3]) for i in range(10)]
    replies: list[tuple[int, str, float]] = []
    senders = [threading.Thread(target=lambda e=e: replies.append(post_event(bot.url, e)))
               for e in events]  # fmt: skip
    for s in senders:
        s.start()
    for s in senders:
        s.join()
    assert all(status == 200 and took < 3 for status, _, took in replies)
    for event in events:
        answer = slack.answer_message(event["channel"], timeout=120)
        assert answer.params["thread_ts"] == event["ts"]
        assert len(slack.of("chat.postMessage", channel=event["channel"])) == 1
    logged = {e.conversation_id: e.question for e in bot.log()}
    for i, event in enumerate(events):
        assert logged[f"slack:{event['channel']}:{event['ts']}"] == questions[i % 3]


def test_direct_message_slash_command_and_share(bot: Running, slack: FakeSlack) -> None:
    dm = message("DUSER001", BIDEN, channel_type="im")
    post_event(bot.url, dm)
    answer = slack.answer_message("DUSER001")
    assert answer.params["thread_ts"] == dm["ts"] and BIDEN_TITLE in texts(answer.blocks())

    command = {
        "command": "/newsdesk", "text": OLYMPICS, "channel_id": "CNEWS05", "user_id": "UHUMAN03",
        "team_id": "T0000001", "trigger_id": "trig-2", "response_url": slack.response_url("cmd"),
    }  # fmt: skip
    status, body, took = post_form(bot.url, command)
    assert status == 200 and took < 3 and "Searching the archive" in body
    response = slack.wait(lambda: slack.of("respond"))[0]
    assert response.params["response_type"] == "ephemeral"
    blocks = response.blocks()
    check_limits(blocks)
    share = next(b for b in blocks if b["type"] == "actions")["elements"][0]
    assert share["text"]["text"] == "Share in channel"
    assert not slack.of("chat.postMessage", channel="CNEWS05")  # only the asker saw it

    click = {
        "type": "block_actions", "user": {"id": "UHUMAN03"}, "team": {"id": "T0000001"},
        "channel": {"id": "CNEWS05"}, "trigger_id": "trig-3",
        "response_url": slack.response_url("share"), "container": {"type": "message"},
        "actions": [{"type": "button", "action_id": bk.SHARE_ACTION, "value": share["value"],
                     "block_id": "b3", "action_ts": "3"}],
    }  # fmt: skip
    assert post_form(bot.url, {"payload": json.dumps(click)})[0] == 200
    shared = slack.wait(lambda: slack.of("chat.postMessage", channel="CNEWS05"))[0]
    assert "<@UHUMAN03> asked" in texts(shared.blocks()) and "*Sources*" in texts(shared.blocks())
    assert slack.wait(lambda: [c for c in slack.of("respond") if c.params.get("delete_original")])


def test_channel_filters_and_allow_list(bot: Running, slack: FakeSlack) -> None:
    """CWINTER only sees articles up to February 2022 (its default filters)."""
    post_event(bot.url, mention("CWINTER", BIDEN))
    slack.answer_message("CWINTER")
    entry = bot.log()[-1]
    assert entry.filters == {"until": "2022-02-28"}
    assert all(p["published_at"] <= "2022-02-28T99" for p in entry.answer["passages"])


def test_long_answers_are_split_on_sentences_within_limits() -> None:
    sentence = "The ministers met again in Geneva and agreed to keep talking next week [1]. "
    text = (sentence * 120).strip()  # ~9,000 characters
    passage = Passage(rank=1, chunk_id="c1", doc_id="d1", text="t", score=1.0, title="T",
                      source="Wire", url="https://x.test/a", published_at="2022-03-01")  # fmt: skip
    cites = [Citation(n=i, passage=passage.model_copy(update={"doc_id": f"d{i}"}),
                      quote="agreed to keep talking " * 40) for i in range(1, 80)]  # fmt: skip
    answer = Answer(question="q", text=text, mode="llm", abstained=False, citations=cites)
    blocks = bk.answer_blocks(answer, answer_id=7)
    check_limits(blocks)
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section" and "[1]" in
                b["text"]["text"]]  # fmt: skip
    assert len(sections) >= 3 and all(s.endswith("[1].") for s in sections)
    assert " ".join(sections) == text  # nothing lost, nothing cut mid-sentence
    assert "more sources" in texts(blocks) and blocks[-1]["type"] == "context_actions"
    assert len(bk.fallback_text(answer)) < 3100

    huge = Answer(question="q", text=text * 20, mode="llm", abstained=False, citations=cites)
    blocks = bk.answer_blocks(huge, answer_id=7)
    check_limits(blocks)
    assert "was cut here" in texts(blocks)
    # two citations of one article share its number: one source block for both
    two = Answer(
        question="q",
        text="A [1].",
        mode="extractive",
        abstained=False,
        citations=[cites[0], cites[0].model_copy(update={"quote": "other span"})],
    )
    sources = [b for b in bk.answer_blocks(two) if b["type"] == "context" and "*[1]*" in texts([b])]
    assert len(sources) == 1 and "other span" in texts(sources)


def test_question_text_and_credentials(tmp_path: Path) -> None:
    assert question_text(f"<@{BOT_USER}> what about <#C1|general> &amp; <https://a.test|this>?") \
        == "what about general & this?"  # fmt: skip
    good = {"SLACK_BOT_TOKEN": "xoxb-1-2", "SLACK_SIGNING_SECRET": SECRET}
    check_credentials(load_settings(home=tmp_path, **good), socket=False)
    for bad, says in [
        ({"SLACK_SIGNING_SECRET": SECRET}, "SLACK_BOT_TOKEN is not set"),
        ({**good, "SLACK_BOT_TOKEN": "xoxp-user"}, "SLACK_BOT_TOKEN is malformed"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET is not set"),
        ({**good, "SLACK_SIGNING_SECRET": "secret"}, "SLACK_SIGNING_SECRET is malformed"),
    ]:
        with pytest.raises(ConfigError, match=says):
            check_credentials(load_settings(home=tmp_path, **bad), socket=False)
    with pytest.raises(ConfigError, match="SLACK_APP_TOKEN is malformed"):
        check_credentials(load_settings(home=tmp_path, SLACK_APP_TOKEN="xoxb-x", **good),
                          socket=True)  # fmt: skip


def test_a_refused_or_unreachable_token_is_one_line(tmp_path: Path, slack: FakeSlack) -> None:
    slack.error("auth.test", "invalid_auth")
    with pytest.raises(ConfigError, match=r"Slack refused SLACK_BOT_TOKEN \(invalid_auth\)"):
        create_bot(bot_settings(tmp_path, slack))
    nowhere = bot_settings(tmp_path, slack).model_copy(
        update={"slack_api_url": "http://127.0.0.1:9/api/"}
    )
    with pytest.raises(
        ConfigError, match=r"cannot reach the Slack API at http://127\.0\.0\.1:9/api/"
    ):
        create_bot(nowhere)


def test_cli_start_up_errors_and_render_blocks(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from assistant.surfaces.cli import main

    monkeypatch.setenv("NEWSDESK_HOME", str(home))
    assert main(["slack"]) == 1
    assert capsys.readouterr().err.strip().startswith("error: SLACK_BOT_TOKEN is not set")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "not-hex")
    assert main(["slack"]) == 1
    err = capsys.readouterr().err.strip()
    assert "SLACK_SIGNING_SECRET is malformed" in err and len(err.splitlines()) == 1

    assert main(["slack", "--render-blocks", BIDEN]) == 0
    printed = json.loads(capsys.readouterr().out)
    check_limits(printed["blocks"])
    assert printed["text"] and BIDEN_TITLE in texts(printed["blocks"])


def test_failure_becomes_an_apology(
    tmp_path: Path, slack: FakeSlack, embedder: Any, caplog: Any
) -> None:
    running = start(bot_settings(tmp_path / "empty", slack), embedder)  # nothing ingested
    try:
        event = mention("CNEWS06", BIDEN)
        post_event(running.url, event, event_id="EvFAIL01")
        sorry = slack.answer_message("CNEWS06")
        assert sorry.params["thread_ts"] == event["ts"]
        assert "Sorry, I can't answer: nothing is ingested" in sorry.params["text"]
        assert any("EvFAIL01" in r.getMessage() for r in caplog.records)
    finally:
        stop(running)


class Model:
    """Cites the passage about the call; slowly, so the stream is seen in pieces."""

    def __call__(self, request: dict[str, Any]) -> Any:
        from tests.fake_openai import Reply

        prompt = prompt_of(request)
        if "Follow-up question:" in prompt:
            return prompt.rsplit("Follow-up question:", 1)[1].strip()
        ps = passages_in(prompt)
        n = next((n for n, t in ps.items() if "Biden" in t), 1)
        sentence = quotable(ps[n])
        padding = " ".join(["Streaming"] * 30)
        return Reply(text=f"{padding}. {sentence[:-1]} [{n}].", interval_s=0.04)


@pytest.mark.parametrize("streaming", [True, False], ids=["chat-stream", "chat-update"])
def test_llm_mode_streams_then_shows_the_checked_answer(
    streaming: bool, tmp_path: Path, home: Path, slack: FakeSlack, embedder: Any
) -> None:
    private = tmp_path / "home"
    shutil.copytree(home, private)
    with FakeOpenAI() as model:
        model.default = Model()
        settings = bot_settings(
            private, slack, llm_base_url=model.base_url, llm_model="fake-model",
            OPENAI_API_KEY="sk-test-slack-1234", llm_max_retries=0,
            unsupported_sentences="remove",
        )  # fmt: skip
        running = start(settings, embedder)
        try:
            if not streaming:
                slack.error("chat.startStream", "unknown_method")
            event = mention("CLLM001", BIDEN)
            post_event(running.url, event)
            final = slack.answer_message("CLLM001", timeout=90)
        finally:
            stop(running)
    assert final.method == "chat.update"
    shown = texts(final.blocks())
    assert "Written by a language model" in shown and BIDEN_TITLE in shown
    assert "Streaming Streaming" not in shown  # the provisional text is gone
    if streaming:
        start_call = slack.of("chat.startStream")[0]
        assert start_call.params["thread_ts"] == event["ts"]
        assert start_call.params["recipient_user_id"] == "UHUMAN01"
        assert slack.of("chat.appendStream") and slack.of("chat.stopStream")
        assert final.params["ts"] == slack.of("chat.stopStream")[0].params["ts"]
    else:
        posted = slack.of("chat.postMessage", channel="CLLM001")
        assert len(posted) == 1 and "citations are checked when it is done" in texts(
            posted[0].blocks()
        )
        updates = slack.of("chat.update", channel="CLLM001")
        assert 1 <= len(updates) <= 6  # about one edit a second over a ~2 s stream
        assert all(u.params["ts"] == updates[0].params["ts"] for u in updates)


def test_assistant_side_panel(bot: Running, slack: FakeSlack) -> None:
    thread_ts = new_ts()
    started = {
        "type": "assistant_thread_started", "event_ts": thread_ts,
        "assistant_thread": {"user_id": "UHUMAN04", "channel_id": "DPANEL01",
                             "thread_ts": thread_ts, "context": {}},
    }  # fmt: skip
    assert post_event(bot.url, started)[0] == 200
    prompts = slack.wait(lambda: slack.of("assistant.threads.setSuggestedPrompts"))[0]
    assert prompts.params["thread_ts"] == thread_ts and len(prompts.params["prompts"]) == 3
    greeting = slack.wait(lambda: slack.of("chat.postMessage", channel="DPANEL01"))[0]
    assert greeting.params["thread_ts"] == thread_ts

    asked = message("DPANEL01", OLYMPICS, channel_type="im", thread_ts=thread_ts, user="UHUMAN04")
    assert post_event(bot.url, asked)[0] == 200
    answer = slack.answer_message("DPANEL01")
    assert answer.params["thread_ts"] == thread_ts and "*Sources*" in texts(answer.blocks())
    statuses = slack.wait(lambda: len(slack.of("assistant.threads.setStatus")) == 2 and
                          slack.of("assistant.threads.setStatus"))  # fmt: skip
    assert [s.params["status"] for s in statuses] == [bk.WORKING_TEXT, ""]
    assert not slack.of("reactions.add")


def test_socket_mode_round_trip(home: Path, slack: FakeSlack, embedder: Any) -> None:
    """apps.connections.open on the fake Web API hands out a local websocket; Slack's hello
    and an app_mention envelope go down it; the bot acks the envelope and answers in the
    thread through the Web API."""
    from websockets.sync.server import ServerConnection, serve

    from assistant.surfaces.slack.server import socket_mode_handler

    event = mention("CSOCK01", OLYMPICS)
    acks: list[dict[str, Any]] = []
    opened = threading.Event()

    def session(ws: ServerConnection) -> None:
        opened.set()
        ws.send(json.dumps({"type": "hello", "num_connections": 1}))
        from tests.fake_slack import envelope

        ws.send(json.dumps({"envelope_id": "env-1", "type": "events_api", "payload":
                            envelope(event), "accepts_response_payload": False,
                            "retry_attempt": 0, "retry_reason": ""}))  # fmt: skip
        acks.append(json.loads(ws.recv(timeout=20)))
        try:
            while True:
                ws.recv(timeout=30)
        except Exception:
            return

    with serve(session, "127.0.0.1", 0) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        slack.ws_url = f"ws://127.0.0.1:{server.socket.getsockname()[1]}/link"
        settings = bot_settings(home, slack, SLACK_APP_TOKEN="xapp-1-A0000001-test")
        bot = create_bot(settings, desk=Desk(settings, embedder=embedder))
        handler = socket_mode_handler(bot.app, "xapp-1-A0000001-test")
        try:
            handler.connect()
            assert opened.wait(20)
            answer = slack.answer_message("CSOCK01")
            assert answer.params["thread_ts"] == event["ts"]
            assert acks == [{"envelope_id": "env-1"}]
            assert slack.of("apps.connections.open")
        finally:
            handler.close()
            bot.close()
            server.shutdown()


def test_extractive_layout_and_unsupported_marks() -> None:
    text = (
        "Talks resume (Wire · 2022-03-01)\n- The sides met. [1]\n- They agreed <more> & less. [2]"
    )
    answer = Answer(question="q", text=text, mode="extractive", abstained=False)
    (section,) = [b for b in bk.answer_blocks(answer) if b["type"] == "section"]
    assert section["text"]["text"] == (
        "*Talks resume (Wire · 2022-03-01)*\n• The sides met. [1]\n"
        "• They agreed &lt;more&gt; &amp; less. [2]"
    )
    marked = Answer(question="q", text="It rained [1]. It snowed [unsupported].", mode="llm",
                    abstained=False, notice="1 sentence is marked unsupported")  # fmt: skip
    blocks = bk.answer_blocks(marked)
    assert "It snowed :warning: _(not supported by the sources)_." in texts(blocks)
    assert "Written by a language model" in blocks[0]["elements"][0]["text"]
    assert "1 sentence is marked unsupported" in blocks[0]["elements"][0]["text"]
