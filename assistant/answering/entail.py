"""The optional LLM second pass of answer verification: does the cited passage entail it?

Turned on by ``NEWSDESK_VERIFY_WITH_LLM=true`` when a model is configured. It is asked only
about sentences the offline check kept, and a "no" removes the sentence; an error or an
unclear reply keeps it (the offline check is the floor, never overruled in either direction
by a failing call). Temperature 0 (the answer model's setting is not used here), verdicts
cached on disk under ``$XDG_CACHE_HOME/newsdesk/entail`` like the eval judge's.

The prompt is ``prompts/entail.md``; its placeholders are checked when it is loaded. (To list
it with the other prompts in ``assistant/prompts.py``, add ``"entail": frozenset({"premise",
"claim"})`` to its ``EXPECTED``.)
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from assistant.answering.verdicts import CachedYesNo, VerdictCache, cache_root
from assistant.errors import PromptError
from assistant.prompts import placeholders
from assistant.settings import Settings

log = logging.getLogger(__name__)
EXPECTED: dict[str, frozenset[str]] = {"entail": frozenset({"premise", "claim"})}


@cache
def load_prompt(name: str = "entail") -> str:
    """The template of ``prompts/<name>.md``, its placeholders checked against ``EXPECTED``."""
    try:
        text = resources.files("prompts").joinpath(f"{name}.md").read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError):
        raise PromptError(f"prompts/{name}.md is missing; reinstall newsdesk") from None
    return check_template(name, text)


def check_template(name: str, text: str) -> str:
    found, expected = placeholders(text), EXPECTED[name]
    if found != expected:
        extra, missing = sorted(found - expected), sorted(expected - found)
        parts = [f"unknown placeholder(s) {extra}" if extra else "",
                 f"missing placeholder(s) {missing}" if missing else ""]  # fmt: skip
        raise PromptError(f"prompts/{name}.md: " + "; ".join(p for p in parts if p))
    return text


def prompt_sha(name: str = "entail") -> str:
    return hashlib.sha256(load_prompt(name).encode()).hexdigest()[:16]


def make_entail_chat(settings: Settings) -> Any:
    """The configured model at temperature 0."""
    from assistant.models.llm import make_chat

    return make_chat(settings.model_copy(update={"llm_temperature": 0.0}))


class LLMEntailment:
    """``entail(premises, claim) -> bool | None`` for ``verify_answer(entail=...)``."""

    def __init__(self, settings: Settings, chat: Any = None, cache_dir: Path | None = None):
        self.template = load_prompt()
        self.model = settings.llm_model
        folder = cache_dir or cache_root() / "entail"
        self.asker = CachedYesNo(
            chat if chat is not None else make_entail_chat(settings),
            VerdictCache(folder, prompt_sha(), self.model),
            what="entailment",
        )

    def __call__(self, premises: Sequence[str], claim: str) -> bool | None:
        text = self.template.format(premise="\n\n".join(premises), claim=claim)
        return self.asker.ask(text)


def make_entailment(settings: Settings) -> LLMEntailment | None:
    """The second pass when ``verify_with_llm`` is on and a model is usable, else None."""
    if not (settings.verify_with_llm and settings.use_llm):
        return None
    return LLMEntailment(settings)
