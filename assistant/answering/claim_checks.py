"""Rule checks of a claim sentence against passage text: names, votes, negation, speakers.

Each works on surface text, with no model: named entities are capitalised tokens after the
first (or runs of them), negation is a cue word (not, never, no longer, refused, declined,
against, ...) and the next content words it governs, a vote stance is for / against /
abstained, a speaker is whoever ``extractive.speaker_of`` finds. They are deliberately lenient
where wording varies (case, possessives, acronyms, demonyms, capitals standing for countries)
and strict where a fact changes (a new name, a flipped negation, another voter, another speaker).
"""

from __future__ import annotations

import re
from functools import cache

from assistant.answering.extractive import speaker_of
from assistant.text import STOPWORDS, content_terms, numbers_and_dates, overlap

_TOKEN = re.compile(r"[A-Za-z][A-Za-z'’.\-]*[A-Za-z]|[A-Za-z]|\d[\d,.]*\d|\d|[.,;:!?\"“”()]")
_BREAK = {".", ",", ";", ":", "!", "?", '"', "“", "”", "(", ")"}
_LOCATION = {"in", "to", "at", "from", "into", "near", "visited", "visit", "via", "toward"}
_TITLES = frozenset(
    """president minister foreign prime chancellor secretary ambassador spokesman
    spokeswoman spokesperson general chief state deputy senator governor mr mrs ms dr king
    queen pope premier vice leader envoy commissioner chair chairman director professor sir
    lord lady representative rep sen gov""".split()
)
_COUNTRIES = [
    ("china", "chinese", "prc", "beijing*"), ("russia", "russian", "russians", "moscow*",
    "kremlin"), ("ukraine", "ukrainian", "ukrainians", "kyiv*", "kiev*"),
    ("united states", "us", "usa", "america", "american", "americans", "washington*"),
    ("european union", "eu", "brussels*"), ("europe", "european", "europeans"),
    ("britain", "british", "uk", "united kingdom", "london*"), ("france", "french", "paris*"),
    ("germany", "german", "germans", "berlin*"), ("japan", "japanese", "tokyo*"),
    ("israel", "israeli", "israelis"), ("turkey", "turkish", "türkiye", "ankara*"),
    ("spain", "spanish", "madrid*"), ("italy", "italian", "rome*"), ("norway", "norwegian"),
    ("belarus", "belarusian"), ("india", "indian", "new delhi*"), ("iran", "iranian"),
    ("poland", "polish", "warsaw*"), ("taiwan", "taiwanese"), ("korea", "korean"),
    ("canada", "canadian"), ("australia", "australian"), ("netherlands", "dutch"),
    ("switzerland", "swiss"), ("sweden", "swedish"), ("finland", "finnish"),
    ("united nations", "un", "u.n"), ("united arab emirates", "uae", "emirati"),
]  # fmt: skip
_NEG_WORDS = frozenset(
    """not no never neither nor none nobody nothing without cannot refuse refused refuses
    refusing decline declined declines declining reject rejected rejects rejecting deny denied
    denies denying fail failed fails failing unwilling unable""".split()
)
_SCOPE_END = frozenset("but and or while although though because which who whereas yet".split())
_STANCES = {"favor": "for", "favour": "for", "supported": "for", "backed": "for",
            "against": "against", "opposed": "against", "abstained": "abstain",
            "abstain": "abstain", "abstaining": "abstain", "abstention": "abstain",
            "abstentions": "abstain", "abstains": "abstain"}  # fmt: skip
_CONNECTIVE = frozenset(
    """here following summary summarise summarize answer question questions article articles
    passage passages source sources report reports reported reporting information detail details
    overall short brief briefly based provided available context note however moreover
    furthermore additionally finally first second third firstly secondly conclusion sum
    key points point findings find found below above mentioned describe describes described
    cover covers covered say state states stated indicate indicates indicated suggest suggests
    know known clear unclear specific specifically regarding concerning topic matter""".split()
)


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _bare(token: str) -> str:
    """Lower case, possessive and edge punctuation removed ("Russia's" -> "russia")."""
    word = token.replace("’", "'").lower()
    word = re.sub(r"'s?$", "", word)
    return word.strip(".'-")


