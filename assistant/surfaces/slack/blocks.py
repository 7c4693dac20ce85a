"""An :class:`~assistant.types.Answer` as a Slack message: Block Kit blocks plus ``text``.

Layout: a context line for the mode (the extractive label, a fallback notice), the answer in
section blocks cut under 3,000 characters on sentence boundaries, then "Sources": one context
block per cited article (``n`` is one number per article; its passages share it) with the linked
title, outlet, date and the quoted spans, then the feedback buttons (or, for an ephemeral slash
command answer, a "Share in channel" button). Never more than 50 blocks, never an oversize block,
and ``text`` (the notification and screen-reader fallback) is always set.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from assistant.text import split_sentences
from assistant.types import Answer, Citation

SECTION_LIMIT = 3000  # Slack: a section's text
CONTEXT_LIMIT = 3000  # Slack: one context element's text
MAX_BLOCKS = 50  # Slack: blocks in one message
SECTION_CHARS = 2900  # what we put in one section (headroom for escaping checks)
FALLBACK_CHARS = 3000
FEEDBACK_ACTION = "newsdesk_feedback"
NOTE_ACTION = "newsdesk_note"
SHARE_ACTION = "newsdesk_share"
WORKING_TEXT = "Searching the archive…"
_UNSUPPORTED = re.compile(r"\s*\[unsupported\]")
_MARKERS = re.compile(r"(?:\[\d+\]\s*)+")

Block = dict[str, Any]


def escape(text: str) -> str:
    """Slack's three control characters, escaped (links and mentions cannot be injected)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _mrkdwn(text: str) -> Block:
    return {"type": "mrkdwn", "text": text}


def chunk_text(text: str, limit: int = SECTION_CHARS) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, cut between sentences (paragraph
    and line breaks kept); a single sentence longer than ``limit`` is cut between words."""
    pieces: list[str] = []
    current = ""
    for paragraph in [p for p in text.split("\n\n") if p.strip()]:
        for li, line in enumerate([x for x in paragraph.split("\n") if x.strip()]):
            for si, sentence in enumerate(split_sentences(line) or [line]):
                for hi, part in enumerate(_hard_split(sentence, limit)):
                    first = si == hi == 0
                    glue = "" if not current else "\n\n" if first and li == 0 else (
                        "\n" if first else " ")  # fmt: skip
                    markers_only = _MARKERS.fullmatch(part) is not None and not first
                    if markers_only or len(current) + len(glue) + len(part) <= limit:
                        current += glue + part  # a lone "[2]" stays with its sentence
                    else:
                        pieces.append(current)
                        current = part
    if current:
        pieces.append(current)
    return pieces


def _bullets(text: str) -> str:
    """Extractive answers' layout for Slack: a bold article line, "•" for its "- " lines."""
    paragraphs = []
    for paragraph in text.split("\n\n"):
        lines = paragraph.split("\n")
        if (
            len(lines) > 1
            and not lines[0].startswith("- ")
            and all(x.startswith("- ") for x in lines[1:])
        ):
            lines[0] = f"*{lines[0].strip()}*"
        paragraphs.append("\n".join("• " + x[2:] if x.startswith("- ") else x for x in lines))
    return "\n\n".join(paragraphs)


def _hard_split(sentence: str, limit: int) -> Iterable[str]:
    while len(sentence) > limit:
        cut = sentence.rfind(" ", 0, limit)
        cut = cut if cut > limit // 2 else limit
        yield sentence[:cut].rstrip()
        sentence = sentence[cut:].lstrip()
    if sentence:
        yield sentence


def _mark_unsupported(text: str) -> str:
    """An ``[unsupported]`` mark the checker kept in the text, made visible in Slack."""
    return _UNSUPPORTED.sub(" :warning: _(not supported by the sources)_", text)


def answer_sections(answer: Answer) -> list[Block]:
    body = _bullets(_mark_unsupported(escape(answer.text.strip())))
    if answer.abstained:
        body = f":mag: {body}"
    return [{"type": "section", "text": _mrkdwn(part)} for part in chunk_text(body)]


def _quote(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1].rsplit(" ", 1)[0] + "…"
    return f"> _“{escape(text)}”_"


def source_block(n: int, citations: list[Citation]) -> Block:
    """One cited article: ``[n] <url|Title> · Outlet · 2022-03-07`` and its quoted spans."""
    p = citations[0].passage
    title = escape(p.title or "Untitled article")
    web = p.url.startswith(("http://", "https://"))
    linked = f"<{escape(p.url)}|{title}>" if web else f"*{title}*"
    meta = " · ".join(escape(x) for x in (p.source, p.published_at[:10]) if x)
    lines = [f"*[{n}]* {linked}" + (f" · {meta}" if meta else "")]
    quotes = [c for c in citations if c.quote]
    budget = (CONTEXT_LIMIT - len(lines[0]) - 200) // max(1, len(quotes))
    for c in quotes:
        mark = "" if c.supported else "  :warning: _claim not supported by this passage_"
        lines.append(_quote(c.quote, max(80, min(600, budget))) + mark)
    text = "\n".join(lines)
    return {"type": "context", "elements": [_mrkdwn(text[:CONTEXT_LIMIT])]}


def grouped_citations(answer: Answer) -> dict[int, list[Citation]]:
    """Citations by article number, in the order of the numbers."""
    groups: dict[int, list[Citation]] = {}
    for c in sorted(answer.citations, key=lambda c: c.n):
        groups.setdefault(c.n, []).append(c)
    return groups


