"""Ingest end to end with real parts: loaders, chunker, the ONNX MiniLM embedder, an embedded
Chroma store in a temporary folder and the BM25 index beside it. Nothing is mocked; the fake
OpenAI server (a real HTTP server) stands in for a remote embedder in the mismatch tests.
"""

from __future__ import annotations

import json
import os
import random
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assistant.errors import EmbedderMismatchError
from assistant.index.lexical import SnapshotInvalid, index_text
from assistant.index.lexical_store import LexicalStore
from assistant.index.store import GENERATION, WRITING, Store, StoredChunk
from assistant.models.embeddings import MiniLMEmbeddings, minilm_files
from assistant.settings import Settings, load_settings
from ingest import pipeline
from ingest.chunking import chunk_text, chunker_id, count_tokens
from ingest.loaders import Article, LoadError, Skipped, load_path, path_doc_id
from ingest.pipeline import IngestReport, ingest_paths
from ingest.writer import writes
from tests.conftest import ServerExamples, backend, on_both_stores
from tests.fake_openai import EMBEDDING_DIM, FakeOpenAI, fake_embedding
from tests.pdf_util import make_pdf

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "articles"
BIG = 10**9  # max_bytes for loading files directly
WIRE_IDS = {"wire-fed-2022-03-16", "wire-webb-2022-03-16", "wire-artemis-2022-03-18"}
MINILM = "all-MiniLM-L6-v2-onnx-int8"


def _ts(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp())


# title, source, url, author, published_at (date part) for every example document, keyed by
# file name (or JSONL id).
EXPECTED_META: dict[str, tuple[str, str, str, str, str]] = {
    "vellmark-tram-extension.txt": (
        "Vellmark council approves eastern tram extension after six-hour debate",
        "Vellmark Courier",
        "https://vellmark-courier.test/city/2022/03/11/tram-extension-approved",
        "Noor Abdi",
        "2022-03-11",
    ),
    "analysis-can-china-broker-peace.html": (
        "Analysis: Everyone wants Beijing to broker peace. Beijing is in no hurry",
        "Global Affairs Review",
        "https://globalaffairs-review.test/analysis/2022/03/16/can-china-broker-peace",
        "Rafael Quintero",
        "2022-03-16",
    ),
    "wang-yi-press-conference.html": (
        'Wang Yi says China ready to help mediate, calls Russia ties "rock solid"',
        "Eastbridge Daily",
        "https://eastbridge-daily.test/asia/2022/03/07/wang-yi-press-conference-mediation",
        "Daniel Okafor",
        "2022-03-07",
    ),
    "beijing-olympics-closing.txt": (
        "Beijing closes Winter Olympics as Norway sets gold-medal record",
        "Podium Sports Wire",
        "https://podium-sports.test/olympics/2022/02/20/beijing-closing-ceremony",
        "Karin Holm",
        "2022-02-20",
    ),
    "borrell-says-china-must-mediate.txt": (
        "EU foreign-policy chief says China is the only possible mediator in Ukraine war",
        "Continental Ledger",
        "https://continental-ledger.test/europe/2022-03-06/borrell-china-mediator",
        "Tomas Ferreira",
        "2022-03-06",
    ),
    "biden-xi-video-call.md": (
        "Biden warns Xi of consequences in nearly two-hour call; no sign of Chinese mediation",
        "Harbor Line News",
        "https://harborline-news.test/world/2022/03/19/biden-xi-video-call-ukraine",
        "Jonah Whitfield",
        "2022-03-19",
    ),
    "kuleba-asks-china-to-use-influence.md": (
        "Ukraine's foreign minister asks Beijing to use its sway over Moscow",
        "Harbor Line News",
        "https://harborline-news.test/world/2022/03/02/kuleba-wang-yi-call",
        "Mara Lindqvist",
        "2022-03-02",
    ),
    "xi-macron-scholz-video-call.md": (
        "Xi urges “maximum restraint” in video call with Macron and Scholz",
        "The Meridian Post",
        "https://meridian-post.test/world/2022/03/08/xi-macron-scholz-video-call",
        "Elise Moreau",
        "2022-03-08",
    ),
    "wire-fed-2022-03-16": (
        "Fed raises interest rates for first time since 2018, signals more hikes ahead",
        "Atlas Wire",
        "https://atlas-wire.test/markets/2022/03/16/fed-raises-rates-quarter-point",
        "Nadia Petrenko-Hughes",
        "2022-03-16",
    ),
    "wire-webb-2022-03-16": (
        "Webb telescope finishes key mirror alignment step, sharp test image released",
        "Atlas Wire",
        "https://atlas-wire.test/science/2022/03/16/webb-fine-phasing-complete",
        "Felix Amundsen",
        "2022-03-16",
    ),
    "wire-artemis-2022-03-18": (
        "NASA's Moon rocket reaches launch pad for first time ahead of Artemis I tests",
        "Atlas Wire",
        "https://atlas-wire.test/science/2022/03/18/artemis-sls-rollout-pad-39b",
        "Felix Amundsen",
        "2022-03-18",
    ),
}

# Page furniture around the two HTML articles: navigation, "Check also"/related links, author
# boxes, newsletter promos, cookie notices and footers. None of it may reach a stored passage.
HTML_BOILERPLATE = [
    # analysis-can-china-broker-peace.html
    "Sign in",
    "Subscribe from $1 a week",
    "Front page",
    "Podcasts",
    "International edition",
    "Related stories",
    "Antalya talks end without ceasefire deal",
    "Sullivan and Yang meet in Rome amid warnings over aid to Moscow",
    "Podcast: The middle powers trying to end a war",
    "Data: Tracking refugees leaving Ukraine",
    "Get the Morning Briefing",
    "Five stories you need to know",
    "About the author",
    "weekly column on great-power politics",
    "This site uses cookies",
    "Cookie Settings",
    "I agree",
    "Corrections",
    "Privacy notice",
    "Copyright 2022 Global Affairs Review Publishing",
    # wang-yi-press-conference.html
    "Newsletters",
    "Independent reporting from across the Pacific",
    "Search Eastbridge",
    "Check also",
    "Congress session opens with focus on growth targets",
    "Markets brace as sanctions ripple through commodity prices",
    "Evacuation flights",
    "Opinion: The limits of neutrality",
    "diplomatic correspondent",
    "email tips to the newsroom",
    "We use cookies",
    "Accept all",
    "Manage preferences",
    "Read our privacy policy",
    "Terms of use",
    "Careers",
    "Eastbridge Daily Media Ltd",
    "All rights reserved",
]

# Sentences of the article bodies that must survive extraction, verbatim, in one passage.
ARTICLE_SENTENCES = [
    # HTML
    "Kuleba said afterward that there had been no progress toward even a 24-hour ceasefire.",
    "China's position, he wrote, was objective and impartial.",
    "For now, China appears to prefer the role of a sympathetic bystander that calls for talks, "
    "sends humanitarian aid and criticizes sanctions.",
    "Wang said the Red Cross Society of China would send a batch of humanitarian supplies to "
    "Ukraine as soon as possible.",
    "Wang's remarks were followed closely in European capitals, where leaders have been "
    "searching for any channel that might reach the Kremlin.",
    "BEIJING — Chinese Foreign Minister Wang Yi said on Monday that China was willing",
    # text / Markdown / JSONL
    '"It has to be China," Borrell said, adding that he was convinced of it.',
    "The torch will be relit in Beijing for the Winter Paralympics, which are scheduled to open "
    "on March 4.",
    "The conversation was the first between the two presidents since a virtual summit in "
    "November 2021.",
    "For now, the gap between those two positions has not closed.",
    "The vote was 8 to 1.",
]


# --------------------------------------------------------------------------------- helpers


@dataclass
class Ingested:
    folder: Path
    settings: Settings
    store: Store
    report: IngestReport
    chunks: list[StoredChunk]


