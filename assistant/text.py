"""Text helpers shared by chunking, extractive answers and citation checks.

Sentence spans keep character offsets into the original text, so a passage or quote can always
be traced back to where it came from.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

_ABBREV = {
    "mr", "mrs", "ms", "dr", "prof", "gen", "sen", "rep", "gov", "lt", "col", "sgt", "capt",
    "st", "jr", "sr", "vs", "etc", "inc", "ltd", "co", "corp", "no", "jan", "feb", "mar", "apr",
    "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "u.s", "u.k", "u.n", "e.g", "i.e",
    "a.m", "p.m", "mt", "ft", "approx", "dept", "est", "fig", "pres",
}  # fmt: skip
# a sentence ends at . ! ? (plus closing quotes and any citation markers like " [1][2]")
# before a capital or digit, at a CJK full stop, exclamation or question mark (。！？, no space
# needed), at a blank line, or before a bullet. A run of stops is matched from its first mark
# only and never backtracked into, so the scan stays linear on "!!!!…" or "。。。。…".
_BOUNDARY = re.compile(
    r"(?<![.!?…])[.!?…]++[\"'”’)\]]*+(?:\s*\[\d+(?:\s*[,;–-]\s*\d+)*\])*\s+(?=[\"'“‘(]?[A-Z0-9])"
    r"|(?<![。！？｡])[。！？｡]++[」』”’）》〉】)\]\"']*+\s*"
    r"|\n\s*\n|\n(?=\s*[-*•])"
)
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’\-]*")
_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?:st|nd|rd|th)?(?![\w])")
_MONTHS = (
    "january february march april may june july august september october november december"
).split()
_MONTH_ALTERNATIVES = "|".join(
    m[:3] + ("(?:t|tember)?" if m == "september" else f"(?:{m[3:]})?") for m in _MONTHS
)
_MONTH_RE = re.compile(rf"\b({_MONTH_ALTERNATIVES})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b", re.I)

_MONTH_ABBREV = re.compile(
    r"\b(Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec)\.?(?=\s+\d{1,2}\b)", re.IGNORECASE
)
_MONTH_BY_ABBREV = {m[:3]: m.capitalize() for m in _MONTHS} | {"sept": "September"}


def canonical_months(text: str) -> str:
    """``Feb. 25`` → ``February 25``: a day written either way is the same term."""
    return _MONTH_ABBREV.sub(lambda m: _MONTH_BY_ABBREV[m.group(1).lower()], text)


STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself
    yourselves also said says say according would could might may must shall us one two new
    will week year years last first told since like get got make made many much""".split()
)


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(start, end) offsets of the sentences in ``text[start:end]``, whitespace trimmed."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    cursor = start
    for match in _BOUNDARY.finditer(text, start, end):
        cut = match.start() + len(match.group(0).rstrip())
        if match.group(0).strip() and _is_abbreviation(text, match.start()):
            continue
        _push(text, spans, cursor, cut)
        cursor = match.end()
    _push(text, spans, cursor, end)
    return spans


def _is_abbreviation(text: str, dot: int) -> bool:
    if text[dot] != ".":
        return False
    word_start = dot
    while word_start > 0 and (text[word_start - 1].isalpha() or text[word_start - 1] == "."):
        word_start -= 1
    word = text[word_start:dot].lower()
    return word in _ABBREV or (len(word) == 1 and text[word_start].isupper())


def _push(text: str, spans: list[tuple[int, int]], a: int, b: int) -> None:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    if b > a:
        spans.append((a, b))


def split_sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in sentence_spans(text)]


_local = threading.local()


def stemmer():  # type: ignore[no-untyped-def]
    """An English Snowball stemmer for this thread (PyStemmer objects are not thread-safe)."""
    found = getattr(_local, "stemmer", None)
    if found is None:
        import Stemmer

        found = _local.stemmer = Stemmer.Stemmer("english")
    return found


def words(text: str) -> list[str]:
    return [w.lower().replace("’", "'").strip("'-") for w in _WORD.findall(text)]


def content_terms(text: str) -> list[str]:
    """Stemmed content words, stopwords removed, in order."""
    kept = [
        w for w in words(canonical_months(text))
        if w and w not in STOPWORDS and (len(w) > 1 or w.isdigit())
    ]  # fmt: skip
    return stemmer().stemWords(kept) if kept else []


def numbers_and_dates(text: str) -> set[str]:
    """Normalised numbers ("6,000" -> "6000") and day-of-month dates ("march 7") in ``text``."""
    found = {m.group(1).replace(",", "") for m in _NUMBER.finditer(text)}
    for month, day in _MONTH_RE.findall(text):
        found.add(f"{month[:3].lower()} {int(day)}")
        found.discard(day)
    return found


def numbers_supported(sentence: str, passage: str) -> bool:
    """Every number and date in ``sentence`` also appears in ``passage``."""
    needed = numbers_and_dates(sentence)
    if not needed:
        return True
    have = numbers_and_dates(passage)
    have |= {n.split(" ")[1] for n in have if " " in n}
    return all(n in have for n in needed)


def overlap(query_terms: Iterable[str], text_terms: Iterable[str]) -> float:
    """Share of the distinct query terms that occur in the text."""
    q = set(query_terms)
    return len(q & set(text_terms)) / len(q) if q else 0.0
