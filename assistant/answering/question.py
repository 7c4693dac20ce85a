"""What a question asks for, read without a model.

``shape(question)`` gives the kind of answer each part of the question wants (a quantity for
"how much", a date for "when", a name for "who", every item for "which countries"…) and the
named things the evidence must be about (people, organisations, places, dates). The extractive
answer leads with a sentence of the wanted kind; the near-miss check (``constraints``) abstains
when no retrieved article mentions what the question names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["quantity", "date", "person", "place", "list", "yesno", "other"]

_PART_SPLIT = re.compile(
    r",?\s+and\s+(?=(?:when|where|who|whom|how|what|which|why)\b)", re.IGNORECASE
)
_KINDS: list[tuple[re.Pattern[str], Kind]] = [
    (
        re.compile(
            r"^(?:by\s+)?how\s+(?:much|many|long|large|big|far|old|often|high|low)\b"
            r"|^what\s+(?:percentage|share|proportion|amount|number|price|rate|size)\b"
            r"|^what\s+was\s+the\s+(?:vote|score|tally|total|figure|cost)\b",
            re.I,
        ),
        "quantity",
    ),
    (
        re.compile(
            r"^(?:when|what\s+(?:date|day|year|month|time)|which\s+(?:date|day|year|month)"
            r"|on\s+what\s+(?:date|day)|since\s+when)\b",
            re.I,
        ),
        "date",
    ),
    (
        re.compile(
            r"^(?:which|what)\s+(?:\w+\s+){0,2}(?:countries|nations|states|companies|"
            r"members|leaders|people|officials|groups|teams|cities|parties|firms|"
            r"organi[sz]ations|banks|agencies|ministers|candidates)\b",
            re.I,
        ),
        "list",
    ),
    (
        re.compile(
            r"^(?:who|whom|whose)\b|^(?:which|what)\s+(?:\w+\s+){0,3}(?:leader|person|"
            r"minister|official|spokes(?:wo)?man|spokesperson|president|organi[sz]ation|"
            r"company|newspaper|country|team|agency|bank|envoy|ambassador|chief|"
            r"diplomat|analyst|group|party|firm)\b",
            re.I,
        ),
        "person",
    ),
    (
        re.compile(
            r"^(?:where|in\s+which\s+(?:city|country|place)|which\s+(?:city|place))\b", re.I
        ),
        "place",
    ),
    (
        re.compile(
            r"^(?:will|would|is|are|was|were|does|do|did|can|could|has|have|should)\b", re.I
        ),
        "yesno",
    ),
]

_TITLES = frozenset(
    """President Prime Minister Foreign Chancellor Secretary King Queen Pope Mr Mrs Ms Dr
    General Senator Governor Chairman Chair Ambassador Spokesman Spokeswoman Spokesperson CEO
    Chief Vice Deputy Premier Commissioner Director Mayor Judge Justice Sir Lord Lady
    Defense Defence Finance State Former Ukrainian Chinese Russian American British French
    German Israeli Turkish Spanish Italian Japanese Indian""".split()
)
_ORG_HEADS = frozenset(
    """Bank Council Union Nations Organization Organisation Ministry Agency Fund Committee
    Reserve Assembly Party University Court Parliament Commission Department Office
    Association Federation Institute Centre Center Company Corporation Corp Inc Group Forum
    Society Cup Award Awards Games Olympics Bowl League Congress Senate Treaty Alliance Board
    Authority Administration Service Command Army Navy Force Forces Telescope Space Station
    Mission Program Programme Project Bridge Airport Stadium Tower Palace Market Canal River
    Square Street Exchange Index Summit Conference Festival Prize""".split()
)
_NOT_NAMES = frozenset(
    """I What When Where Who Whom Whose Which Why How Will Would Is Are Was Were Does Do Did
    Can Could Has Have Should Shall May Might Must The A An And Or But If In On At Of For To
    By With From As About After Before Since During Between Per Than Also According""".split()
)
_MONTHS = frozenset(
    """January February March April May June July August September October November December
    Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec Monday Tuesday Wednesday Thursday Friday
    Saturday Sunday""".split()
)
_DEMONYM = re.compile(r"^[A-Z][a-z]+(?:ese|ian|ish|ean|an|i|ic)$")
# country and institution names written more than one way in the news
ALIASES: dict[str, tuple[str, ...]] = {
    "Fed": ("Federal Reserve",),
    "Federal Reserve": ("Fed",),
    "UN": ("United Nations",),
    "United Nations": ("UN",),
    "US": ("United States", "America"),
    "United States": ("US", "America"),
    "UK": ("United Kingdom", "Britain"),
    "United Kingdom": ("UK", "Britain"),
    "Britain": ("UK", "United Kingdom"),
    "EU": ("European Union",),
    "European Union": ("EU",),
    "ECB": ("European Central Bank",),
    "European Central Bank": ("ECB",),
    "UAE": ("United Arab Emirates",),
    "United Arab Emirates": ("UAE",),
    "NATO": ("North Atlantic Treaty Organization",),
    "Kyiv": ("Kiev",),
    "Kiev": ("Kyiv",),
    "Zelensky": ("Zelenskyy", "Zelenskiy"),
}
_CAP_RUN = re.compile(
    r"(?:[A-Z][\w'’.]*|\d+[A-Za-z]*)(?:\s+(?:of|de|du|von|van|al|the|for)\s+[A-Z][\w'’.]*"
    r"|\s+[A-Z][\w'’.]*|\s+(?:[IVX]+|\d+)\b)*"
)
_DOTTED = re.compile(r"\b((?:[A-Z]\.){2,})")


@dataclass(frozen=True)
class Entity:
    """Something the question names: matched in text by any of its ``needles``."""

    text: str
    kind: Literal["org", "name"]
    needles: tuple[tuple[str, ...], ...]  # alternatives; each needs all of its words


@dataclass(frozen=True)
class Shape:
    kinds: tuple[Kind, ...]  # one per part of the question ("How much … and when …")
    parts: tuple[str, ...]
    entities: tuple[Entity, ...] = field(default=())

    @property
    def kind(self) -> Kind:
        return self.kinds[0]


def undot(text: str) -> str:
    """``U.N.`` → ``UN``, ``U.S.`` → ``US`` (acronyms written with dots)."""
    return _DOTTED.sub(lambda m: m.group(1).replace(".", ""), text)


def kind_of(part: str) -> Kind:
    text = part.strip().lstrip("¿\"'“(").strip()
    for pattern, kind in _KINDS:
        if pattern.search(text):
            return kind
    # "…, and when?" tails and questions that put the wh-word later ("Xi said what?")
    lowered = text.lower()
    if re.search(r"\bhow (?:much|many)\b", lowered):
        return "quantity"
    if re.search(r"\bwhen\b", lowered):
        return "date"
    return "other"


def shape(question: str) -> Shape:
    """A follow-up condensed without a model reads "<earlier question>? <follow-up>": what is
    asked is the last question; the names in all of them constrain the evidence."""
    questions = [q for q in re.split(r"(?<=\?)\s+", question.strip()) if q.strip()]
    asked = questions[-1] if questions else question
    parts = [p for p in _PART_SPLIT.split(asked) if p.strip()] or [asked]
    kinds = tuple(kind_of(p) for p in parts)
    return Shape(kinds=kinds, parts=tuple(parts), entities=tuple(entities(question)))


def entities(question: str) -> list[Entity]:
    """The people, organisations and places a question names (titles, months, demonyms and
    question words left out)."""
    text = undot(question)
    found: dict[str, Entity] = {}
    for match in _CAP_RUN.finditer(text):
        words = [re.sub(r"['’]s?$", "", w.strip(".,")) for w in match.group(0).split()]
        # drop a leading question word or title; the question's first word is never a name
        # unless it is followed by another capitalised word ("Xi Jinping said…")
        while words and (words[0] in _NOT_NAMES or words[0] in _TITLES or words[0] in _MONTHS):
            words = words[1:]
        while words and words[-1].lower() in {"of", "de", "the", "and", "for"}:
            words = words[:-1]
        if not words or all(w in _MONTHS or w.isdigit() for w in words):
            continue
        if match.start() == 0 and len(words) == 1 and words[0] == match.group(0).strip():
            continue
        phrase = " ".join(words)
        if len(words) == 1 and _DEMONYM.match(phrase) and phrase not in ALIASES:
            continue  # "Chinese", "Ukrainian", "European": an adjective, not a constraint
        if any(w in _MONTHS for w in words) or any(w.isdigit() for w in words):
            words = [w for w in words if w not in _MONTHS and not w.isdigit()]
            phrase = " ".join(words)
            if not words:
                continue
        if len(words) == 1 and "-" in phrase:  # "China-Russia trade", "the Biden-Xi call"
            for piece in phrase.split("-"):
                if piece[:1].isupper() and len(piece) > 1:
                    found.setdefault(piece, _entity(piece, [piece]))
            continue
        if words[0][:1].isdigit():
            continue
        found.setdefault(phrase, _entity(phrase, words))
    return list(found.values())


def _entity(phrase: str, words: list[str]) -> Entity:
    aliases = [tuple(a.split()) for a in ALIASES.get(phrase, ())]
    if any(w in _ORG_HEADS for w in words) or phrase.isupper():
        # every capitalised word, anywhere ("Beijing 2022 Winter Olympics" is still met by
        # "the Winter Olympics in Beijing"), or a known alias or the acronym
        needles = [tuple(w for w in words if w[:1].isupper()), *aliases]
        capitals = [w for w in words if w[:1].isupper()]
        if len(capitals) >= 3:
            needles.append(("".join(w[0] for w in capitals),))  # European Central Bank -> ECB
        return Entity(phrase, "org", tuple(dict.fromkeys(needles)))
    names = [w for w in words if len(w) > 1 and w.lower() not in {"of", "de", "the"}]
    serial = [w for w in words[1:] if re.fullmatch(r"[IVX]+|\d+", w)]
    if serial:  # "Artemis II" is not "Artemis I": the numeral must be there too
        rest = [w for w in names if w not in serial]
        return Entity(phrase, "name", tuple((w, *serial) for w in rest) or ((phrase,),))
    needles = [(w,) for w in names] + [(a,) for w in names for a in ALIASES.get(w, ())]
    return Entity(phrase, "name", tuple(dict.fromkeys([*needles, *aliases])))


def mentions(entity: Entity, text: str) -> bool:
    """Whether ``text`` (acronym dots already removed with ``undot``) names ``entity``."""
    return any(all(_word(w).search(text) for w in needle) for needle in entity.needles)


def _word(needle: str) -> re.Pattern[str]:
    """A name also matches its adjective and plural: Russia → Russian, Ukraine → Ukrainian."""
    if len(needle) >= 5 and needle.isalpha() and not needle.isupper():
        stem = needle.rstrip("aeiouy")
        return re.compile(rf"(?<!\w){re.escape(stem)}\w{{0,4}}(?!\w)")
    return re.compile(rf"(?<!\w){re.escape(needle)}(?!\w)")
