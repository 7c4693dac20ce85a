"""Relative dates in a question ("this week", "last month", "on Tuesday", "in March"), read
against the question's as-of date into a window of publication dates.

Explicit dates ("on 7 March 2022", "since March 1", "in 2020") are found and parsed by
``dateparser``'s ``search_dates`` with the as-of date as its relative base, and their extent
(day, week, month, year) comes from ``DateDataParser``'s period. The phrases dateparser reads as
a single day but a reader means as a span are windowed here: "this week" is the seven days
ending on the as-of date (a news week, as a weekly quiz means it), "last week" the calendar
week (Monday–Sunday) before the as-of date's, "this month" from the first to the as-of date,
"last month" the calendar month before it, "past N days/weeks" the N days/weeks up to it.

What dateparser over-reads is refused: a found date must contain a digit or be a month or
weekday name after a preposition ("in March", "on Tuesday", "since February"), so "May" the
name, "Will China…", "the March on Rome" and "second" are not dates.
"""

from __future__ import annotations

import calendar
import logging
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import lru_cache

from assistant.types import Filters, Timeframe

log = logging.getLogger(__name__)

_WEEKDAYS = [d.lower() for d in calendar.day_name]
_MONTHS = [m.lower() for m in calendar.month_name if m]
_N = r"(?P<n>\d{1,3}|a|one|two|three|four|five|six|seven|eight|nine|ten|few|couple of)"
_NUMBERS = {"a": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
_NUMBERS |= {"seven": 7, "eight": 8, "nine": 9, "ten": 10, "few": 3, "couple of": 2}
_RELATIVE = re.compile(
    r"\b(?P<phrase>"
    r"(?P<today>today|tonight)"
    r"|(?P<yesterday>yesterday)"
    r"|(?P<this>this|current)\s+(?P<this_unit>week|month|year)"
    r"|(?P<last>last|previous|past)\s+(?P<last_unit>week|month|year)"
    r"|(?:in\s+|over\s+|during\s+)?(?:the\s+)?(?:last|past)\s+"
    + _N
    + r"\s+(?P<n_unit>days?|weeks?)"
    r"|(?P<wd_prep>on|last|this|since)\s+(?P<weekday>" + "|".join(_WEEKDAYS) + r")"
    r")\b",
    re.IGNORECASE,
)
_PREPOSITION = re.compile(
    r"^(in|on|since|during|from|by|until|before|after|early|late|mid|of)\s", re.IGNORECASE
)
_NAMED = re.compile(r"\b(" + "|".join(_MONTHS + _WEEKDAYS) + r")\b", re.IGNORECASE)
_SINCE = re.compile(r"\bsince\s*$", re.IGNORECASE)
REPORTING_DAYS = 2  # a period's last events are reported up to this many days after it


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _relative(match: re.Match[str], as_of: date) -> tuple[date, date]:
    g = match.groupdict()
    if g["today"]:
        return as_of, as_of
    if g["yesterday"]:
        return as_of - timedelta(days=1), as_of - timedelta(days=1)
    if g["this_unit"]:
        unit = g["this_unit"].lower()
        if unit == "week":
            return as_of - timedelta(days=6), as_of
        if unit == "month":
            return as_of.replace(day=1), as_of
        return as_of.replace(month=1, day=1), as_of
    if g["last_unit"]:
        unit, word = g["last_unit"].lower(), g["last"].lower()
        if word == "past":  # "the past week": the 7 days up to now
            days = {"week": 7, "month": 30, "year": 365}[unit]
            return as_of - timedelta(days=days - 1), as_of
        if unit == "week":
            monday = as_of - timedelta(days=as_of.weekday() + 7)
            return monday, monday + timedelta(days=6)
        if unit == "month":
            end = as_of.replace(day=1) - timedelta(days=1)
            return end.replace(day=1), end
        return date(as_of.year - 1, 1, 1), date(as_of.year - 1, 12, 31)
    if g["n_unit"]:
        raw = g["n"].lower()
        n = int(raw) if raw.isdigit() else _NUMBERS.get(raw, 1)
        days = n * (7 if g["n_unit"].lower().startswith("week") else 1)
        return as_of - timedelta(days=max(days, 1) - 1), as_of
    weekday = _WEEKDAYS.index(g["weekday"].lower())
    back = (as_of.weekday() - weekday) % 7
    if g["wd_prep"].lower() == "last" and back == 0:
        back = 7
    day = as_of - timedelta(days=back)
    if g["wd_prep"].lower() == "since":
        return day, as_of
    return day, day


def _plausible(found: str, before: str) -> bool:
    """A date dateparser found that a reader would also call one (``before``: the question's
    words before it)."""
    if any(ch.isdigit() for ch in found):
        return True
    words = before.split()
    preceded = f"{words[-1]} " if words else ""
    after_preposition = _PREPOSITION.match(found.strip()) or _PREPOSITION.match(preceded)
    return bool(_NAMED.search(found)) and bool(after_preposition)


def _a_year(found: str, before: str, day: date) -> bool:
    """A bare number is a year only as "in 2020", "since 2019", "of 2021" (1900 or later)."""
    words = before.split()
    phrase = (f"{words[-1]} " if words else "") + found.strip()
    shape = r"(?:.*\s)?(?:in|since|of|during|from|until|before|after)\s+\d{4}"
    return day.year >= 1900 and bool(re.fullmatch(shape, phrase, re.IGNORECASE))


@lru_cache(maxsize=1)
def _parser_languages() -> list[str]:
    return ["en"]


def _explicit(question: str, as_of: date) -> tuple[date, date, str] | None:
    from dateparser.date import DateDataParser
    from dateparser.search import search_dates

    base = datetime.combine(as_of, datetime.min.time())
    options = {"RELATIVE_BASE": base, "PREFER_DATES_FROM": "past"}
    try:
        found = search_dates(question, languages=_parser_languages(), settings=options)
    except Exception as exc:  # dateparser's own failures on odd input: no date then
        log.debug("search_dates failed on %r: %s", question, exc)
        return None
    parser = DateDataParser(languages=_parser_languages(), settings=options)
    for text, _ in found or ():
        before = question[: question.find(text)] if text in question else ""
        if not _plausible(text, before) or _RELATIVE.search(text):
            continue
        words = _PREPOSITION.sub("", text.strip()).strip()
        data = parser.get_date_data(words)
        if data.date_obj is None:
            continue
        day, period = data.date_obj.date(), data.period or "day"
        if period == "year" and not _a_year(text, before, day):
            continue  # "5" or "1000 troops" read as a year
        if period == "month":
            since, until = day.replace(day=1), _month_end(day)
        elif period == "year":
            since, until = date(day.year, 1, 1), date(day.year, 12, 31)
        elif period == "week":
            since = day - timedelta(days=day.weekday())
            until = since + timedelta(days=6)
        else:
            since = until = day
        phrase = text.strip()
        if phrase.lower().startswith("since") or _SINCE.search(before):
            until = as_of
            phrase = phrase if phrase.lower().startswith("since") else f"since {phrase}"
        return since, until, phrase
    return None


@lru_cache(maxsize=4096)
def resolve(question: str, as_of: date) -> Timeframe | None:
    """The publication dates the question's words ask for, or None when they ask for none.

    A named day ("on March 10", "on Tuesday", "yesterday") is when something happened: its
    news is printed that day or any day after, so the window runs from it to ``as_of``. A
    named period ("last week", "in March", "in 2020") runs to its end plus
    :data:`REPORTING_DAYS`. Never past ``as_of``."""
    window: tuple[date, date, str] | None = None
    match = _RELATIVE.search(question)
    if match:
        since, until = _relative(match, as_of)
        window = (since, until, match.group("phrase"))
    else:
        window = _explicit(question, as_of)
    if window is None:
        return None
    since, until, phrase = window
    until = as_of if since == until else min(until + timedelta(days=REPORTING_DAYS), as_of)
    if since > until:
        return None
    return Timeframe(since=since, until=until, phrase=phrase)


def apply(
    question: str,
    filters: Filters | None,
    today: date,
    holds: Callable[[Filters], bool] | None = None,
) -> tuple[Filters, Timeframe | None]:
    """``filters`` with their as-of date set (``today`` when unset) and narrowed to the
    question's own window, and that window (None when the question names none).

    ``holds(filters)``: whether any article passes them. A window no article falls in is not
    applied (``Timeframe.applied`` False): the question is answered from everything up to the
    as-of date, or abstained on because nothing answers it, never because a window was empty.
    """
    f = filters or Filters()
    as_of = f.as_of or today
    timeframe = resolve(question, as_of)
    asked = f.model_copy(update={"as_of": as_of})
    if timeframe is None:
        return asked, None
    since = max(d for d in (f.since, timeframe.since) if d is not None)
    until = min(d for d in (f.until, timeframe.until) if d is not None)
    scoped = asked.model_copy(update={"since": since, "until": until})
    if holds is not None and not holds(scoped):
        log.info("no article in %s: the window is not applied", timeframe.label)
        return asked, timeframe.model_copy(update={"applied": False})
    return scoped, timeframe
