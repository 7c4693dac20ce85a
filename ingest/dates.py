"""Publication dates as feeds and pages write them, parsed into timezone-aware datetimes.

ISO 8601 (and ``YYYY/MM/DD``) is read directly; anything else goes to ``dateparser`` (a
maintained parser of dates in 200+ languages): RFC 822 (``Mon, 07 Mar 2022 10:15:00 +0100``),
``March 7, 2022``, ``7. März 2022``, ``2022年3月7日``, Unix timestamps. Given the article's
language, numeric dates follow its order (``10/09/2024`` is 10 September in a German article,
October 9 in an English one or when the language is unknown). Relative dates (``yesterday``)
and dates without a day, month and year are refused: an archive's "yesterday" is not the day
it was ingested, and a guessed day would put an article in the wrong week.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

log = logging.getLogger(__name__)

MAX_DATE_CHARS = 100  # longer values are not dates (and would make the parser crawl)
_SETTINGS = {
    "RETURN_AS_TIMEZONE_AWARE": True,
    "TIMEZONE": "UTC",  # a date without a zone is taken as UTC, as ISO dates are
    "REQUIRE_PARTS": ["day", "month", "year"],
    "PARSERS": ["timestamp", "custom-formats", "absolute-time"],  # no "relative-time"
}


def parse_date(value: Any, language: str | None = None) -> datetime | None:
    """A timezone-aware datetime for ``value``, or None when it is not a usable date."""
    if value is None or isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = str(value).strip()
    if not text or len(text) > MAX_DATE_CHARS:
        return None
    parsed = _iso(text)
    if parsed is None:
        parsed = _dateparser(text, _language(language))
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def iso_date(value: Any, language: str | None = None) -> str:
    """``YYYY-MM-DD`` for a date at midnight, a full ISO datetime otherwise, "" if unusable."""
    parsed = parse_date(value, language)
    if parsed is None:
        return ""
    if parsed.hour == parsed.minute == parsed.second == 0:
        return parsed.date().isoformat()
    return parsed.isoformat()


def _iso(text: str) -> datetime | None:
    text = text.replace("/", "-")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    try:
        return datetime.combine(date.fromisoformat(text[:10]), datetime.min.time())
    except ValueError:
        return None


def _language(value: str | None) -> str | None:
    """``de`` for ``de-DE``/``de_AT``; None for what dateparser does not know."""
    if not value or not isinstance(value, str):
        return None
    code = value.strip().replace("_", "-").split("-")[0].lower()
    return code if code in _known_languages() else None


@lru_cache(maxsize=1)
def _known_languages() -> frozenset[str]:
    from dateparser.languages.loader import default_loader

    return frozenset(default_loader.get_locale_map().keys())


@lru_cache(maxsize=4096)
def _dateparser(text: str, language: str | None) -> datetime | None:
    import dateparser

    try:
        return dateparser.parse(
            text, languages=[language] if language else None, settings=_SETTINGS
        )
    except (ValueError, TypeError, OverflowError, LookupError, RecursionError) as exc:
        log.debug("dateparser failed on %r: %s", text, exc)
        return None
