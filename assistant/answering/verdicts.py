"""Yes/no verdicts of a model on (premise, claim) pairs, cached on disk.

Shared by the LLM entailment pass of answer verification (``answering.entail``) and the eval
citation judge (``evals.judge``). The cache key is a hash of the prompt template, the model
and the rendered text, so a changed prompt or model never reuses an old verdict. A reply that
is neither yes nor no is an error (``None``), never a "no", and is not cached (it may be
transient). Writes go through a temporary file and a rename, so a killed run leaves no
half-written entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from assistant.errors import LLMError
from assistant.models.llm import CallInfo, complete

log = logging.getLogger(__name__)


def parse_verdict(reply: str) -> bool | None:
    """The first word decides: yes / supported / true, or no / unsupported / false."""
    words = re.findall(r"[a-z]+", reply.lower())
    if not words:
        return None
    if words[0] in {"yes", "supported", "true", "entailed"}:
        return True
    if words[0] in {"no", "unsupported", "false", "contradicted"}:
        return False
    return None


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/newsdesk`` (default ``~/.cache/newsdesk``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "newsdesk"


class VerdictCache:
    """One JSON file per verdict under ``folder``: ``{"verdict": bool, "reply": str}``."""

    def __init__(self, folder: Path, template_sha: str, model: str) -> None:
        self.folder = folder
        self.template_sha = template_sha
        self.model = model
        self.folder.mkdir(parents=True, exist_ok=True)

    def key(self, text: str) -> str:
        payload = json.dumps([self.template_sha, self.model, text])
        return hashlib.sha256(payload.encode()).hexdigest()

    def get(self, text: str) -> bool | None:
        path = self.folder / f"{self.key(text)}.json"
        try:
            value = json.loads(path.read_text(encoding="utf-8")).get("verdict")
        except (OSError, ValueError, AttributeError):
            return None
        return value if isinstance(value, bool) else None

    def put(self, text: str, verdict: bool, reply: str) -> None:
        path = self.folder / f"{self.key(text)}.json"
        fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"verdict": verdict, "reply": reply[:200]}, fh)
        os.replace(tmp, path)


class CachedYesNo:
    """Ask ``chat`` a rendered yes/no prompt; cached verdicts are never asked again."""

    def __init__(self, chat: Any, cache: VerdictCache, what: str = "verdict") -> None:
        self.chat = chat
        self.cache = cache
        self.what = what
        self.errors = 0
        self.calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def ask(self, text: str) -> bool | None:
        cached = self.cache.get(text)
        if cached is not None:
            return cached
        info = CallInfo()
        try:
            self.calls += 1
            reply = complete(self.chat, text, info)
        except LLMError as exc:
            log.warning("%s call failed: %s", self.what, exc)
            self.errors += 1
            return None
        self.prompt_tokens += info.prompt_tokens or 0
        self.completion_tokens += info.completion_tokens or 0
        verdict = parse_verdict(reply)
        if verdict is None:
            log.warning("%s reply is neither yes nor no: %r", self.what, reply[:80])
            self.errors += 1
            return None
        self.cache.put(text, verdict, reply)
        return verdict
