"""The Chroma collection that holds passages, through Chroma's public client API.

Embedded ``PersistentClient`` under the data home by default, a Chroma server (``chroma run``
or a hosted one) when ``NEWSDESK_CHROMA_URL`` (or the older ``NEWSDESK_CHROMA_HOST``) is set:
``HttpClient`` with the token header, tenant and database of the settings. The collection's
metadata is the store's manifest: the embedder and chunker that built it (opening it with
another embedder is an :class:`EmbedderMismatchError`), and the index **generation**, which
every completed ingest advances. Chroma's own default embedding function is never used.

Long-lived readers: an embedded client keeps its vector index in memory and does not see what
another process adds (asking it for a new id's vector fails with "Error finding id"). So one
:class:`Connection` per store location is shared by everything in a process, and
:meth:`Connection.reopen` replaces its client once a new generation appears, waiting until no
thread is inside a Chroma call. Every Chroma failure becomes a one-line :class:`StoreError`, and
the connection is reopened on the next call.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.errors import EmbedderMismatchError, StoreError
from assistant.index.locks import ReadWriteLock, open_lock
from assistant.index.schema import ChunkMeta
from assistant.models.embeddings import embedder_id, make_embedder
from assistant.settings import Settings

log = logging.getLogger(__name__)
_PAGE = 2000
T = TypeVar("T")
GENERATION = "generation"
WRITING = "writing"  # set while an ingest runs; left behind by a killed one


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

    @property
    def meta(self) -> ChunkMeta:
        return ChunkMeta.from_chroma(self.metadata)

    @property
    def present(self) -> bool:
        """False for a row another process deleted after our index found it."""
        return bool(self.text) and "doc_id" in self.metadata


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _auth_headers(settings: Settings) -> dict[str, str]:
    if settings.chroma_token is None:
        return {}
    token = settings.chroma_token.get_secret_value()
    if settings.chroma_auth_header == "Authorization":
        return {"Authorization": f"Bearer {token}"}
    return {settings.chroma_auth_header: token}


def _http_client(settings: Settings, chroma_settings: Any) -> Any:
    """A client of the configured Chroma server, tenant and database. Both must exist:
    chromadb checks them when the client is made (one request each)."""
    import chromadb
    from chromadb.errors import NotFoundError

    if settings.chroma_url:
        # chromadb takes a whole URL as the host: its port (or the scheme's), and the path
        # as a prefix of Chroma's /api/v2 (a server behind a reverse proxy)
        url = urlsplit(settings.chroma_url)
        host, port = settings.chroma_url, url.port or (443 if url.scheme == "https" else 80)
        ssl = url.scheme == "https"
    else:
        host, port, ssl = str(settings.chroma_host), settings.chroma_port, False
    try:
        return chromadb.HttpClient(
            host=host,
            port=port,
            ssl=ssl,
            headers=_auth_headers(settings),
            settings=chroma_settings,
            tenant=settings.chroma_tenant,
            database=settings.chroma_database,
        )
    except NotFoundError as exc:  # "Tenant [x] not found", "Database [x] not found. ..."
        raise StoreError(
            f"cannot open the Chroma store at {settings.describe_store()}: {_one_line(exc)} "
            "(newsdesk does not create tenants or databases; create it on the server or fix "
            "NEWSDESK_CHROMA_TENANT / NEWSDESK_CHROMA_DATABASE)"
        ) from None


def make_client(settings: Settings) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    try:
        if settings.uses_chroma_server:
            return _http_client(settings, chroma_settings)
        settings.chroma_path.mkdir(parents=True, exist_ok=True)
        with open_lock(settings):
            return chromadb.PersistentClient(
                path=str(settings.chroma_path), settings=chroma_settings
            )
    except StoreError:
        raise
    except Exception as exc:  # chromadb raises many types; all mean the same to a user
        raise StoreError(
            f"cannot open the Chroma store at {settings.describe_store()}: {_one_line(exc)}"
        ) from None


class Connection:
    """The Chroma client of one store location, shared by every user in the process."""

    _registry: ClassVar[dict[str, Connection]] = {}
    _registry_lock = threading.Lock()

    def __init__(self, settings: Settings, client: Any = None) -> None:
        self.settings = settings
        self.epoch = 0  # advances on every reopen
        self._client = client
        self._owned = client is None  # a client handed in is the caller's to close
        self._rw = ReadWriteLock()
        self._create = threading.Lock()

    @classmethod
    def shared(cls, settings: Settings) -> Connection:
        key = settings.describe_store()
        if settings.uses_chroma_server and settings.chroma_token is not None:
            # another token is another client (never shown: only a digest is kept)
            secret = f"{settings.chroma_auth_header}:{settings.chroma_token.get_secret_value()}"
            key += " " + hashlib.sha256(secret.encode()).hexdigest()
        with cls._registry_lock:
            conn = cls._registry.get(key)
            if conn is None:
                conn = cls._registry[key] = cls(settings)
            return conn

    def call(self, what: str, fn: Callable[[Any], T]) -> T:
        """Run ``fn(client)`` with the client held; a Chroma failure becomes a StoreError."""
        epoch = self.epoch
        try:
            with self._rw.reading():
                epoch = self.epoch
                with self._create:
                    if self._client is None:
                        self._client = make_client(self.settings)
                    client = self._client
                return fn(client)
        except (StoreError, EmbedderMismatchError):
            raise
        except Exception as exc:
            log.warning("Chroma failed while %s: %s", what, exc)
            self.reopen(epoch)
            raise StoreError(
                f"the Chroma store at {self.settings.describe_store()} failed while {what}: "
                f"{_one_line(exc)}"
            ) from exc

    def reopen(self, seen_epoch: int) -> None:
        """Drop the client (the next call opens a fresh one), unless someone already did
        since ``seen_epoch``. Waits until no thread is inside a Chroma call."""
        if not self._owned:
            return
        with self._rw.writing():
            if self.epoch != seen_epoch:
                return
            client, self._client = self._client, None
            self.epoch += 1
            if client is not None:
                try:
                    client.close()
                except Exception as exc:  # a broken client may fail to close; drop it anyway
                    log.debug("closing the Chroma client failed: %s", exc)


class Store:
    """One collection of passages plus the bookkeeping ingest needs. Thread-safe."""

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
        self.connection = Connection(settings, client) if client else Connection.shared(settings)
        self._collection: tuple[int, Any] | None = None
        self._lock = threading.Lock()

    def sibling(self, name: str) -> Store:
        """Another collection through the same connection and embedder."""
        other = Store.__new__(Store)
        other.__dict__.update(self.__dict__)
        other.name, other._collection, other._lock = name, None, threading.Lock()
        return other

    # -- the collection ----------------------------------------------------------------------
    def _open(self, client: Any) -> Any:
        """The collection object for the current client (created on first use)."""
        with self._lock:
            cached = self._collection
            if cached is not None and cached[0] == self.connection.epoch:
                return cached[1]
            ef_search = self.settings.hnsw_ef_search
            collection = client.get_or_create_collection(
                self.name,
                metadata={"embedder": self.embedder_id},
                # "space" only here: Chroma takes the legacy "hnsw:space" metadata key as well,
                # but a collection given both silently falls back to L2
                configuration={"hnsw": {"space": "cosine", "ef_search": ef_search}},
                embedding_function=None,
            )
            hnsw = (getattr(collection, "configuration_json", None) or {}).get("hnsw") or {}
            if hnsw.get("ef_search") not in (None, ef_search):  # an older collection
                collection.modify(configuration={"hnsw": {"ef_search": ef_search}})
                log.info("collection %r: HNSW ef_search now %s", self.name, ef_search)
            self._collection = (self.connection.epoch, collection)
            return collection

    def _call(self, what: str, fn: Callable[[Any], T]) -> T:
        return self.connection.call(what, lambda client: fn(self._open(client)))

    @property
    def collection(self) -> Any:
        """The chromadb ``Collection`` (for tests and tools; the store's methods are safer)."""
        return self.connection.call("opening the collection", self._open)

    def max_batch_size(self) -> int:
        """The most records one Chroma write may carry."""
        return int(self.connection.call("asking the batch limit", lambda c: c.get_max_batch_size()))

    def collection_names(self) -> set[str]:
        names = self.connection.call("listing collections", lambda c: c.list_collections())
        return {c.name if hasattr(c, "name") else c for c in names}

    def exists(self) -> bool:
        return self.name in self.collection_names()

    def manifest(self) -> dict[str, Any]:
        """The collection's metadata, read afresh (another process may have changed it)."""

        def read(client: Any) -> dict[str, Any]:
            self._open(client)
            return dict(client.get_collection(self.name).metadata or {})

        return self.connection.call("reading the collection's metadata", read)

    def generation(self) -> int:
        return int(self.manifest().get(GENERATION, 0))

    def check_embedder(self, manifest: dict[str, Any] | None = None) -> None:
        built_with = (manifest if manifest is not None else self.manifest()).get("embedder")
        if built_with and built_with != self.embedder_id:
            raise EmbedderMismatchError(
                f"collection {self.name!r} was embedded with {built_with}, but the configured "
                f"embedder is {self.embedder_id}; run `newsdesk ingest --reembed` or switch back"
            )

    def set_manifest(self, **values: Any) -> None:
        """Update manifest keys (read afresh, so no other process's key is lost); a value of
        ``None`` removes the key."""

        def write(client: Any) -> None:
            self._open(client)
            collection = client.get_collection(self.name)
            meta = dict(collection.metadata or {})
            meta.update(values)
            meta = {k: v for k, v in meta.items() if v is not None}
            meta.pop("hnsw:space", None)  # fixed at creation; Chroma refuses to modify it
            collection.modify(metadata=meta)

        self.connection.call("writing the collection's metadata", write)
        with self._lock:
            self._collection = None  # the cached object holds the old metadata

    # -- reads -------------------------------------------------------------------------------
    def count(self) -> int:
        return int(self._call("counting chunks", lambda c: c.count()))

    def iter_chunks(
        self, include_text: bool = True, include_vectors: bool = False
    ) -> Iterator[StoredChunk | tuple[StoredChunk, np.ndarray]]:
        """Every stored chunk, a page at a time (with its vector when asked)."""
        include = ["metadatas"] + (["documents"] if include_text else [])
        include += ["embeddings"] if include_vectors else []
        offset = 0
        while True:
            page = self._call(
                "reading chunks",
                lambda c, o=offset: c.get(include=include, limit=_PAGE, offset=o),  # type: ignore[misc]
            )
            ids = page["ids"]
            if not ids:
                return
            docs = page.get("documents") or [""] * len(ids)
            for i, (cid, text, meta) in enumerate(zip(ids, docs, page["metadatas"], strict=True)):
                chunk = StoredChunk.from_chroma(cid, text, meta)
                if include_vectors:
                    yield chunk, np.asarray(page["embeddings"][i], dtype=np.float32)
                else:
                    yield chunk
            offset += len(ids)

    def doc_states(self, doc_ids: Sequence[str] | None = None) -> dict[str, DocState]:
        """Each stored document's state, read a page of chunks at a time: every document's,
        or only these documents' (a handful of small reads however big the collection)."""
        states: dict[str, DocState] = {}
        if doc_ids is None:
            chunks: Iterator[Any] = self.iter_chunks(include_text=False)
        else:
            chunks = self._chunks_of(doc_ids)
        for chunk in chunks:
            assert isinstance(chunk, StoredChunk)
            meta = chunk.meta
            state = states.get(meta.doc_id)
            if state is None or state.content_hash != meta.content_hash:
                if state is not None:  # two versions of one document: never complete
                    state.stored = -1
                    continue
                state = states[meta.doc_id] = DocState(
                    meta.content_hash, meta.n_chunks, 0, meta.path, meta.chunker
                )
            if state.stored >= 0:
                state.stored += 1
        return states

    def _chunks_of(self, doc_ids: Sequence[str]) -> Iterator[StoredChunk]:
        for start in range(0, len(doc_ids), 100):
            where = {"doc_id": {"$in": list(doc_ids[start : start + 100])}}
            page = self._call(
                "reading chunks", lambda c, w=where: c.get(where=w, include=["metadatas"])
            )  # type: ignore[misc]
            for cid, meta in zip(page["ids"], page["metadatas"], strict=True):
                yield StoredChunk.from_chroma(cid, "", meta)

    def doc_chunks(self, doc_ids: Sequence[str]) -> list[tuple[StoredChunk, np.ndarray]]:
        """Every stored chunk of these documents, with its vector."""
        if not doc_ids:
            return []
        where = {"doc_id": {"$in": list(doc_ids)}}
        include = ["metadatas", "documents", "embeddings"]
        out = []
        offset = 0
        while True:
            page = self._call(
                "reading chunks",
                lambda c, o=offset: c.get(where=where, include=include, limit=_PAGE, offset=o),  # type: ignore[misc]
            )
            ids = page["ids"]
            for i, (cid, text, meta) in enumerate(
                zip(ids, page["documents"], page["metadatas"], strict=True)
            ):
                vector = np.asarray(page["embeddings"][i], dtype=np.float32)
                out.append((StoredChunk.from_chroma(cid, text, meta), vector))
            if len(ids) < _PAGE:
                return out
            offset += len(ids)

    def get_chunks(self, ids: Sequence[str]) -> dict[str, StoredChunk]:
        """Text and metadata of these chunks; ids that are gone are left out."""
        if not ids:
            return {}
        page = self._call(
            "reading chunks", lambda c: c.get(ids=list(ids), include=["metadatas", "documents"])
        )
        found = (
            StoredChunk.from_chroma(cid, text, meta)
            for cid, text, meta in zip(
                page["ids"], page["documents"], page["metadatas"], strict=True
            )
        )
        return {c.chunk_id: c for c in found if c.present}

    def query(
        self, vector: Sequence[float], n: int, where: dict[str, Any] | None = None
    ) -> list[tuple[StoredChunk, float]]:
        """Nearest chunks with their cosine similarity."""

        def run(collection: Any) -> Any:
            if collection.count() == 0:
                return None
            return collection.query(
                query_embeddings=[list(map(float, vector))],
                n_results=n,
                where=where or None,
                include=["metadatas", "documents", "distances"],
            )

        result = self._call("searching", run)
        if result is None:
            return []
        out = []
        for cid, text, meta, dist in zip(
            result["ids"][0],
            result["documents"][0],
            result["metadatas"][0],
            result["distances"][0],
            strict=True,
        ):
            chunk = StoredChunk.from_chroma(cid, text, meta)
            if chunk.present:  # deleted by a writer since this reader's index was loaded
                out.append((chunk, 1.0 - float(dist)))
        return out

    # -- writes ------------------------------------------------------------------------------
    def upsert(
        self, ids: list[str], texts: list[str], metadatas: list[dict[str, Any]], vectors: np.ndarray
    ) -> None:
        self._call(
            f"writing {len(ids)} chunks",
            lambda c: c.upsert(
                ids=ids, documents=texts, metadatas=metadatas, embeddings=vectors.tolist()
            ),
        )

    def update_metadata(self, ids: list[str], metadatas: list[dict[str, Any]]) -> None:
        """Replace the metadata of stored chunks (text and vectors stay)."""
        for start in range(0, len(ids), 1000):
            end = start + 1000
            self._call(
                f"updating {len(ids[start:end])} chunks",
                lambda c, a=start, b=end: c.update(ids=ids[a:b], metadatas=metadatas[a:b]),  # type: ignore[misc]
            )

    def delete_docs(self, doc_ids: Sequence[str]) -> None:
        for start in range(0, len(doc_ids), 500):
            batch = list(doc_ids[start : start + 500])
            self._call("deleting chunks", lambda c, b=batch: c.delete(where={"doc_id": {"$in": b}}))  # type: ignore[misc]

    def rename(self, new_name: str) -> None:
        self._call("renaming the collection", lambda c: c.modify(name=new_name))
        with self._lock:
            self._collection = None

    def drop(self) -> None:
        self.connection.call("dropping the collection", lambda c: c.delete_collection(self.name))
        with self._lock:
            self._collection = None
