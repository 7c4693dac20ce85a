"""Near misses: evidence on the question's topic that is not about what the question names.

"What rate did the European Central Bank set in March 2022?" over articles about the Fed finds
relevant-looking passages (rates, March 2022), but none names the ECB. The question's named
things (``question.entities``) and day dates must all be met by one retrieved article (its
title and retrieved passages); when none is, the answer abstains and says in one line what the
articles cover instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from assistant.answering.question import Entity, Shape, mentions, undot
from assistant.text import numbers_and_dates
from assistant.types import Passage

_MONTH_NUM = {m: i for i, m in enumerate(
    "jan feb mar apr may jun jul aug sep oct nov dec".split(), start=1)}  # fmt: skip
_DAY_DATE = re.compile(
    r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(\d{1,2})(?:st|nd|rd|th)?"
    r"(?:,?\s+(\d{4}))?\b",
    re.IGNORECASE,
)
REPORT_LAG_DAYS = 7  # an article published up to a week after a day can report on it


@dataclass(frozen=True)
class DayDate:
    month: int
    day: int
    year: int | None

    def written_in(self, text: str) -> bool:
        return any(
            _MONTH_NUM[m.group(1).lower()[:3]] == self.month and int(m.group(2)) == self.day
            for m in _DAY_DATE.finditer(text)
        )

    def reported_by(self, published_at: str) -> bool:
        """An article dated the same day or up to a week after (it may say "on Tuesday")."""
        try:
            published = date.fromisoformat(published_at[:10])
        except ValueError:
            return False
        try:
            day = date(self.year or published.year, self.month, self.day)
        except ValueError:
            return False
        return day <= published <= day + timedelta(days=REPORT_LAG_DAYS)


_MONTH_YEAR = re.compile(
    r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(?:of\s+)?(\d{4})\b",
    re.IGNORECASE,
)
_MONTH_DAY_YEAR = re.compile(
    r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2}(?:st|nd|rd|th)?,?"
    r"\s+(\d{4})\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class MonthDate:
    """ "In June 2019": the article says so, or was published that month."""

    month: int
    year: int

    def met(self, text: str, published_at: str) -> bool:
        if published_at[:7] == f"{self.year:04d}-{self.month:02d}":
            return True
        said = [*_MONTH_YEAR.finditer(text), *_MONTH_DAY_YEAR.finditer(text)]
        return any(
            _MONTH_NUM[m.group(1).lower()[:3]] == self.month and int(m.group(2)) == self.year
            for m in said
        )

    def __str__(self) -> str:
        return f"{date(2000, self.month, 1).strftime('%B')} {self.year}"


def month_dates(question: str) -> list[MonthDate]:
    return [
        MonthDate(_MONTH_NUM[m.group(1).lower()[:3]], int(m.group(2)))
        for m in _MONTH_YEAR.finditer(question)
        if 1900 <= int(m.group(2)) <= 2100
    ]


def figures(question: str) -> set[str]:
    """Numbers the question states ("50 basis points", "141 votes"), not years or days."""
    found = numbers_and_dates(question)
    return {
        n for n in found
        if " " not in n and not (len(n) == 4 and n[:2] in ("19", "20")) and len(n) >= 2
    }  # fmt: skip


def day_dates(question: str) -> list[DayDate]:
    out = []
    for m in _DAY_DATE.finditer(question):
        day = int(m.group(2))
        if 1 <= day <= 31:
            out.append(DayDate(_MONTH_NUM[m.group(1).lower()[:3]], day,
                               int(m.group(3)) if m.group(3) else None))  # fmt: skip
    return out


@dataclass
class Coverage:
    """Which retrieved articles meet every constraint; why none does, when none does."""

    satisfying: set[str]  # doc ids
    missing: list[str]  # what no article names ("the European Central Bank", "March 29")
    closest: Passage | None

    @property
    def met(self) -> bool:
        return bool(self.satisfying)

    def explain(self) -> str:
        """One line: what is missing and what the articles cover instead."""
        what = _join(self.missing)
        line = (
            f"The articles found do not mention {what} together"
            if not self.missing_alone
            else f"The articles found do not mention {what}"
        )
        if self.closest is not None:
            p = self.closest
            where = ", ".join(x for x in (p.source, p.published_at[:10]) if x)
            title = p.title or "an untitled article"
            line += f"; the closest is “{title}”" + (f" ({where})" if where else "")
        return line + "."

    missing_alone: bool = True


def check(shape: Shape, question: str, passages: list[Passage]) -> Coverage:
    """Articles (by doc id) among ``passages`` that name every entity and day in ``question``."""
    closest = passages[0] if passages else None
    entities = list(shape.entities)
    days = day_dates(question)
    numbers = figures(question)
    months = month_dates(question)
    if not entities and not days and not numbers and not months:
        return Coverage({p.doc_id for p in passages}, [], closest)
    texts: dict[str, str] = {}
    dated: dict[str, str] = {}
    for p in passages:
        texts[p.doc_id] = texts.get(p.doc_id, undot(p.title)) + "\n" + undot(p.text)
        dated[p.doc_id] = p.published_at
    stated = {doc: numbers_and_dates(text) for doc, text in texts.items()}
    satisfying = {
        doc for doc, text in texts.items()
        if all(mentions(e, text) for e in entities)
        and all(d.written_in(text) or d.reported_by(dated[doc]) for d in days)
        and numbers <= stated[doc]
        and all(mo.met(text, dated[doc]) for mo in months)
    }  # fmt: skip
    if satisfying:
        return Coverage(satisfying, [], closest)
    everywhere = "\n".join(texts.values())
    absent = [e for e in entities if not mentions(e, everywhere)]
    absent_days = [d for d in days if not any(
        d.written_in(t) or d.reported_by(dated[doc]) for doc, t in texts.items())]  # fmt: skip
    absent_numbers = sorted(n for n in numbers if not any(n in x for x in stated.values()))
    absent_months = [
        str(mo) for mo in months if not any(mo.met(t, dated[doc]) for doc, t in texts.items())
    ]
    missing = [_name(e) for e in absent] + [_day(d) for d in absent_days] + absent_numbers
    missing += absent_months
    if missing:
        return Coverage(set(), missing, closest)
    # each is named somewhere, but no one article names them all
    named = [_name(e) for e in entities] + [_day(d) for d in days] + sorted(numbers)
    named += [str(mo) for mo in months]
    return Coverage(set(), named, closest, missing_alone=False)


def _name(e: Entity) -> str:
    return f"the {e.text}" if e.kind == "org" and not e.text.isupper() else e.text


def _day(d: DayDate) -> str:
    month = date(2000, d.month, 1).strftime("%B")
    return f"{month} {d.day}" + (f", {d.year}" if d.year else "")


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
