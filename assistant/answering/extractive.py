"""Extractive answers: the evidence sentences that best answer the question, cited, no LLM.

Sentences from the retrieved passages are scored by embedding similarity to the question plus
the share of the question's content words they contain (``score_sentences``). The answer
(``lead.build``) then leads with the sentence that answers what was asked, followed by the
supporting sentences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from assistant.answering.sentvec import SentenceVectors
from assistant.text import content_terms, overlap
from assistant.types import Passage

NOTICE = "Extractive answer: quoted from your articles; no language model was used."
_SAID = r"(?:said|says|told|added|wrote|argued|noted|warned|insisted|stated|declared)"
_NAME = r"((?:[A-Z][\w.'’-]+\s){0,3}[A-Z][\w'’-]+)"
_AFTER = re.compile(r"[,.!?][\"”’]?\s+" + _NAME + r"\s+" + _SAID + r"\b")
_AFTER_INV = re.compile(r"[,.!?][\"”’]?\s+" + _SAID + r"\s+" + _NAME)
_BEFORE = re.compile(_NAME + r"\s+" + _SAID + r"\b")
_ACCORDING = re.compile(r"according to " + _NAME)
_PRONOUNS = {"He", "She", "They", "It", "We", "I", "This", "That", "The", "A", "An"}
_QUOTES = '"“”'


@dataclass(eq=False)
class Evidence:
    passage: Passage
    start: int  # offsets within the passage text
    end: int
    score: float
    speaker: str = ""
    vector: np.ndarray | None = None
    index: int = 0  # the sentence's position among its passage's sentences
    spans: tuple[tuple[int, int], ...] = ()  # all sentence spans of the passage

    @property
    def offset(self) -> int:
        """Where the sentence starts in its article (overlapping chunks share offsets)."""
        return self.passage.start + self.start

    @property
    def text(self) -> str:
        return self.passage.text[self.start : self.end]


def speaker_of(sentence: str, following: str = "") -> str:
    """Who a quoted sentence is attributed to, when the text says so."""
    for pattern in (_AFTER, _AFTER_INV, _ACCORDING, _BEFORE):
        match = pattern.search(sentence)
        if match and match.group(1) not in _PRONOUNS:
            return match.group(1).strip()
    if following and any(q in sentence for q in _QUOTES):
        match = _BEFORE.match(following) or _AFTER.search(following)
        if match and match.group(1) not in _PRONOUNS:
            return match.group(1).strip()
    return ""


def score_sentences(
    question: str, qvec: np.ndarray, passages: list[Passage], sentences: SentenceVectors
) -> list[Evidence]:
    q_terms = content_terms(question)
    items: list[Evidence] = []
    for p, (spans, vecs) in zip(passages, sentences.get_many(passages), strict=True):
        for i, (a, b) in enumerate(spans):
            words = len(p.text[a:b].split())
            if words < 5 or words > 90:
                continue
            following = p.text[spans[i + 1][0] : spans[i + 1][1]] if i + 1 < len(spans) else ""
            lexical = overlap(q_terms, content_terms(p.text[a:b] + " " + p.title))
            score = 0.6 * float(vecs[i] @ qvec) + 0.4 * lexical + 0.03 / max(p.rank, 1)
            items.append(
                Evidence(
                    p, a, b, score, speaker_of(p.text[a:b], following), vecs[i], i, tuple(spans)
                )
            )
    return sorted(items, key=lambda e: -e.score)
