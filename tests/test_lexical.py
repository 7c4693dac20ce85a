"""The lexical index (tantivy): changed in place, read while a writer commits, filtered exactly
as Chroma filters, and brought level with the collection by document state."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assistant.index.lexical import SnapshotInvalid, terms
from assistant.index.lexical_store import LexicalStore
from assistant.index.schema import ChunkMeta, compile_filters
from assistant.index.store import Store
from assistant.models.embeddings import MiniLMEmbeddings
from assistant.settings import Settings
from assistant.types import Filters

ROOT = Path(__file__).resolve().parents[1]
WORDS = "harbour ferry bridge tram council budget election vaccine drought harvest".split()
SOURCES = ["Atlas Wire", "Harbor Line News", ""]


def _meta(doc: str, i: int, n: int, *, ts: int | None, source: str, story: str = "") -> dict:
    return ChunkMeta(
        doc_id=doc, chunk_index=i, n_chunks=n, start=0, end=10, content_hash=f"h-{doc}",
        chunker="test", title=f"Title of {doc}", source=source, published_ts=ts,
        story_id=story,
    ).to_chroma()  # fmt: skip


def _add(writer: Any, doc: str, texts: list[str], **meta: Any) -> None:
    metas = [_meta(doc, i, len(texts), **meta) for i in range(len(texts))]
    vectors = np.ones((len(texts), 4), dtype=np.float32) / 2
    writer.add([f"{doc}:{i}" for i in range(len(texts))], texts, metas, vectors)


def test_add_update_and_delete_in_place_while_an_older_view_stays_as_it_was(
    tmp_path: Path,
) -> None:
    lexical = LexicalStore(tmp_path / "lexical" / "news")
    with lexical.writer() as w:
        _add(w, "ferry", ["The ferry terminal opened two new berths."], ts=1_650_000_000,
             source="Atlas Wire")  # fmt: skip
        _add(w, "tram", ["The tram extension will cost 40 million."], ts=None, source="")
        w.commit(1)
    first = lexical.load(1)
    assert [c for c, _ in first.search("ferry berths", 5)] == ["ferry:0"]
    assert first.vector("ferry:0") is not None and first.size == 2

    with lexical.writer() as w:  # an update: the document's chunks replaced, nothing added
        w.delete_docs(["ferry"])
        _add(w, "ferry", ["The ferry terminal closed for repairs."], ts=1_650_000_000,
             source="Atlas Wire")  # fmt: skip
        w.commit(2)
    second = lexical.load(2)
    assert second.search("berths", 5) == []
    assert [c for c, _ in second.search("ferry repairs", 5)] == ["ferry:0"]
    assert second.size == 2
    # the first view is a point-in-time searcher: a commit does not change what it answers
    assert [c for c, _ in first.search("berths", 5)] == ["ferry:0"]

    with lexical.writer() as w:
        w.delete_docs(["tram"])
        w.commit(3)
    third = lexical.load(3)
    assert third.search("tram extension", 5) == [] and third.size == 1
    with pytest.raises(SnapshotInvalid, match="generation 3"):
        lexical.load(2)  # the index says which generation it mirrors


def test_a_failed_write_leaves_the_last_commit(tmp_path: Path) -> None:
    lexical = LexicalStore(tmp_path / "lexical" / "news")
    with lexical.writer() as w:
        _add(w, "a", ["Harbour council budget approved."], ts=None, source="")
        w.commit(1)
    with pytest.raises(RuntimeError), lexical.writer() as w:
        _add(w, "b", ["Drought hits the harvest."], ts=None, source="")
        raise RuntimeError("the Chroma write failed")
    assert lexical.synced() == 1
    view = lexical.load(1)
    assert view.size == 1 and view.search("drought harvest", 5) == []


def _corpus(seed: int = 7, n: int = 120) -> list[tuple[str, str, int | None, str]]:
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))
        ts = None if rng.random() < 0.2 else 1_640_995_200 + rng.randint(0, 365) * 86_400
        docs.append((f"d{i:03d}", f"A report on the {words}.", ts, rng.choice(SOURCES)))
    return docs


@pytest.mark.parametrize(
    "filters",
    [
        Filters(since=date(2022, 6, 1)),
        Filters(until=date(2022, 3, 31)),
        Filters(as_of=date(2022, 5, 15)),
        Filters(source="Atlas Wire"),
        Filters(since=date(2022, 2, 1), until=date(2022, 9, 30), source="Harbor Line News"),
        Filters(as_of=date(2022, 8, 1), since=date(2022, 4, 1)),
    ],
    ids=["since", "until", "as-of", "source", "all-three", "as-of-since"],
)
def test_filters_select_exactly_what_chroma_would(tmp_path: Path, filters: Filters) -> None:
    lexical = LexicalStore(tmp_path / "lexical" / "news")
    docs = _corpus()
    with lexical.writer() as w:
        for doc, text, ts, source in docs:
            _add(w, doc, [text], ts=ts, source=source)
        w.commit(1)
    view = lexical.load(1)
    compiled = compile_filters(filters)
    admitted = {
        doc
        for doc, _, ts, source in docs
        if compiled.admits(ChunkMeta.from_chroma(_meta(doc, 0, 1, ts=ts, source=source)))
    }
    assert view.count(compiled) == len(admitted) > 0
    for word in ("harbour", "drought", "tram"):
        stem = terms(word)[0]
        expected = {doc for doc, text, *_ in docs if stem in terms(text)} & admitted
        found = {cid.split(":")[0] for cid, _ in view.search(word, 500, compiled)}
        assert found == expected, word


def test_sources_documents_and_stories(tmp_path: Path) -> None:
    lexical = LexicalStore(tmp_path / "lexical" / "news")
    with lexical.writer() as w:
        _add(w, "a", ["Ferry one.", "Ferry two."], ts=1_650_000_000, source="Atlas Wire",
             story="s1")  # fmt: skip
        _add(w, "b", ["Ferry copy."], ts=1_650_100_000, source="Harbor Line News", story="s1")
        _add(w, "c", ["Tram."], ts=None, source="Atlas Wire")
        _add(w, "d", ["Budget."], ts=None, source="")
        w.commit(1)
    view = lexical.load(1)
    assert view.documents() == 4 and view.size == 5 and view.stories == 3
    spans = {s.source: (s.articles, s.first_ts, s.last_ts) for s in view.source_spans}
    assert spans == {
        "Atlas Wire": (2, 1_650_000_000, 1_650_000_000),
        "Harbor Line News": (1, 1_650_100_000, 1_650_100_000),
        "": (1, None, None),
    }
    assert view.known_sources == ["Atlas Wire", "Harbor Line News"]
    assert view.story_members(["s1", "c"]) == {
        "s1": {"a": "Atlas Wire", "b": "Harbor Line News"},
        "c": {"c": "Atlas Wire"},
    }
    assert view.latest_ts == 1_650_100_000 and view.undated == 2


WRITER = """
import sys, numpy as np
from pathlib import Path
from assistant.index.lexical_store import LexicalStore
from assistant.index.schema import ChunkMeta
lexical = LexicalStore(Path(sys.argv[1]))
for gen in range(2, 2 + int(sys.argv[2])):
    with lexical.writer() as w:
        w.delete_docs(["moving"])
        metas = [ChunkMeta("moving", 0, 1, 0, 1, f"h{gen}", "t", source="Atlas Wire").to_chroma()]
        w.add(["moving:0"], [f"Council budget round {gen}."], metas, np.ones((1, 4), np.float32))
        extra = [ChunkMeta(f"x{gen}-{i}", 0, 1, 0, 1, "h", "t").to_chroma() for i in range(200)]
        w.add([f"x{gen}-{i}:0" for i in range(200)], ["Harvest report."] * 200, extra,
              np.ones((200, 4), np.float32))
        w.commit(gen)