@cache
def _forms() -> dict[str, tuple[frozenset[str], bool]]:
    """form -> (every form of that country, whether this form is a capital city)."""
    out: dict[str, tuple[frozenset[str], bool]] = {}
    for group in _COUNTRIES:
        names = frozenset(g.rstrip("*") for g in group)
        for g in group:
            out[g.rstrip("*")] = (names, g.endswith("*"))
    return out


def _is_cap(token: str) -> bool:
    return token[:1].isupper() and _bare(token) not in STOPWORDS


def entity_runs(text: str) -> list[list[tuple[str, str]]]:
    """Runs of named-entity tokens as (token, previous token); the first word of a sentence
    only counts when the next word is capitalised too ("Elon Musk ...")."""
    toks = tokens(text)
    runs: list[list[tuple[str, str]]] = []
    run: list[tuple[str, str]] = []
    for i, tok in enumerate(toks):
        prev = toks[i - 1] if i else ""
        initial = i == 0 or prev in {".", "!", "?", ":", '"', "“", "("}
        nxt = toks[i + 1] if i + 1 < len(toks) else ""
        named = _is_cap(tok) and not tok.isdigit() and _bare(tok) not in _TITLES
        if named and initial and not (run or _is_cap(nxt)):
            named = False
        if named:
            run.append((tok, prev))
        elif run:
            runs.append(run)
            run = []
    if run:
        runs.append(run)
    return runs


class _Reference:
    """Lower-case words, phrases and acronyms of a reference text."""

    def __init__(self, text: str) -> None:
        self.lower = " " + " ".join(_bare(t) for t in tokens(text)) + " "
        self.words = set(self.lower.split())
        for word in list(self.words):
            self.words.update(p for p in word.split("-") if p)
        self.acronyms = {
            "".join(t[0] for t, _ in run if _bare(t) not in {"of", "the", "and"}).lower()
            for run in entity_runs(text)
            if len(run) > 1
        }
        self.acronyms |= {w.replace(".", "") for w in self.words if "." in w}
        toks = tokens(text)
        # surname -> whether some mention has a capitalised word before it ("Joe Biden")
        self.first_named: dict[str, bool] = {}
        for i, tok in enumerate(toks):
            if tok[:1].isupper():
                before = toks[i - 1] if i else ""
                named = _is_cap(before) and _bare(before) not in _TITLES
                key = _bare(tok)
                self.first_named[key] = self.first_named.get(key, False) or named

    def has(self, phrase: str) -> bool:
        return f" {phrase} " in self.lower or phrase in self.words

    def has_country(self, form: str, as_place: bool) -> bool:
        names, is_capital = _forms().get(form, (frozenset(), False))
        if not names or (is_capital and as_place):
            return False
        return any(self.has(n) or n.replace(".", "") in self.acronyms for n in names)


def entities_missing(claim: str, reference: str) -> list[str]:
    """The claim's named entities that the reference does not contain in any accepted form."""
    ref = _Reference(reference)
    missing: list[str] = []
    for run in entity_runs(claim):
        phrase = " ".join(_bare(t) for t, _ in run)
        as_place = _bare(run[0][1]) in _LOCATION
        if ref.has(phrase) or ref.has_country(phrase, as_place):
            continue
        initials = "".join(_bare(t)[0] for t, _ in run if _bare(t) not in {"of", "the", "and"})
        if len(run) > 1 and initials in ref.words | ref.acronyms:
            continue
        surname = _bare(run[-1][0])
        for i, (tok, prev) in enumerate(run):
            word = _bare(tok)
            place = _bare(prev) in _LOCATION if i == 0 else as_place
            parts = [p for p in word.split("-") if p]
            if all(_known(p, ref, place) for p in parts):
                continue
            if i < len(run) - 1 and surname in ref.words and not ref.first_named.get(surname):
                continue  # a first name the passage leaves out ("Dmytro" Kuleba, "Kuleba")
            missing.append(tok.rstrip(".'’"))
    return list(dict.fromkeys(missing))


