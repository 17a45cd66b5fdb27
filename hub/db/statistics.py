"""Planner statistics kept fresh while a bulk load grows the tables (PostgreSQL).

PostgreSQL plans from the row counts and value frequencies of each table's last ANALYZE.
Autovacuum refreshes them a minute or more after a table has changed (and never where it is
switched off, as on the development machines here); `hub replay` can grow the tables tenfold in
that minute. With the counts of a nearly empty table the planner judged `provider = 'stripe'`
selective and filtered every stored event for each batch's 500 ids: 260 ms a batch at 333,000
stored events, and growing with them. So a bulk load analyses the tables it grows each time it
has written as many events as the table held at the previous analysis (at least
`MIN_EVENTS`): a dozen ANALYZEs, each sampling at most 30,000 rows a table, over a million
events.
"""

from __future__ import annotations

from sqlalchemy import Engine, text

from hub.db.models import (
    Commission,
    Customer,
    CustomerStatus,
    LedgerEntry,
    PaymentAdjustment,
    PaymentRecord,
    ProviderEvent,
    Referral,
    SubscriptionState,
)

GROWN = tuple(m.__tablename__ for m in (
    ProviderEvent, Customer, Referral, PaymentRecord, PaymentAdjustment, SubscriptionState,
    CustomerStatus, Commission, LedgerEntry))
MIN_EVENTS = 20_000


def analysis_due(since: int, base: int, min_events: int) -> bool:
    """Whether `since` events written after an analysis that counted `base` call for another:
    once the table has doubled, so the analyses over a load of n events number about log2 n."""
    return since >= max(min_events, base)


class FreshStatistics:
    """Call `written(n)` after each committed batch of `n` new events."""

    def __init__(self, engine: Engine, min_events: int | None = None):
        self.engine = engine
        self.min_events = MIN_EVENTS if min_events is None else min_events
        self.enabled = engine.dialect.name == "postgresql"
        self.since = 0
        self.base = self._estimated_events() if self.enabled else 0
        if self.enabled and self.base < 0:  # never analysed: its counts mean nothing yet
            self.analyse()

    def written(self, new_events: int) -> None:
        if not self.enabled:
            return
        self.since += new_events
        if analysis_due(self.since, self.base, self.min_events):
            self.base += self.since
            self.analyse()

    def analyse(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(f"ANALYZE {', '.join(GROWN)}"))
        self.since = 0
        self.base = max(self.base, self._estimated_events())

    def _estimated_events(self) -> int:
        """The planner's own count of stored events (-1: never analysed), read for free."""
        with self.engine.connect() as conn:
            value = conn.execute(text(
                "SELECT reltuples FROM pg_class WHERE oid = to_regclass(:table)"),
                {"table": ProviderEvent.__tablename__}).scalar()
        return -1 if value is None else int(value)