"""


def test_a_reader_queries_while_another_process_commits(tmp_path: Path) -> None:
    path = tmp_path / "lexical" / "news"
    lexical = LexicalStore(path)
    with lexical.writer() as w:
        _add(w, "moving", ["Council budget round 1."], ts=None, source="Atlas Wire")
        w.commit(1)
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), "15"], cwd=ROOT, stderr=subprocess.PIPE
    )
    seen: list[int] = []
    sizes: list[int] = []
    try:
        while child.poll() is None or not seen or seen[-1] != 16:
            generation = lexical.synced()
            assert generation is not None
            try:
                view = lexical.load(generation)
            except SnapshotInvalid:  # the writer moved on between the two reads: ask again
                continue
            hits = view.search("council budget", 5)
            assert [c for c, _ in hits] == ["moving:0"]  # always exactly one version
            seen.append(generation)
            sizes.append(view.size)
            if child.poll() is not None and generation == 16:
                break
            time.sleep(0.005)
    finally:
        child.wait(timeout=60)
    assert child.returncode == 0, child.stderr.read() if child.stderr else ""
    assert seen == sorted(seen) and seen[-1] == 16 and len(set(seen)) > 1
    assert sizes == sorted(sizes) and sizes[-1] == 1 + 15 * 200


def test_reconcile_reads_only_the_documents_that_differ(
    tmp_path: Path, settings: Settings, embedder: MiniLMEmbeddings
) -> None:
    store = Store(settings, embedder)
    texts = {d: f"The {w} story in full." for d, w in zip("abcd", WORDS, strict=False)}
    for doc, text in texts.items():
        meta = _meta(doc, 0, 1, ts=None, source="Atlas Wire")
        store.upsert([f"{doc}:0"], [text], [meta], embedder.embed_array([text]))
    lexical = LexicalStore.beside(settings, store)
    with lexical.writer() as w:
        assert w.reconcile(store) == 4
        w.commit(1)
    assert lexical.load(1).size == 4
    # behind the collection: "b" changed, "c" deleted, "e" added (as another host would)
    changed = "The bridge story, corrected."
    meta = {**_meta("b", 0, 1, ts=None, source="Atlas Wire"), "content_hash": "h-b2"}
    store.upsert(["b:0"], [changed], [meta], embedder.embed_array([changed]))
    store.delete_docs(["c"])
    meta = _meta("e", 0, 1, ts=None, source="Atlas Wire")
    store.upsert(["e:0"], ["A drought story."], [meta], embedder.embed_array(["A drought story."]))
    reads: list[list[str]] = []
    real = Store.doc_chunks

    def counting(self: Store, doc_ids: Any) -> Any:
        reads.append(list(doc_ids))
        return real(self, doc_ids)

    with pytest.MonkeyPatch.context() as mp, lexical.writer() as w:
        mp.setattr(Store, "doc_chunks", counting)
        assert w.reconcile(store) == 3
        w.commit(2)
    assert sorted(d for batch in reads for d in batch) == ["b", "e"]
    view = lexical.load(2)
    assert view.size == 4
    assert texts["c"] == "The bridge story in full."
    assert [c for c, _ in view.search("bridge", 3)] == ["b:0"]  # "c" is gone, "b" changed
    vec = view.vector("e:0")
    assert vec is not None
    assert float(vec @ embedder.embed_array(["A drought story."])[0]) > 0.99
