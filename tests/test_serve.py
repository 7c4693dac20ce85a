"""``newsdesk serve`` used as its clients use it: a real uvicorn on a random loopback port, real
HTTP (httpx, the real ``openai`` client, ``RemoteDesk``), the real ONNX embedder over a copy of
the example collection, the scripted OpenAI-compatible server for LLM mode."""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import uvicorn
from pydantic import SecretStr

from assistant.answerlog import AnswerLog
from assistant.desk import Desk
from assistant.errors import ServiceError, UsageError
from assistant.remote import RemoteDesk
from assistant.settings import Settings
from assistant.surfaces.cli import main
from assistant.surfaces.service.app import create_app
from assistant.surfaces.service.server import check_bind, is_loopback
from assistant.types import Answer, Filters, Final, PassagesFound
from tests.conftest import clean_settings
from tests.fake_openai import FakeOpenAI, Reply

TOKEN = "test-token-7f3a9c"
BIDEN = "What did Biden tell Xi in their video call?"
HOW_LONG = "How long did it last?"
BIDEN_TITLE = "Biden warns Xi of consequences"
SULLIVAN = "Who did Jake Sullivan meet in Rome?"


@contextmanager
def running(settings: Settings, embedder: Any) -> Iterator[str]:
    """The service on 127.0.0.1 at a random port, in a thread; yields its base URL."""
    app = create_app(settings, Desk(settings, embedder=embedder))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def service_settings(home: Path, **update: Any) -> Settings:
    values = {"api_token": SecretStr(TOKEN), "serve_client_concurrency": 32, **update}
    return clean_settings(home).model_copy(update=values)


@pytest.fixture(scope="module")
def home(examples_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("serve") / "home"
    shutil.copytree(examples_home, target)
    return target


@pytest.fixture(scope="module")
def url(home: Path, embedder: Any) -> Iterator[str]:
    with running(service_settings(home), embedder) as base:
        yield base


def authed(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ask(url: str, question: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{url}/v1/answer", json={"question": question, **body},
                      headers=authed(), timeout=60)  # fmt: skip


def contract(data: dict[str, Any]) -> dict[str, Any]:
    """An answer's JSON without what differs between two runs (timings, the log id)."""
    return {k: v for k, v in data.items() if k not in ("timings", "log_id")}


def sse_events(response: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in response.text.split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields.get("event", "message"), json.loads(fields["data"])))
    return events


# -- auth and binding ------------------------------------------------------------------------
def test_every_v1_route_needs_the_token(url: str) -> None:
    for headers in ({}, authed("wrong-token"), {"Authorization": TOKEN}):
        for method, path in (("GET", "/v1/stats"), ("GET", "/v1/models"),
                             ("POST", "/v1/answer"), ("POST", "/v1/chat/completions")):  # fmt: skip
            r = httpx.request(method, url + path, headers=headers, json={"question": "x"})
            assert r.status_code == 401, (path, headers)
            error = r.json()["error"]
            assert error["type"] == "authentication_error" and "Bearer" in error["message"]
            assert r.headers["www-authenticate"] == "Bearer"
    stats = httpx.get(f"{url}/v1/stats", headers=authed())
    documents = stats.json()["documents"]
    assert stats.status_code == 200 and documents > 5
    health = httpx.get(f"{url}/healthz")  # no token needed
    assert health.status_code == 200
    assert health.json() | {"chunks": 0} == {
        "status": "ok", "store": True, "collection": "news", "documents": documents, "chunks": 0,
    }  # fmt: skip


def test_an_open_bind_needs_a_token(tmp_path: Path, capsys: Any) -> None:
    assert main(["serve", "--host", "0.0.0.0", "--port", "1"]) == 1
    said = capsys.readouterr().err.strip()
    assert said.startswith("error: refusing to listen on 0.0.0.0 without a token")
    assert len(said.splitlines()) == 1 and "NEWSDESK_API_TOKEN" in said
    assert all(map(is_loopback, ["127.0.0.1", "::1", "localhost", "127.0.0.2", "[::1]"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "10.0.0.5", "news.example.org"]))
    check_bind(service_settings(tmp_path), "0.0.0.0")  # with a token it may


# -- /v1/answer ------------------------------------------------------------------------------
def test_answer_json_and_its_stream_are_the_same_answer(url: str) -> None:
    plain = ask(url, BIDEN, k=3)
    assert plain.status_code == 200
    data = plain.json()
    assert data["log_id"] >= 1 and data["mode"] == "extractive" and not data["abstained"]
    assert BIDEN_TITLE in data["citations"][0]["title"]

    for how in ({"headers": {"Accept": "text/event-stream"}}, {"stream": True}):
        headers = {**authed(), **how.get("headers", {})}
        body = {"question": BIDEN, "k": 3, **({"stream": True} if "stream" in how else {})}
        r = httpx.post(f"{url}/v1/answer", json=body, headers=headers, timeout=60)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r)
        names = [name for name, _ in events]
        assert names[0] == "passages" and names[-1] == "final" and names.count("final") == 1
        assert set(names) <= {"passages", "delta", "notice", "final"}
        assert all(payload["type"] == name for name, payload in events)
        final = events[-1][1]
        assert contract(final["answer"]) == contract(data) and final["log_id"] > data["log_id"]
        assert len(events[0][1]["passages"]) >= 3


