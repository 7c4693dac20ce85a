"""What the bot remembers between Slack events: threads as conversations, deliveries seen.

A Slack thread is one :class:`~assistant.types.Conversation`: its earlier questions and
answers are the ``history`` of the next question in it. Threads live in memory (the most
recently used few thousand) and are rebuilt from the answer log after a restart, since every
answer is logged with the thread as its conversation id. Each thread has a lock, so two
questions in one thread are answered in order (the second sees the first), while different
threads are answered in parallel.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from assistant.answerlog import AnswerLog, LogError
from assistant.types import Answer, Conversation, Turn

if TYPE_CHECKING:
    from assistant.remote import RemoteLog

log = logging.getLogger(__name__)


def conversation_id(channel: str, thread_ts: str) -> str:
    """The answer log's conversation id of a Slack thread."""
    return f"slack:{channel}:{thread_ts}"


@dataclass
class Thread:
    channel: str
    thread_ts: str
    conversation: Conversation
    lock: threading.Lock = field(default_factory=threading.Lock)


class ThreadMemory:
    """Thread-safe map of (channel, thread_ts) to its conversation, bounded (LRU)."""

    def __init__(self, answer_log: AnswerLog | RemoteLog | None, capacity: int = 5000) -> None:
        self.answer_log = answer_log
        self.capacity = capacity
        self._threads: OrderedDict[tuple[str, str], Thread] = OrderedDict()
        self._lock = threading.Lock()

    def _logged(self, channel: str, thread_ts: str) -> Conversation | None:
        if self.answer_log is None:
            return None
        cid = conversation_id(channel, thread_ts)
        try:  # an exact, indexed lookup: most thread replies in a channel are not ours
            entries = self.answer_log.list(limit=1000, conversation_id=cid)[::-1]
        except LogError as exc:
            log.warning("cannot read thread %s from the answer log: %s", cid, exc)
            return None
        if not entries:
            return None
        turns = [Turn(question=e.question, answer=e.to_answer()) for e in entries]
        return Conversation(id=cid, turns=turns)

    def get(self, channel: str, thread_ts: str, *, create: bool) -> Thread | None:
        """The thread; ``None`` when the bot has not answered in it and ``create`` is false."""
        key = (channel, thread_ts)
        with self._lock:
            found = self._threads.get(key)
            if found is not None:
                self._threads.move_to_end(key)
                return found
        logged = self._logged(channel, thread_ts)
        if logged is None and not create:
            return None
        conversation = logged or Conversation(id=conversation_id(channel, thread_ts))
        with self._lock:
            found = self._threads.setdefault(key, Thread(channel, thread_ts, conversation))
            self._threads.move_to_end(key)
            while len(self._threads) > self.capacity:
                self._threads.popitem(last=False)
            return found

    def known(self, channel: str, thread_ts: str) -> bool:
        """Whether the bot has answered in this thread (so an untagged reply is for it)."""
        return self.get(channel, thread_ts, create=False) is not None


class Seen:
    """Keys seen in the last ``ttl_s`` seconds (event ids, message timestamps): Slack retries a
    delivery it thinks failed, and a mention in a channel comes both as ``app_mention`` and as
    ``message``; each question must be answered once."""

    def __init__(self, ttl_s: float = 3600.0, capacity: int = 50_000) -> None:
        self.ttl_s = ttl_s
        self.capacity = capacity
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first(self, key: str) -> bool:
        """True the first time ``key`` is offered (then remembered), False after."""
        now = time.monotonic()
        with self._lock:
            while self._seen and (
                len(self._seen) > self.capacity
                or next(iter(self._seen.values())) < now - self.ttl_s
            ):
                self._seen.popitem(last=False)
            if key in self._seen:
                return False
            self._seen[key] = now
            return True


class AnswerCache:
    """Recent answers by key, for the "Share in channel" button of ephemeral answers."""

    def __init__(self, capacity: int = 1000) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, tuple[Answer, int | None]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, key: str, answer: Answer, answer_id: int | None) -> None:
        with self._lock:
            self._items[key] = (answer, answer_id)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def get(self, key: str) -> tuple[Answer, int | None] | None:
        with self._lock:
            return self._items.get(key)
