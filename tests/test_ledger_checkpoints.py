"""The ledger checkpoints `hub tick` keeps: after any history, and whenever tick ran or not,
balances and commission per day read through them equal the ledger's own sums."""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from hub.db.models import BalanceCheckpoint, Commission, LedgerEntry, Partner, new_id
from hub.ledger import checkpoints as ledger_checkpoints
from hub.ledger import entries as ledger
from hub.runtime import Hub

START = datetime(2026, 1, 1, tzinfo=UTC)


def _partners(hub: Hub, n: int) -> list[str]:
    with hub.transaction() as s:
        partners = [Partner(program="crazycall", code=f"code{i}", email=f"p{i}@partners.test",
                            name="", created_at=START) for i in range(n)]
        s.add_all(partners)
        s.flush()
        return [p.id for p in partners]


def _earn(s: Any, partner_id: str, amount: int, earned_at: datetime, currency: str = "USD",
          reverses: str | None = None) -> str:
    """A commission line and the transfer that books it, as `ledger.book` and `reverse_to` do."""
    line = new_id("com")
    s.add(Commission(id=line, program="crazycall", partner_id=partner_id, key=line, amount=amount,
                     currency=currency, earned_at=earned_at, available_at=earned_at,
                     reverses_id=reverses, rule={}, created_at=earned_at))
    s.flush()
    if reverses is None:
        ledger.post(s, [("pending", amount)], partner_id=partner_id, currency=currency,
                    kind="earn", commission_id=line, line_id=line)
    else:
        ledger.move(s, -amount, "pending", "voided", partner_id=partner_id, currency=currency,
                    kind="reverse", commission_id=reverses, line_id=line)
    return line


def _random_step(s: Any, rng: random.Random, partners: list[str], lines: list[tuple[str, str, int,
                 datetime]]) -> None:
    partner = rng.choice(partners)
    roll = rng.random()
    if roll < 0.5 or not lines:
        at = START + timedelta(days=rng.randrange(60), minutes=rng.randrange(1440))
        currency = rng.choice(("USD", "USD", "EUR"))
        amount = rng.randrange(1, 10_000)
        lines.append((_earn(s, partner, amount, at, currency), partner, amount, at))
    elif roll < 0.7:
        line, owner, amount, at = rng.choice(lines)
        currency = s.get(Commission, line).currency
        _earn(s, owner, -rng.randrange(1, amount + 1), at, currency, reverses=line)
    else:
        line, owner, amount, _ = rng.choice(lines)
        currency = s.get(Commission, line).currency
        source, target = rng.choice([("pending", "payable"), ("payable", "in_payout"),
                                     ("in_payout", "paid"), ("payable", "paid")])
        ledger.move(s, rng.randrange(1, amount + 1), source, target, partner_id=owner,
                    currency=currency, kind="release", commission_id=None)


def _ledger_sums(hub: Hub, partner_id: str) -> dict[tuple[str, str], int]:
    with hub.sessions() as s:
        rows = s.execute(select(LedgerEntry.currency, LedgerEntry.state,
                                func.sum(LedgerEntry.amount))
                         .where(LedgerEntry.partner_id == partner_id)
                         .group_by(LedgerEntry.currency, LedgerEntry.state)).all()
    return {(c, st): int(a) for c, st, a in rows if a}


def _days_from_lines(hub: Hub, partner_id: str, currency: str) -> dict[date, int]:
    out: dict[date, int] = defaultdict(int)
    with hub.sessions() as s:
        for amount, at in s.execute(select(Commission.amount, Commission.earned_at).where(
                Commission.partner_id == partner_id, Commission.currency == currency)):
            out[at.astimezone(UTC).date()] += amount
    return {d: a for d, a in out.items() if a}