def test_remote_desk_returns_the_desks_typed_objects(url: str, home: Path, embedder: Any) -> None:
    local = Desk(clean_settings(home), embedder=embedder)
    with RemoteDesk(service_settings(home), url=url) as remote:
        events = list(remote.stream(BIDEN, k=3))
        assert isinstance(events[0], PassagesFound) and isinstance(events[-1], Final)
        answer = remote.answer(BIDEN, k=3)
        assert isinstance(answer, Answer) and remote.log_id(answer) is not None
        assert answer.as_json() | {"timings": 0} == events[-1].answer.as_json() | {"timings": 0}
        assert contract(answer.as_json()) == contract(local.answer(BIDEN, k=3).as_json())
        assert remote.stats().model_dump() == local.stats().model_dump()
        assert remote.sources() == local.sources()
        assert [p.as_json() for p in remote.search("Borrell China mediator", k=4)] == [
            p.as_json() for p in local.search("Borrell China mediator", k=4)
        ]
        opened = remote.passage_context(answer.citations[0].passage)
        assert opened == local.passage_context(answer.citations[0].passage)
        with pytest.raises(UsageError, match="no articles from source 'Nowhere Times'"):
            remote.answer(BIDEN, filters=Filters(source="Nowhere Times"))
    with pytest.raises(ServiceError, match="cannot reach the newsdesk service"):
        RemoteDesk(service_settings(home), url="http://127.0.0.1:9").stats()


def test_feedback_goes_to_the_services_answer_log(url: str, home: Path) -> None:
    answer_id = ask(url, SULLIVAN).json()["log_id"]
    r = httpx.post(f"{url}/v1/feedback", headers=authed(),
                   json={"answer_id": answer_id, "verdict": "👎", "note": "wrong man"})  # fmt: skip
    assert r.status_code == 200 and r.json()["verdict"] == "bad"
    with AnswerLog(home / "logs.db") as answer_log:
        entry = answer_log.get(answer_id)
    assert entry is not None and entry.question == SULLIVAN and entry.surface == "api"
    assert entry.verdict is not None and (entry.verdict.verdict, entry.verdict.note) == (
        "bad", "wrong man",
    )  # fmt: skip
    missing = httpx.post(f"{url}/v1/feedback", headers=authed(),
                         json={"answer_id": 999_999, "verdict": "good"})  # fmt: skip
    assert missing.status_code == 404 and "no answer 999999" in missing.json()["error"]["message"]


def test_user_errors_are_one_line_json(url: str) -> None:
    r = ask(url, BIDEN, filters={"source": "Nowhere Times"})
    assert r.status_code == 400
    assert r.json()["error"]["message"].startswith("no articles from source 'Nowhere Times'")
    r = ask(url, BIDEN, filters={"since": "2022-03-10", "until": "2022-03-01"})
    assert r.status_code == 400 and "is after until" in r.json()["error"]["message"]
    long = ask(url, "why " * 1500)
    assert long.status_code == 400
    assert long.json()["error"]["message"] == "question: String should have at most 4000 characters"
    bad_date = httpx.get(f"{url}/v1/search", params={"q": "Xi", "since": "March"}, headers=authed())
    assert bad_date.status_code == 400 and bad_date.json()["error"]["message"].startswith("since")
    assert httpx.get(f"{url}/v1/nothing", headers=authed()).status_code == 404
    broken = ask(url, HOW_LONG, history=[{"question": BIDEN, "answer": {"answer": "x"}}])
    assert broken.status_code == 400
    assert broken.json()["error"]["message"] == (
        "history.0.answer: not an answer as /v1/answer returns it"
    )