def mode_line(answer: Answer) -> str:
    """Which kind of answer this is, and the answer's notice (a fallback, say)."""
    notice = escape(" ".join(answer.notice.split()))
    if answer.mode == "extractive":
        said = notice or "Extractive answer: quoted from the articles; no language model was used."
        return f":page_facing_up: _{said}_"
    label = ":robot_face: _Written by a language model; each sentence checked against its source_"
    return f"{label} · _{notice}_" if notice else label


def feedback_block(answer_id: int) -> Block:
    """Slack's thumbs up/down for AI answers; the button values carry the answer log id."""
    return {
        "type": "context_actions",
        "elements": [
            {
                "type": "feedback_buttons",
                "action_id": FEEDBACK_ACTION,
                "positive_button": {
                    "text": {"type": "plain_text", "text": "Good answer"},
                    "accessibility_label": "Mark this answer as good",
                    "value": f"good:{answer_id}",
                },
                "negative_button": {
                    "text": {"type": "plain_text", "text": "Bad answer"},
                    "accessibility_label": "Mark this answer as bad",
                    "value": f"bad:{answer_id}",
                },
            },
        ],
    }


def note_prompt_blocks(verdict: str, answer_id: int) -> list[Block]:
    """The ephemeral thank-you after a feedback click, with a button for an optional note."""
    said = "good" if verdict == "good" else "bad"
    return [
        {
            "type": "section",
            "text": _mrkdwn(f"Thanks, answer #{answer_id} is marked *{said}*."),
            "accessory": {
                "type": "button",
                "action_id": NOTE_ACTION,
                "text": {"type": "plain_text", "text": "Add a note"},
                "value": f"{verdict}:{answer_id}",
            },
        }
    ]


def note_modal(verdict: str, answer_id: int, private: str) -> Block:
    """The modal asking what was good or wrong; ``private`` carries channel and thread."""
    return {
        "type": "modal",
        "callback_id": NOTE_ACTION,
        "private_metadata": private,
        "title": {"type": "plain_text", "text": "Feedback"},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": "note",
                "label": {"type": "plain_text", "text": f"What was {verdict} about answer "
                          f"#{answer_id}?"},
                "element": {"type": "plain_text_input", "action_id": "text", "multiline": True,
                            "max_length": 2000},
            }
        ],
    }  # fmt: skip


def share_block(key: str) -> Block:
    return {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "action_id": SHARE_ACTION,
                "text": {"type": "plain_text", "text": "Share in channel"},
                "value": key,
            }
        ],
    }


def fallback_text(answer: Answer) -> str:
    """The message's ``text``: the answer, cut short, and how many sources it cites."""
    text = " ".join(answer.text.split())
    if len(text) > FALLBACK_CHARS:
        text = text[: FALLBACK_CHARS - 1].rsplit(" ", 1)[0] + "…"
    text = text or "(an empty answer)"  # Slack refuses a message without text
    count = len(grouped_citations(answer))
    if count:
        text += f" ({count} source{'s' if count != 1 else ''} in the message)"
    return text


def answer_blocks(
    answer: Answer, *, answer_id: int | None = None, share_key: str | None = None
) -> list[Block]:
    """The whole message, at most 50 blocks: sources that do not fit are named in one line,
    and an answer too long for the remaining blocks is cut with a note."""
    head: list[Block] = [{"type": "context", "elements": [_mrkdwn(mode_line(answer))]}]
    tail: list[Block] = []
    if answer_id is not None:
        tail.append(feedback_block(answer_id))
    if share_key is not None:
        tail.append(share_block(share_key))
    sources = [source_block(n, cs) for n, cs in grouped_citations(answer).items()]
    source_head: list[Block] = (
        [{"type": "divider"}, {"type": "section", "text": _mrkdwn("*Sources*")}] if sources else []
    )
    sections = answer_sections(answer)
    room = MAX_BLOCKS - len(head) - len(tail) - len(source_head)
    text_room = max(1, min(len(sections), room - min(len(sources), 10)))
    if len(sections) > text_room:
        sections = sections[: text_room - 1] if text_room > 1 else []
        sections.append(
            {
                "type": "section",
                "text": _mrkdwn(
                    "_(the answer is too long for one Slack message; it was cut here)_"
                ),
            }
        )
    source_room = room - len(sections)
    if len(sources) > source_room:
        hidden = len(sources) - source_room + 1
        sources = sources[: source_room - 1]
        sources.append({"type": "context", "elements": [_mrkdwn(f"…and {hidden} more sources")]})
    return head + sections + source_head + sources + tail


def working_blocks(text: str = WORKING_TEXT) -> list[Block]:
    return [{"type": "context", "elements": [_mrkdwn(f":hourglass_flowing_sand: {text}")]}]


def apology_blocks(reason: str) -> list[Block]:
    return [{"type": "section", "text": _mrkdwn(f":warning: {escape(reason)}")}]


def provisional_blocks(text: str) -> list[Block]:
    """A streaming answer shown by ``chat.update``: the text so far, marked as not checked."""
    parts = chunk_text(escape(text)) or [" "]
    blocks: list[Block] = [{"type": "section", "text": _mrkdwn(p)} for p in parts[-40:]]
    note = ":hourglass_flowing_sand: _writing… citations are checked when it is done_"
    return [*blocks, {"type": "context", "elements": [_mrkdwn(note)]}]


def to_json(blocks: list[Block], text: str) -> str:
    return json.dumps({"text": text, "blocks": blocks}, ensure_ascii=False, indent=2)
