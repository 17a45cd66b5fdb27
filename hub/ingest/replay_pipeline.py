"""`hub replay` on PostgreSQL: two batches in flight at once, on customers that do not overlap.

One replay batch is Python (parsing, the rules, building the rows) and then a wait for the
database (writing them); one after the other, each half leaves a core idle. Here the main thread
parses and prepares events while up to `workers` threads apply batches, each in its own
transaction on its own connection, so the database writes one batch while Python computes the
next.

Two batches run side by side only when neither can change what the other reads: every event of
the newer batch is an everyday one (`independent`: one customer, nothing that attributes or
enrols another customer) about customers no batch in flight is about. An event of a customer in
flight waits, and every later event of that customer with it, so each customer's events are still
applied in file order, and the rules, which see one customer's history at a time, give the same
lines as event by event. An event that may reach other customers waits for everything before it
and is applied alone in order, as the sequential replay applies it.

Resuming is re-running, as before: a batch is one transaction, and a customer's later events are
never committed before its earlier ones, so what an interrupt leaves stored is, per customer, a
prefix of the file.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from hub.attribution.partners import enrolling_programs
from hub.ingest.batch import FAST_KINDS, CustomerKey, apply_batch, customers_of
from hub.ingest.events import Incoming
from hub.runtime import Hub

WORKERS = 2


@dataclass(frozen=True)
class Entry:
    """One parsed line: its number, the event as read, its text, and what the connector made of
    it (without a session: an item that wants a look-up is prepared again in its batch)."""

    number: int
    event: Any
    raw: str
    item: Incoming
    keys: frozenset[CustomerKey]
    independent: bool


def can_pipeline(hub: Hub, connector: Any) -> bool:
    """PostgreSQL only (SQLite has one writer), and only where no program enrols customers as
    referrers: an enrolment attributes other customers, waiting for the new member's code."""
    return (hub.engine.dialect.name == "postgresql" and connector.prepare is not None
            and not enrolling_programs(hub))


def independent(item: Incoming) -> bool:
    """Whether `item` reaches only its own customer: one fact of a kind the batch's fast path
    knows, and no installation code (an installation is claimed across customers). A payment
    that still takes the per-event path (a new code, a late payment) changes only its customer."""
    if not item.facts:
        return True
    fact = item.facts[0]
    return (len(item.facts) == 1 and type(fact) in FAST_KINDS
            and not getattr(fact, "install_id", None))


def entry(number: int, event: Any, raw: str, item: Incoming) -> Entry:
    return Entry(number, event, raw, item, frozenset(customers_of(item)), independent(item))


def fast_commit(session: Session) -> None:
    """A replay batch need not wait for its commit to reach the disk: a crash loses at most the
    last moment's batches, each whole, and re-running the replay stores them again."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit = off"))


class Pipeline:
    """Feed it entries in file order (`add`), then `finish`. `apply(entries)` applies one batch
    in a transaction of its own and returns its counts; `done(counts, lines)` is called in the
    main thread, in submission order, as batches complete."""

    def __init__(self, size: int, workers: int,
                 apply: Callable[[list[Entry]], dict[str, int]],
                 done: Callable[[dict[str, int], int], None]):
        self.size, self.workers = size, workers
        self.apply, self.done = apply, done
        self.pending: deque[Entry] = deque()
        self.flight: deque[tuple[Future[dict[str, int]], frozenset[CustomerKey], int]] = deque()
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="replay")

    def add(self, entries: Iterable[Entry]) -> None:
        self.pending.extend(entries)
        while len(self.pending) >= self.size:
            self._dispatch()

    def finish(self) -> None:
        try:
            while self.pending:
                self._dispatch()
            while self.flight:
                self._finish_oldest()
        finally:
            self.close()

    def close(self) -> None:
        """Let the batches in flight commit (or roll back); start no other."""
        self.pool.shutdown(wait=True, cancel_futures=True)

    def _dispatch(self) -> None:
        """Start one batch from the head of `pending`, or wait for one in flight."""
        if len(self.flight) >= self.workers:
            self._finish_oldest()
            return
        if not self.pending[0].independent:
            # It may change what any batch reads: after everything before it, alone.
            while self.flight:
                self._finish_oldest()
            chosen = [self.pending.popleft()
                      for _ in range(min(self.size, len(self.pending)))]
            counts = self.apply(chosen)
            self.done(counts, len(chosen))
            return
        busy = frozenset().union(*(keys for _, keys, _ in self.flight))
        chosen, rest = self._choose(busy)
        if self.flight and len(chosen) < self.size // 4:
            # Mostly customers still in flight: wait rather than start a small batch.
            self._finish_oldest()
            return
        self.pending = rest
        keys = frozenset().union(*(e.keys for e in chosen))
        self.flight.append((self.pool.submit(self.apply, chosen), keys, len(chosen)))

    def _choose(self, busy: frozenset[CustomerKey]) -> tuple[list[Entry], deque[Entry]]:
        """Up to `size` independent entries in file order whose customers are not `busy`; the
        others stay pending in order (a customer held back holds back its later events)."""
        chosen: list[Entry] = []
        rest: deque[Entry] = deque()
        held: set[CustomerKey] = set()
        stopped = False
        for e in self.pending:
            if stopped or len(chosen) >= self.size or not e.independent:
                stopped = True
                rest.append(e)
            elif e.keys & busy or e.keys & held:
                held |= e.keys
                rest.append(e)
            else:
                chosen.append(e)
        return chosen, rest

    def _finish_oldest(self) -> None:
        future, _, lines = self.flight.popleft()
        self.done(future.result(), lines)


def batch_in_transaction(hub: Hub, connector: Any, entries: list[Entry]) -> dict[str, int]:
    """Apply entries in one transaction; raises (rolling all of it back) on any failure. The
    entries were checked against the stored events when they were read; one stored since (an
    earlier line of the file in a batch that was in flight, another process) is a duplicate
    when the batch inserts it."""
    counts = {"new": 0, "duplicates": 0}
    with hub.transaction() as session:
        fast_commit(session)
        # An item that wants a look-up asks with this batch's session, as the sequential
        # replay's items do.
        items = [e.item if e.item.lookup is None
                 else connector.prepare(hub, e.event, session, e.raw) for e in entries]
        for new in apply_batch(hub, session, items):
            counts["new" if new else "duplicates"] += 1
    return counts
