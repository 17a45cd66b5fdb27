"""Group commit: webhook deliveries that arrive together are applied in one transaction.

A request hands its verified, normalised event to the process's committer and waits; the
committer takes everything waiting (up to `max_batch`), applies it with
`hub.ingest.batch.apply_batch` and commits once, then answers every request. So a provider hears 200
only for an event that is durably stored and applied, as before, while a busy hub pays one commit
and a handful of statements per batch instead of a dozen statements and a commit per event.

If a batch fails (a deadlock with another process, an event the database refuses), it is rolled
back and its events are applied one transaction each, so each request gets its own answer and a
bad event costs only itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from hub.ingest import batch as batch_path
from hub.ingest.batch import CustomerKey, Known
from hub.ingest.events import Incoming, apply_event
from hub.runtime import Hub

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LoopReply:
    """A request waiting on an event loop (`GroupCommit.apply`)."""

    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[bool]


Reply = Future[bool] | LoopReply
Waiting = tuple[Incoming, Reply]
# (who waits, committed: True / duplicate: False, or the exception to raise)
Answers = list[tuple[Reply, "bool | None", "BaseException | None"]]


@contextlib.contextmanager
def answering() -> Iterator[Answers]:
    """Collects a batch's answers and gives them once it is done: a request on an event loop
    is answered with one wake-up of its loop per batch, not one per request (each wake-up is a
    write to the loop's socket and a handle of its own)."""
    answers: Answers = []
    try:
        yield answers
    finally:
        by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        for done, value, error in answers:
            if isinstance(done, LoopReply):
                by_loop.setdefault(done.loop, []).append((done.future, value, error))
            else:
                _give(done, value, error)
        for loop, replies in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, replies)
            except RuntimeError:  # the loop has closed: nobody waits any more
                pass


def _settle(replies: list[tuple[asyncio.Future[bool], bool | None, BaseException | None]]
            ) -> None:
    for future, value, error in replies:
        if not future.done():  # done: the request was cancelled (the client went away)
            _give(future, value, error)


def _give(future: Any, value: bool | None, error: BaseException | None) -> None:
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(bool(value))


# Up to 16 events a batch, two committers: while one waits for the database the other builds
# its batch, and a request waits for at most about two small batches (32 concurrent deliveries
# measured best with these).
MAX_BATCH = 16
COMMITTERS = 2


class NeedsLookup(Exception):  # noqa: N818 - an answer, not an error
    """The event's connector wants to ask the provider first (`Incoming.lookup`)."""

    def __init__(self, item: Incoming):
        super().__init__(item.event_id)
        self.item = item


class GroupCommit:
    def __init__(self, hub: Hub, max_batch: int = MAX_BATCH, committers: int = COMMITTERS):
        self.hub, self.max_batch, self.committers = hub, max_batch, committers
        self._waiting: list[Waiting] = []
        self._ready = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._closed = False

    async def apply(self, item: Incoming) -> bool:
        """Store and apply `item`; True once committed, False for a duplicate. An item that
        wants a provider look-up its batch found necessary is looked up in a worker thread and
        submitted again."""
        try:
            return await self._submit_async(item)
        except NeedsLookup as wanted:
            assert wanted.item.lookup is not None
            settled = await asyncio.to_thread(wanted.item.lookup)
            return await self._submit_async(settled)

    def _submit_async(self, item: Incoming) -> asyncio.Future[bool]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._enqueue(item, LoopReply(loop, future))
        return future

    def submit(self, item: Incoming) -> Future[bool]:
        done: Future[bool] = Future()
        self._enqueue(item, done)
        return done

    def _enqueue(self, item: Incoming, done: Reply) -> None:
        with self._ready:
            if self._closed:
                raise RuntimeError("the hub is shutting down")
            self._waiting.append((item, done))
            if not self._threads:
                self._threads = [threading.Thread(target=self._run, name=f"group-commit-{n}",
                                                  daemon=True) for n in range(self.committers)]
                for thread in self._threads:
                    thread.start()
            self._ready.notify()

    def close(self, timeout: float = 30.0) -> None:
        """Finish what is waiting, then stop (at shutdown)."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._waiting and not self._closed:
                    self._ready.wait()
                if not self._waiting:
                    return
                batch = self._waiting[:self.max_batch]
                del self._waiting[:self.max_batch]
            self._apply(batch)

    def _apply(self, batch: list[Waiting]) -> None:
        with answering() as answer:
            self._apply_batch(batch, answer)

    def _apply_batch(self, batch: list[Waiting], answer: Answers) -> None:
        try:
            with self.hub.transaction() as session:
                batch, known = self._hand_back_lookups(session, batch, answer)
                results = batch_path.apply_batch(self.hub, session, [item for item, _ in batch],
                                                 known)
        except Exception as exc:  # noqa: BLE001 - each event is retried alone, below
            if len(batch) > 1:
                log.info("batch of %d events failed (%s); applying them one by one",
                         len(batch), type(exc).__name__)
            for item, done in batch:
                self._apply_one(item, done, answer)
            return
        for (_, done), new in zip(batch, results, strict=True):
            answer.append((done, new, None))

    def _apply_one(self, item: Incoming, done: Reply, answer: Answers) -> None:
        try:
            with self.hub.transaction() as session:
                if item.lookup is not None and not self._hand_back_lookups(
                        session, [(item, done)], answer)[0]:
                    return
                new = apply_event(self.hub, session, item)
        except Exception as exc:  # noqa: BLE001 - handed to the waiting request
            answer.append((done, None, exc))
            return
        answer.append((done, new, None))

    @staticmethod
    def _hand_back_lookups(session: Session, batch: list[Waiting], answer: Answers
                           ) -> tuple[list[Waiting], dict[CustomerKey, Known]]:
        """The batch without the events whose connector wants to ask the provider about a
        customer the hub has not attributed, and the batch's customers the hub knows, with their
        referrals (one query for both, which the batch then need not ask again). The events left
        out are answered `NeedsLookup`, so their request does the asking outside this
        transaction."""
        keys = {key for item, _ in batch for key in batch_path.customers_of(item)}
        keys.update(key for item, _ in batch for key in item.unless_attributed)
        known = batch_path.read_customers(session, keys) if keys else {}
        kept = []
        for item, done in batch:
            if item.lookup is not None and not all(
                    k in known and batch_path.is_attributed(known[k])
                    for k in item.unless_attributed):
                answer.append((done, None, NeedsLookup(item)))
            else:
                kept.append((item, done))
        return kept, known


def group_commit_of(hub: Hub) -> GroupCommit:
    committer: Any = hub.extras.get("group_commit")
    if committer is None:
        committer = hub.extras.setdefault("group_commit", GroupCommit(hub))
    return committer  # type: ignore[no-any-return]
