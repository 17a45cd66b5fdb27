"""The dashboard's trend numbers read from what `hub tick` writes equal the numbers computed from
the facts themselves: new trials and first payments per day (activity snapshots plus today
live), commission per day and balances (ledger checkpoints plus newer entries)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert

from hub.db.models import Customer, Partner, PaymentRecord, ProviderEvent, Referral
from hub.ledger.checkpoints import checkpoint_ledger
from hub.ledger.statuses import snapshot_activity
from hub.runtime import Hub
from hub.web import portal_data, trends

NOW = datetime(2026, 3, 10, 15, tzinfo=UTC)
TODAY = NOW.date()


def _history(hub: Hub, rng: random.Random) -> list[Partner]:
    """Two partners' referrals and payments over the last 100 days, today's included; some
    customers paid before they were referred (their first payment still counts once)."""
    with hub.transaction() as s:
        partners = [Partner(program="crazycall", code=f"c{i}", email=f"p{i}@partners.test",
                            name="", created_at=NOW) for i in range(2)]
        event = ProviderEvent(provider="stripe", event_id="evt_seed", type="seed",
                              occurred_at=NOW, received_at=NOW, payload="{}")
        s.add_all([*partners, event])
        s.flush()
        customers, referrals, payments = [], [], []
        for i in range(1, 80):
            joined = NOW - timedelta(days=rng.randrange(100), hours=rng.randrange(15))
            customers.append(dict(id=i, provider="stripe", ref=f"cus_{i}", first_seen_at=joined))
            referrals.append(dict(id=i, program="crazycall", partner_id=rng.choice(partners).id,
                                  customer_id=i, source="code", attributed_at=joined))
            for n in range(rng.randrange(4)):
                paid = joined + timedelta(days=rng.randrange(-5, 40), hours=rng.randrange(24))
                if paid <= NOW:
                    payments.append(dict(provider="stripe", ref=f"in_{i}_{n}", customer_id=i,
                                         amount=100, gross_amount=100, currency="USD",
                                         occurred_at=paid, event_id=event.id))
        s.execute(insert(Customer), customers)
        s.execute(insert(Referral), referrals)
        s.execute(insert(PaymentRecord), payments)
    with hub.sessions() as s:
        return list(s.query(Partner).order_by(Partner.code))


def _series(hub: Hub, partner: Partner, period: trends.Period) -> dict[str, Any]:
    since = trends.bucket_starts(period, TODAY)[0]
    with hub.sessions() as s:
        news = portal_data.new_per_day(s, partner, since, TODAY)
    return {name: trends.fold(days, period, TODAY) for name, days in news.items()}


@pytest.mark.parametrize("seed", [3, 4])
def test_new_trials_and_subscriptions_from_snapshots_equal_the_facts(hub: Hub, seed: int) -> None:
    partners = _history(hub, random.Random(seed))
    periods = list(trends.PERIODS.values())
    from_facts = {(p.id, k.key): _series(hub, p, k) for p in partners for k in periods}
    snapshot_activity(hub, NOW)
    assert {(p.id, k.key): _series(hub, p, k) for p in partners for k in periods} == from_facts
    assert any(n for series in from_facts.values() for _, n in series["new_subscriptions"])


def test_todays_payment_of_a_customer_who_paid_before_is_not_new(hub: Hub) -> None:
    partners = _history(hub, random.Random(5))
    snapshot_activity(hub, NOW)
    with hub.transaction() as s:
        paid_before = s.query(PaymentRecord).order_by(PaymentRecord.occurred_at).first()
        s.add(PaymentRecord(provider="stripe", ref="in_today", customer_id=paid_before.customer_id,
                            amount=100, gross_amount=100, currency="USD",
                            occurred_at=NOW - timedelta(hours=1), event_id=paid_before.event_id))
    with hub.sessions() as s:
        owner = s.get(Referral, paid_before.customer_id).partner_id
        live = portal_data.new_per_day(s, next(p for p in partners if p.id == owner),
                                       TODAY - timedelta(days=29), TODAY)
        facts = dict(portal_data.daily_first_payments(
            s, next(p for p in partners if p.id == owner), TODAY - timedelta(days=29)))
    assert dict(live["new_subscriptions"]).get(TODAY, 0) == facts.get(TODAY, 0)


def test_dashboard_page_is_the_same_before_and_after_tick(hub: Hub) -> None:
    """The whole dashboard (balances, counts, every chart) reads the same numbers through the
    snapshots and checkpoints as from the facts."""
    from tests.test_ledger_checkpoints import _earn

    partners = _history(hub, random.Random(6))
    with hub.transaction() as s:
        for day in range(40):
            _earn(s, partners[0].id, 100 + day, NOW - timedelta(days=day))
    money = portal_data.Money("USD", "en")

    def dashboard() -> list[Any]:
        out = []
        with hub.sessions() as s:
            for period in trends.PERIODS.values():
                counts = portal_data.current_counts(s, partners[0])
                out.append(portal_data.trend_series(s, partners[0], money, period, TODAY, counts))
            from hub.ledger import entries as ledger
            out.append(ledger.balances(s, partners[0].id))
        return out

    before = dashboard()
    snapshot_activity(hub, NOW)
    checkpoint_ledger(hub, NOW)
    assert dashboard() == before


@pytest.mark.postgres
def test_racing_ticks_both_write_a_partners_activity_days(make_hub: Any) -> None:
    """Two `hub tick`s snapshot the same partner at once: the second's delete cannot see the
    first's uncommitted days, so its write must replace them rather than die on the key."""
    import threading
    import time
    from datetime import date

    from sqlalchemy import func, select

    from hub.db.models import ActivityDay
    from hub.ledger.statuses import CLASSES, _write_days
    from tests.payout_helpers import make_partner

    hub = make_hub("postgres")
    partner = make_partner(hub, "crazycall")
    first, last = date(2026, 3, 1), date(2026, 3, 5)

    def write(trials: int) -> None:
        deltas = {name: {} for name in CLASSES} | {"trials": {first: trials}}
        with hub.transaction() as session:
            _write_days(session, partner.id, deltas, {}, first, last)

    errors: list[BaseException] = []

    def second() -> None:
        try:
            write(2)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    with hub.transaction() as session:
        _write_days(session, partner.id, {name: {} for name in CLASSES} | {"trials": {first: 1}},
                    {}, first, last)
        racer = threading.Thread(target=second)
        racer.start()
        time.sleep(0.5)  # the racer is now waiting on this transaction's rows
    racer.join(timeout=30)
    assert errors == []
    with hub.sessions() as s:
        rows = s.execute(select(func.count(), func.min(ActivityDay.trials)).where(
            ActivityDay.partner_id == partner.id)).one()
    assert tuple(rows) == (5, 2)  # five days, each the later writer's
