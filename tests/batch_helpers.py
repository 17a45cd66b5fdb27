"""Watching which payments `hub.ingest.batch` settles the set-based way (shared by the batch
tests)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from hub.facts import PaymentSucceeded
from hub.ingest.batch import FastPath, Known


@contextlib.contextmanager
def fast_settled() -> Iterator[list[str]]:
    """The payment refs the set-based path settles while the block runs."""
    settled: list[str] = []
    original = FastPath._settle

    def counting(self: Any, known: Known, fact: PaymentSucceeded, event_id: int) -> None:
        settled.append(fact.payment_ref)
        original(self, known, fact, event_id)

    FastPath._settle = counting  # type: ignore[method-assign]
    try:
        yield settled
    finally:
        FastPath._settle = original  # type: ignore[method-assign]