def make_settings(home: Path, **overrides: object) -> Settings:
    """Settings for ``home`` built from a clean environment (safe in module-scoped fixtures)."""
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("NEWSDESK_") or key in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
                mp.delenv(key)
        mp.setenv("NEWSDESK_HOME", str(home))
        return load_settings(home=home, **overrides)


def load_articles(*paths: Path) -> dict[str, Article]:
    """Every article the loaders produce for ``paths`` (files or folders), by doc id."""
    out: dict[str, Article] = {}
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            for item in load_path(file, BIG):
                if isinstance(item, Article):
                    out.setdefault(item.doc_id, item)
    return out


def by_doc(chunks: list[StoredChunk]) -> dict[str, list[StoredChunk]]:
    docs: dict[str, list[StoredChunk]] = {}
    for chunk in chunks:
        docs.setdefault(str(chunk.metadata["doc_id"]), []).append(chunk)
    for items in docs.values():
        items.sort(key=lambda c: int(c.metadata["chunk_index"]))
    return docs


def assert_consistent(store: Store, articles: dict[str, Article] | None = None) -> None:
    """No duplicate ids, every document complete, chunk ids ``{doc_id}:{index}``; with
    ``articles``, the stored documents are exactly those articles, chunked as the chunker does."""
    chunks = list(store.iter_chunks())
    ids = [c.chunk_id for c in chunks]
    assert len(ids) == len(set(ids)) == store.count()
    docs = by_doc(chunks)
    for doc_id, items in docs.items():
        n = int(items[0].metadata["n_chunks"])
        assert [int(c.metadata["chunk_index"]) for c in items] == list(range(n)), doc_id
        assert [c.chunk_id for c in items] == [f"{doc_id}:{i}" for i in range(n)]
        assert {c.metadata["content_hash"] for c in items} == {items[0].metadata["content_hash"]}
        assert {c.metadata["n_chunks"] for c in items} == {n}
    assert all(state.complete for state in store.doc_states().values())
    if articles is None:
        return
    assert set(docs) == set(articles)
    settings = store.settings
    for doc_id, article in articles.items():
        expected = chunk_text(article.text, settings.chunk_tokens, settings.chunk_overlap_tokens)
        got = docs[doc_id]
        assert [(c.metadata["start"], c.metadata["end"], c.text) for c in got] == [
            (e.start, e.end, e.text) for e in expected
        ], doc_id
        assert {c.metadata["content_hash"] for c in got} == {article.content_hash}


def lexical_current(settings: Settings, store: Store) -> bool:
    """The lexical index mirrors the collection's generation and holds every chunk, and no
    ingest is marked as unfinished."""
    manifest = store.manifest()
    try:
        snapshot = LexicalStore.beside(settings, store).load(int(manifest.get(GENERATION, 0)))
    except SnapshotInvalid:
        return False
    return snapshot.size == store.count() and not manifest.get(WRITING)


def one_line_naming(item: Skipped, name: str) -> None:
    text = str(item)
    assert "\n" not in text and "\r" not in text, text
    assert name in text, text
    assert item.reason.strip(), text


def write_article(path: Path, title: str, body: str, day: str = "2022-03-10") -> Path:
    path.write_text(
        f"---\ntitle: {title}\nsource: Test Desk\nurl: https://test.test/{path.stem}\n"
        f"author: A. Writer\npublished_at: {day}\n---\n\n{body}\n",
        encoding="utf-8",
    )
    return path


_VOCAB = (
    "minister talks border ceasefire delegation embassy council vote sanctions energy market "
    "harbor village river bridge convoy aid winter grain port railway officials analysts "
    "statement agreement pipeline exports prices inflation ministry spokesman capital region "
    "parliament election coalition budget tariff currency shipping corridor refugees shelter "
    "hospital school mayor governor province summit envoy mediator proposal draft resolution"
).split()


def synthetic_records(n: int, words: int, seed: int) -> list[dict[str, str]]:
    rnd = random.Random(seed)
    records = []
    for i in range(n):
        sentences: list[str] = []
        count = 0
        while count < words:
            k = rnd.randint(8, 18)
            sentence = " ".join(rnd.choice(_VOCAB) for _ in range(k))
            sentences.append(sentence[0].upper() + sentence[1:] + f" on day {i}.")
            count += k + 3
        paragraphs = [" ".join(sentences[j : j + 4]) for j in range(0, len(sentences), 4)]
        records.append(
            {
                "id": f"synth-{i:03d}",
                "title": f"Synthetic dispatch number {i}",
                "source": "Synthetic Wire",
                "published_at": f"2022-03-{1 + i % 28:02d}",
                "text": "\n\n".join(paragraphs),
            }
        )
    return records


def write_jsonl(path: Path, records: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


# -------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def embedded_examples(
    tmp_path_factory: pytest.TempPathFactory, remembering_embedder: MiniLMEmbeddings
) -> Iterator[Ingested]:
    """``examples/articles`` copied and ingested once; the tests that use it only read. (The
    embedder remembers the examples' vectors from ``examples_home`` when that ran first.)"""
    root = tmp_path_factory.mktemp("examples")
    folder = root / "articles"
    shutil.copytree(EXAMPLES, folder)
    settings = make_settings(root / "home")
    store = Store(settings, remembering_embedder)
    report = ingest_paths([str(folder)], settings, store=store)
    yield Ingested(folder, settings, store, report, list(store.iter_chunks()))


@pytest.fixture
def examples(request: pytest.FixtureRequest, embedder: MiniLMEmbeddings) -> Ingested:
    """The example articles ingested once, in the embedded store or (``on_both_stores``) in
    a collection of the session's Chroma server (ingested from ``examples/articles`` itself)."""
    if backend(request) == "embedded":
        return request.getfixturevalue("embedded_examples")  # type: ignore[no-any-return]
    on_server: ServerExamples = request.getfixturevalue("examples_on_server")
    settings = on_server.at.settings()
    store = Store(settings, embedder)
    return Ingested(EXAMPLES, settings, store, on_server.report, list(store.iter_chunks()))


