"""Check an answer sentence by sentence against the passages it cites.

Markers that point at no passage are removed first. Then every sentence is one of:

* cited and supported by a cited passage (``support.SupportChecker``): kept, with only the
  markers of the passages that support it;
* cited and supported by none of them: removed ("not supported by the cited passage [n]");
* not cited but factual (a number, a date, a name, content words): removed ("no citation for a
  factual claim");
* not factual, such as "Here is what the articles report:": kept as connecting text.

``verify_answer`` does all of this; with ``mode="mark"`` failing sentences stay in the text,
flagged with `` [unsupported]``. An optional ``entail`` callable (the LLM second pass) is asked
only about sentences the offline check kept and can only remove more.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from assistant.answering.claim_checks import is_factual
from assistant.answering.support import (
    LEXICAL_MIN,
    MIXED,
    SEMANTIC_MIN,
    Support,
    SupportChecker,
)
from assistant.models.embeddings import embed_array
from assistant.text import sentence_spans
from assistant.types import Citation, Passage, says_abstain

__all__ = [
    "FLAG",
    "LEXICAL_MIN",
    "MARKER",
    "MIXED",
    "NO_CITATION",
    "SEMANTIC_MIN",
    "Claim",
    "Removed",
    "SentenceCheck",
    "Support",
    "SupportChecker",
    "Verified",
    "check_citations",
    "clean_markers",
    "split_claims",
    "strip_markers",
    "unsupported_reason",
    "verify_answer",
]  # fmt: skip
MARKER = re.compile(r"(\s*)\[(\d+(?:\s*[,;–-]\s*\d+)*)\]")


@dataclass
class Claim:
    text: str  # the sentence without its markers
    cited: list[int]
    supported_by: list[int] = field(default_factory=list)

    @property
    def supported(self) -> bool:
        return bool(self.supported_by)


def _numbers(group: str) -> list[int]:
    out: list[int] = []
    for part in re.split(r"\s*[,;]\s*", group):
        if re.fullmatch(r"\d+\s*[–-]\s*\d+", part):
            a, b = (int(x) for x in re.split(r"\s*[–-]\s*", part))
            out.extend(range(a, b + 1) if 0 < b - a < 10 else [a, b])
        elif part.strip().isdigit():
            out.append(int(part))
    return out


def strip_markers(text: str) -> str:
    return MARKER.sub("", text).strip()


def clean_markers(text: str, n_passages: int) -> tuple[str, int]:
    """Drop references to passages that do not exist; return (text, how many dropped)."""
    dropped = 0

    def fix(match: re.Match[str]) -> str:
        nonlocal dropped
        nums = _numbers(match.group(2))
        good = [n for n in dict.fromkeys(nums) if 1 <= n <= n_passages]
        dropped += sum(not 1 <= n <= n_passages for n in nums)
        return match.group(1) + "".join(f"[{n}]" for n in good) if good else ""

    return MARKER.sub(fix, text), dropped


def split_claims(text: str) -> list[Claim]:
    claims = []
    for a, b in sentence_spans(text):
        sentence = text[a:b]
        cited = [n for m in MARKER.finditer(sentence) for n in _numbers(m.group(2))]
        claims.append(Claim(strip_markers(sentence), list(dict.fromkeys(cited))))
    return claims


def check_citations(
    text: str, passages: list[Passage], checker: SupportChecker
) -> tuple[str, list[Claim], list[Citation], int]:
    """Returns (cleaned text, claims, one citation per cited passage, markers dropped)."""
    cleaned, dropped = clean_markers(text, len(passages))
    claims = split_claims(cleaned)
    cited_claims = [c for c in claims if c.cited]
    vecs = embed_array(checker.embedder, [c.text for c in cited_claims]) if cited_claims else []
    verdicts: dict[int, list[Support]] = {}
    for claim, vec in zip(cited_claims, vecs, strict=True):
        for n in claim.cited:
            support = checker.check(claim.text, passages[n - 1], vec)
            verdicts.setdefault(n, []).append(support)
            if support.supported:
                claim.supported_by.append(n)
    citations = []
    for n in sorted(verdicts):
        supports = verdicts[n]
        best = max(supports, key=lambda s: s.semantic)
        citations.append(
            Citation(
                n=n,
                passage=passages[n - 1],
                quote=best.quote,
                supported=all(s.supported for s in supports),
            )
        )
    return cleaned, claims, citations, dropped


# -- sentence-level verification --------------------------------------------------------------

Mode = Literal["remove", "mark"]
Kind = Literal["supported", "unsupported", "uncited", "connective"]
Entail = Callable[[Sequence[str], str], bool | None]
FLAG = " [unsupported]"
NO_CITATION = "no citation for a factual claim"
CUT_OFF = "cut off at the length limit"
_ENDED = re.compile(r"[.!?…][\"'”’)]*(?:\s*\[\d+(?:\s*[,;–-]\s*\d+)*\])*\s*$|\]\s*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")
_MARKER_RUN = re.compile(r"(\s*)((?:\[\d+(?:\s*[,;–-]\s*\d+)*\])+)")
_BARE_ITEM = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])?\s*$")


def unsupported_reason(cited: Sequence[int]) -> str:
    return "not supported by the cited passage " + "".join(f"[{n}]" for n in cited)


@dataclass
class Removed:
    """A sentence the answer lost (or, in "mark" mode, kept with a flag), and why."""

    text: str  # as the model wrote it, markers to existing passages included
    reason: str  # unsupported_reason(cited) or NO_CITATION
    cited: list[int] = field(default_factory=list)
    detail: str = ""  # what the check found, e.g. "Geneva not in the passage"


@dataclass
class SentenceCheck:
    text: str  # the sentence with its (cleaned) markers
    claim: str  # without markers or list bullets: what was checked
    cited: list[int]
    kind: Kind
    supported_by: list[int] = field(default_factory=list)
    detail: str = ""


@dataclass
class Verified:
    text: str  # what the user gets
    citations: list[Citation]  # one per passage cited in ``text``
    removed: list[Removed]
    sentences: list[SentenceCheck]  # every sentence of the reply, in order
    dropped_markers: int  # markers to passages that do not exist
    mode: Mode = "remove"

    @property
    def supported_kept(self) -> int:
        """Sentences delivered that a cited passage supports."""
        return sum(s.kind == "supported" for s in self.sentences)

    @property
    def has_support(self) -> bool:
        return self.supported_kept > 0


def verify_answer(
    text: str,
    passages: Sequence[Passage],
    checker: SupportChecker,
    *,
    mode: Mode = "remove",
    entail: Entail | None = None,
    truncated: bool = False,
) -> Verified:
    """Check every sentence of a model's reply; see the module docstring for the rules.

    ``truncated``: the reply was cut at the token budget (``CallInfo.truncated``); its last
    sentence, when it does not end like a sentence, is removed as cut off."""
    cleaned, dropped = clean_markers(text.strip(), len(passages))
    spans = sentence_spans(cleaned)
    checks = [_classify(cleaned[a:b]) for a, b in spans]
    if truncated and checks and not _ENDED.search(checks[-1].text):
        checks[-1].kind = "uncited"
        checks[-1].detail = CUT_OFF
    cited = [c for c in checks if c.kind == "unsupported" and c.detail != CUT_OFF]
    vectors = embed_array(checker.embedder, [c.claim for c in cited]) if cited else []
    supports: dict[int, list[Support]] = {}
    for check, vec in zip(cited, vectors, strict=True):
        reasons = []
        for n in check.cited:
            support = checker.check(check.claim, passages[n - 1], vec)
            supports.setdefault(n, []).append(support)
            if support.supported:
                check.supported_by.append(n)
            else:
                reasons.append(f"[{n}]: {support.reason}")
        if not check.supported_by and len(check.cited) > 1:
            joint = checker.check(check.claim, _joined([passages[n - 1] for n in check.cited]), vec)
            if joint.supported:  # a sentence that combines facts of several cited passages
                check.supported_by = list(check.cited)
        if check.supported_by:
            check.kind = "supported"
        else:
            check.detail = "; ".join(reasons)
    if entail is not None:
        _second_pass(checks, passages, entail)
    removed = [
        Removed(
            c.text,
            CUT_OFF
            if c.detail == CUT_OFF
            else NO_CITATION
            if c.kind == "uncited"
            else unsupported_reason(c.cited),
            list(c.cited),
            c.detail,
        )
        for c in checks
        if c.kind in ("unsupported", "uncited")
    ]
    delivered = _assemble(cleaned, spans, checks, mode)
    citations = _citations(checks, passages, supports, mode)
    return Verified(delivered, citations, removed, checks, dropped, mode)


def _joined(passages: list[Passage]) -> Passage:
    first = passages[0]
    return Passage(
        rank=0,
        chunk_id="+".join(p.chunk_id for p in passages),
        doc_id=first.doc_id,
        text="\n".join(p.text for p in passages),
        score=0.0,
        title=" / ".join(p.title for p in passages if p.title),
        source=" / ".join(p.source for p in passages if p.source),
        published_at=first.published_at,
    )


def _classify(sentence: str) -> SentenceCheck:
    cited = [n for m in MARKER.finditer(sentence) for n in _numbers(m.group(2))]
    claim = _LIST_ITEM.sub("", strip_markers(sentence)).strip().strip("*_#").strip()
    cited = list(dict.fromkeys(cited))
    if not any(ch.isalpha() for ch in claim) or says_abstain(claim):
        return SentenceCheck(sentence, claim, cited, "connective")
    if cited:
        return SentenceCheck(sentence, claim, cited, "unsupported")  # until a passage supports it
    return SentenceCheck(sentence, claim, cited, "uncited" if is_factual(claim) else "connective")


def _second_pass(checks: list[SentenceCheck], passages: Sequence[Passage], entail: Entail) -> None:
    """Ask ``entail`` about each supported sentence; a "no" removes it, an error keeps it."""
    for check in checks:
        if check.kind != "supported":
            continue
        premises = [passages[n - 1].text for n in check.supported_by]
        if entail(premises, check.claim) is False:
            check.kind = "unsupported"
            check.detail = "the LLM check found the passage does not entail it"
            check.supported_by = []


def _assemble(
    cleaned: str, spans: list[tuple[int, int]], checks: list[SentenceCheck], mode: Mode
) -> str:
    pieces: list[str] = [cleaned[: spans[0][0]] if spans else cleaned]
    for i, ((_, b), check) in enumerate(zip(spans, checks, strict=True)):
        gap = cleaned[b : spans[i + 1][0]] if i + 1 < len(spans) else cleaned[b:]
        if check.kind == "supported":
            keep = set(check.supported_by)
            pieces.append(_MARKER_RUN.sub(lambda m, keep=keep: _only(m, keep), check.text))
        elif check.kind == "connective":
            pieces.append(check.text)
        elif mode == "mark":
            pieces.append(check.text + FLAG)
        else:  # removed: the gaps before and after it become one, the wider of the two
            if i and gap.count("\n") > pieces[-1].count("\n"):
                pieces[-1] = gap
            continue
        pieces.append(gap)
    lines = []
    for line in "".join(pieces).splitlines():
        line = re.sub(r"(?<=\S) {2,}", " ", line).rstrip()
        if _BARE_ITEM.match(line) and line.strip():
            continue  # a bullet whose sentence was removed
        lines.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _only(match: re.Match[str], keep: set[int]) -> str:
    """A run of adjacent markers ("[1][2]") with only the passages in ``keep``."""
    found = [n for group in re.findall(r"\[([^\]]*)\]", match.group(2)) for n in _numbers(group)]
    nums = [n for n in dict.fromkeys(found) if n in keep]
    return match.group(1) + "".join(f"[{n}]" for n in nums) if nums else ""


def _citations(
    checks: list[SentenceCheck],
    passages: Sequence[Passage],
    supports: dict[int, list[Support]],
    mode: Mode,
) -> list[Citation]:
    backed: dict[int, bool] = {}
    for check in checks:
        if check.kind == "supported":
            for n in check.supported_by:
                backed[n] = backed.get(n, True)
        elif check.kind == "unsupported" and mode == "mark":
            for n in check.cited:
                backed[n] = False
    out = []
    for n in sorted(backed):
        best = max(supports[n], key=lambda s: (s.supported, s.semantic))
        out.append(Citation(n=n, passage=passages[n - 1], quote=best.quote, supported=backed[n]))
    return out
