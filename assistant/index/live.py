"""A long-lived reader's view of the index, kept fresh by generation.

Before each question :meth:`LiveIndex.current` reads the collection's generation (one small
metadata read). When another process's ingest has advanced it, the reader reopens its Chroma
client (so the vector index sees the new chunks) and opens a new view of the lexical index that
writer updated. The check never looks at the chunk count: an update that keeps the count is
seen too.

A reader builds nothing on a question's path. The one exception is repair: when the lexical
index does not mirror the current generation (a store from an older newsdesk, a damaged file,
another machine ingesting into the same Chroma server), the reader takes the writer lock and
brings it level once, saying so: only documents that differ are read from Chroma.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from assistant.index.lexical import LexicalIndex, SnapshotInvalid
from assistant.index.lexical_store import LexicalStore
from assistant.index.locks import writer_lock
from assistant.index.store import Store
from assistant.settings import Settings

log = logging.getLogger(__name__)


class LiveIndex:
    def __init__(
        self, settings: Settings, store: Store, on_repair: Callable[[str], None] | None = None
    ) -> None:
        self.settings = settings
        self.store = store
        self.snapshots = LexicalStore.beside(settings, store)
        self.on_repair = on_repair or log.warning
        self._lexical: LexicalIndex | None = None
        self._lock = threading.Lock()  # one refresher at a time; readers keep the old view
        self.refreshes = 0  # how many times a new generation was swapped in

    @property
    def generation(self) -> int | None:
        return self._lexical.generation if self._lexical else None

    def current(self, generation: int | None = None) -> LexicalIndex:
        """The lexical snapshot of the collection's current generation (refreshed if needed);
        ``generation`` when the caller has just read it from the manifest."""
        if generation is None:
            generation = self.store.generation()
        lexical = self._lexical
        if lexical is not None and lexical.generation == generation:
            return lexical
        with self._lock:
            lexical = self._lexical
            if lexical is not None and lexical.generation == generation:
                return lexical
            if lexical is not None and not self.settings.uses_chroma_server:
                # an embedded client does not see vectors another process added
                self.store.connection.reopen(self.store.connection.epoch)
            self._lexical = self._load(generation)
            self.refreshes += lexical is not None
            log.info("index generation %d in use", generation)
            return self._lexical

    def refresh(self) -> bool:
        """Check for a new generation now; True when one was swapped in."""
        before = self.generation
        return self.current().generation != before

    def _load(self, generation: int) -> LexicalIndex:
        try:
            return self.snapshots.load(generation)
        except SnapshotInvalid as first:
            problem = str(first)
        with writer_lock(self.settings, self.store.name, self.on_repair):
            generation = self.store.generation()  # a writer may have finished meanwhile
            try:
                return self.snapshots.load(generation)
            except SnapshotInvalid:
                pass
            self.on_repair(f"{problem}; bringing the BM25 index level with the collection")
            with self.snapshots.writer() as lexical:
                lexical.reconcile(self.store)
                lexical.commit(generation)
            return self.snapshots.load(generation)
