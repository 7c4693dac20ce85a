"""Prompt templates live as files in the ``prompts`` package; placeholders are checked at load.

A prompt file has a ``## system`` part (the rules) and a ``## human`` part (the material and the
question); it becomes a LangChain ``ChatPromptTemplate`` with a system message, so article
text, which may carry instructions of its own, never sits beside our instructions. Each
template must use exactly the placeholders the code fills in, no more and no fewer, so a typo in
a prompt file fails at start-up with a clear message instead of mid-answer.
"""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources
from typing import Any

from assistant.errors import PromptError

EXPECTED: dict[str, frozenset[str]] = {
    "answer": frozenset({"question", "passages", "today", "abstain_text"}),
    "condense": frozenset({"history", "question"}),
    "choice": frozenset({"question", "passages", "options"}),
    "judge": frozenset({"premise", "claim"}),
}
_PART = re.compile(r"^## (system|human)[ \t]*$", re.M)


@dataclass(frozen=True)
class Prompt:
    name: str
    template: str  # the whole file
    system: str
    human: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.template.encode()).hexdigest()[:16]

    @cached_property
    def chat_template(self) -> Any:
        from langchain_core.prompts import ChatPromptTemplate

        return ChatPromptTemplate.from_messages([("system", self.system), ("human", self.human)])

    def _check(self, values: dict[str, str]) -> None:
        missing = EXPECTED[self.name] - values.keys()
        if missing:
            raise PromptError(f"prompt {self.name!r}: no value for {sorted(missing)}")

    def messages(self, **values: str) -> list[Any]:
        """System and human messages, ready for a chat model."""
        self._check(values)
        return self.chat_template.format_messages(**values)

    def render(self, **values: str) -> str:
        """Both parts as one text (for logs, token budgets and plain completion)."""
        self._check(values)
        return f"{self.system.format(**values)}\n\n{self.human.format(**values)}"


def placeholders(template: str) -> set[str]:
    try:
        return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}
    except ValueError as exc:
        raise PromptError(f"malformed braces: {exc}") from None


def _split(name: str, template: str) -> tuple[str, str]:
    parts = _PART.split(template)
    # ["before", "system", text, "human", text]
    if len(parts) != 5 or parts[0].strip() or parts[1] != "system" or parts[3] != "human":
        raise PromptError(
            f"prompts/{name}.md: needs a '## system' part followed by a '## human' part"
        )
    return parts[2].strip(), parts[4].strip()


def validate(name: str, template: str) -> Prompt:
    found = placeholders(template)
    expected = EXPECTED[name]
    if found != expected:
        extra, missing = sorted(found - expected), sorted(expected - found)
        detail = "; ".join(
            part
            for part in (
                f"unknown placeholder(s) {extra}" if extra else "",
                f"missing placeholder(s) {missing}" if missing else "",
            )
            if part
        )
        raise PromptError(f"prompts/{name}.md: {detail}")
    system, human = _split(name, template)
    return Prompt(name, template, system, human)


@cache
def load(name: str) -> Prompt:
    if name not in EXPECTED:
        raise PromptError(f"no prompt named {name!r}")
    try:
        text = resources.files("prompts").joinpath(f"{name}.md").read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError):
        raise PromptError(f"prompts/{name}.md is missing; reinstall newsdesk") from None
    return validate(name, text)


def load_all() -> dict[str, Prompt]:
    """Validate every prompt (called at start-up by the surfaces)."""
    return {name: load(name) for name in EXPECTED}
