"""Token-aware chunking on sentence boundaries, with small overlap and exact character offsets.

Tokens are counted with tiktoken (cl100k_base, filled offline by ``assistant.offline``) and
with the embedding model's WordPiece tokenizer, and a chunk holds at most ``max_tokens`` of
either, so the model's 256 word piece window never truncates a chunk (noisy web text can take
10% more word pieces than tiktoken tokens). Each chunk is ``text[start:end]`` of the article,
so offsets are exact and quotes can be located.

The work is linear in the text's length whatever its script or punctuation: each sentence is
tokenized once; a "sentence" over the budget (no boundary in sight: space-free text, CJK
without stops, a table flattened to one line) is cut where its tokens run out, found from one
tokenization of a window a little larger than the piece (at the last space nearby when there
is one, anywhere otherwise); and each chunk is counted once more as a whole, so the budget
holds exactly rather than by estimate.
"""

from __future__ import annotations

import bisect
import string
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from assistant.text import sentence_spans

# v3: linear hard splits, CJK sentence ends, exact per-chunk budget; the loaders drop hidden
# HTML and comments. A different version makes a re-ingest redo every stored document.
CHUNKER_VERSION = "sent-v3"
_MIN_WINDOW = 64  # characters: the smallest window an over-long sentence is tokenized in
_BATCH = 256  # sentences given to the word piece tokenizer at once


@dataclass(frozen=True)
class Chunk:
    index: int
    start: int
    end: int
    text: str
    tokens: int


@dataclass(frozen=True)
class _Unit:
    """A sentence, or a piece of an over-long one, with its tiktoken and word piece counts."""

    start: int
    end: int
    tik: int
    wp: int

    @property
    def tokens(self) -> int:
        return max(self.tik, self.wp)


@lru_cache(maxsize=1)
def _encoding():  # type: ignore[no-untyped-def]
    from assistant.offline import prepare

    prepare()
    import tiktoken

    return tiktoken.get_encoding("cl100k_base")


@lru_cache(maxsize=1)
def _wordpiece():  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer

    from assistant.models.embeddings import minilm_files

    tokenizer = Tokenizer.from_file(str(minilm_files()[1]))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def _tik(text: str) -> int:
    return len(_encoding().encode_ordinary(text))


def _wp(text: str) -> int:
    return len(_wordpiece().encode(text, add_special_tokens=False).ids)


def count_tokens(text: str) -> int:
    """tiktoken tokens or word pieces (without [CLS]/[SEP]), whichever is more."""
    return max(_tik(text), _wp(text))


def chunker_id(max_tokens: int, overlap_tokens: int) -> str:
    return f"{CHUNKER_VERSION}:cl100k:{max_tokens}:{overlap_tokens}"


# -- word piece boundaries ---------------------------------------------------------------------
_CJK = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)  # fmt: skip


@lru_cache(maxsize=4096)
def _separates(ch: str) -> bool:
    """Whether the BERT tokenizer never lets a word run across ``ch``: whitespace, punctuation
    or a CJK ideograph (control and format characters are deleted, so they do not count)."""
    if ch in "\t\n\r":
        return True
    category = unicodedata.category(ch)
    if category[0] == "C":
        return False
    if category[0] in "PZ" or ch in string.punctuation:
        return True
    return any(lo <= ord(ch) <= hi for lo, hi in _CJK)


def _words_apart(text: str, end: int, start: int) -> bool:
    """Whether text ending at ``end`` and text starting at ``start`` are tokenized as separate
    words when joined over ``text[end:start]``, so their word piece counts add up exactly."""
    if _separates(text[end - 1]) or _separates(text[start]):
        return True
    return any(_separates(ch) for ch in text[end:start])


# -- units -------------------------------------------------------------------------------------
def _prefix_fitting(window: str, max_tokens: int) -> tuple[int, list[int]]:
    """How many characters of ``window`` its first ``max_tokens`` tokens (of either tokenizer)
    cover (``len(window)`` when the whole window fits), and where its word pieces start."""
    limit = len(window)
    tokens = _encoding().encode_ordinary(window)
    if len(tokens) > max_tokens:  # the characters whose bytes the first tokens hold in full
        held = len(_encoding().decode_bytes(tokens[:max_tokens]))
        limit = min(limit, len(window.encode("utf-8", "replace")[:held].decode("utf-8", "ignore")))
    starts = [a for a, _ in _wordpiece().encode(window, add_special_tokens=False).offsets]
    if len(starts) > max_tokens:
        limit = min(limit, starts[max_tokens])
    return limit, starts


