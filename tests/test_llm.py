"""``assistant.models.llm`` against the loopback fake server, with the real langchain-openai client.

Every misbehaving reply must end as an :class:`LLMError` (never another exception type) or a
filled :class:`CallInfo`, within the time the settings allow.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from assistant.errors import LLMError
from assistant.models.llm import CallInfo, complete, make_chat, stream
from assistant.redact import MASK, redact
from assistant.settings import Settings, load_settings
from assistant.types import Usage
from tests.fake_openai import INVENTION, FakeOpenAI, Reply

KEY = "sk-test-0123456789abcdef"
SLACK_S = 3.0  # scheduling and connection set-up on a loaded 2-core machine


def settings_for(fake: FakeOpenAI, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "llm_base_url": fake.base_url,
        "llm_model": "fake-model",
        "llm_api_key": KEY,
        "llm_timeout_s": 5.0,
        "llm_max_retries": 0,
        **overrides,
    }
    return load_settings(**values)


def call(fake: FakeOpenAI, reply: Reply, **overrides: Any) -> tuple[str, CallInfo]:
    fake.script(reply)
    info = CallInfo()
    return complete(make_chat(settings_for(fake, **overrides)), "Say something.", info), info


# -- good replies -----------------------------------------------------------------------------


def test_reply_text_finish_reason_usage_and_budget(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Reply("The council met on Tuesday.", prompt_tokens=9, completion_tokens=6))
    info = CallInfo()
    chat = make_chat(settings_for(fake_openai, llm_max_tokens=321))
    pieces = list(stream(chat, "What happened?", info))

    assert len(pieces) > 2 and "".join(pieces) == "The council met on Tuesday."
    assert info.finish_reason == "stop" and not info.truncated
    assert (info.prompt_tokens, info.completion_tokens, info.total_tokens) == (9, 6, 15)
    assert info.attempts == 1
    request = fake_openai.requests[0]
    budget = request.get("max_completion_tokens", request.get("max_tokens"))
    assert budget == 321  # the max_tokens budget is sent with every call
    assert request["temperature"] == 0.0 and request["stream"] is True


def test_reply_cut_at_max_tokens_is_reported_truncated(fake_openai: FakeOpenAI) -> None:
    words = " ".join(f"word{i}" for i in range(50))
    text, info = call(fake_openai, Reply(words), llm_max_tokens=16)

    assert text.split() == words.split()[:16]
    assert info.finish_reason == "length" and info.truncated


def test_usage_not_reported_is_unknown_not_zero(fake_openai: FakeOpenAI) -> None:
    text, info = call(fake_openai, Reply("Fine.", usage=False))
    assert text == "Fine."
    assert info.prompt_tokens is None and info.completion_tokens is None
    assert info.total_tokens is None

    legacy = Usage(prompt_tokens=3, completion_tokens=4)  # the older accumulator: adds nothing
    fake_openai.script(Reply("Fine.", usage=False), Reply("Again.", prompt_tokens=5))
    chat = make_chat(settings_for(fake_openai))
    assert complete(chat, "q", legacy) == "Fine."
    assert (legacy.prompt_tokens, legacy.completion_tokens) == (3, 4)
    complete(chat, "q", legacy)
    assert (legacy.prompt_tokens, legacy.completion_tokens) == (8, 24)


def test_messages_with_a_system_prompt_are_sent_as_roles(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("Yes.")
    chat = make_chat(settings_for(fake_openai))
    messages = [SystemMessage("You answer briefly."), HumanMessage("Is it raining?")]
    assert complete(chat, messages) == "Yes."
    sent = fake_openai.requests[0]["messages"]
    assert [m["role"] for m in sent] == ["system", "user"]
    assert sent[0]["content"] == "You answer briefly."


# -- unusable replies: always LLMError --------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (Reply(mode="html"), "unusable"),
        (Reply(mode="bad-json"), "unusable"),
        (Reply(mode="wrong-schema"), "empty or ended unfinished"),
        (Reply("Half a sentence and", mode="no-finish"), "empty or ended unfinished"),
        (Reply(mode="empty-stream"), "unusable"),
        (Reply(status=400, text="bad request"), "HTTP 400"),
        (Reply(status=404), "HTTP 404"),
        (Reply(status=500, headers={"x-should-retry": "false"}), "HTTP 500"),
        (Reply(mode="echo-key"), "rejected the API key"),
    ],
    ids=lambda v: v.mode if isinstance(v, Reply) else None,
)
def test_unusable_reply_is_an_llm_error(fake_openai: FakeOpenAI, reply: Reply, words: str) -> None:
    started = time.monotonic()
    with pytest.raises(LLMError) as info:
        call(fake_openai, reply)
    assert words in str(info.value)
    assert time.monotonic() - started < SLACK_S
    assert len(fake_openai.requests) == 1  # none of these is worth a retry


def test_server_echoing_the_key_never_shows_it(
    fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="assistant")
    with pytest.raises(LLMError) as info:
        call(fake_openai, Reply(mode="echo-key", status=500, headers={"x-should-retry": "false"}))
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Incorrect API key provided" in logged  # the server's text is logged ...
    assert KEY not in logged and KEY not in str(info.value)  # ... without the key
    assert MASK in logged


def test_redact_masks_configured_secrets_and_token_shapes(tmp_path: Any) -> None:
    settings = load_settings(home=tmp_path, llm_api_key="plain-local-secret", judge_api_key="jk-9x")
    text = (
        "key plain-local-secret refused; judge jk-9x; Authorization: Bearer abc.DEF-123_xyz; "
        "also sk-live-ABCDEF0123 and api_key=qwertyuiop"
    )
    out = redact(text, settings)
    for secret in ("plain-local-secret", "jk-9x", "abc.DEF-123_xyz", "sk-live-ABCDEF0123"):
        assert secret not in out
    assert "qwertyuiop" not in out
    assert out.startswith("key [redacted] refused")
    assert redact("nothing secret here, 42 tokens", settings) == "nothing secret here, 42 tokens"


# -- time bounds ------------------------------------------------------------------------------


@pytest.mark.parametrize("keepalive_s", [0.2, 0.0], ids=["keep-alive-comments", "silence"])
def test_never_finishing_stream_is_cut_at_the_timeout(
    fake_openai: FakeOpenAI, keepalive_s: float
) -> None:
    timeout = 1.0
    started = time.monotonic()
    with pytest.raises(LLMError, match="timed out"):
        call(fake_openai, Reply(mode="hang", keepalive_s=keepalive_s), llm_timeout_s=timeout)
    assert time.monotonic() - started < timeout + SLACK_S


def test_server_that_never_answers_is_bounded_by_the_answer_deadline(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.default = Reply("too late", delay_s=30)
    started = time.monotonic()
    with pytest.raises(LLMError, match="timed out"):
        call(fake_openai, Reply("too late", delay_s=30), llm_timeout_s=1.0,
             llm_max_retries=5, llm_deadline_s=2.5)  # fmt: skip
    elapsed = time.monotonic() - started
    assert elapsed < 2.5 + SLACK_S
    assert 2 <= len(fake_openai.requests) <= 3  # retried, but only while time was left


def test_explicit_deadline_overrides_the_per_call_timeout(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Reply(mode="hang"))
    chat = make_chat(settings_for(fake_openai, llm_timeout_s=30.0))
    started = time.monotonic()
    with pytest.raises(LLMError, match="timed out"):
        complete(chat, "q", CallInfo(), deadline=time.monotonic() + 0.8)
    assert time.monotonic() - started < 0.8 + SLACK_S


def test_rate_limit_and_server_errors_are_retried(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(
        Reply(status=429, headers={"retry-after-ms": "10"}),
        Reply(status=503, headers={"retry-after-ms": "10"}),
        Reply("Recovered."),
    )
    info = CallInfo()
    chat = make_chat(settings_for(fake_openai, llm_max_retries=2))
    assert complete(chat, "q", info) == "Recovered."
    assert info.attempts == 3 and len(fake_openai.requests) == 3


def test_retries_stop_at_the_limit_and_at_the_deadline(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(*[Reply(status=500, headers={"retry-after-ms": "1"})] * 3)
    with pytest.raises(LLMError, match="HTTP 500"):
        complete(make_chat(settings_for(fake_openai, llm_max_retries=2)), "q")
    assert len(fake_openai.requests) == 3

    # a Retry-After longer than the time left: give up at once instead of sleeping past it
    fake_openai.script(Reply(status=429, headers={"retry-after": "30"}))
    started = time.monotonic()
    with pytest.raises(LLMError, match=r"429.*no time left"):
        complete(make_chat(settings_for(fake_openai, llm_max_retries=3, llm_deadline_s=5)), "q")
    assert time.monotonic() - started < SLACK_S


def test_nothing_but_llm_error_escapes_for_any_mode(fake_openai: FakeOpenAI) -> None:
    """Every scripted misbehaviour, streamed and consumed piece by piece."""
    replies = [Reply(mode=m) for m in ("html", "bad-json", "wrong-schema", "empty-stream")]
    replies += [Reply("x y", mode="no-finish"), Reply(mode="hang", keepalive_s=0.05)]
    chat = make_chat(settings_for(fake_openai, llm_timeout_s=1.0))
    for reply in replies:
        fake_openai.script(reply)
        try:
            for _ in stream(chat, [HumanMessage("q")], CallInfo()):
                pass
        except LLMError:
            continue
        pytest.fail(f"mode {reply.mode} did not raise LLMError")


def test_content_modes_strip_markers_or_add_an_invention(fake_openai: FakeOpenAI) -> None:
    cited = "The council met on Tuesday [1]. It approved the budget [1, 2]."
    text, _ = call(fake_openai, Reply(cited, mode="no-markers"))
    assert text == "The council met on Tuesday. It approved the budget."
    text, _ = call(fake_openai, Reply(cited, mode="invent"))
    assert text == f"{cited} {INVENTION}"
