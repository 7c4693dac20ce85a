"""Support judgments for citation metrics: an LLM judge when configured, else an offline proxy.

Every judgment says which tier produced it, and runs judged by different tiers are never
compared silently (``evals.compare`` refuses). The LLM judge runs at temperature 0 and caches
each verdict on disk under a hash of prompt, model and inputs, so re-running an eval costs
nothing and gives the same numbers. A reply that is neither yes nor no is a judge error
(``None``), never a "no".
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant import prompts
from assistant.answering.verify import SupportChecker
from assistant.errors import LLMError
from assistant.models.llm import complete
from assistant.settings import Settings
from assistant.types import Passage, Usage

log = logging.getLogger(__name__)
OFFLINE_TIER = "offline-proxy"


class OfflineJudge:
    """Embedding similarity + content-word overlap + number/date fidelity (answering.verify)."""

    tier = OFFLINE_TIER

    def __init__(self, checker: SupportChecker) -> None:
        self.checker = checker

    def __call__(self, premises: Sequence[str], claim: str) -> bool | None:
        if not premises or not claim.strip():
            return False
        joined = "\n".join(premises)
        key = hashlib.sha1(joined.encode()).hexdigest()
        passage = Passage(rank=0, chunk_id=key, doc_id="", text=joined, score=0.0)
        return self.checker.check(claim, passage).supported


class LLMJudge:
    """Asks the configured chat model; verdicts cached on disk, malformed replies are errors."""

    def __init__(self, settings: Settings, chat: Any, cache_dir: Path) -> None:
        self.model = settings.llm_model
        self.tier = f"llm:{self.model}"
        self.chat = chat
        self.prompt = prompts.load("judge")
        self.cache_dir = cache_dir
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.usage = Usage()
        self.errors = 0

    def _key(self, text: str) -> str:
        payload = json.dumps([self.prompt.sha256, self.model, text])
        return hashlib.sha256(payload.encode()).hexdigest()

    def __call__(self, premises: Sequence[str], claim: str) -> bool | None:
        text = self.prompt.render(premise="\n\n".join(premises), claim=claim)
        path = self.cache_dir / f"{self._key(text)}.json"
        if path.is_file():
            return json.loads(path.read_text())["verdict"]  # type: ignore[no-any-return]
        try:
            reply = complete(self.chat, text, self.usage)
        except LLMError as exc:
            log.warning("judge call failed: %s", exc)
            self.errors += 1
            return None
        verdict = parse_verdict(reply)
        if verdict is None:
            log.warning("judge reply is neither yes nor no: %r", reply[:80])
            self.errors += 1
            return None  # not cached: a malformed reply may be transient
        path.write_text(json.dumps({"verdict": verdict, "reply": reply[:200]}))
        return verdict


def parse_verdict(reply: str) -> bool | None:
    words = re.findall(r"[a-z]+", reply.lower())
    if not words:
        return None
    if words[0] in {"yes", "supported", "true"}:
        return True
    if words[0] in {"no", "unsupported", "false"}:
        return False
    return None


def make_judge(
    settings: Settings, checker: SupportChecker, cache_dir: Path, chat: Any = None
) -> Any:
    """The LLM judge when a model is configured (and not forced extractive), else the proxy."""
    if settings.llm_configured and chat is not None:
        return LLMJudge(settings, chat, cache_dir)
    return OfflineJudge(checker)