@pytest.fixture
def small_corpus(tmp_path: Path) -> Path:
    """Three short Markdown/text files and a two-line JSONL: cheap to embed."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    write_article(
        folder / "alpha.md",
        "Alpha report",
        "The harbor council voted to reopen the grain port on Monday. Officials said ships "
        "would sail within a week.\n\nAnalysts expect prices to fall as exports resume.",
    )
    write_article(
        folder / "beta.txt",
        "Beta report",
        "The railway bridge over the river was repaired overnight. The mayor thanked the "
        "engineers who worked through the winter storm.",
    )
    write_article(
        folder / "gamma.md",
        "Gamma report",
        "A delegation met the envoy at the embassy to discuss a ceasefire draft. The talks "
        "ended without agreement, a spokesman said.",
    )
    write_jsonl(
        folder / "wire.jsonl",
        [
            {
                "id": "wire-one",
                "title": "Wire one",
                "published_at": "2022-03-11",
                "text": "Parliament passed the budget after a long night of debate.",
            },
            {
                "id": "wire-two",
                "title": "Wire two",
                "published_at": "2022-03-12",
                "text": "The central bank held rates steady, citing stable inflation.",
            },
        ],
    )
    return folder


# ------------------------------------------------------------------- 1. the example corpus


@on_both_stores("examples")
def test_examples_ingest_counts(examples: Ingested) -> None:
    report = examples.report
    assert report.skipped == [] and report.exit_code == 0
    assert report.files == 9
    assert (report.added, report.updated, report.unchanged, report.removed) == (11, 0, 0, 0)
    assert report.chunks > 0
    assert report.chunks == len(examples.chunks) == examples.store.count()
    assert len(by_doc(examples.chunks)) == 11
    assert examples.store.manifest()["embedder"] == MINILM
    assert examples.store.manifest()["chunker"] == chunker_id(230, 30)
    assert lexical_current(examples.settings, examples.store)


def test_examples_doc_ids(examples: Ingested) -> None:
    docs = by_doc(examples.chunks)
    assert set(docs) >= WIRE_IDS  # JSONL ids are kept as document ids
    for path in examples.folder.iterdir():
        if path.suffix != ".jsonl":
            assert path_doc_id(path) in docs, path.name
    assert len(docs) == len(WIRE_IDS) + 8


def test_examples_metadata(examples: Ingested) -> None:
    docs = by_doc(examples.chunks)
    seen: set[str] = set()
    for doc_id, items in docs.items():
        meta = items[0].metadata
        path = Path(meta["path"])
        key = doc_id if doc_id in WIRE_IDS else path.name
        title, source, url, author, day = EXPECTED_META[key]
        seen.add(key)
        assert path.parent == examples.folder.resolve()
        assert meta["title"] == title, key
        assert meta["source"] == source, key
        assert meta["url"] == url, key
        assert meta["author"] == author, key
        published = meta["published_at"]
        assert isinstance(published, str) and published[:10] == day, key
        assert datetime.fromisoformat(published)  # an ISO string
        ts = meta["published_ts"]
        assert isinstance(ts, int) and not isinstance(ts, bool), key
        assert _ts(day) <= ts < _ts(day) + 86400, key
        # every passage of a document carries the same document metadata
        for chunk in items:
            for field in ("title", "source", "url", "author", "published_at", "published_ts"):
                assert chunk.metadata[field] == meta[field], (key, field)
            assert chunk.metadata["path"] == meta["path"]
            assert chunk.metadata["chunker"] == examples.store.manifest()["chunker"]
    assert seen == set(EXPECTED_META)


def test_html_boilerplate_dropped(examples: Ingested) -> None:
    html_docs = {path_doc_id(p) for p in examples.folder.glob("*.html")}
    html_text = "\n".join(c.text for c in examples.chunks if c.metadata["doc_id"] in html_docs)
    everything = "\n".join(c.text for c in examples.chunks)
    assert html_text
    for phrase in HTML_BOILERPLATE:
        assert phrase not in everything, f"page furniture stored: {phrase!r}"


def test_article_sentences_kept(examples: Ingested) -> None:
    for sentence in ARTICLE_SENTENCES:
        holders = [c.chunk_id for c in examples.chunks if sentence in c.text]
        assert holders, f"article text missing from every passage: {sentence!r}"


def test_markup_and_front_matter_not_stored(examples: Ingested) -> None:
    docs = by_doc(examples.chunks)
    for items in docs.values():
        for chunk in items:
            assert "title:" not in chunk.text and "published_at:" not in chunk.text
            assert not chunk.text.startswith("---")
            assert not re.search(r"^#+ ", chunk.text, re.M), chunk.chunk_id
            assert "<" not in chunk.text and "&mdash;" not in chunk.text, chunk.chunk_id
    # Markdown: the "# headline" became the title, "## subheads" plain text
    name = "kuleba-asks-china-to-use-influence.md"
    joined = "\n".join(c.text for c in docs[path_doc_id(examples.folder / name)])
    assert "Talks at the Belarus border" in joined
    assert EXPECTED_META[name][0] not in joined


def test_chunk_offsets_exact_and_cover_the_article(examples: Ingested) -> None:
    articles = load_articles(examples.folder)
    docs = by_doc(examples.chunks)
    assert set(articles) == set(docs)
    for doc_id, items in docs.items():
        text = articles[doc_id].text
        assert items[0].metadata["content_hash"] == articles[doc_id].content_hash
        assert items[0].metadata["start"] == 0
        assert items[-1].metadata["end"] == len(text)
        previous_end = 0
        previous_start = -1
        for chunk in items:
            start, end = int(chunk.metadata["start"]), int(chunk.metadata["end"])
            assert text[start:end] == chunk.text, chunk.chunk_id
            assert start > previous_start and end > previous_end
            # consecutive passages overlap or touch: no article text falls between them
            assert text[previous_end:start].strip() == "" or start <= previous_end
            previous_start, previous_end = start, end
    # and the stored passages are exactly what the chunker makes of each article
    assert_consistent(examples.store, articles)


def test_chunk_token_limits(examples: Ingested, embedder: MiniLMEmbeddings) -> None:
    from tokenizers import Tokenizer

    untruncated = Tokenizer.from_file(str(minilm_files()[1]))
    untruncated.no_truncation()
    untruncated.no_padding()
    for chunk in examples.chunks:
        assert count_tokens(chunk.text) <= examples.settings.chunk_tokens == 230
        embedded = index_text(str(chunk.metadata["title"]), chunk.text)
        assert embedded == f"{chunk.metadata['title']}\n{chunk.text}"
        assert embedder.count_pieces(embedded) <= 256
        # count_pieces truncates at 256, so also count without truncation
        assert len(untruncated.encode(embedded).ids) <= 256, chunk.chunk_id


def test_chunk_ids_deterministic(examples: Ingested) -> None:
    for chunk in examples.chunks:
        assert chunk.chunk_id == f"{chunk.metadata['doc_id']}:{chunk.metadata['chunk_index']}"
    wire = by_doc(examples.chunks)["wire-fed-2022-03-16"]
    assert [c.chunk_id for c in wire] == [
        f"wire-fed-2022-03-16:{i}" for i in range(int(wire[0].metadata["n_chunks"]))
    ]


def test_stored_vectors_and_bm25_are_usable(examples: Ingested, embedder: MiniLMEmbeddings) -> None:
    store = examples.store
    hits = store.query(embedder.embed_query("Which country won the most Winter Olympics gold?"), 3)
    olympics = path_doc_id(examples.folder / "beijing-olympics-closing.txt")
    assert hits and hits[0][0].metadata["doc_id"] == olympics
    index = LexicalStore.beside(examples.settings, store).load(store.generation())
    top = index.search("Borrell El Mundo mediator", 3)
    borrell = path_doc_id(examples.folder / "borrell-says-china-must-mediate.txt")
    assert top and top[0][0].startswith(f"{borrell}:")


def test_collection_uses_cosine_and_the_configured_hnsw_breadth(
    tmp_path: Path, embedder: MiniLMEmbeddings
) -> None:
    import chromadb

    settings = load_settings(home=tmp_path / "home", hnsw_ef_search=321)
    store = Store(settings, embedder)
    store.upsert(["a:0"], ["text"], [{"doc_id": "a"}], embedder.embed_array(["text"]))
    hnsw = store.collection.configuration_json["hnsw"]
    assert (hnsw["space"], hnsw["ef_search"]) == ("cosine", 321)
    hits = store.query(embedder.embed_query("text"), 1)
    assert hits[0][1] == pytest.approx(1.0, abs=1e-4)  # cosine similarity, not an L2 distance
    # a collection made before the setting existed (legacy metadata, Chroma's default breadth)
    client = chromadb.PersistentClient(str(tmp_path / "legacy"))
    client.create_collection(
        "news", metadata={"hnsw:space": "cosine", "embedder": MINILM}, embedding_function=None
    )
    old = Store(load_settings(home=tmp_path / "legacy-home"), embedder, client)
    hnsw = old.collection.configuration_json["hnsw"]
    assert (hnsw["space"], hnsw["ef_search"]) == ("cosine", 500)
    assert old.manifest()["embedder"] == MINILM


# ----------------------------------------------------------- 2. unchanged, changed, pruned


@on_both_stores("examples")
def test_reingest_unchanged_embeds_nothing(examples: Ingested) -> None:
    before = sorted((c.chunk_id, c.metadata["content_hash"]) for c in examples.chunks)
    report = ingest_paths(
        [str(examples.folder), str(examples.folder / "wire.jsonl")],  # a file twice: once
        examples.settings,
        store=examples.store,
    )
    assert report.skipped == [] and report.exit_code == 0
    assert (report.added, report.updated, report.removed, report.chunks) == (0, 0, 0, 0)
    assert report.unchanged == 11
    after = sorted((c.chunk_id, c.metadata["content_hash"]) for c in examples.store.iter_chunks())
    assert after == before
    assert lexical_current(examples.settings, examples.store)


@on_both_stores("settings")
def test_changed_file_replaces_its_chunks(
    tmp_path: Path, embedder: MiniLMEmbeddings, settings: Settings
) -> None:
    folder = tmp_path / "articles"
    folder.mkdir()
    for name in ("kuleba-asks-china-to-use-influence.md", "beijing-olympics-closing.txt"):
        shutil.copy(EXAMPLES / name, folder / name)
    store = Store(settings, embedder)
    first = ingest_paths([str(folder)], settings, store=store)
    assert (first.added, first.chunks) == (2, store.count())
    changed = folder / "kuleba-asks-china-to-use-influence.md"
    doc = path_doc_id(changed)
    other = path_doc_id(folder / "beijing-olympics-closing.txt")
    old = by_doc(list(store.iter_chunks()))
    assert len(old[doc]) >= 3
    other_before = [(c.chunk_id, c.text, c.metadata) for c in old[other]]

    # shrink the body to one short paragraph: fewer chunks than before
    head, _, _ = changed.read_text(encoding="utf-8").partition("# Ukraine")
    changed.write_text(head + "Kuleba called Wang Yi again on Friday, officials said.\n")
    report = ingest_paths([str(folder)], settings, store=store)
    assert (report.added, report.updated, report.unchanged, report.removed) == (0, 1, 1, 0)
    assert report.skipped == []
    new = by_doc(list(store.iter_chunks()))
    assert [c.chunk_id for c in new[doc]] == [f"{doc}:0"]  # no stale doc:1, doc:2, ...
    assert new[doc][0].text == "Kuleba called Wang Yi again on Friday, officials said."
    assert new[doc][0].metadata["content_hash"] != old[doc][0].metadata["content_hash"]
    assert report.chunks == 1
    assert [(c.chunk_id, c.text, c.metadata) for c in new[other]] == other_before
    assert store.count() == len(new[doc]) + len(new[other])
    assert_consistent(store, load_articles(folder))
    assert lexical_current(settings, store)

    # grow it again, and change only the front matter title of the other file
    shutil.copy(EXAMPLES / changed.name, changed)
    olympics = folder / "beijing-olympics-closing.txt"
    olympics.write_text(
        olympics.read_text(encoding="utf-8").replace(
            "title: Beijing closes", "title: Beijing ends"
        ),
        encoding="utf-8",
    )
    report = ingest_paths([str(folder)], settings, store=store)
    assert (report.added, report.updated, report.unchanged) == (0, 2, 0)
    final = by_doc(list(store.iter_chunks()))
    assert len(final[doc]) == len(old[doc])
    assert final[other][0].metadata["title"].startswith("Beijing ends")
    assert_consistent(store, load_articles(folder))
    assert lexical_current(settings, store)


def test_changed_jsonl_line_updates_only_that_document(
    small_corpus: Path, embedder: MiniLMEmbeddings, settings: Settings
) -> None:
    store = Store(settings, embedder)
    assert ingest_paths([str(small_corpus)], settings, store=store).added == 5
    wire = small_corpus / "wire.jsonl"
    records = [json.loads(line) for line in wire.read_text().splitlines()]
    records[1]["text"] = "The central bank raised rates by half a point, surprising markets."
    write_jsonl(wire, records)
    report = ingest_paths([str(small_corpus)], settings, store=store)
    assert (report.added, report.updated, report.unchanged) == (0, 1, 4)
    stored = store.get_chunks(["wire-two:0", "wire-one:0"])
    assert stored["wire-two:0"].text == records[1]["text"]
    assert stored["wire-one:0"].text == records[0]["text"]
    assert_consistent(store, load_articles(small_corpus))


@on_both_stores("settings")
def test_prune_removes_documents_of_deleted_files(
    small_corpus: Path, tmp_path: Path, embedder: MiniLMEmbeddings, settings: Settings
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_article(
        elsewhere / "delta.md", "Delta report", "The shelter opened its doors to 40 families."
    )
    store = Store(settings, embedder)
    ingest_paths([str(small_corpus), str(elsewhere)], settings, store=store)
    gone = small_corpus / "beta.txt"
    gone_id = path_doc_id(gone)
    assert gone_id in store.doc_states()
    count = store.count()
    gone.unlink()

    kept = ingest_paths([str(small_corpus)], settings, store=store)  # no --prune: kept
    assert (kept.removed, kept.added, kept.updated, kept.unchanged) == (0, 0, 0, 4)
    assert gone_id in store.doc_states() and store.count() == count
    assert lexical_current(settings, store)

    pruned = ingest_paths([str(small_corpus)], settings, store=store, prune=True)
    assert (pruned.removed, pruned.added, pruned.updated, pruned.unchanged) == (1, 0, 0, 4)
    states = store.doc_states()
    assert gone_id not in states
    assert not [c for c in store.iter_chunks() if c.chunk_id.startswith(f"{gone_id}:")]
    # a document whose file still exists is kept even when its folder was not named
    assert path_doc_id(elsewhere / "delta.md") in states
    assert_consistent(store, load_articles(small_corpus, elsewhere))
    assert lexical_current(settings, store)
    snapshot = LexicalStore.beside(settings, store).load(store.generation())
    assert snapshot.search("engineers bridge", 5) == []


def test_prune_removes_records_deleted_from_a_jsonl(
    small_corpus: Path, embedder: MiniLMEmbeddings, settings: Settings
) -> None:
    store = Store(settings, embedder)
    ingest_paths([str(small_corpus)], settings, store=store)
    wire = small_corpus / "wire.jsonl"
    write_jsonl(wire, [json.loads(wire.read_text().splitlines()[0])])  # drop "wire-two"
    report = ingest_paths([str(small_corpus)], settings, store=store, prune=True)
    assert report.removed == 1
    assert "wire-two" not in store.doc_states()


# ------------------------------------------------------------------------- 3. bad inputs


def _binary(path: Path) -> None:
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)


def _latin1(path: Path) -> None:
    path.write_bytes("Café talks in Zürich ended at 9 o’clock.".encode("cp1252"))


def _mostly_binary(path: Path) -> None:
    """Random bytes without a NUL: far more undecodable bytes than a damaged text has."""
    path.write_bytes(bytes(b for b in random.Random(5).randbytes(4000) if b))


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _blank(path: Path) -> None:
    path.write_text("---\ntitle: Nothing here\n---\n\n   \n\t\n", encoding="utf-8")


def _garbage_pdf(path: Path) -> None:
    path.write_bytes(random.Random(7).randbytes(3000))


def _truncated_pdf(path: Path) -> None:
    make_pdf(path, "Truncated", ["A paragraph that will be cut in half. " * 20] * 4)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _no_article_html(path: Path) -> None:
    path.write_text(
        "<html><head><title>App</title><script>var config = {};</script></head>"
        "<body><div id='app'></div><script>render(config)</script></body></html>",
        encoding="utf-8",
    )


def _landing_page_html(path: Path) -> None:
    """A saved front page: navigation, a cookie banner and a footer, no article."""
    path.write_text(
        """<html><head><title>Eastbridge Daily</title></head><body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/world/">World</a></li></ul></nav>
