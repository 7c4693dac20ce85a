"""The language model: ``langchain-openai`` ``ChatOpenAI`` against OpenAI or any compatible server.

Transient failures (timeouts, 429, 5xx) are retried with exponential backoff by the OpenAI client
itself (``max_retries``); what still fails becomes an :class:`LLMError`, which the core call turns
into an extractive answer with a one-line notice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from assistant.errors import LLMError
from assistant.settings import Settings
from assistant.types import Usage

log = logging.getLogger(__name__)


def make_chat(settings: Settings) -> Any:
    from langchain_openai import ChatOpenAI

    key = settings.llm_api_key or settings.openai_api_key
    return ChatOpenAI(
        model=settings.llm_model,
        base_url=settings.llm_base_url,
        api_key=key.get_secret_value() if key else "not-needed",  # type: ignore[arg-type]
        temperature=settings.llm_temperature,
        timeout=settings.llm_timeout_s,
        max_retries=settings.llm_max_retries,
        streaming=True,
        stream_usage=True,
    )


def _describe(exc: Exception) -> str:
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return "the language model timed out"
    if isinstance(exc, openai.RateLimitError):
        return "the language model is rate-limited (HTTP 429)"
    if isinstance(exc, openai.AuthenticationError):
        return "the language model rejected the API key (HTTP 401)"
    if isinstance(exc, openai.APIStatusError):
        return f"the language model answered HTTP {exc.status_code}"
    if isinstance(exc, openai.APIConnectionError):
        return "the language model could not be reached"
    return f"the language model failed ({type(exc).__name__})"


def stream(chat: Any, prompt: str, usage: Usage) -> Iterator[str]:
    """Text deltas of the model's reply; adds token usage to ``usage`` as it arrives."""
    import openai

    try:
        for chunk in chat.stream(prompt):
            meta = getattr(chunk, "usage_metadata", None)
            if meta:
                usage.add(int(meta.get("input_tokens", 0)), int(meta.get("output_tokens", 0)))
            text = chunk.content if isinstance(chunk.content, str) else ""
            if text:
                yield text
    except (openai.OpenAIError, OSError) as exc:
        log.warning("LLM call failed: %s", exc)
        raise LLMError(_describe(exc)) from exc


def complete(chat: Any, prompt: str, usage: Usage) -> str:
    return "".join(stream(chat, prompt, usage)).strip()