def _known(word: str, ref: _Reference, as_place: bool) -> bool:
    if word in ref.words or word in _TITLES or ref.has_country(word, as_place):
        return True
    return word.replace(".", "") in ref.acronyms  # "EU" for "European Union"


# -- negation ---------------------------------------------------------------------------------


def polarity(text: str) -> tuple[set[str], set[str]]:
    """(stems under a negation, stems stated plainly); a cue governs the next two content
    words, up to punctuation or a conjunction. Names and numbers are never governed."""
    toks = tokens(text)
    negated: set[str] = set()
    plain: set[str] = set()
    budget = 0
    for i, tok in enumerate(toks):
        word = _bare(tok)
        if tok in _BREAK or word in _SCOPE_END:
            budget = 0
            continue
        if _is_cue(word, [_bare(t) for t in toks[i + 1 : i + 3]]):
            budget = 2
            continue
        if word in STOPWORDS or tok[0].isupper() or tok[0].isdigit():
            continue
        stems = content_terms(word)
        if not stems:
            continue
        if budget > 0:
            negated.update(stems)
            budget -= 1
        else:
            plain.update(stems)
    return negated, plain - negated


def _is_cue(word: str, after: list[str]) -> bool:
    nxt, then = [*after, "", ""][:2]
    falling = nxt[:1].isdigit() or nxt in {"by", "sharply", "slightly", "steeply"}
    if word.startswith("declin") and (falling or (nxt == "to" and then[:1].isdigit())):
        return False  # "exports declined 5%": a fall, not a refusal
    return word in _NEG_WORDS or word.endswith("n't")


def polarity_conflict(claim: str, sents: list[str]) -> bool:
    """A word of the claim that a passage sentence states with the other polarity ("refused to
    mediate" / "ready to mediate"), when no sentence states it the claim's way while naming
    what the contradicting sentence names of the claim (so "the UN condemned" does not save
    "China condemned" from "China declined to condemn"). Only a sentence sharing two more
    content words with the claim can contradict it."""
    c_neg, c_plain = polarity(claim)
    names = {_bare(t) for run in entity_runs(claim) for t, _ in run}
    terms = set(content_terms(claim))
    polar = [polarity(s) for s in sents]
    shared = [len(terms & set(content_terms(s))) for s in sents]
    words = [{_bare(t) for t in tokens(s)} for s in sents]
    for stem in c_neg | c_plain:
        negated = stem in c_neg
        has = [i for i, (n, p) in enumerate(polar) if stem in n or stem in p]
        contra = [i for i in has if (stem in polar[i][0]) != negated]
        agree = [i for i in has if (stem in polar[i][0]) == negated]
        for i in contra:
            if shared[i] < 3:  # the stem and at least two more: the same statement
                continue
            need = names & words[i]
            if not any(need <= words[j] for j in agree):
                return True
    return False


# -- votes ------------------------------------------------------------------------------------


def _stance_at(toks: list[str], i: int, window: int) -> str | None:
    for tok in toks[i + 1 : i + 1 + window]:
        stance = _STANCES.get(_bare(tok))
        if stance:
            return stance
    return None


def vote_count_conflict(claim: str, reference: str) -> bool:
    """A number the claim gives as votes for / against / abstaining is another side's count."""
    c_toks, r_toks = tokens(claim), tokens(reference)
    for i, tok in enumerate(c_toks):
        if not tok[0].isdigit():
            continue
        mine = _stance_at(c_toks, i, 3)
        if mine is None:
            continue
        number = tok.replace(",", "")
        theirs = {
            _stance_at(r_toks, j, 3) for j, t in enumerate(r_toks) if t.replace(",", "") == number
        } - {None}
        if theirs and mine not in theirs:
            return True
    return False