<div class="cookie-notice"><p>We use cookies to personalise content. By clicking "Accept all"
you agree.</p><button>Accept all</button></div>
<footer><ul><li><a href="/about/">About us</a></li><li><a href="/privacy/">Privacy</a></li></ul>
<p>&copy; 2022 Eastbridge Daily Media Ltd. All rights reserved.</p></footer>
</body></html>""",
        encoding="utf-8",
    )


def _folder(path: Path) -> None:
    path.mkdir()


def _dangling(path: Path) -> None:
    path.symlink_to(path.parent / "does-not-exist.md")


def _docx(path: Path) -> None:
    path.write_bytes(b"PK\x03\x04 not really a word file")


BAD_FILES = [
    ("binary.txt", _binary, "binary file"),
    ("mostly-binary.txt", _mostly_binary, "binary file"),
    ("empty.txt", _empty, "empty file"),
    ("blank.md", _blank, "no text to ingest"),
    ("garbage.pdf", _garbage_pdf, "broken PDF"),
    ("truncated.pdf", _truncated_pdf, "broken PDF"),
    ("app.html", _no_article_html, "no article text"),
    ("folder.txt", _folder, "cannot read"),
    ("dangling.md", _dangling, "cannot read"),
    ("notes.docx", _docx, "unsupported file type .docx"),
]


@pytest.mark.parametrize(("name", "make", "reason"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_loader_rejects_bad_file_with_one_line(
    tmp_path: Path, name: str, make: object, reason: str
) -> None:
    path = tmp_path / name
    make(path)  # type: ignore[operator]
    with pytest.raises(LoadError) as err:
        list(load_path(path, BIG))
    message = str(err.value)
    assert "\n" not in message, message
    assert message.startswith(f"{path}: "), message
    assert reason in message, message


def test_loader_rejects_oversize_file(tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    path.write_text("A sentence about the harbor. " * 100, encoding="utf-8")
    with pytest.raises(LoadError, match="too large") as err:
        list(load_path(path, 1000))
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_loader_reports_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "locked.txt"
    path.write_text("Secret text that cannot be read.", encoding="utf-8")
    path.chmod(0)
    try:
        assert not os.access(path, os.R_OK)
        with pytest.raises(LoadError, match="cannot read") as err:
            list(load_path(path, BIG))
        assert "locked.txt" in str(err.value) and "\n" not in str(err.value)
    finally:
        path.chmod(0o644)


def _bad_jsonl(path: Path) -> dict[int, str]:
    """A JSONL file with good and bad lines; returns {line number: expected reason}."""
    good = {"title": "Good", "source": "Wire", "published_at": "2022-03-10"}
    lines: list[bytes] = [
        json.dumps({**good, "id": "good-1", "text": "The port reopened on Monday."}).encode(),
        b'{"id": "broken", "text": "unterminated',
        b'["a", "list", "not", "an", "object"]',
        json.dumps({"id": "no-text", "title": "Headline only"}).encode(),
        json.dumps({"id": "blank-text", "text": "   "}).encode(),
        json.dumps({**good, "id": "good-2", "text": "The bridge was repaired overnight."}).encode(),
        json.dumps({"id": "good-1", "text": "A second record claiming the same id."}).encode(),
        json.dumps(
            {"id": "bad-date", "text": "Some text.", "published_at": "next Tuesday"}
        ).encode(),
        json.dumps({"id": {"nested": 1}, "text": "An id that is an object."}).encode(),
        b"",
        '{"id": "cp1252", "text": "Caf\u00e9"}'.encode("cp1252"),
        json.dumps({"title": "No id", "text": "A record without an id still loads."}).encode(),
        b"42",
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return {
        2: "malformed JSON",
        3: "not a JSON object",
        4: "'text' is missing or empty",
        5: "'text' is missing or empty",
        7: "duplicate id 'good-1'",
        9: "unusable value",
        13: "not a JSON object",
    }


# lines of _bad_jsonl that load with a repair, and the note each carries
JSONL_SALVAGED = {
    8: "field 'published_at' has unparseable date 'next Tuesday'; kept undated",
    11: "1 byte that is not UTF-8 replaced with U+FFFD (first at byte 29)",
}


def test_jsonl_bad_lines_reported_good_lines_loaded(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    expected = _bad_jsonl(path)
    items = list(load_path(path, BIG))
    articles = [i for i in items if isinstance(i, Article)]
    skipped = [i for i in items if isinstance(i, Skipped)]
    # the duplicate id is the pipeline's business (ids are global across files)
    assert [a.doc_id for a in articles][:5] == ["good-1", "good-2", "good-1", "bad-date", "cp1252"]
    assert [a.extra["line"] for a in articles] == [1, 6, 7, 8, 11, 12]
    notes = {a.extra["line"]: a.notes for a in articles if a.notes}
    assert notes == {line: [note] for line, note in JSONL_SALVAGED.items()}
    by_line = {a.extra["line"]: a for a in articles}
    assert by_line[8].published_at == "" and by_line[8].text == "Some text."
    assert by_line[11].text == "Caf\ufffd"
    assert {s.where for s in skipped} == {f"{path}:{n}" for n in expected if n != 7}
    for item in skipped:
        line = int(item.where.rsplit(":", 1)[1])
        assert expected[line] in item.reason, item
        one_line_naming(item, "feed.jsonl")


def test_bad_inputs_skipped_rest_ingested(
    tmp_path: Path, embedder: MiniLMEmbeddings, settings: Settings
) -> None:
    keep = tmp_path / "keep"
    keep.mkdir()
    write_article(keep / "kept.md", "Kept", "An earlier story about the grain port stays stored.")
    store = Store(settings, embedder)
    assert ingest_paths([str(keep)], settings, store=store).added == 1
    before = {(c.chunk_id, c.metadata["content_hash"]) for c in store.iter_chunks()}

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write_article(inbox / "good.md", "Good", "The harbor council approved the budget on Monday.")
    feed = inbox / "feed.jsonl"
    jsonl_expected = _bad_jsonl(feed)
    in_folder = {}
    for name, make, reason in BAD_FILES:
        if name in ("folder.txt", "dangling.md", "notes.docx"):
            continue  # not picked up from a folder scan; named explicitly below
        make(inbox / name)
        in_folder[name] = reason
    _latin1(inbox / "windows-1252.txt")  # salvaged: three bytes replaced, with a warning
    outside = tmp_path / "outside"
    outside.mkdir()
    _docx(outside / "notes.docx")
    _folder(outside / "folder.txt")
    _dangling(outside / "dangling.md")
    args = [
        str(inbox),
        str(keep),
        str(outside / "notes.docx"),  # unsupported suffix, named explicitly
        str(outside / "folder.txt"),  # a directory with a text suffix
        str(outside / "dangling.md"),  # a broken symlink
        str(tmp_path / "missing.md"),  # no such path
        str(tmp_path / "nothing-*.md"),  # a glob matching nothing
    ]
    for _ in range(2):  # a second identical run reports the same and changes nothing
        report = ingest_paths(args, settings, store=store)
        assert report.exit_code == 2
        for item in report.skipped:
            assert "\n" not in str(item), item
        by_where = {s.where: s.reason for s in report.skipped}
        assert len(by_where) == len(report.skipped), report.skipped
        for name, reason in in_folder.items():
            assert reason in by_where.pop(str((inbox / name).resolve())), name
        for line, reason in jsonl_expected.items():
            assert reason in by_where.pop(f"{feed.resolve()}:{line}"), line
        assert "unsupported" in by_where.pop(str((outside / "notes.docx").resolve()))
        assert by_where.pop(str(outside / "folder.txt"))
        assert "no such file" in by_where.pop(str(outside / "dangling.md"))
        assert "no such file" in by_where.pop(str(tmp_path / "missing.md"))
        assert "matches no files" in by_where.pop(str(tmp_path / "nothing-*.md"))
        assert by_where == {}
        # salvaged inputs are stored and reported as warnings, every run
        warned = {w.where: w.reason for w in report.warnings}
        assert warned == {
            str((inbox / "windows-1252.txt").resolve()): (
                "3 bytes that are not UTF-8 replaced with U+FFFD (first at byte 3)"
            ),
            **{f"{feed.resolve()}:{line}": note for line, note in JSONL_SALVAGED.items()},
        }

    docs = store.doc_states()
    assert {"good-1", "good-2", "bad-date", "cp1252", path_doc_id(inbox / "good.md")} <= set(docs)
    no_id = [d for d in docs if d not in {"good-1", "good-2"} and len(d) == 16]
    # kept.md, good.md, windows-1252.txt and the id-less JSONL line
    assert len(docs) == 8 and len(no_id) == 4
    assert store.get_chunks(["good-1:0"])["good-1:0"].text == "The port reopened on Monday."
    latin = store.get_chunks([f"{path_doc_id(inbox / 'windows-1252.txt')}:0"])
    assert [c.text for c in latin.values()] == [
        "Caf\ufffd talks in Z\ufffdrich ended at 9 o\ufffdclock."
    ]
    assert "published_at" not in store.get_chunks(["bad-date:0"])["bad-date:0"].metadata
    assert before <= {(c.chunk_id, c.metadata["content_hash"]) for c in store.iter_chunks()}
    assert report.unchanged == 8 and report.added == 0
    assert_consistent(store)
    assert lexical_current(settings, store)


def test_file_turned_bad_keeps_its_stored_chunks(
    small_corpus: Path, embedder: MiniLMEmbeddings, settings: Settings
) -> None:
    store = Store(settings, embedder)
    ingest_paths([str(small_corpus)], settings, store=store)
    before = sorted((c.chunk_id, c.text) for c in store.iter_chunks())
    _binary(small_corpus / "alpha.md")
    report = ingest_paths([str(small_corpus)], settings, store=store, prune=True)
    assert report.exit_code == 2 and report.removed == 0
    assert [s.where for s in report.skipped] == [str((small_corpus / "alpha.md").resolve())]
    assert sorted((c.chunk_id, c.text) for c in store.iter_chunks()) == before


def test_oversize_file_skipped(tmp_path: Path, embedder: MiniLMEmbeddings) -> None:
    folder = tmp_path / "sized"
    folder.mkdir()
    small = write_article(folder / "small.md", "Small", "A short note about the ferry.")
    big = write_article(folder / "big.md", "Big", "A long story about the ferry. " * 200)
    assert small.stat().st_size < 1000 < big.stat().st_size
    settings = make_settings(tmp_path / "home", max_article_mb=0.001)
    store = Store(settings, embedder)
    report = ingest_paths([str(folder)], settings, store=store)
    assert report.exit_code == 2 and report.added == 1
    assert [s.where for s in report.skipped] == [str(big.resolve())]
    assert "too large" in report.skipped[0].reason
    one_line_naming(report.skipped[0], "big.md")
    assert set(store.doc_states()) == {path_doc_id(small)}


def test_dangling_symlink_in_folder_is_reported(
    tmp_path: Path, embedder: MiniLMEmbeddings, settings: Settings
) -> None:
    folder = tmp_path / "links"
    folder.mkdir()
    write_article(folder / "real.md", "Real", "The ferry sailed at dawn.")
    _dangling(folder / "moved.md")
    report = ingest_paths([str(folder)], settings, store=Store(settings, embedder))
    assert report.added == 1
    assert [Path(s.where).name for s in report.skipped] == ["moved.md"]


def test_skip_where_is_whole_path_when_name_has_colon(
    tmp_path: Path, embedder: MiniLMEmbeddings, settings: Settings
) -> None:
    folder = tmp_path / "colon"
    folder.mkdir()
    bad = folder / "Update: talks.txt"
    _binary(bad)
    report = ingest_paths([str(folder)], settings, store=Store(settings, embedder))
    assert [s.where for s in report.skipped] == [str(bad.resolve())]


def test_html_page_without_article_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "front-page.html"
    _landing_page_html(path)
    with pytest.raises(LoadError, match="no article text"):
        list(load_path(path, BIG))


# ------------------------------------------------------------------------------- 4. PDF

PDF_PARAGRAPHS = [
    "Negotiators from both delegations met again on Thursday near the border. They agreed to "
    "keep the humanitarian corridor open for another week (until March 24).",
    "The harbor council said ships carrying grain could leave the port once mines were cleared. "
    "Insurers asked for written guarantees before covering any voyage.",
    *[
        f"Paragraph {i} of the dispatch describes convoy number {i} reaching the river crossing "
        f"after a night of waiting in the snow, and the drivers who refused to turn back."
        for i in range(3, 40)
    ],
    "Officials said the final convoy reached the city at dawn on Saturday.",
]


def test_pdf_util_writes_a_valid_pdf(tmp_path: Path) -> None:
    from pypdf import PdfReader

    path = make_pdf(tmp_path / "dispatch.pdf", "Convoys reach the city", PDF_PARAGRAPHS)
    reader = PdfReader(str(path), strict=True)  # strict: exact xref offsets required
    assert len(reader.pages) >= 2
    assert reader.metadata is not None
    assert reader.metadata.title == "Convoys reach the city"
    assert reader.metadata.creation_date == datetime(2022, 3, 16, 6, 30, tzinfo=UTC)
    extracted = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    for paragraph in PDF_PARAGRAPHS:
        assert paragraph in extracted, paragraph


def test_pdf_loaded_and_ingested(
    tmp_path: Path, embedder: MiniLMEmbeddings, settings: Settings
) -> None:
    folder = tmp_path / "pdfs"
    folder.mkdir()
    path = make_pdf(
        folder / "convoys-reach-the-city.pdf",
        "Convoys reach the city",
        PDF_PARAGRAPHS,
        author="Ana Ribeiro",
    )
    (article,) = list(load_path(path, BIG))
    assert isinstance(article, Article)
    assert article.title == "Convoys reach the city"
    assert article.author == "Ana Ribeiro"
    assert article.published_at == "2022-03-16T06:30:00+00:00"
    assert article.published_ts == _ts("2022-03-16") + 6 * 3600 + 30 * 60
    flat = " ".join(article.text.split())
    for paragraph in PDF_PARAGRAPHS:  # both pages, in full
        assert paragraph in flat, paragraph

    store = Store(settings, embedder)
    report = ingest_paths([str(folder)], settings, store=store)
    assert report.skipped == [] and report.added == 1 and report.chunks >= 3
    chunks = by_doc(list(store.iter_chunks()))[article.doc_id]
    assert chunks[0].metadata["title"] == "Convoys reach the city"
    assert chunks[0].metadata["published_ts"] == article.published_ts
    for chunk in chunks:
        start, end = int(chunk.metadata["start"]), int(chunk.metadata["end"])
        assert article.text[start:end] == chunk.text
        assert count_tokens(chunk.text) <= settings.chunk_tokens
    assert_consistent(store, {article.doc_id: article})


def test_pdf_without_title_uses_file_name(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "grain-port-reopens.pdf", "", ["The grain port reopened."])
    (article,) = list(load_path(path, BIG))
    assert isinstance(article, Article)
    assert article.title == "grain port reopens"


def test_pdf_with_malformed_date_does_not_abort_ingest(
    tmp_path: Path, embedder: MiniLMEmbeddings, settings: Settings
) -> None:
    folder = tmp_path / "pdfs"
    folder.mkdir()
    path = make_pdf(folder / "odd-date.pdf", "Odd date", ["The ferry sailed at dawn."])
    path.write_bytes(path.read_bytes().replace(b"D:20220316063000+00'00'", b"yesterday, 6:30 am!!"))
    write_article(folder / "fine.md", "Fine", "The bridge reopened at noon.")
    report = ingest_paths([str(folder)], settings, store=Store(settings, embedder))
    # either ingested without a date, or skipped with a reason naming it; never a crash
    assert report.added + len(report.skipped) == 2


# ------------------------------------------------------------------ 5. killed and re-run

_CHILD = """
import sys
from assistant.settings import load_settings
from ingest import pipeline
assert hasattr(pipeline, "_BATCH")
pipeline._BATCH = 5  # flush (and so store) every few chunks, like a big corpus would
def progress(done):
    print(f"progress {done}", flush=True)
