"""Token-aware chunking on sentence boundaries, with small overlap and exact character offsets.

Tokens are counted with tiktoken (cl100k_base, filled offline by ``assistant.offline``) and
with the embedding model's WordPiece tokenizer, and a chunk holds at most ``max_tokens`` of
either, so the model's 256 word piece window never truncates a chunk (noisy web text can take
10% more word pieces than tiktoken tokens). Each chunk is ``text[start:end]`` of the article,
so offsets are exact and quotes can be located.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from assistant.text import sentence_spans

CHUNKER_VERSION = "sent-v2"


@dataclass(frozen=True)
class Chunk:
    index: int
    start: int
    end: int
    text: str
    tokens: int


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


def count_tokens(text: str) -> int:
    """tiktoken tokens or word pieces (without [CLS]/[SEP]), whichever is more."""
    pieces = len(_wordpiece().encode(text, add_special_tokens=False).ids)
    return max(len(_encoding().encode(text, disallowed_special=())), pieces)


def chunker_id(max_tokens: int, overlap_tokens: int) -> str:
    return f"{CHUNKER_VERSION}:cl100k:{max_tokens}:{overlap_tokens}"


def _split_long(text: str, start: int, end: int, max_tokens: int) -> list[tuple[int, int, int]]:
    """Cut one over-long sentence at word boundaries into pieces of at most ``max_tokens``."""
    pieces: list[tuple[int, int, int]] = []
    cursor = start
    while cursor < end:
        lo, hi = cursor + 1, end
        best = lo
        while lo <= hi:  # binary search on the end offset, snapped back to whitespace
            mid = (lo + hi) // 2
            if count_tokens(text[cursor:mid]) <= max_tokens:
                best, lo = mid, mid + 1
            else:
                hi = mid - 1
        cut = best
        if best < end:
            space = text.rfind(" ", cursor + 1, best)
            cut = space if space > cursor else best
        pieces.append((cursor, cut, count_tokens(text[cursor:cut])))
        cursor = cut
        while cursor < end and text[cursor].isspace():
            cursor += 1
    return pieces


def chunk_text(text: str, max_tokens: int = 230, overlap_tokens: int = 30) -> list[Chunk]:
    """Greedy packing of whole sentences; the last sentences of a chunk (up to
    ``overlap_tokens``) open the next one."""
    units: list[tuple[int, int, int]] = []
    for a, b in sentence_spans(text):
        n = count_tokens(text[a:b])
        units.extend(_split_long(text, a, b, max_tokens) if n > max_tokens else [(a, b, n)])
    chunks: list[Chunk] = []
    i = 0
    while i < len(units):
        j, total = i, 0
        while j < len(units) and total + units[j][2] + (j > i) <= max_tokens:
            total += units[j][2] + (j > i)
            j += 1
        j = max(j, i + 1)
        a, b = units[i][0], units[j - 1][1]
        # word pieces add up exactly over whitespace; +1 per join over-counts tiktoken's
        chunks.append(Chunk(len(chunks), a, b, text[a:b], total))
        if j >= len(units):
            break
        # step back over trailing sentences that fit in the overlap budget
        back, carried = j, 0
        while back - 1 > i and carried + units[back - 1][2] <= overlap_tokens:
            back -= 1
            carried += units[back][2]
        i = back
    return chunks
