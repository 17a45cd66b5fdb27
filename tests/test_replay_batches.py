"""`hub replay` in batches: one transaction per batch through the webhook path, a bad event costs
only itself, and a re-run (resuming after an interrupt) skips what is stored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from connectors import stripe_trigger as st
from hub.db.models import Commission, ProviderEvent
from hub.ingest.replay import replay_file
from tests.payout_helpers import make_partner


def _paid(n: int, customer: str = "cus_r1", amount: Any = None) -> dict[str, Any]:
    invoice = st.invoice(f"in_r{n}", customer_id=customer, amount=4900, paid_at=1767600000 + n,
                         charge_id=f"ch_r{n}", shape="legacy")
    if amount is not None:
        invoice["amount_paid"] = amount
    return st.event("invoice.paid", invoice, created=1767600000 + n, event_id=f"evt_r{n}")


def _counts(hub: Any) -> tuple[int, int]:
    with hub.sessions() as s:
        return (s.scalar(select(func.count()).select_from(ProviderEvent)),
                s.scalar(select(func.count()).select_from(Commission)))


def test_batches_skip_bad_events_and_reruns_skip_stored_ones(make_hub: Any, backend: str,
                                                             tmp_path: Path) -> None:
    hub = make_hub(backend)  # on PostgreSQL with two batches in flight
    partner = make_partner(hub, "crazycall")
    first = st.event("customer.created", {"id": "cus_r1", "object": "customer",
                                          "email": "r1@example.com",
                                          "metadata": {"partner_code": partner.code}},
                     created=1767600000, event_id="evt_r0")
    lines = [json.dumps(first), json.dumps(_paid(1)), "{not json", json.dumps(_paid(2)),
             json.dumps(_paid(3, amount="lots")),  # the normaliser raises ValueError
             json.dumps(_paid(1)),  # a duplicate inside the same file
             json.dumps(_paid(4)), ""]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")

    stats = replay_file(hub, str(path), progress=False, batch=3)
    assert stats == {"events": 7, "new": 4, "duplicates": 1, "errors": 2}
    assert _counts(hub) == (4, 3)  # three invoices earn; the customer event is stored too

    again = replay_file(hub, str(path), progress=False, batch=3)
    assert again == {"events": 7, "new": 0, "duplicates": 5, "errors": 2}
    assert _counts(hub) == (4, 3)


def test_batched_and_one_by_one_replays_book_the_same_lines(make_hub: Any, backend: str,
                                                             tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    results = []
    for batch in (1, 4):
        hub = make_hub(backend)
        partner = make_partner(hub, "crazycall", code="samecode")
        events = [st.event("customer.created", {
            "id": f"cus_b{c}", "object": "customer", "email": f"b{c}@example.com",
            "metadata": {"partner_code": partner.code}}, created=1767600000 + c,
            event_id=f"evt_c{c}") for c in range(3)]
        events += [_paid(10 * c + m, customer=f"cus_b{c}") for m in range(3) for c in range(3)]
        path.write_text("".join(json.dumps(e) + "\n" for e in events))
        replay_file(hub, str(path), progress=False, batch=batch)
        with hub.sessions() as s:
            results.append(sorted(s.execute(select(Commission.key, Commission.amount)).all()))
    assert results[0] == results[1] and len(results[0]) == 9


@pytest.mark.postgres
def test_replay_keeps_the_planner_statistics_of_what_it_grows(make_hub: Any, tmp_path: Path,
                                                               monkeypatch: Any) -> None:
    """Autovacuum is off here (and lags a minute where it is on): the replay itself analyses
    the tables each time it has written as many events as they held at the last analysis."""
    from sqlalchemy import text

    from hub.db import statistics

    monkeypatch.setattr(statistics, "MIN_EVENTS", 40)
    hub = make_hub("postgres")
    partner = make_partner(hub, "crazycall")
    lines = [json.dumps(st.event("customer.created", {
        "id": "cus_r1", "object": "customer", "email": "r1@example.com",
        "metadata": {"partner_code": partner.code}}, created=1767600000, event_id="evt_r0"))]
    lines += [json.dumps(_paid(n)) for n in range(1, 200)]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")

    def planner_rows(table: str) -> float:
        with hub.engine.connect() as conn:
            return float(conn.execute(text("SELECT reltuples FROM pg_class "
                                           "WHERE oid = to_regclass(:t)"), {"t": table}).scalar())

    replay_file(hub, str(path), progress=False, batch=20)
    # Analysed at 40, 80, 160 events written: the planner knows at least 160 of the 200 events
    # and 159 of the 199 commissions, not the empty tables the schema started with.
    assert planner_rows("provider_events") >= 160
    assert planner_rows("commissions") >= 159


@pytest.mark.parametrize("since, base, min_events, due", [
    (19_999, 0, 20_000, False),        # a young table: wait for the minimum
    (20_000, 0, 20_000, True),
    (20_000, 300_000, 20_000, False),  # a large table: wait until it doubled
    (300_000, 300_000, 20_000, True),
    (0, 0, 0, True),
])
def test_analysis_is_due_once_the_table_doubled(since: int, base: int, min_events: int,
                                                due: bool) -> None:
    from hub.db.statistics import analysis_due

    assert analysis_due(since, base, min_events) is due


@pytest.mark.postgres
@pytest.mark.parametrize("seed", range(3))
def test_two_batches_in_flight_book_what_one_event_at_a_time_books(
        make_hub: Any, tmp_path: Path, monkeypatch: Any, seed: int) -> None:
    """On PostgreSQL two batches about different customers are written at once: a stream of
    customers, invoices, subscription changes and refunds (shuffled with duplicates for odd
    seeds) replayed that way ends in the ledger, referrals and statuses that one event per
    transaction gives on SQLite; an interrupted replay resumed does too."""
    import random

    from connectors.stripe import process
    from tests.test_batch import _ledger, _seeded_stream

    programs = {"crazycall": {"plugin": "crazycall", "currency": "USD"},
                "callpage": {"plugin": "callpage", "currency": "USD"}}
    rng = random.Random(seed)
    hubs = [make_hub("sqlite", programs=programs), make_hub("postgres", programs=programs)]
    stream = _seeded_stream(hubs, rng, seed, 40)
    one, pipelined = hubs
    for event in stream:
        process(one, event)
    path = tmp_path / "events.jsonl"
    # The first half, then the whole file: a resumed replay skips what the first run stored.
    path.write_text("".join(json.dumps(e) + "\n" for e in stream[:len(stream) // 2]))
    replay_file(pipelined, str(path), progress=False, batch=70, workers=2)
    path.write_text("".join(json.dumps(e) + "\n" for e in stream))
    stats = replay_file(pipelined, str(path), progress=False, batch=70, workers=2)
    assert stats["errors"] == 0 and stats["events"] == len(stream)
    assert stats["new"] + stats["duplicates"] == len(stream)
    assert _ledger(pipelined) == _ledger(one)


@pytest.mark.postgres
def test_batches_about_other_customers_run_side_by_side(make_hub: Any, tmp_path: Path,
                                                        monkeypatch: Any) -> None:
    """Everyday events (customers with a code, their invoices): the second batch starts while
    the first is still open, and the ledger is the one event by event gives."""
    import threading

    from hub.ingest import replay
    from tests.test_batch import _ledger

    hubs = [make_hub("sqlite"), make_hub("postgres")]
    for hub in hubs:
        make_partner(hub, "crazycall", code="sidecode")
    events = []
    for c in range(12):
        events.append(st.event("customer.created", {
            "id": f"cus_s{c}", "object": "customer", "email": f"s{c}@example.com",
            "metadata": {"partner_code": "sidecode"}}, created=1767600000 + c,
            event_id=f"evt_s{c}"))
        events += [_paid(100 * c + m, customer=f"cus_s{c}") for m in range(4)]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    replay_file(hubs[0], str(path), progress=False, batch=1, workers=1)

    second_started, overlapped = threading.Event(), list[bool]()
    original = replay.batch_in_transaction

    def watched(*args: Any) -> dict[str, int]:
        if not overlapped:  # the first batch: kept in flight until a second one starts
            overlapped.append(False)
            overlapped[0] = second_started.wait(timeout=10)
        else:
            second_started.set()
        return original(*args)

    monkeypatch.setattr(replay, "batch_in_transaction", watched)
    stats = replay_file(hubs[1], str(path), progress=False, batch=20, workers=2)
    assert overlapped == [True]
    assert stats == {"events": 60, "new": 60, "duplicates": 0, "errors": 0}
    assert _ledger(hubs[1]) == _ledger(hubs[0])


@pytest.mark.parametrize("seed", range(4))
def test_the_pipeline_never_runs_a_customer_in_two_batches_at_once(seed: int) -> None:
    """The scheduler alone, with a stand-in for the batches: every entry is applied once; no
    customer is in two batches in flight; each customer's entries are applied in file order;
    an entry that may reach other customers runs with nothing else in flight, after everything
    before it and before everything after it."""
    import random
    import threading
    import time

    from hub.ingest.replay_pipeline import Entry, Pipeline

    rng = random.Random(seed)
    entries = [Entry(n, None, "", None,  # type: ignore[arg-type]
                     frozenset({("stripe", f"cus_{rng.randrange(12)}")}),
                     independent=rng.random() > 0.05) for n in range(600)]
    lock = threading.Lock()
    in_flight: list[frozenset[Any]] = []
    applied: list[int] = []
    problems: list[str] = []

    def apply(batch: list[Entry]) -> dict[str, int]:
        keys = frozenset().union(*(e.keys for e in batch))
        with lock:
            if any(keys & other for other in in_flight):
                problems.append("a customer in two batches")
            if in_flight and not all(e.independent for e in batch):
                problems.append("an entry reaching other customers beside a batch")
            in_flight.append(keys)
        time.sleep(rng.random() / 200)
        with lock:
            in_flight.remove(keys)
            applied.extend(e.number for e in batch)
        return {"new": len(batch)}

    done: list[int] = []
    pipeline = Pipeline(25, 2, apply, lambda counts, lines: done.append(lines))
    for start in range(0, len(entries), 25):
        pipeline.add(entries[start:start + 25])
    pipeline.finish()
    assert problems == []
    assert sorted(applied) == list(range(600)) and sum(done) == 600
    position = {n: i for i, n in enumerate(applied)}
    for customer in {k for e in entries for k in e.keys}:
        mine = [e.number for e in entries if customer in e.keys]
        assert sorted(mine, key=position.__getitem__) == mine  # file order
    for e in entries:
        if not e.independent:
            assert all(position[o.number] < position[e.number] for o in entries[:e.number])
            assert all(position[o.number] > position[e.number] for o in entries[e.number + 1:])