# -- limits and the access log ---------------------------------------------------------------
def test_a_request_over_the_size_limit_is_413(url: str) -> None:
    body = json.dumps({"question": BIDEN, "history": [{"question": "x" * 300_000,
                                                       "answer": {}}]})  # fmt: skip
    r = httpx.post(f"{url}/v1/answer", content=body, headers=authed())
    assert r.status_code == 413 and "256 KB" in r.json()["error"]["message"]

    def chunked() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(300):
            yield b"x" * 1024

    r = httpx.post(f"{url}/v1/answer", content=chunked(), headers=authed())
    assert r.status_code == 413


def test_twenty_clients_at_once_get_the_single_clients_answer(url: str) -> None:
    alone = contract(ask(url, SULLIVAN).json())
    with ThreadPoolExecutor(20) as pool:
        replies = list(pool.map(lambda _: ask(url, SULLIVAN), range(20)))
    assert [r.status_code for r in replies] == [200] * 20
    assert all(contract(r.json()) == alone for r in replies)
    assert len({r.json()["log_id"] for r in replies}) == 20


def test_over_the_per_client_limit_is_429(home: Path, embedder: Any) -> None:
    with FakeOpenAI() as fake:
        fake.default = Reply(text="Biden spoke to Xi for two hours. [1]", delay_s=2.0)
        settings = service_settings(
            home, serve_client_concurrency=1, llm_base_url=fake.base_url,
            llm_model="fake-model", llm_api_key=SecretStr("sk-fake"),
        )  # fmt: skip
        with running(settings, embedder) as base, ThreadPoolExecutor(1) as pool:
            slow = pool.submit(ask, base, BIDEN)
            deadline = time.monotonic() + 30
            while not fake.requests:  # the first answer is waiting on the model
                assert time.monotonic() < deadline
                time.sleep(0.02)
            busy = ask(base, SULLIVAN)
            assert busy.status_code == 429 and busy.headers["retry-after"] == "1"
            assert busy.json()["error"]["type"] == "rate_limit_error"
            assert httpx.get(f"{base}/healthz").status_code == 200  # not a /v1 route
            assert slow.result().status_code == 200
            assert ask(base, SULLIVAN, extractive=True).status_code == 200  # the slot is free


def test_the_access_log_has_no_question_text(url: str, caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="assistant.surfaces.service")
    question = "What did Zanzibarian envoys say about mediation?"
    data = ask(url, question).json()
    httpx.get(f"{url}/v1/search", params={"q": "Zanzibarian envoys"}, headers=authed())
    lines = [r.getMessage() for r in caplog.records if r.name.endswith("service.security")]
    records = [json.loads(line) for line in lines]
    answered = next(r for r in records if r["path"] == "/v1/answer")
    assert answered["method"] == "POST" and answered["status"] == 200
    assert answered["answer_id"] == data["log_id"] and answered["ms"] > 0
    assert answered["client"].startswith("token:") and TOKEN not in answered["client"]
    assert any(r["path"] == "/v1/search" for r in records)
    assert not any("Zanzibarian" in line or TOKEN in line for line in lines)


