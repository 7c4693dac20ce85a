"""The language model: ``langchain-openai`` ``ChatOpenAI`` against OpenAI or any compatible server.

Every call streams. What a call may cost is bounded three ways:

* ``llm_timeout_s`` bounds one HTTP attempt from request to last byte: it is the client's
  connect/read timeout (a silent server cannot block a read for longer), and every byte that
  arrives is checked against the attempt's end (a server that keeps sending keep-alive comments
  but never finishes is cut there);
* ``deadline`` (an absolute ``time.monotonic()`` value, default now + ``answer_deadline_s``)
  bounds the whole call, retries and backoff included;
* ``llm_max_tokens`` is sent with every request; a reply cut there has ``truncated`` set.

Retries (timeouts, connection errors, 429 and 5xx, only before any text arrived) are done here,
not by the OpenAI client, so that backoff and ``Retry-After`` waits respect the deadline. Any
failure, including an unusable reply (HTML or malformed JSON with status 200, a reply that is
not a chat completion, a stream that ends without a ``finish_reason``), becomes an
:class:`LLMError`, whose message is redacted of keys and tokens, as is every log line.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from assistant.errors import LLMError
from assistant.redact import redact
from assistant.settings import Settings
from assistant.types import Usage

log = logging.getLogger(__name__)
_CONF = "newsdesk"  # key of our limits in the chat model's ``metadata``
_END = "newsdesk_end"  # request extension: monotonic time the attempt must end by
_CONNECT_S = 10.0
_BACKOFF_S = (0.5, 8.0)  # first wait, longest wait


@dataclass
class CallInfo:
    """What one call reported. Token counts are None when the server did not report them."""

    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    truncated: bool = False  # the reply was cut at max_tokens (finish_reason "length")
    attempts: int = 0

    @property
    def total_tokens(self) -> int | None:
        if self.prompt_tokens is None or self.completion_tokens is None:
            return None
        return self.prompt_tokens + self.completion_tokens


class _Retry(Exception):
    """An attempt failed in a way worth retrying (before any text was produced)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def make_chat(settings: Settings) -> Any:
    """A streaming ``ChatOpenAI`` whose limits (timeouts, retries, deadline) ``stream`` uses."""
    import httpx2
    from langchain_openai import ChatOpenAI

    key = settings.llm_api_key or settings.openai_api_key
    timeout = httpx2.Timeout(
        settings.llm_timeout_s, connect=min(_CONNECT_S, settings.llm_timeout_s)
    )
    client = httpx2.Client(
        timeout=timeout,
        event_hooks={"request": [_mark_request], "response": [_guard_response]},
    )
    return ChatOpenAI(
        model=settings.llm_model,
        base_url=settings.llm_base_url,
        api_key=key.get_secret_value() if key else "not-needed",  # type: ignore[arg-type]
        temperature=settings.llm_temperature,
        max_tokens=settings.llm_max_tokens,  # type: ignore[call-arg]
        timeout=timeout,
        max_retries=0,  # retried by ``stream`` within the deadline
        http_client=client,
        streaming=True,
        stream_usage=True,
        metadata={
            _CONF: {
                "timeout_s": settings.llm_timeout_s,
                "retries": settings.llm_max_retries,
                "deadline_s": settings.answer_deadline_s,
            }
        },
    )


# -- byte-level deadline, applied by the HTTP client's hooks ---------------------------------


def _mark_request(request: Any) -> None:
    """Stamp the attempt's end: now + the read timeout this request was given."""
    timeout = request.extensions.get("timeout") or {}
    read = timeout.get("read")
    if read is not None:
        request.extensions[_END] = time.monotonic() + float(read)


@functools.cache
def _guarded_stream_class() -> type:
    import httpx2

    class GuardedStream(httpx2.SyncByteStream):
        """A response byte stream that fails the first read past the attempt's end."""

        def __init__(self, inner: Any, end: float) -> None:
            self.inner = inner
            self.end = end

        def __iter__(self) -> Iterator[bytes]:
            for part in self.inner:
                if time.monotonic() > self.end:
                    raise httpx2.ReadTimeout("the reply did not finish within the timeout")
                yield part

        def close(self) -> None:
            self.inner.close()

        @property
        def elapsed(self) -> Any:  # read back by ``Response.elapsed``
            return getattr(self.inner, "elapsed", None)

    return GuardedStream


def _guard_response(response: Any) -> None:
    """Wrap a response's bytes so that a reply still arriving past the end is cut off."""
    import httpx2

    end = response.request.extensions.get(_END)
    if end is not None and isinstance(response.stream, httpx2.SyncByteStream):
        response.stream = _guarded_stream_class()(response.stream, end)


# -- calls ------------------------------------------------------------------------------------


def _limits(chat: Any) -> tuple[float, int, float]:
    conf = (getattr(chat, "metadata", None) or {}).get(_CONF) or {}
    timeout = float(conf.get("timeout_s") or getattr(chat, "request_timeout", None) or 60.0)
    return timeout, int(conf.get("retries", 2)), float(conf.get("deadline_s") or 2 * timeout)


