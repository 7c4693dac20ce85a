"""Remove secrets from text before it is logged or shown: configured keys, bearer tokens, sk-…

A server's error body may echo the request's Authorization header or the key itself; that text
must never reach a log line or an error message. Every :class:`SecretStr` held by the settings
is replaced by ``[redacted]``, and so is anything shaped like a bearer token or an OpenAI-style
key, configured or not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import SecretStr

MASK = "[redacted]"
_PATTERNS = (
    re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{6,}"),
    re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{6,}"),
    re.compile(r"(?i)\b(api[_-]?key|authorization|x-api-key)([\"'\s:=]+)[^\s\"',;}]{6,}"),
)


def secrets_of(settings: object | None) -> list[str]:
    """The plain values of every ``SecretStr`` field set on ``settings`` (longest first)."""
    if settings is None:
        return []
    fields = getattr(type(settings), "model_fields", {})
    values = [getattr(settings, name, None) for name in fields]
    found = {v.get_secret_value() for v in values if isinstance(v, SecretStr)}
    return sorted((s for s in found if len(s) >= 4), key=len, reverse=True)


def redact(text: str, settings: object | None = None, extra: Iterable[str] = ()) -> str:
    """``text`` with configured secrets, bearer tokens and key-shaped strings masked."""
    if not text:
        return text
    for secret in [*secrets_of(settings), *(e for e in extra if e and len(e) >= 4)]:
        text = text.replace(secret, MASK)
    text = _PATTERNS[0].sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _PATTERNS[1].sub(MASK, text)
    return _PATTERNS[2].sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
