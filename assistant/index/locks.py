"""Locks: one writer per collection across processes, many readers within a process.

* :func:`writer_lock` is a ``filelock`` lock in the data home. Ingest holds it for its whole
  run, so two ingests into one store never interleave; the one that waits says who it waits
  for ("another ingest is running (pid N), waiting…"). Lock files live on the local disk, so
  with a Chroma server they exclude writers on the same machine only (docs/deploy notes).
* :class:`ReadWriteLock` lets many threads use the Chroma client at once while a reopen (after
  another process changed the collection) waits until none is inside.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from assistant.settings import Settings

log = logging.getLogger(__name__)


def lock_dir(settings: Settings) -> Path:
    return settings.home / "locks"


def _lock_path(settings: Settings, name: str) -> Path:
    # one lock per store location and collection (a server and the embedded store may share
    # a data home but are different stores)
    where = hashlib.sha1(settings.describe_store().encode()).hexdigest()[:10]
    return lock_dir(settings) / f"{name}-{where}.lock"


@contextmanager
def writer_lock(
    settings: Settings, collection: str, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Exclusive write access to ``collection``; calls ``on_wait`` once if it has to wait."""
    path = _lock_path(settings, collection)
    path.parent.mkdir(parents=True, exist_ok=True)
    owner = path.with_suffix(".owner")
    lock = FileLock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        try:
            holder = owner.read_text().strip() or "unknown"
        except OSError:
            holder = "unknown"
        message = f"another ingest is running ({holder}), waiting…"
        (on_wait or log.warning)(message)
        lock.acquire()
    try:
        owner.write_text(f"pid {os.getpid()} on {socket.gethostname()}")
        yield
    finally:
        owner.unlink(missing_ok=True)
        lock.release()


@contextmanager
def open_lock(settings: Settings) -> Iterator[None]:
    """Serialises creating the embedded store: two processes opening a fresh data home at
    once would both try to create Chroma's tables."""
    path = _lock_path(settings, "open")
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path):
        yield


class ReadWriteLock:
    """Many readers or one writer; a waiting writer holds new readers back (no starvation)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()
