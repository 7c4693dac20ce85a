"""The Chroma collection that holds passages, reached through ``langchain-chroma``.

Embedded ``PersistentClient`` under the data home by default, a Chroma server
(``chroma run``) when ``NEWSDESK_CHROMA_HOST`` is set. The collection's metadata records the
embedder and chunker that built it; opening it with another embedder is an
:class:`EmbedderMismatchError`, so vectors from two models are never mixed. Chroma's own default
embedding function is never used: every vector comes from our embedder.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.errors import EmbedderMismatchError, StoreError
from assistant.models.embeddings import embedder_id, make_embedder
from assistant.offline import prepare
from assistant.settings import Settings

log = logging.getLogger(__name__)
_PAGE = 2000


@dataclass
class DocState:
    content_hash: str
    n_chunks: int
    stored: int
    path: str
    chunker: str

    @property
    def complete(self) -> bool:
        return self.stored == self.n_chunks


@dataclass
class StoredChunk:
    chunk_id: str
    text: str
    metadata: dict[str, Any]

    @classmethod
    def from_chroma(cls, chunk_id: str, text: str | None, meta: Any) -> StoredChunk:
        """One row of a Chroma ``get``/``query`` result (missing text or metadata as empty)."""
        return cls(chunk_id, text or "", dict(meta or {}))


def make_client(settings: Settings) -> Any:
    prepare()
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    try:
        if settings.chroma_host:
            return chromadb.HttpClient(
                host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings
            )
        settings.chroma_path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.chroma_path), settings=chroma_settings)
    except Exception as exc:  # chromadb raises many types; all mean the same to a user
        raise StoreError(
            f"cannot open the Chroma store at {settings.describe_store()}: {exc}"
        ) from None


class Store:
    """One collection of passages plus the bookkeeping ingest needs."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embeddings | None = None,
        client: Any = None,
        name: str | None = None,
    ) -> None:
        self.settings = settings
        self.name = name or settings.collection
        self.embedder = embedder or make_embedder(settings)
        self.embedder_id = embedder_id(settings)
        self.client = client or make_client(settings)

    @cached_property
    def vectorstore(self) -> Any:
        from langchain_chroma import Chroma

        ef_search = self.settings.hnsw_ef_search
        store = Chroma(
            client=self.client,
            collection_name=self.name,
            embedding_function=self.embedder,
            collection_metadata={"embedder": self.embedder_id},
            # "space" only here: Chroma takes the legacy "hnsw:space" metadata key as well, but
            # a collection given both silently falls back to L2
            collection_configuration={"hnsw": {"space": "cosine", "ef_search": ef_search}},
        )
        collection = store._collection
        hnsw = (getattr(collection, "configuration_json", None) or {}).get("hnsw") or {}
        if hnsw.get("ef_search") not in (None, ef_search):  # an older collection or a new setting
            collection.modify(configuration={"hnsw": {"ef_search": ef_search}})
            log.info("collection %r: HNSW ef_search now %s", self.name, ef_search)
        return store

    @property
    def collection(self) -> Any:
        return self.vectorstore._collection

    def exists(self) -> bool:
        return self.name in {
            c.name if hasattr(c, "name") else c for c in self.client.list_collections()
        }

    def manifest(self) -> dict[str, Any]:
        return dict(self.collection.metadata or {})

    def check_embedder(self) -> None:
        built_with = self.manifest().get("embedder")
        if built_with and built_with != self.embedder_id:
            raise EmbedderMismatchError(
                f"collection {self.name!r} was embedded with {built_with}, but the configured "
                f"embedder is {self.embedder_id}; run `newsdesk ingest --reembed` or switch back"
            )

    def set_manifest(self, **values: Any) -> None:
        meta = self.manifest()
        meta.update(values)
        meta.pop("hnsw:space", None)  # fixed at creation; Chroma refuses to modify it
        self.collection.modify(metadata=meta)

    # -- reads -------------------------------------------------------------------------------
    def count(self) -> int:
        return int(self.collection.count())

    def iter_chunks(self, include_text: bool = True) -> Iterator[StoredChunk]:
        include = ["metadatas", "documents"] if include_text else ["metadatas"]
        offset = 0
        while True:
            page = self.collection.get(include=include, limit=_PAGE, offset=offset)
            ids = page["ids"]
            if not ids:
                return
            docs = page.get("documents") or [""] * len(ids)
            for cid, text, meta in zip(ids, docs, page["metadatas"], strict=True):
                yield StoredChunk.from_chroma(cid, text, meta)
            offset += len(ids)

    def doc_states(self) -> dict[str, DocState]:
        states: dict[str, DocState] = {}
        for chunk in self.iter_chunks(include_text=False):
            meta = chunk.metadata
            doc_id = str(meta.get("doc_id"))
            state = states.get(doc_id)
            if state is None or state.content_hash != meta.get("content_hash"):
                if state is not None:  # two versions of one document: never complete
                    state.stored = -1
                    continue
                state = states[doc_id] = DocState(
                    str(meta.get("content_hash")),
                    int(meta.get("n_chunks", 0)),
                    0,
                    str(meta.get("path", "")),
                    str(meta.get("chunker", "")),
                )
            if state.stored >= 0:
                state.stored += 1
        return states

    def get_chunks(self, ids: Sequence[str]) -> dict[str, StoredChunk]:
        if not ids:
            return {}
        page = self.collection.get(ids=list(ids), include=["metadatas", "documents"])
        return {
            cid: StoredChunk.from_chroma(cid, text, meta)
            for cid, text, meta in zip(
                page["ids"], page["documents"], page["metadatas"], strict=True
            )
        }

    def query(
        self, vector: Sequence[float], n: int, where: dict[str, Any] | None = None
    ) -> list[tuple[StoredChunk, float]]:
        """Nearest chunks with their cosine similarity."""
        if self.count() == 0:
            return []
        result = self.collection.query(
            query_embeddings=[list(map(float, vector))],
            n_results=n,
            where=where or None,
            include=["metadatas", "documents", "distances"],
        )
        out = []
        for cid, text, meta, dist in zip(
            result["ids"][0],
            result["documents"][0],
            result["metadatas"][0],
            result["distances"][0],
            strict=True,
        ):
            out.append((StoredChunk.from_chroma(cid, text, meta), 1.0 - float(dist)))
        return out

    # -- writes ------------------------------------------------------------------------------
    def upsert(
        self, ids: list[str], texts: list[str], metadatas: list[dict[str, Any]], vectors: np.ndarray
    ) -> None:
        try:
            self.collection.upsert(
                ids=ids, documents=texts, metadatas=metadatas, embeddings=vectors.tolist()
            )
        except Exception as exc:
            raise StoreError(f"writing {len(ids)} chunks to {self.name!r} failed: {exc}") from exc

    def delete_docs(self, doc_ids: Sequence[str]) -> None:
        for start in range(0, len(doc_ids), 500):
            batch = list(doc_ids[start : start + 500])
            self.collection.delete(where={"doc_id": {"$in": batch}})

    def drop(self) -> None:
        self.client.delete_collection(self.name)
        self.__dict__.pop("vectorstore", None)
