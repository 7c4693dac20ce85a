"""Support judgments for citation metrics: a separately configured LLM judge, else an offline
proxy. Never the model under test: grading a model's citations with the same model hides the
errors it cannot see in itself.

The LLM judge is configured with ``NEWSDESK_JUDGE_MODEL`` (and optionally
``NEWSDESK_JUDGE_BASE_URL`` / ``NEWSDESK_JUDGE_API_KEY``; unset, they fall back to the answer
model's server and key, which is fine when one server hosts several models). Without a judge
model the offline proxy judges, whatever mode the run is in. Every judgment says which tier
produced it, and runs judged by different tiers are never compared silently
(``evals.compare`` refuses). The LLM judge runs at temperature 0 and caches each verdict on
disk (``answering.verdicts``), so re-running an eval costs nothing and gives the same numbers.
A reply that is neither yes nor no is a judge error (``None``), never a "no".
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant import prompts
from assistant.answering.support import SupportChecker
from assistant.answering.verdicts import CachedYesNo, VerdictCache
from assistant.answering.verdicts import parse_verdict as parse_verdict  # re-exported
from assistant.settings import Settings
from assistant.types import Passage, Usage

log = logging.getLogger(__name__)
OFFLINE_TIER = "offline-proxy"


class OfflineJudge:
    """The offline support check of answer verification (``answering.support``)."""

    tier = OFFLINE_TIER
    model: str | None = None

    def __init__(self, checker: SupportChecker) -> None:
        self.checker = checker

    def __call__(self, premises: Sequence[str], claim: str) -> bool | None:
        if not premises or not claim.strip():
            return False
        joined = "\n".join(premises)
        key = hashlib.sha1(joined.encode()).hexdigest()
        passage = Passage(rank=0, chunk_id=key, doc_id="", text=joined, score=0.0)
        return self.checker.check(claim, passage).supported


def judge_settings(settings: Settings) -> Settings | None:
    """The settings of the judge model (temperature 0), or None when no judge is configured."""
    if not settings.judge_model:
        return None
    update: dict[str, Any] = {
        "llm_model": settings.judge_model,
        "llm_temperature": 0.0,
        "extractive": False,
    }
    if settings.judge_base_url:
        update["llm_base_url"] = settings.judge_base_url
    if settings.judge_api_key:
        update["llm_api_key"] = settings.judge_api_key
    judged = settings.model_copy(update=update)
    return judged if judged.llm_configured else None


class LLMJudge:
    """Asks the judge model; verdicts cached on disk, malformed replies are errors."""

    def __init__(self, settings: Settings, chat: Any, cache_dir: Path) -> None:
        self.model = settings.llm_model
        self.tier = f"llm:{self.model}"
        self.prompt = prompts.load("judge")
        self.asker = CachedYesNo(chat, VerdictCache(cache_dir, self.prompt.sha256, self.model),
                                 what="judge")  # fmt: skip

    @property
    def errors(self) -> int:
        return self.asker.errors

    @property
    def usage(self) -> Usage:
        return Usage(self.asker.prompt_tokens, self.asker.completion_tokens)

    def __call__(self, premises: Sequence[str], claim: str) -> bool | None:
        return self.asker.ask(self.prompt.render(premise="\n\n".join(premises), claim=claim))


def make_judge(settings: Settings, checker: SupportChecker, cache_dir: Path) -> Any:
    """The LLM judge when a judge model is configured, else the offline proxy."""
    judged = judge_settings(settings)
    if judged is None:
        return OfflineJudge(checker)
    from assistant.models.llm import make_chat

    return LLMJudge(judged, make_chat(judged), cache_dir)