# -- the OpenAI-compatible routes ------------------------------------------------------------
def test_the_openai_client_gets_the_cited_answer(url: str) -> None:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=TOKEN, max_retries=0)
    assert [m.id for m in client.models.list()] == ["newsdesk"]
    reply = client.chat.completions.create(
        model="newsdesk", messages=[{"role": "user", "content": BIDEN}]
    )
    content = reply.choices[0].message.content or ""
    assert reply.object == "chat.completion" and reply.choices[0].finish_reason == "stop"
    answer_text, _, sources = content.partition("\n\nSources\n")
    assert re.search(r"\[1\]", answer_text) and sources.startswith(f"[1] {BIDEN_TITLE}")
    assert "https://harborline-news.test/" in sources

    stream = client.chat.completions.create(
        model="newsdesk", messages=[{"role": "user", "content": BIDEN}], stream=True
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.object == "chat.completion.chunk" and c.model == "newsdesk" for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == content
    counted = list(client.chat.completions.create(
        model="newsdesk", messages=[{"role": "user", "content": BIDEN}], stream=True,
        stream_options={"include_usage": True},
    ))  # fmt: skip
    assert counted[-1].choices == [] and counted[-1].usage is not None
    assert counted[-1].usage.total_tokens == 0  # extractive: no model was used

    follow = client.chat.completions.create(model="newsdesk", messages=[
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": BIDEN},
        {"role": "assistant", "content": content}, {"role": "user", "content": HOW_LONG},
    ])  # fmt: skip
    assert "one hour and 50 minutes" in (follow.choices[0].message.content or "")

    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert missing.value.status_code == 404
    assert missing.value.body["code"] == "model_not_found"  # type: ignore[index]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{url}/v1", api_key="nope", max_retries=0).models.list()


def test_the_raw_stream_ends_as_openai_streams_end(url: str) -> None:
    body = {
        "model": "newsdesk",
        "stream": True,
        "messages": [{"role": "user", "content": SULLIVAN}],
    }
    r = httpx.post(f"{url}/v1/chat/completions", json=body, headers=authed(), timeout=60)
    frames = [f for f in r.text.split("\n\n") if f]
    assert all(f.startswith("data: ") for f in frames)
    assert frames[-1] == "data: [DONE]" and r.text.endswith("data: [DONE]\n\n")
    assert json.loads(frames[-2][6:])["choices"][0] == {
        "index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop",
    }  # fmt: skip


# -- thin clients: ask, search, stats, sources, chat, and the service down -------------------
def _run(args: list[str], capsys: Any) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _same_run(text: str) -> str:
    """Output with what differs between two runs of one answer taken out (time, log id)."""
    return re.sub(r" · \d+ ms( · log #\d+)?", " · N ms", text)


def test_ask_and_friends_with_server_print_what_local_prints(
    url: str, home: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSDESK_HOME", str(home))
    commands = (
        ["ask", BIDEN, "-k", "3"], ["ask", SULLIVAN, "--since", "2022-03-10"],
        ["search", "Borrell China mediator", "-k", "3"], ["stats"], ["sources"],
    )  # fmt: skip
    for args in commands:
        local = _run(args, capsys)
        monkeypatch.setenv("NEWSDESK_API_TOKEN", TOKEN)
        remote = _run([*args, "--server", url], capsys)
        monkeypatch.delenv("NEWSDESK_API_TOKEN")
        assert local[0] == remote[0] == 0, remote
        assert _same_run(remote[1]) == _same_run(local[1]) and local[1]
        code, out, _ = _run([*args, "--json"], capsys)
        monkeypatch.setenv("NEWSDESK_SERVER_URL", url)  # the environment works like --server
        monkeypatch.setenv("NEWSDESK_API_TOKEN", TOKEN)
        remote_json = _run([*args, "--json"], capsys)
        monkeypatch.delenv("NEWSDESK_SERVER_URL")
        monkeypatch.delenv("NEWSDESK_API_TOKEN")
        first, second = json.loads(out), json.loads(remote_json[1])
        if args[0] == "ask":
            first, second = contract(first), contract(second)
        assert code == remote_json[0] == 0 and first == second


def test_ask_with_server_errors_are_one_line(url: str, capsys: Any) -> None:
    code, _, err = _run(["ask", BIDEN, "--server", "http://127.0.0.1:9"], capsys)
    assert code == 1 and err.startswith("error: cannot reach the newsdesk service at")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    code, _, err = _run(["ask", BIDEN, "--server", url], capsys)  # no token
    assert code == 1 and "refused the request" in err and "NEWSDESK_API_TOKEN" in err


def test_chat_with_server_reads_like_the_local_chat(
    url: str, home: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSDESK_HOME", str(home))
    script = "\n".join([BIDEN, HOW_LONG, "/open 1", "/sources", "/bad too long", "/quit"]) + "\n"
    outputs = []
    for args in (["chat", "-k", "3"], ["chat", "-k", "3", "--server", url]):
        if "--server" in args:
            monkeypatch.setenv("NEWSDESK_API_TOKEN", TOKEN)
        monkeypatch.setattr(sys, "stdin", io.StringIO(script))
        code, out, _ = _run(args, capsys)
        assert code == 0
        outputs.append(out)
    local, remote = outputs
    assert "one hour and 50 minutes" in remote and f"→ searching: {BIDEN} {HOW_LONG}" in remote
    assert "The two leaders also discussed Taiwan" in remote  # /open 1: the text around it
    monkeypatch.setattr(sys, "stdin", io.StringIO("/history\n"))
    assert "not available with --server" in _run(["chat", "--server", url], capsys)[1]
    assert "not available with --server" in _run(["chat", "--continue", "--server", url], capsys)[2]
    marked = re.search(r"marked log #(\d+) bad \(too long\)", remote)
    assert marked is not None
    assert _same_run(re.sub(r"log #\d+", "log #N", remote)) == _same_run(
        re.sub(r"log #\d+", "log #N", local)
    )
    with AnswerLog(home / "logs.db") as answer_log:
        entry = answer_log.get(int(marked.group(1)))
        assert entry is not None and entry.surface == "chat" and entry.question == HOW_LONG
        assert entry.verdict is not None and entry.verdict.note == "too long"
        turns = answer_log.list(10, conversation_id=entry.conversation_id)
        assert [e.question for e in turns[::-1]] == [BIDEN, HOW_LONG]


def test_serve_command_runs_the_service(home: Path, tmp_path: Path) -> None:
    import os
    import subprocess

    from tests.conftest import ROOT

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {**os.environ, "NEWSDESK_HOME": str(home), "NEWSDESK_API_TOKEN": TOKEN}
    process = subprocess.Popen(
        [sys.executable, "-m", "assistant.surfaces.cli", "serve", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        assert httpx.get(f"{base}/v1/sources", headers=authed()).status_code == 200
        assert ask(base, SULLIVAN).json()["citations"]
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert f"newsdesk serve: {base} · collection news · bearer token required" in output
    access = [json.loads(line.split(": ", 1)[1]) for line in output.splitlines()
              if "service.security" in line]  # fmt: skip
    assert [(a["method"], a["path"], a["status"]) for a in access][-2:] == [
        ("GET", "/v1/sources", 200), ("POST", "/v1/answer", 200),
    ]  # fmt: skip


def test_the_slack_bot_answers_through_the_service(url: str, home: Path, tmp_path: Path) -> None:
    """NEWSDESK_SERVER_URL: the bot has no store of its own; answers, thread history and
    feedback all go through the service."""
    pytest.importorskip("slack_bolt")
    from assistant.settings import load_settings
    from assistant.surfaces.slack import blocks as bk
    from assistant.surfaces.slack.app import create_bot
    from assistant.surfaces.slack.server import SlackHTTPServer
    from tests.fake_slack import SECRET, FakeSlack, mention, message, post_event, post_form

    with FakeSlack() as slack:
        settings = load_settings(
            home=tmp_path / "bot-home", SLACK_BOT_TOKEN="xoxb-test-0001",
            SLACK_SIGNING_SECRET=SECRET, slack_api_url=slack.base_url, server_url=url,
            api_token=TOKEN,
        )  # fmt: skip
        bot = create_bot(settings)
        server = SlackHTTPServer(bot.app, "127.0.0.1", 0, bot.bot_user_id)
        server.start()
        events_url = f"http://127.0.0.1:{server.port}/slack/events"
        try:
            event = mention("CREMOTE", BIDEN)
            assert post_event(events_url, event)[0] == 200
            first = slack.answer_message("CREMOTE")
            assert BIDEN_TITLE in json.dumps(first.blocks(), ensure_ascii=False)
            assert post_event(events_url, message("CREMOTE", HOW_LONG, thread_ts=event["ts"]))[0]
            slack.wait(lambda: len(slack.of("chat.postMessage", channel="CREMOTE")) == 2)
            second = slack.of("chat.postMessage", channel="CREMOTE")[-1]
            assert "one hour and 50 minutes" in json.dumps(second.blocks(), ensure_ascii=False)

            (actions,) = [b for b in second.blocks() if b["type"] == "context_actions"]
            value = actions["elements"][0]["negative_button"]["value"]
            click = {
                "type": "block_actions", "user": {"id": "UHUMAN02"}, "team": {"id": "T0000001"},
                "channel": {"id": "CREMOTE"}, "trigger_id": "trig-1",
                "container": {"type": "message", "channel_id": "CREMOTE",
                              "thread_ts": event["ts"]},
                "message": {"ts": "1.0", "thread_ts": event["ts"]},
                "actions": [{"type": "feedback_buttons", "action_id": bk.FEEDBACK_ACTION,
                             "value": value, "block_id": "b1", "action_ts": "1"}],
            }  # fmt: skip
            assert post_form(events_url, {"payload": json.dumps(click)})[0] == 200
            slack.wait(lambda: slack.of("chat.postEphemeral"))
        finally:
            server.shutdown()
            server.server_close()
            bot.close()
    assert not (tmp_path / "bot-home" / "logs.db").exists()  # the service logged, not the bot
    with AnswerLog(home / "logs.db") as answer_log:
        turns = answer_log.list(10, conversation_id=f"slack:CREMOTE:{event['ts']}")[::-1]
    assert [(e.question, e.surface) for e in turns] == [(BIDEN, "slack"), (HOW_LONG, "slack")]
    assert turns[1].standalone_question == f"{BIDEN} {HOW_LONG}"
    assert value == f"bad:{turns[1].id}"
    assert turns[1].verdict is not None and turns[1].verdict.who == "UHUMAN02"


def test_nothing_ingested_is_503_and_health_still_answers(tmp_path: Path, embedder: Any) -> None:
    from assistant.errors import EmptyCollectionError

    with running(service_settings(tmp_path / "empty"), embedder) as base:
        r = ask(base, BIDEN)
        assert r.status_code == 503
        assert r.json()["error"]["message"].startswith("nothing is ingested in collection 'news'")
        streamed = ask(base, BIDEN, stream=True)  # fails before the stream starts: a status
        assert streamed.status_code == 503 and streamed.json()["error"]["code"] == (
            "EmptyCollectionError"
        )
        health = httpx.get(f"{base}/healthz").json()
        assert health["status"] == "ok" and health["documents"] == 0
        remote = RemoteDesk(service_settings(tmp_path), url=base)
        with remote, pytest.raises(EmptyCollectionError, match="run `newsdesk ingest"):
            list(remote.stream(BIDEN))


def test_chroma_stopped_and_restarted_under_the_service(
    tmp_path: Path, remembering_embedder: Any
) -> None:
    """The team setup: `newsdesk serve` over a real `chroma run`. While Chroma is down every
    answer is a one-line 503 and /healthz says so; once it is back the same service answers."""
    from ingest.pipeline import ingest_paths
    from tests.chroma_server import running_server
    from tests.conftest import EXAMPLES

    chroma = running_server(tmp_path)
    try:
        settings = service_settings(tmp_path / "home").model_copy(update={"chroma_url": chroma.url})
        ingest_paths([str(EXAMPLES / "wire.jsonl")], settings)
        question = "When did the Fed raise interest rates?"
        with running(settings, remembering_embedder) as url:
            first = ask(url, question)
            assert first.status_code == 200, first.text
            cited = [c["doc_id"] for c in first.json()["citations"]]
            assert "wire-fed-2022-03-16" in cited

            chroma.stop()
            down = ask(url, question)
            assert down.status_code == 503
            message = down.json()["error"]["message"]
            assert "\n" not in message and chroma.url in message, message
            health = httpx.get(f"{url}/healthz", timeout=30).json()
            assert health["store"] is False

            chroma.start()
            again = ask(url, question)
            assert again.status_code == 200, again.text
            assert [c["doc_id"] for c in again.json()["citations"]] == cited
            assert httpx.get(f"{url}/healthz", timeout=30).json()["store"] is True
    finally:
        chroma.stop()
