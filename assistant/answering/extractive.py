"""Extractive answers: the evidence sentences that best answer the question, cited, no LLM.

Sentences from the retrieved passages are scored by embedding similarity to the question plus
the share of the question's content words they contain, then picked greedily with a penalty for
repeating what is already picked (MMR) and at most two per article. The brief groups them by
article, in the article's own order, and names the speaker when a sentence is a quote.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from assistant.answering.sentvec import SentenceVectors
from assistant.text import content_terms, overlap
from assistant.types import Citation, Passage

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
            items.append(Evidence(p, a, b, score, speaker_of(p.text[a:b], following), vecs[i]))
    return sorted(items, key=lambda e: -e.score)


def select(
    scored: list[Evidence], max_sentences: int = 5, per_article: int = 2, lam: float = 0.75
) -> list[Evidence]:
    if not scored:
        return []
    floor = max(0.6 * scored[0].score, 0.2)
    pool = [e for e in scored if e.score >= floor]
    picked: list[Evidence] = []
    per_doc: dict[str, int] = {}
    while pool and len(picked) < max_sentences:

        def mmr(e: Evidence) -> float:
            if not picked:
                return e.score
            return lam * e.score - (1 - lam) * _redundancy(e, picked)

        best = max(pool, key=mmr)
        pool.remove(best)
        if per_doc.get(best.passage.doc_id, 0) >= per_article:
            continue
        if picked and _redundancy(best, picked) > 0.9:
            continue  # near-duplicate (overlapping chunks, syndicated copies)
        picked.append(best)
        per_doc[best.passage.doc_id] = per_doc.get(best.passage.doc_id, 0) + 1
    if len(picked) < min(3, len(scored)):  # thin evidence: top up to three sentences
        picked += [e for e in scored if e not in picked][: 3 - len(picked)]
    return picked


def _redundancy(e: Evidence, picked: list[Evidence]) -> float:
    return max(float(np.dot(e.vector, p.vector)) for p in picked)  # type: ignore[arg-type]


def compose(picked: list[Evidence]) -> tuple[str, list[Citation]]:
    """The brief: one block per article (best article first), sentences in article order."""
    groups: dict[str, list[Evidence]] = {}
    for e in picked:
        groups.setdefault(e.passage.doc_id, []).append(e)
    lines: list[str] = []
    citations: dict[int, Citation] = {}
    best_score: dict[int, float] = {}
    for items in groups.values():
        p = items[0].passage
        header = " · ".join(x for x in (p.source, p.published_at[:10]) if x)
        lines.append(f"{p.title or 'Untitled article'}" + (f" ({header})" if header else ""))
        for e in sorted(items, key=lambda e: e.passage.start + e.start):
            n = e.passage.rank
            quoted = any(q in e.text for q in _QUOTES)
            said = f" — {e.speaker}" if e.speaker and quoted else ""
            lines.append(f"- {e.text}{said} [{n}]")
            # the quote is the best-scoring sentence taken from that passage, verbatim
            if n not in citations or e.score > best_score[n]:
                citations[n] = Citation(n=n, passage=e.passage, quote=e.text, supported=True)
                best_score[n] = e.score
        lines.append("")
    return "\n".join(lines).strip(), [citations[n] for n in sorted(citations)]
