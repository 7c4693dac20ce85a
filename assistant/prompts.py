"""Prompt templates live as files in the ``prompts`` package; placeholders are checked at load.

Each template must use exactly the placeholders the code fills in, no more and no fewer, so a
typo in a prompt file fails at start-up with a clear message instead of mid-answer.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass
from functools import cache
from importlib import resources

from assistant.errors import PromptError

EXPECTED: dict[str, frozenset[str]] = {
    "answer": frozenset({"question", "passages", "today", "abstain_text"}),
    "condense": frozenset({"history", "question"}),
    "choice": frozenset({"question", "passages", "options"}),
    "judge": frozenset({"premise", "claim"}),
}


@dataclass(frozen=True)
class Prompt:
    name: str
    template: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.template.encode()).hexdigest()[:16]

    def render(self, **values: str) -> str:
        missing = EXPECTED[self.name] - values.keys()
        if missing:
            raise PromptError(f"prompt {self.name!r}: no value for {sorted(missing)}")
        return self.template.format(**values)


def placeholders(template: str) -> set[str]:
    try:
        return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}
    except ValueError as exc:
        raise PromptError(f"malformed braces: {exc}") from None


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
    return Prompt(name, template)


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