report = pipeline.ingest_paths([sys.argv[1]], load_settings(), progress=progress)
print("finished", report.chunks, flush=True)
"""


def _run_and_kill(corpus: Path, home: Path, kill_after: int) -> tuple[int, bool]:
    """Run ingest in a child process and SIGKILL it once ``kill_after`` chunks are stored.
    Returns (chunks reported stored, whether it finished before the kill)."""
    env = {**os.environ, "NEWSDESK_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    log_path = home.parent / "child-stderr.txt"
    log = log_path.open("w")
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(corpus)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    assert child.stdout is not None
    done, finished = 0, False
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([child.stdout], [], [], 1.0)
            if not ready:
                if child.poll() is not None:
                    break
                continue
            line = child.stdout.readline()
            if not line:
                break
            if line.startswith("progress"):
                done = int(line.split()[1])
                if done >= kill_after:
                    break
            elif line.startswith("finished"):
                finished = True
                break
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
        log.close()
    assert done > 0 or finished, f"the child stored nothing:\n{log_path.read_text()[-3000:]}"
    return done, finished


def test_killed_ingest_resumes_without_duplicates(
    tmp_path: Path, embedder: MiniLMEmbeddings
) -> None:
    corpus = write_jsonl(tmp_path / "synthetic.jsonl", synthetic_records(24, 260, seed=11))
    home = tmp_path / "home"
    # every article makes 2 chunks and the child flushes every 5: killed after 3 flushes (or
    # during the 4th), one document is usually half stored
    done, finished = _run_and_kill(corpus, home, kill_after=15)
    total = sum(len(chunk_text(a.text)) for a in load_articles(corpus).values())

    # only now, with the child dead, open the store from this process
    settings = make_settings(home)
    store = Store(settings, embedder)
    stored = store.count()
    assert stored >= done
    if not finished:
        assert stored < total
        assert store.manifest().get(WRITING)  # the killed run said it was not finished
        assert not lexical_current(settings, store)

    states = store.doc_states()
    complete = sum(state.complete for state in states.values())
    report = ingest_paths([str(corpus)], settings, store=store)
    assert report.skipped == []
    # complete documents are kept, half-stored ones redone, missing ones added
    assert report.unchanged == complete
    assert report.updated == len(states) - complete
    assert report.added == 24 - len(states)
    articles = load_articles(corpus)
    assert len(articles) == 24
    assert_consistent(store, articles)
    chunks = list(store.iter_chunks())
    docs = by_doc(chunks)
    assert Counter(len(items) for items in docs.values()) == Counter(
        int(items[0].metadata["n_chunks"]) for items in docs.values()
    )
    assert lexical_current(settings, store)

    # the same corpus ingested in one go into another home gives the same passages
    fresh_settings = make_settings(tmp_path / "fresh")
    fresh = Store(fresh_settings, embedder)
    fresh_report = ingest_paths([str(corpus)], fresh_settings, store=fresh)
    assert fresh_report.added == 24
    assert fresh.count() == store.count() == fresh_report.chunks
    assert sorted((c.chunk_id, c.text) for c in fresh.iter_chunks()) == sorted(
        (c.chunk_id, c.text) for c in chunks
    )
    # and the vectors stored by the killed run are intact
    sample = sorted(c.chunk_id for c in chunks)[:: max(1, len(chunks) // 12)]
    a = fresh.collection.get(ids=sample, include=["embeddings"])
    b = store.collection.get(ids=sample, include=["embeddings"])
    va = dict(zip(a["ids"], np.asarray(a["embeddings"]), strict=True))
    vb = dict(zip(b["ids"], np.asarray(b["embeddings"]), strict=True))
    for cid in sample:
        assert np.allclose(va[cid], vb[cid], atol=1e-5), cid


def test_interrupted_ingest_leaves_whole_documents_and_half_written_ones_are_redone(
    tmp_path: Path, embedder: MiniLMEmbeddings, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C between two batches: a batch ends between documents, so every stored document is
    whole. A half-written one (an older version's crash, a write split over the client's limit)
    is redone by the next run."""
    corpus = write_jsonl(tmp_path / "four.jsonl", synthetic_records(4, 260, seed=3))
    articles = load_articles(corpus)
    sizes = [len(chunk_text(a.text)) for a in articles.values()]
    assert all(n >= 2 for n in sizes)
    monkeypatch.setattr(pipeline, "_BATCH", sizes[0] + 1)  # reached inside doc 2

    def interrupt(done: int) -> None:
        raise KeyboardInterrupt

    store = Store(settings, embedder)
    with pytest.raises(KeyboardInterrupt):
        ingest_paths([str(corpus)], settings, store=store, progress=interrupt)
    states = store.doc_states()
    assert set(states) == {"synth-000", "synth-001"}  # the first write: two whole documents
    assert all(state.complete for state in states.values())
    assert store.count() == sizes[0] + sizes[1]
    assert not lexical_current(settings, store)

    store.collection.delete(ids=["synth-001:1"])  # now half written
    assert not store.doc_states()["synth-001"].complete
    monkeypatch.setattr(pipeline, "_BATCH", 256)
    report = ingest_paths([str(corpus)], settings, store=store)
    assert (report.unchanged, report.updated, report.added) == (1, 1, 2)
    assert_consistent(store, articles)
    assert lexical_current(settings, store)