def _assert_reads_equal_ledger(hub: Hub, partners: list[str]) -> None:
    for partner in partners:
        with hub.sessions() as s:
            through = {(c, st): a for c, st, a in ledger_checkpoints.balance_sums(s, partner) if a}
            listed = ledger.balances(s, partner)
        assert through == _ledger_sums(hub, partner)
        assert {(b["currency"], st): b[st]
                for b in listed for st in ledger.STATES if b[st]} == through
        for currency in ("USD", "EUR"):
            with hub.sessions() as s:
                days = ledger_checkpoints.daily_commission(
                    s, partner, currency, date(2025, 12, 1), date(2026, 12, 31))
            assert dict(days) == _days_from_lines(hub, partner, currency)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_reads_equal_the_ledger_after_a_random_history_and_random_ticks(hub: Hub,
                                                                         seed: int) -> None:
    rng = random.Random(seed)
    partners = _partners(hub, 4)
    lines: list[tuple[str, str, int, datetime]] = []
    _assert_reads_equal_ledger(hub, partners)  # nothing booked, tick never ran
    for _ in range(12):
        with hub.transaction() as s:
            for _ in range(rng.randrange(1, 15)):
                _random_step(s, rng, partners, lines)
        if rng.random() < 0.5:
            ledger_checkpoints.checkpoint_ledger(hub, START)
        _assert_reads_equal_ledger(hub, partners)
    ledger_checkpoints.checkpoint_ledger(hub, START)
    assert ledger_checkpoints.checkpoint_ledger(hub, START) == {"entries": 0}  # idempotent
    _assert_reads_equal_ledger(hub, partners)
    ledger_checkpoints.rebuild_checkpoints(hub)
    _assert_reads_equal_ledger(hub, partners)


def test_checkpoint_is_the_ledgers_sum_up_to_the_watermark(hub: Hub) -> None:
    partners = _partners(hub, 2)
    with hub.transaction() as s:
        _earn(s, partners[0], 500, START)
        _earn(s, partners[1], 700, START)
    assert ledger_checkpoints.checkpoint_ledger(hub, START)["entries"] == 2
    with hub.transaction() as s:
        _earn(s, partners[0], 30, START)  # after the watermark: read from the ledger itself
    with hub.sessions() as s:
        stored = {(r.partner_id, r.state): r.amount for r in s.scalars(select(BalanceCheckpoint))}
        assert stored == {(partners[0], "pending"): 500, (partners[1], "pending"): 700}
        assert ledger_checkpoints.balance_sums(s, partners[0]) == [("USD", "pending", 530)]
        assert ledger_checkpoints.balance_sums(s, partners[1]) == [("USD", "pending", 700)]


@pytest.mark.postgres
def test_an_entry_committed_late_with_a_smaller_id_is_never_skipped(
        make_hub: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sequence ids can commit out of order: a watermark taken past an open writer's entry
    would leave that entry out of every checkpoint. The tick waits for open writers (here it
    gives up after its lock timeout and leaves the watermark where it was)."""
    hub = make_hub("postgres")
    monkeypatch.setattr(ledger_checkpoints, "LOCK_TIMEOUT", "300ms")
    partner = _partners(hub, 1)[0]
    inserted, release = threading.Event(), threading.Event()

    def slow_writer() -> None:
        with hub.transaction() as s:
            _earn(s, partner, 111, START)  # takes the smaller id, commits last
            inserted.set()
            release.wait(10)

    writer = threading.Thread(target=slow_writer)
    writer.start()
    assert inserted.wait(10)
    with hub.transaction() as s:
        _earn(s, partner, 222, START)
    assert ledger_checkpoints.checkpoint_ledger(hub, START) == {"entries": 0,
                                                                "skipped": "writers busy"}
    release.set()
    writer.join()
    ledger_checkpoints.checkpoint_ledger(hub, START)
    with hub.sessions() as s:
        assert ledger_checkpoints.balance_sums(s, partner) == [("USD", "pending", 333)]
        assert s.scalar(select(func.sum(BalanceCheckpoint.amount))) == 333


@pytest.mark.postgres
def test_two_ticks_racing_fold_each_entry_once(make_hub: Any) -> None:
    hub = make_hub("postgres")
    partners = _partners(hub, 3)
    rng = random.Random(7)
    lines: list[tuple[str, str, int, datetime]] = []
    with hub.transaction() as s:
        for _ in range(200):
            _random_step(s, rng, partners, lines)
    threads = [threading.Thread(target=ledger_checkpoints.checkpoint_ledger, args=(hub, START))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with hub.sessions() as s:
        stored = s.scalar(select(func.sum(BalanceCheckpoint.amount)))
        assert stored == s.scalar(select(func.sum(LedgerEntry.amount)))
    _assert_reads_equal_ledger(hub, partners)