def stance_conflict(claim: str, sentence: str) -> bool | None:
    """For each name of the claim in the sentence, the vote nearest to it there must be the
    claim's vote. None when the claim states no vote or the sentence records none."""
    c_toks, s_toks = tokens(claim), tokens(sentence)
    mine = {_STANCES[_bare(t)] for t in c_toks if _bare(t) in _STANCES}
    if ("vote" in claim.lower() and "favor" in claim.lower()) or "favour" in claim.lower():
        mine.add("for")
    if len(mine) != 1:
        return None
    want = next(iter(mine))
    names = {_bare(t) for run in entity_runs(claim) for t, _ in run}
    verdict: bool | None = None
    for j, tok in enumerate(s_toks):
        if _bare(tok) not in names:
            continue
        near = [
            (abs(k - j), _STANCES[_bare(t)])
            for k, t in enumerate(s_toks)
            if _bare(t) in _STANCES and abs(k - j) <= 8
        ]
        if near:
            found = min(near)[1]
            if found != want:
                return True
            verdict = False
    return verdict


# -- speakers ---------------------------------------------------------------------------------

_SAID = re.compile(r"\b(?:said|says|told|added|wrote|argued|noted|warned|insisted|stated)\b")
_PRONOUN_SAID = re.compile(r"\b(?:he|she|they)\s+(?:said|says|told|added|wrote)\b", re.I)
_PERSON = re.compile(r"\b([A-Z][a-z]+(?:\s+[A-Z][a-z]+)+)\b")
_QUOTED = re.compile(r"[\"“]([^\"”]{8,})[\"”]")


def speaker_in(sents: list[str], i: int) -> str:
    """Who sentence ``i`` of a passage is attributed to; "He said" looks back for the name."""
    following = sents[i + 1] if i + 1 < len(sents) else ""
    who = speaker_of(sents[i], following)
    if who or not _PRONOUN_SAID.search(sents[i]):
        return who
    for j in range(i - 1, max(i - 4, -1), -1):
        who = speaker_of(sents[j]) or next(iter(_PERSON.findall(sents[j])[::-1]), "")
        if who:
            return who
    return ""


def same_person(a: str, b: str) -> bool:
    strip = {"the", "of", *_TITLES}
    left = {_bare(t) for t in a.split()} - strip
    right = {_bare(t) for t in b.split()} - strip
    return bool(left & right)


def speaker_conflict(claim: str, sents: list[str], near: list[int]) -> str:
    """The passage's speaker of what the claim attributes to someone else: among the passage
    sentences ``near`` that restate the claim (its quote, or most of its words), one has a
    known speaker and none is by the claim's speaker. "" when there is no such conflict."""
    mine = speaker_of(claim)
    if not mine or (not _SAID.search(claim) and "according to" not in claim.lower()):
        return ""
    quoted = _QUOTED.findall(claim)
    body = content_terms(" ".join(quoted) if quoted else claim.replace(mine, " "))
    others = []
    for i in near:
        if overlap(body, content_terms(sents[i])) < (0.6 if quoted else 0.5):
            continue
        theirs = speaker_in(sents, i)
        if theirs and same_person(mine, theirs):
            return ""
        if theirs:
            others.append(theirs)
    return others[0] if others else ""


# -- what needs a citation --------------------------------------------------------------------


_ABOUT_SOURCES = re.compile(
    r"\b(?:articles?|passages?|sources?|reports?|coverage)\b[^.]*?\b(?:do|does|did)\s*(?:not|n[’']t)"
    r"\s+(?:say|mention|state|report|specify|indicate|address|cover|explain)\b",
    re.I,
)


def is_factual(sentence: str) -> bool:
    """States a fact that needs a source: a number or date, a name, or two content words
    beyond the vocabulary of connecting text ("Here is what the articles report:"). Saying
    what the sources leave out ("The articles do not say whether ...") is not a fact to cite."""
    if _ABOUT_SOURCES.search(sentence):
        return False
    if numbers_and_dates(sentence) or entity_runs(sentence):
        return True
    words = [
        _bare(t)
        for t in tokens(sentence)
        if t[0].isalpha() and _bare(t) not in STOPWORDS and _bare(t) not in _CONNECTIVE
    ]
    first = tokens(sentence)[:1]
    if first and _bare(first[0]) in _forms():
        return True  # "China wants ..."
    return len(set(words)) >= 2
