"""Prove tests/fake_openai.py against the real openai and langchain_openai clients."""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request
from typing import Any

import openai
import pytest
from langchain_core.messages import AIMessageChunk
from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from pydantic import SecretStr

from tests.fake_openai import EMBEDDING_DIM, FakeOpenAI, Reply, split_stream_pieces


def _client(fake: FakeOpenAI, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.base_url, api_key="test", **kwargs)


def test_openai_non_streaming_chat_returns_text_and_usage(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Reply(text="Hello from the fake.", prompt_tokens=7, completion_tokens=3))
    with _client(fake_openai, max_retries=0) as client:
        resp = client.chat.completions.create(
            model="fake-model", messages=[{"role": "user", "content": "hi"}]
        )
    assert resp.choices[0].message.content == "Hello from the fake."
    assert resp.choices[0].finish_reason == "stop"
    assert resp.model == "fake-model"
    assert resp.usage is not None
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (7, 3)
    assert resp.usage.total_tokens == 10
    assert len(fake_openai.requests) == 1
    assert fake_openai.requests[0]["messages"] == [{"role": "user", "content": "hi"}]


def test_langchain_streaming_concatenates_and_reports_usage(fake_openai: FakeOpenAI) -> None:
    text = "The council voted 7-2 to approve the budget [1]. "
    fake_openai.script(Reply(text=text, prompt_tokens=11, completion_tokens=9))
    llm = ChatOpenAI(
        base_url=fake_openai.base_url,
        api_key=SecretStr("test"),
        model="fake-model",
        streaming=True,
        stream_usage=True,
        max_retries=0,
    )
    chunks = list(llm.stream("What happened?"))
    assert len([c for c in chunks if c.content]) > 3  # really streamed in pieces
    assert "".join(str(c.content) for c in chunks) == text
    merged = chunks[0]
    for c in chunks[1:]:
        merged = merged + c
    assert isinstance(merged, AIMessageChunk)
    assert merged.usage_metadata is not None
    assert merged.usage_metadata["input_tokens"] == 11
    assert merged.usage_metadata["output_tokens"] == 9
    assert merged.usage_metadata["total_tokens"] == 20
    request = fake_openai.requests[0]
    assert request["stream"] is True
    assert request["stream_options"] == {"include_usage": True}


def test_openai_streaming_without_usage(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("one two  three")
    with _client(fake_openai, max_retries=0) as client:
        stream = client.chat.completions.create(
            model="m1", messages=[{"role": "user", "content": "x"}], stream=True
        )
        chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" and c.model == "m1" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "one two  three"


def test_rate_limit_then_success_is_retried(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(
        # retry-after "0" alone makes this client fall back to ~0.5 s backoff; -ms keeps it fast.
        Reply(status=429, text="Slow down", headers={"retry-after": "0", "retry-after-ms": "1"}),
        "recovered",
    )
    with _client(fake_openai, max_retries=2) as client:
        resp = client.chat.completions.create(
            model="fake-model", messages=[{"role": "user", "content": "hi"}]
        )
    assert resp.choices[0].message.content == "recovered"
    assert len(fake_openai.requests) == 2


def test_error_status_surfaces_as_openai_error(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Reply(status=429, text="quota gone", headers={"x-should-retry": "false"}))
    with _client(fake_openai, max_retries=2) as client, pytest.raises(openai.RateLimitError) as ei:
        client.chat.completions.create(
            model="fake-model", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    assert ei.value.status_code == 429
    assert "quota gone" in str(ei.value)
    assert ei.value.code == "rate_limit_exceeded"
    assert len(fake_openai.requests) == 1


def test_delay_triggers_client_timeout(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Reply(text="too late", delay_s=20.0), "on time")
    with _client(fake_openai, timeout=0.5, max_retries=0) as client:
        started = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            client.chat.completions.create(
                model="fake-model", messages=[{"role": "user", "content": "hi"}]
            )
        assert time.monotonic() - started < 15  # the 0.5 s timeout, not the 20 s reply
        # The server keeps serving after the client hung up on it.
        resp = client.chat.completions.create(
            model="fake-model", messages=[{"role": "user", "content": "again"}]
        )
    assert resp.choices[0].message.content == "on time"


def test_langchain_embeddings_are_deterministic(fake_openai: FakeOpenAI) -> None:
    emb = OpenAIEmbeddings(
        base_url=fake_openai.base_url,
        api_key=SecretStr("test"),
        model="fake-embed",
        check_embedding_ctx_length=False,
        max_retries=0,
    )
    docs = emb.embed_documents(["alpha", "beta", "alpha"])
    query = emb.embed_query("alpha")
    assert [len(v) for v in docs] == [EMBEDDING_DIM] * 3
    assert docs[0] == docs[2] == query
    assert docs[0] != docs[1]
    assert math.isclose(sum(x * x for x in docs[1]), 1.0, rel_tol=1e-5)
    assert fake_openai.embedding_requests[0]["input"] == ["alpha", "beta", "alpha"]


def test_float_and_base64_encodings_agree(fake_openai: FakeOpenAI) -> None:
    with _client(fake_openai, max_retries=0) as client:
        as_b64 = client.embeddings.create(model="e", input=["x", "y"])  # client asks for base64
        as_float = client.embeddings.create(model="e", input=["x", "y"], encoding_format="float")
        tokens = client.embeddings.create(model="e", input=[[1, 2, 3]], encoding_format="float")
    assert fake_openai.embedding_requests[0]["encoding_format"] == "base64"
    assert [d.embedding for d in as_b64.data] == [d.embedding for d in as_float.data]
    assert [d.index for d in as_float.data] == [0, 1]
    assert len(tokens.data[0].embedding) == EMBEDDING_DIM
    assert tokens.usage.prompt_tokens == 3


def test_default_reply_callable_and_exhausted_script(fake_openai: FakeOpenAI) -> None:
    with _client(fake_openai, max_retries=2) as client:
        with pytest.raises(openai.InternalServerError, match="script exhausted"):
            client.chat.completions.create(
                model="fake-model", messages=[{"role": "user", "content": "hi"}]
            )
        assert len(fake_openai.requests) == 1  # x-should-retry: false, so no retries

        fake_openai.default = lambda req: Reply(text=f"echo:{req['messages'][-1]['content']}")
        for word in ("a", "b"):
            resp = client.chat.completions.create(
                model="fake-model", messages=[{"role": "user", "content": word}]
            )
            assert resp.choices[0].message.content == f"echo:{word}"


def test_models_and_unknown_path(fake_openai: FakeOpenAI) -> None:
    with _client(fake_openai, max_retries=0) as client:
        assert [m.id for m in client.models.list()] == ["fake-model"]
    req = urllib.request.Request(f"{fake_openai.base_url}/nope", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(req, timeout=5)
    assert ei.value.code == 404
    body = json.loads(ei.value.read())
    assert body["error"]["type"] == "not_found_error"


def test_keep_alive_connection_is_reused(fake_openai: FakeOpenAI) -> None:
    fake_openai.default = Reply(text="ok")
    fake_openai.script("first")
    with _client(fake_openai, max_retries=0) as client:
        for _ in range(5):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
            list(
                client.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "x"}], stream=True
                )
            )
    assert len(fake_openai.requests) == 10


@pytest.mark.parametrize("text", ["", " ", "word", "  lead and trail  ", "a\n\nb\tc "])
def test_stream_pieces_roundtrip(text: str) -> None:
    assert "".join(split_stream_pieces(text)) == text