def _split_long(text: str, start: int, end: int, max_tokens: int) -> Iterator[_Unit]:
    """Cut ``text[start:end]`` (one sentence over budget) into pieces of at most ``max_tokens``,
    at the last whitespace in the second half of the room when there is one, else anywhere."""
    cursor = start
    chars_per_token = 4.0
    while cursor < end:
        size = max(_MIN_WINDOW, int(1.3 * max_tokens * chars_per_token))
        while True:  # grow the window until the budget runs out inside it, or the text does
            stop = min(end, cursor + size)
            room, starts = _prefix_fitting(text[cursor:stop], max_tokens)
            room = max(1, room)
            if room < stop - cursor or stop == end:
                break
            size *= 2
        cut = cursor + room
        if cut < end:
            space = _last_space(text, cursor + room // 2, cut)
            cut = space if space > cursor else cut
        while True:
            while cut > cursor + 1 and text[cut - 1].isspace():
                cut -= 1
            tik = _tik(text[cursor:cut])
            if starts and (cut == stop or _words_apart(text, cut, cut)):
                wp = bisect.bisect_left(starts, cut - cursor)  # the window's pieces before it
            else:
                wp = _wp(text[cursor:cut])
            if max(tik, wp) <= max_tokens or cut - cursor == 1:
                break
            # the prefix tokenized differently on its own: shrink in proportion and retry
            cut = cursor + max(1, (cut - cursor) * max_tokens // (max(tik, wp) + 1))
            starts = []
        yield _Unit(cursor, cut, tik, wp)
        chars_per_token = max(0.5, (cut - cursor) / max(tik, wp, 1))
        cursor = cut
        while cursor < end and text[cursor].isspace():
            cursor += 1


def _last_space(text: str, lo: int, hi: int) -> int:
    """Index of the last whitespace character in ``text[lo:hi]``, or -1."""
    for i in range(hi - 1, lo - 1, -1):
        if text[i].isspace():
            return i
    return -1


def _units(text: str, max_tokens: int) -> Iterator[_Unit]:
    """Each sentence with its counts, over-long ones cut into pieces; lazily, a batch of
    sentences tokenized at a time."""
    long_chars = max_tokens * 64  # no sentence this long fits: cut it without counting it
    spans = sentence_spans(text)
    for first in range(0, len(spans), _BATCH):
        batch = spans[first : first + _BATCH]
        short = [text[a:b] for a, b in batch if b - a <= long_chars]
        tiks = iter([_encoding().encode_ordinary(t) for t in short])
        wps = iter(_wordpiece().encode_batch(short, add_special_tokens=False))
        for a, b in batch:
            if b - a <= long_chars:
                unit = _Unit(a, b, len(next(tiks)), len(next(wps).ids))
                if unit.tokens <= max_tokens:
                    yield unit
                    continue
            yield from _split_long(text, a, b, max_tokens)


class _Lazy:
    """A list filled from an iterator as far as it is indexed."""

    def __init__(self, items: Iterator[_Unit]) -> None:
        self.items: list[_Unit] = []
        self._source = items

    def has(self, i: int) -> bool:
        while len(self.items) <= i:
            nxt = next(self._source, None)
            if nxt is None:
                return False
            self.items.append(nxt)
        return True


# -- packing -----------------------------------------------------------------------------------
def _measure(text: str, u: list[_Unit], i: int, j: int) -> int:
    """Exact tokens of units ``i..j-1`` as one text (word pieces summed where that is exact)."""
    a, b = u[i].start, u[j - 1].end
    tik = _tik(text[a:b])
    if all(_words_apart(text, u[k - 1].end, u[k].start) for k in range(i + 1, j)):
        return max(tik, sum(x.wp for x in u[i:j]))
    return max(tik, _wp(text[a:b]))


def _join_cost(text: str, a: int, b: int) -> int:
    """Estimated tiktoken tokens added by joining two units over ``text[a:b]`` (whitespace)."""
    return 1 if b - a <= 2 else 1 + _tik(text[a:b])


def iter_chunks(text: str, max_tokens: int = 230, overlap_tokens: int = 30) -> Iterator[Chunk]:
    """Greedy packing of whole sentences; the last sentences of a chunk (up to
    ``overlap_tokens``) open the next one, which always adds text of its own. Lazy: stop
    iterating to stop the work."""
    units = _Lazy(_units(text, max_tokens))
    u = units.items
    i, covered, index = 0, 0, 0  # units before ``covered`` are in a chunk already
    while units.has(i):
        j, tik, wp = i + 1, u[i].tik, u[i].wp
        while units.has(j):
            more_tik = tik + _join_cost(text, u[j - 1].end, u[j].start) + u[j].tik
            if max(more_tik, wp + u[j].wp) > max_tokens:
                break
            tik, wp, j = more_tik, wp + u[j].wp, j + 1
        j = max(j, covered + 1)
        total = u[i].tokens if j == i + 1 else _measure(text, u, i, j)
        while total > max_tokens:  # the estimate was short: drop sentences until it fits,
            if j - 1 > max(i, covered):  # from the end while one new sentence stays,
                j -= 1
            else:  # then from the overlap
                i += 1
            total = u[i].tokens if j == i + 1 else _measure(text, u, i, j)
        a, b = u[i].start, u[j - 1].end
        yield Chunk(index, a, b, text[a:b], total)
        index, covered = index + 1, j
        if not units.has(j):
            return
        # step back over trailing sentences that fit in the overlap budget, leaving room for
        # the next sentence
        back, carried = j, 0
        while back - 1 > i:
            more = carried + u[back - 1].tokens
            if more > overlap_tokens or more + (j - back + 1) + u[j].tokens > max_tokens:
                break
            back, carried = back - 1, more
        i = back


def chunk_text(text: str, max_tokens: int = 230, overlap_tokens: int = 30) -> list[Chunk]:
    return list(iter_chunks(text, max_tokens, overlap_tokens))