def _secret(chat: Any) -> list[str]:
    key = getattr(chat, "openai_api_key", None)
    return [key.get_secret_value()] if key is not None else []


def stream(
    chat: Any,
    prompt: str | Sequence[Any],
    info: CallInfo | Usage | None = None,
    deadline: float | None = None,
) -> Iterator[str]:
    """Text deltas of the model's reply to ``prompt`` (a string or LangChain messages).

    ``info`` (a :class:`CallInfo`) is filled with the finish reason, token usage (None when
    not reported) and ``truncated``; a legacy :class:`Usage` gets the reported tokens added.
    ``deadline`` is a ``time.monotonic()`` value the whole call, retries included, must end by.
    Raises :class:`LLMError` for every failure.
    """
    call = info if isinstance(info, CallInfo) else CallInfo()
    timeout_s, retries, deadline_s = _limits(chat)
    end = deadline if deadline is not None else time.monotonic() + deadline_s
    secrets = _secret(chat)
    while True:
        call.attempts += 1
        remaining = end - time.monotonic()
        if remaining <= 0:
            raise LLMError("the language model timed out (the answer's time limit was reached)")
        produced = False
        try:
            for piece in _attempt(chat, prompt, call, min(timeout_s, remaining), secrets):
                produced = True
                yield piece
            break
        except _Retry as exc:
            if produced or call.attempts > retries:
                raise LLMError(str(exc)) from exc
            wait = exc.retry_after
            if wait is None:
                first, longest = _BACKOFF_S
                wait = min(first * 2 ** (call.attempts - 1), longest) * random.uniform(0.75, 1)
            if time.monotonic() + wait >= end:
                raise LLMError(f"{exc} (no time left to retry)") from exc
            log.info("retrying the language model in %.2f s: %s", wait, exc)
            time.sleep(wait)
    if isinstance(info, Usage):
        info.add(call.prompt_tokens or 0, call.completion_tokens or 0)
    if call.truncated:
        log.warning("the language model's reply was cut at the max_tokens budget")


def _attempt(
    chat: Any, prompt: str | Sequence[Any], call: CallInfo, limit_s: float, secrets: list[str]
) -> Iterator[str]:
    import httpx2

    started = time.monotonic()
    timeout = httpx2.Timeout(limit_s, connect=min(_CONNECT_S, limit_s))
    call.finish_reason = None
    try:
        for chunk in chat.stream(prompt, timeout=timeout):
            if time.monotonic() - started > limit_s:
                raise httpx2.ReadTimeout("the reply did not finish within the timeout")
            meta = getattr(chunk, "usage_metadata", None)
            if meta:
                call.prompt_tokens = int(meta.get("input_tokens", 0))
                call.completion_tokens = int(meta.get("output_tokens", 0))
            reason = (getattr(chunk, "response_metadata", None) or {}).get("finish_reason")
            if reason:
                call.finish_reason = str(reason)
            content = chunk.content
            if isinstance(content, str) and content:
                yield content
    except Exception as exc:  # everything a client or a bad reply can raise
        raise _translate(exc, secrets) from exc
    if call.finish_reason is None:
        log.warning("LLM reply ended without a finish_reason (empty or cut-off stream)")
        raise LLMError("the language model's reply was empty or ended unfinished")
    call.truncated = call.finish_reason == "length"


def _translate(exc: Exception, secrets: list[str]) -> Exception:
    """A retryable ``_Retry`` or a final ``LLMError``; server text is redacted."""
    import httpx2
    import openai

    detail = redact(str(exc), extra=secrets)[:300]
    log.warning("LLM call failed (%s): %s", type(exc).__name__, detail)
    if isinstance(exc, LLMError):
        return exc
    if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException | TimeoutError):
        return _Retry("the language model timed out")
    if isinstance(exc, openai.RateLimitError):
        return _Retry("the language model is rate-limited (HTTP 429)", _retry_after(exc))
    if isinstance(exc, openai.AuthenticationError):
        return LLMError("the language model rejected the API key (HTTP 401)")
    if isinstance(exc, openai.APIStatusError):
        message = f"the language model answered HTTP {exc.status_code}"
        retryable = exc.status_code >= 500 or exc.status_code in (408, 409)
        if retryable and exc.response.headers.get("x-should-retry") != "false":
            return _Retry(message, _retry_after(exc))
        return LLMError(message)
    if isinstance(exc, openai.APIConnectionError | httpx2.TransportError | OSError):
        return _Retry("the language model could not be reached")
    return LLMError(f"the language model sent an unusable reply ({type(exc).__name__})")


def _retry_after(exc: Any) -> float | None:
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            value = float(headers.get(name, ""))
        except ValueError:
            continue
        if 0 <= value / scale <= 60:
            return value / scale
    return None


def complete(
    chat: Any,
    prompt: str | Sequence[Any],
    info: CallInfo | Usage | None = None,
    deadline: float | None = None,
) -> str:
    """The whole reply as one string (see :func:`stream`)."""
    return "".join(stream(chat, prompt, info, deadline)).strip()