def test_search_never_sees_part_of_a_document_during_ingest(
    tmp_path: Path, embedder: MiniLMEmbeddings, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = write_jsonl(tmp_path / "six.jsonl", synthetic_records(6, 700, seed=4))
    sizes = {a.doc_id: len(chunk_text(a.text)) for a in load_articles(corpus).values()}
    assert min(sizes.values()) >= 3
    monkeypatch.setattr(pipeline, "_BATCH", 2)  # a write after every document
    store = Store(settings, embedder)
    seen: list[dict[str, int]] = []

    def check(done: int) -> None:  # between two writes
        states = store.doc_states()
        assert all(state.complete for state in states.values()), states
        hits = store.query(embedder.embed_query("ceasefire talks at the border"), 50)
        visible = {str(chunk.metadata["doc_id"]) for chunk, _ in hits}
        assert visible <= set(states)
        seen.append({doc: state.stored for doc, state in states.items()})

    ingest_paths([str(corpus)], settings, store=store, progress=check)
    assert [len(s) for s in seen] == list(range(1, 7))  # one whole document more each time
    assert seen[-1] == sizes


def test_chroma_writes_hold_whole_documents() -> None:
    docs = (("a", 3), ("b", 2), ("c", 4), ("d", 1))
    metas = [{"doc_id": d, "n_chunks": n, "chunk_index": i} for d, n in docs for i in range(n)]
    assert list(writes(metas, 5)) == [(0, 5), (5, 10)]
    assert list(writes(metas, 100)) == [(0, 10)]
    # "c" alone is over the limit: written in pieces (its last one with "d")
    assert list(writes(metas, 3)) == [(0, 3), (3, 5), (5, 8), (8, 10)]


# ----------------------------------------------------------------- 6. embedder mismatch


def test_embedder_mismatch_and_reembed(
    small_corpus: Path,
    settings: Settings,
    embedder: MiniLMEmbeddings,
    fake_openai: FakeOpenAI,
) -> None:
    store = Store(settings, embedder)
    ingest_paths([str(small_corpus)], settings, store=store)
    before = {c.chunk_id: (c.text, c.metadata) for c in store.iter_chunks()}
    manifest = store.manifest()
    assert manifest["embedder"] == MINILM

    openai_settings = make_settings(
        settings.home, embedder="openai", embed_base_url=fake_openai.base_url
    )
    remote = Store(openai_settings)
    with pytest.raises(EmbedderMismatchError) as err:
        ingest_paths([str(small_corpus)], openai_settings, store=remote)
    message = str(err.value)
    assert "\n" not in message
    assert MINILM in message and "openai:text-embedding-3-small" in message
    assert "--reembed" in message
    assert fake_openai.embedding_requests == []  # refused before embedding anything
    assert Store(settings, embedder).count() == len(before)

    report = ingest_paths([str(small_corpus)], openai_settings, store=remote, reembed_all=True)
    assert report.skipped == [] and (report.added, report.updated) == (0, 0)
    assert report.unchanged == 5
    assert fake_openai.embedding_requests

    reopened = Store(openai_settings)
    new_manifest = reopened.manifest()
    assert new_manifest["embedder"] == "openai:text-embedding-3-small"
    assert new_manifest["chunker"] == manifest["chunker"]
    after = {c.chunk_id: (c.text, c.metadata) for c in reopened.iter_chunks()}
    assert after == before  # same ids, texts and metadata; only the vectors changed
    names = {c.name if hasattr(c, "name") else c for c in reopened.collection_names()}
    assert names == {settings.collection}
    got = reopened.collection.get(ids=["wire-one:0"], include=["embeddings", "metadatas"])
    vector = np.asarray(got["embeddings"][0])
    assert vector.shape == (EMBEDDING_DIM,)
    expected = fake_embedding(index_text("Wire one", before["wire-one:0"][0]))
    assert np.allclose(vector, expected, atol=1e-5)
    assert lexical_current(openai_settings, reopened)

    # now the local embedder is the odd one out
    with pytest.raises(EmbedderMismatchError):
        ingest_paths([str(small_corpus)], settings, store=Store(settings, embedder))
    again = ingest_paths([str(small_corpus)], openai_settings, store=reopened)
    assert again.unchanged == 5 and again.chunks == 0


# ---------------------------------------------------------------- 7. limits and versions


def test_chunk_cap_cuts_an_article_and_a_new_cap_redoes_it(
    tmp_path: Path, embedder: MiniLMEmbeddings
) -> None:
    corpus = write_jsonl(tmp_path / "long.jsonl", synthetic_records(2, 1500, seed=8))
    long_id = "synth-000"  # both records are long
    full = {a.doc_id: len(chunk_text(a.text)) for a in load_articles(corpus).values()}
    assert full[long_id] > 4
    settings = make_settings(tmp_path / "home", max_chunks_per_article=4)
    store = Store(settings, embedder)
    report = ingest_paths([str(corpus)], settings, store=store)
    assert report.exit_code == 0 and report.added == 2
    cut = [w for w in report.warnings if "cut at 4 chunks" in w.reason]
    assert [w.where for w in cut] == [f"{corpus.resolve()}:{n}" for n in (1, 2)]
    states = store.doc_states()
    assert states[long_id].n_chunks == 4 and states[long_id].complete
    stored = by_doc(list(store.iter_chunks()))[long_id]
    expected = chunk_text(load_articles(corpus)[long_id].text)[:4]
    assert [(c.text, c.metadata["end"]) for c in stored] == [(e.text, e.end) for e in expected]

    again = ingest_paths([str(corpus)], settings, store=store)
    assert (again.unchanged, again.chunks) == (2, 0)
    assert [w.where for w in again.warnings] == [w.where for w in cut]  # still said

    roomy = make_settings(tmp_path / "home", max_chunks_per_article=1000)
    more = ingest_paths([str(corpus)], roomy, store=Store(roomy, embedder))
    assert (more.updated, more.warnings) == (2, [])
    assert {d: s.n_chunks for d, s in Store(roomy, embedder).doc_states().items()} == full
    assert_consistent(Store(roomy, embedder), load_articles(corpus))


def test_older_chunker_version_is_redone_on_plain_reingest(
    small_corpus: Path, embedder: MiniLMEmbeddings, settings: Settings
) -> None:
    """Loader or chunker fixes bump the version; a plain ingest redoes what it meets (a change
    of chunk sizes still needs --reembed)."""
    store = Store(settings, embedder)
    ingest_paths([str(small_corpus)], settings, store=store)
    current = chunker_id(settings.chunk_tokens, settings.chunk_overlap_tokens)
    old = current.replace(current.split(":")[0], "sent-v2")
    chunks = list(store.iter_chunks())
    for chunk in chunks:
        chunk.metadata["chunker"] = old
    store.collection.update(
        ids=[c.chunk_id for c in chunks], metadatas=[c.metadata for c in chunks]
    )
    store.set_manifest(chunker=old)

    report = ingest_paths([str(small_corpus)], settings, store=store)
    assert (report.updated, report.unchanged, report.skipped) == (5, 0, [])
    assert store.manifest()["chunker"] == current
    assert {s.chunker for s in store.doc_states().values()} == {current}
    assert_consistent(store, load_articles(small_corpus))

    store.set_manifest(chunker=old.replace(":230:", ":200:"))
    with pytest.raises(EmbedderMismatchError, match="--reembed"):
        ingest_paths([str(small_corpus)], settings, store=store)


def test_a_small_ingest_into_a_big_collection_reads_only_its_own_documents_states(
    small_corpus: Path, embedder: MiniLMEmbeddings, settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    store = Store(settings, embedder)
    ingest_paths([str(small_corpus)], settings, store=store)
    monkeypatch.setattr(pipeline, "_READ_ALL_STATES", 0)  # as if the collection were huge
    whole_reads: list[int] = []
    real = Store.doc_states

    def counting(self: Store, doc_ids: Any = None) -> Any:
        if doc_ids is None:
            whole_reads.append(1)
        return real(self, doc_ids)

    monkeypatch.setattr(Store, "doc_states", counting)
    write_article(small_corpus / "delta.md", "Delta report", "The ferry fleet grew to nine boats.")
    beta = small_corpus / "beta.txt"
    beta.write_text(beta.read_text() + "\nEngineers reopened the bridge on Friday.\n")
    report = ingest_paths([str(small_corpus)], settings, store=store)
    assert (report.added, report.updated, report.unchanged) == (1, 1, 4)
    assert whole_reads == []
    assert lexical_current(settings, store)
    assert_consistent(store, load_articles(small_corpus))
    whole_reads.clear()  # (the check above reads every state itself)
    again = ingest_paths([str(small_corpus)], settings, store=store)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 6) and whole_reads == []
    pruned = ingest_paths([str(small_corpus)], settings, store=store, prune=True)
    assert pruned.removed == 0 and whole_reads == [1]  # a prune needs every document's state


def test_sigterm_stops_an_ingest_like_ctrl_c_and_the_store_stays_readable(
    tmp_path: Path, embedder: MiniLMEmbeddings
) -> None:
    """`kill PID` / `systemctl stop` during `newsdesk ingest`: the write in flight finishes,
    the run says "interrupted" (exit 130), and the next run completes the corpus."""
    corpus = write_jsonl(tmp_path / "many.jsonl", synthetic_records(24, 900, seed=11))
    home = tmp_path / "home"
    env = {**os.environ, "NEWSDESK_HOME": str(home)}
    child = subprocess.Popen(
        [sys.executable, "-m", "assistant.surfaces.cli", "ingest", str(corpus)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    settings = make_settings(home)
    deadline = time.monotonic() + 180
    while child.poll() is None and time.monotonic() < deadline:
        # a vector segment on disk: some documents are stored, the run is in mid-work (looked
        # at on disk: a client opened here now would keep a view from before the segment)
        if (home / "chroma").is_dir() and any(p.is_dir() for p in (home / "chroma").iterdir()):
            break
        time.sleep(0.1)
    assert child.poll() is None, "the ingest finished before it could be stopped"
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == 130, stderr
    assert "interrupted" in stderr
    store = Store(settings, embedder)
    assert store.count() > 0
    report = ingest_paths([str(corpus)], settings, store=store)
    assert report.skipped == [] and report.added + report.updated + report.unchanged == 24
    assert_consistent(store, load_articles(corpus))
    assert lexical_current(settings, store)
