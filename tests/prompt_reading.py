"""Reading the prompts newsdesk sends, so a scripted test model can answer from them."""

from __future__ import annotations

import re
from typing import Any

from assistant.text import sentence_spans

_BLOCK = re.compile(r'<passage n="(\d+)"[^>]*>\n(.*?)\n</passage>', re.S)


def prompt_of(request: dict[str, Any]) -> str:
    content = request["messages"][-1]["content"]
    assert isinstance(content, str)
    return content


def system_of(request: dict[str, Any]) -> str:
    """The system message: the rules, kept apart from the article text."""
    first = request["messages"][0]
    assert first["role"] == "system", first
    return str(first["content"])


def passages_in(prompt: str) -> dict[int, str]:
    """The numbered passages of an answer or choice prompt: {n: text}."""
    body = prompt.split("<passages>", 1)[1]
    return {int(m.group(1)): m.group(2) for m in _BLOCK.finditer(body)}


def quotable(text: str) -> str:
    """A plain declarative sentence of the passage, to copy into a cited answer."""
    for a, b in sentence_spans(text):
        sentence = text[a:b]
        if 8 <= len(sentence.split()) <= 60 and sentence.endswith(".") and "\n" not in sentence:
            return sentence
    raise AssertionError(f"no quotable sentence in passage: {text[:200]!r}")
