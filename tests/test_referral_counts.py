"""`referral_counts` as `hub tick` keeps them: after any history of referrals, reassignments and
status changes, and whenever tick ran or not, a partner's counts per status and per link code
equal counting its live referrals."""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from hub.attribution import counts as referral_counts
from hub.db.models import Customer, CustomerStatus, Partner, Referral
from hub.ledger.statuses import TIE_ORDER, rebuild_statuses, record_state
from hub.runtime import Hub

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LINKS = (None, "lnk_a", "lnk_b", "lnk_c")


def _setup(hub: Hub, partners: int, customers: int) -> list[str]:
    with hub.transaction() as s:
        rows = [Partner(program="crazycall", code=f"c{i}", email=f"p{i}@partners.test", name="",
                        created_at=T0) for i in range(partners)]
        s.add_all(rows)
        s.execute(insert(Customer), [dict(id=i, provider="stripe", ref=f"cus_{i}",
                                          first_seen_at=T0) for i in range(1, customers + 1)])
        s.flush()
        return [p.id for p in rows]


def _step(hub: Hub, rng: random.Random, partners: list[str], customers: int,
          clock: list[int]) -> None:
    customer = rng.randrange(1, customers + 1)
    clock[0] += 1
    with hub.transaction() as s:
        referral = s.scalars(select(Referral).where(Referral.customer_id == customer)).first()
        roll = rng.random()
        if referral is None:
            s.add(Referral(program="crazycall", partner_id=rng.choice(partners),
                           customer_id=customer, source="link", link_code=rng.choice(LINKS),
                           attributed_at=T0))
        elif roll < 0.2:  # an operator reassigns it, as referrals.assign does
            s.execute(update(Referral).where(Referral.id == referral.id).values(
                partner_id=rng.choice(partners), link_code=None))
        else:
            record_state(s, dict(provider="stripe", subscription_ref=f"sub_{customer}",
                                 customer_id=customer, status=rng.choice(TIE_ORDER), plan="p",
                                 occurred_at=T0 + timedelta(minutes=clock[0])))


def _live(hub: Hub, partner: str, dimension: str) -> dict[str, int]:
    with hub.sessions() as s:
        if dimension == "link":
            values = s.scalars(select(Referral.link_code).where(
                Referral.partner_id == partner, Referral.link_code.is_not(None)))
        else:
            values = s.scalars(select(CustomerStatus.status).join(
                Referral, Referral.customer_id == CustomerStatus.customer_id)
                .where(Referral.partner_id == partner))
        return dict(Counter(values))


def _assert_counts(hub: Hub, partners: list[str]) -> None:
    for partner in partners:
        for dimension in ("status", "link"):
            live = _live(hub, partner, dimension)
            with hub.sessions() as s:
                assert referral_counts.counts(s, partner)[dimension] == live


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_counts_equal_the_live_referrals_after_a_random_history(hub: Hub, seed: int) -> None:
    rng = random.Random(seed)
    partners = _setup(hub, 3, 25)
    clock = [0]
    for _ in range(15):
        for _ in range(rng.randrange(1, 12)):
            _step(hub, rng, partners, 25, clock)
        if rng.random() < 0.5:
            referral_counts.count_changes(hub, T0)
        _assert_counts(hub, partners)
    referral_counts.count_changes(hub, T0)
    assert referral_counts.count_changes(hub, T0) == {"referrals": 0, "customers": 0}
    _assert_counts(hub, partners)
    with hub.transaction() as s:
        rebuild_statuses(s)  # loses what each was counted as: counting starts over
    _assert_counts(hub, partners)
    referral_counts.count_changes(hub, T0)
    _assert_counts(hub, partners)


@pytest.mark.postgres
def test_counts_stay_exact_while_writers_race_the_tick(make_hub: Any) -> None:
    hub = make_hub("postgres")
    partners = _setup(hub, 3, 40)
    done = threading.Event()
    errors: list[BaseException] = []

    def writer(seed: int) -> None:
        rng, clock = random.Random(seed), [seed * 10_000]
        try:
            for _ in range(120):
                _step(hub, rng, partners, 40, clock)
        except BaseException as exc:  # a unique-key race between writers is theirs, not ours
            if "unique" not in str(exc).lower():
                errors.append(exc)

    def ticker() -> None:
        while not done.is_set():
            try:
                referral_counts.count_changes(hub, T0)
            except BaseException as exc:
                if "deadlock" not in str(exc).lower():
                    errors.append(exc)

    writers = [threading.Thread(target=writer, args=(i,)) for i in range(1, 4)]
    tick = threading.Thread(target=ticker)
    tick.start()
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    done.set()
    tick.join()
    assert not errors
    _assert_counts(hub, partners)
    referral_counts.count_changes(hub, T0)
    _assert_counts(hub, partners)
