"""The extractive answer: the sentence that answers first, then what supports it.

``build`` takes the scored evidence sentences (``extractive.score_sentences``) and the
question's shape (``question.shape``) and writes:

    <the sentence (or two) that answers each part of the question> [1]

    Also in the articles:
    - <supporting sentence, in article order> [1]
    - <supporting sentence from another article> — Speaker [2]

A lead sentence must carry what each part asks for (a quantity for "how much", a date for
"when", a name not in the question for "who"/"which"…). A sentence that opens with a pronoun
brings the sentence before it; a "which countries" lead brings the next sentence when that one
continues the list ("India … abstained as well"). Overlapping chunks never give the same
sentence twice, and support must share the question's terms (nothing off its topic).
Markers are passage ranks here; ``numbering`` turns them into one number per article.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from assistant.answering.extractive import _QUOTES, Evidence
from assistant.answering.question import Kind, Shape
from assistant.text import content_terms, overlap, sentence_spans, stemmer
from assistant.types import Citation

MAX_SENTENCES = 5
TOPIC = 0.1  # support must carry this much of the question's own terms (rarity-weighted)
PER_ARTICLE = 3
SUPPORT_HEADER = "Also in the articles:"

_MONTH = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
          r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?")  # fmt: skip
_DAY_DATE = re.compile(rf"\b{_MONTH}\s+\d{{1,2}}\b|\b\d{{1,2}}\s+{_MONTH}\b")
_WEEKDAY = re.compile(
    r"\b(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|yesterday|today)\b"
)
_MONTH_YEAR = re.compile(rf"\b{_MONTH}\s+(?:of\s+)?(?:19|20)\d\d\b|\b(?:19|20)\d\d\b")
_NUMBER_WORDS = (
    r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|"
    r"forty|fifty|hundred|thousand|million|billion|trillion|dozen|half|quarter|double|twice"
)
_QUANTITY = re.compile(
    rf"[$€£¥]\s?\d|\d[\d,.]*\s?(?:%|percent|per cent|points?|bn|m\b)|\b(?:{_NUMBER_WORDS})\b"
    r"|\b\d[\d,.]*\b",
    re.IGNORECASE,
)
_UNIT = re.compile(
    rf"[$€£¥]\s?\d|\d[\d,.]*\s?(?:%|percent|per cent|percentage points?|points?|bn\b|"
    rf"billion|million|trillion)|\b\d[\d,.]*\s+[a-z]+|\b(?:{_NUMBER_WORDS})\s+[a-z]+",
    re.IGNORECASE,
)
_BY_AMOUNT = re.compile(
    rf"\bby\s+(?:a|an|about|roughly|nearly|some|just|only|another)?\s*(?:\d|{_NUMBER_WORDS})",
    re.IGNORECASE,
)
_MONEY = re.compile(
    r"[$€£¥]\s?\d|\b(?:euros?|dollars?|pounds?|yuan|yen|francs?|kronor|crowns?)\b", re.IGNORECASE
)
_MONEY_ASKED = re.compile(
    r"\b(?:cost|costs|price|pay|paid|spend|spent|worth|budget|revenue|fine|raise[sd]?\s+\$)\b",
    re.IGNORECASE,
)
_COUNT = re.compile(rf"\b(?:\d[\d,.]*|{_NUMBER_WORDS})\b", re.IGNORECASE)
_SEASON_OR_MONTH = re.compile(
    rf"\b(?:spring|summer|autumn|fall|winter|end|start|beginning|middle)\s+of\s+(?:19|20)\d\d\b"
    rf"|\b{_MONTH}\s+(?:of\s+)?(?:19|20)\d\d\b",
    re.IGNORECASE,
)
_DURATION = re.compile(
    rf"\b(?:\d+|{_NUMBER_WORDS}|an?)\s+(?:\w+\s+)?(?:seconds?|minutes?|hours?|days?|weeks?|"
    r"months?|years?)\b",
    re.IGNORECASE,
)
_NAME = re.compile(r"\b[A-Z][a-z]+(?:[-\s][A-Z][a-z]+)*")
_PRONOUN_START = re.compile(
    r"^[\"“‘']?(?:He|She|They|It|His|Her|Their|Its|This|That|These|Those|But|Yet|However)\b"
)
_PRONOUN_SAID = re.compile(
    r"\b(?:he|she|they)\s+(?:said|says|added|told|noted|argued|warned|wrote)\b"
    r"|\b(?:said|says|added|told|noted|argued|warned|wrote)\s+(?:he|she|they)\b"
)
_CONTINUES = re.compile(r"\b(?:also|as well|too|both|likewise|along with)\b", re.IGNORECASE)
_NOT_NEW = frozenset(
    """The A An He She It They We I This That These Those His Her Its Their In On At But And
    Also After Before When While As For With From By If Mr Mrs Ms Dr President Minister Prime
    Foreign Chancellor Secretary January February March April May June July August September
    October November December Monday Tuesday Wednesday Thursday Friday Saturday Sunday""".split()
)


@dataclass
class Unit:
    """A lead or support item: one evidence sentence, maybe with its neighbour."""

    main: Evidence
    before: str = ""  # the antecedent sentence, verbatim from the same passage
    after: str = ""  # the sentence continuing a list

    def text(self) -> str:
        return " ".join(x for x in (self.before, self.main.text, self.after) if x)


def type_match(text: str, kind: Kind, question: str) -> float:
    """How well ``text`` carries the kind of answer asked for: 1 it does, 0.6–0.9 it partly
    does (a month for "when"), below 0.6 hardly or not at all."""
    if kind == "date":
        if _DAY_DATE.search(text):
            return 1.0
        if _SEASON_OR_MONTH.search(text) or _WEEKDAY.search(text):
            return 0.8
        return 0.6 if _MONTH_YEAR.search(text) else 0.0
    if kind == "quantity":
        return _quantity_fit(text, question)
    if kind in ("person", "place", "list"):
        new = _new_names(text, question)
        if kind == "list":
            return 1.0 if len(new) >= 2 else 0.5 if new else 0.0
        return 1.0 if new else 0.0
    return 0.0


def _quantity_fit(text: str, question: str) -> float:
    if re.search(r"\bhow long\b", question, re.IGNORECASE):
        return 1.0 if _DURATION.search(text) else 0.0
    undated = _MONTH_YEAR.sub(" ", _DAY_DATE.sub(" ", text))
    if not _QUANTITY.search(undated):
        return 0.0
    if re.search(r"\bby how much\b", question, re.IGNORECASE):
        return 1.0 if _BY_AMOUNT.search(undated) else 0.4
    if re.search(r"\b(?:share|percentage|proportion|per ?cent)\b", question, re.IGNORECASE):
        return 1.0 if re.search(r"%|\bper ?cent\b", undated, re.IGNORECASE) else 0.3
    if _MONEY_ASKED.search(question):
        return 1.0 if _MONEY.search(undated) else 0.3
    counted = re.search(r"\bhow many\s+(\w+)", question, re.IGNORECASE)
    if counted:
        # "how many stops" wants a number a few words before "stops"
        noun = stemmer().stemWord(counted.group(1).lower())
        for m in _COUNT.finditer(undated):
            following = content_terms(" ".join(undated[m.end() :].split()[:6]))
            if noun in following:
                return 1.0
        return 0.5
    return 1.0 if _UNIT.search(undated) else 0.6


def _new_names(text: str, question: str) -> set[str]:
    asked = set(re.findall(r"[A-Z][a-z]+", question))
    return {
        word for m in _NAME.finditer(text) if m.start() > 0  # a sentence's first word: no
        for word in m.group(0).replace("-", " ").split()
        if word not in _NOT_NEW and word not in asked
    }  # fmt: skip


def build(
    question: str, shape: Shape, evidence: list[Evidence], allowed: set[str] | None = None
) -> tuple[str, list[Citation]]:
    """The answer text (markers are passage ranks) and one citation per cited passage."""
    pool = _dedupe([e for e in evidence if allowed is None or e.passage.doc_id in allowed])
    if not pool:
        return "", []
    q_terms = set(content_terms(question))
    top = pool[0].score
    floor = max(0.6 * top, 0.2)
    lead: list[Unit] = []
    focus = _Focus(pool)
    names = set(content_terms(" ".join(e.text for e in shape.entities)))
    for kind, part in zip(shape.kinds, shape.parts, strict=True):
        if lead and any(type_match(u.text(), kind, question) >= 1.0 for u in lead):
            continue  # the lead already answers this part ("where and when")
        # what the part asks about, less the names it is about (those are the topic, met by
        # every sentence of the right article; ``constraints`` already checked them)
        part_terms = (set(content_terms(part)) - names) or set(content_terms(part)) or q_terms
        candidates = [e for e in pool if e.score >= 0.5 * top or _on(e, part_terms)]
        candidates = [e for e in candidates if all(e is not u.main for u in lead)]
        if not candidates:
            break

        def lead_score(
            u: Unit, kind: Kind = kind, terms: set[str] = part_terms, part: str = part
        ) -> tuple[bool, float]:
            # a sentence that carries what is asked (a date for "when") beats one that
            # only talks about it; among those, the best match to the question
            fit = type_match(u.text(), kind, question)
            related = focus.overlap(terms, u.main)
            score = u.main.score + 0.25 * fit + 0.4 * related + _ordinal(u, part)
            return fit >= 0.6, score

        lead.append(max((_unit(e, kind) for e in candidates), key=lead_score))
    on_topic = (q_terms - names) or q_terms
    support = _support(pool, lead, [e for e in pool if focus.overlap(on_topic, e) >= TOPIC], floor)
    return _compose(lead, support)


_ORDINAL = re.compile(
    r"\b(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|last|latest|next|"
    r"previous)\b",
    re.IGNORECASE,
)


def _ordinal(u: Unit, question: str) -> float:
    """ "The first round": a sentence about the third round is not the answer."""
    asked = {m.lower() for m in _ORDINAL.findall(question)}
    if not asked:
        return 0.0
    said = {m.lower() for m in _ORDINAL.findall(u.main.text)}
    return 0.3 if asked & said else -0.15 if said else 0.0


class _Focus:
    """Overlap with the question weighted by how rare each term is among the candidate
    sentences: "construction … begin" tells sentences of one article apart, "Vellmark tram"
    (in all of them) does not."""

    def __init__(self, pool: list[Evidence]) -> None:
        self.terms = {id(e): set(content_terms(e.text)) for e in pool}
        df: dict[str, int] = {}
        for terms in self.terms.values():
            for t in terms:
                df[t] = df.get(t, 0) + 1
        n = len(pool)
        self.idf = {t: math.log((n + 1) / (c + 0.5)) for t, c in df.items()}
        self.unseen = math.log((n + 1) / 0.5)

    def overlap(self, question_terms: set[str], e: Evidence) -> float:
        if not question_terms:
            return 0.0
        weights = {t: self.idf.get(t, self.unseen) for t in question_terms}
        have = self.terms.get(id(e)) or set(content_terms(e.text))
        total = sum(weights.values())
        return sum(w for t, w in weights.items() if t in have) / total if total else 0.0


def _on(e: Evidence, terms: set[str]) -> bool:
    return bool(terms) and overlap(terms, content_terms(e.text)) >= 0.5


def _dedupe(evidence: list[Evidence]) -> list[Evidence]:
    """One copy of each sentence: overlapping chunks repeat sentences at the same offset."""
    seen: set[tuple[str, int]] = set()
    texts: set[str] = set()
    out = []
    for e in evidence:  # best first
        key = (e.passage.doc_id, e.offset)
        norm = " ".join(e.text.lower().split())
        if key in seen or norm in texts:
            continue
        seen.add(key)
        texts.add(norm)
        out.append(e)
    return out


def _unit(e: Evidence, kind: Kind | None) -> Unit:
    unit = Unit(e)
    text = e.passage.text
    unnamed_quote = not e.speaker and _PRONOUN_SAID.search(e.text)
    if (_PRONOUN_START.match(e.text) or unnamed_quote) and e.index > 0:
        a, b = e.spans[e.index - 1]
        unit.before = text[a:b]
    if kind in ("list", "person"):
        # the list may go on a sentence or two later ("Russia vetoed the text. India and the
        # United Arab Emirates abstained as well.")
        terms = set(content_terms(e.text))
        for j in range(e.index + 1, min(e.index + 3, len(e.spans))):
            a, b = e.spans[j]
            following = text[a:b]
            if _CONTINUES.search(following) and terms & set(content_terms(following)):
                unit.after = text[e.spans[e.index + 1][0] : b]
                break
    return unit


def _support(
    pool: list[Evidence], lead: list[Unit], on_topic: list[Evidence], floor: float
) -> list[Unit]:
    picked = [u.main for u in lead]
    used_text = " ".join(u.text() for u in lead)
    per_doc: dict[str, int] = {}
    for u in lead:
        per_doc[u.main.passage.doc_id] = per_doc.get(u.main.passage.doc_id, 0) + 1
    out: list[Unit] = []
    candidates = [
        e for e in pool
        if e.score >= floor and e not in picked and e.text not in used_text
        and any(e is t for t in on_topic)
    ]  # fmt: skip
    while candidates and len(picked) < MAX_SENTENCES:
        best = max(candidates, key=lambda e: 0.75 * e.score - 0.25 * _redundancy(e, picked))
        candidates.remove(best)
        doc = best.passage.doc_id
        if per_doc.get(doc, 0) >= PER_ARTICLE or _redundancy(best, picked) > 0.9:
            continue
        unit = _unit(best, None)
        if unit.before and unit.before in used_text:
            unit.before = ""
        picked.append(best)
        used_text += " " + unit.text()
        per_doc[doc] = per_doc.get(doc, 0) + 1
        out.append(unit)
    return out


def _redundancy(e: Evidence, picked: list[Evidence]) -> float:
    if not picked or e.vector is None:
        return 0.0
    return max(float(np.dot(e.vector, p.vector)) for p in picked if p.vector is not None)


def _line(u: Unit) -> str:
    """Every sentence carries its marker, so each can be checked on its own."""
    e = u.main
    mark = f"[{e.passage.rank}]"
    said = f" — {e.speaker}" if e.speaker and any(q in e.text for q in _QUOTES) else ""
    parts = [f"{u.before} {mark}"] if u.before else []
    parts.append(f"{e.text}{said} {mark}")
    if u.after:
        parts += [f"{u.after[a:b]} {mark}" for a, b in sentence_spans(u.after)]
    return " ".join(parts)


def _compose(lead: list[Unit], support: list[Unit]) -> tuple[str, list[Citation]]:
    lines = [" ".join(_line(u) for u in lead)]
    if support:
        order: dict[str, int] = {}
        for u in [*lead, *support]:
            order.setdefault(u.main.passage.doc_id, len(order))
        support = sorted(support, key=lambda u: (order[u.main.passage.doc_id], u.main.offset))
        lines += ["", SUPPORT_HEADER, *(f"- {_line(u)}" for u in support)]
    citations: dict[int, tuple[float, Citation]] = {}
    for u in [*lead, *support]:
        e = u.main
        n = e.passage.rank
        # the quote is the best-scoring sentence taken from that passage, verbatim
        if n not in citations or e.score > citations[n][0]:
            citations[n] = (e.score, Citation(n=n, rank=n, passage=e.passage, quote=e.text))
    return "\n".join(lines), [citations[n][1] for n in sorted(citations)]
