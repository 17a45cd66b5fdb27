"""Regressions for the bugs the trust tests found (each was a failing generated example)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from connectors import stripe_trigger as st
from connectors.stripe import process
from hub.app import create_app
from hub.attribution.partners import derived_code
from hub.clock import from_timestamp
from hub.db.models import Commission, Partner, ProviderEvent
from hub.facts import CustomerSeen, PaymentSucceeded, well_typed
from tests.conftest import installer_headers


def test_a_signup_naming_an_ambassador_that_does_not_exist_yet_is_attributed_later(make_hub,
                                                                                   backend):
    """Found by the ledger property: the signup arrived before the ambassador's own customer
    event, and the code was dropped (a checkout kept it; a signup did not)."""
    hub = make_hub(backend, programs={"callbell": {"plugin": "callbell", "currency": "EUR"}})
    code = derived_code("callbell:stripe:cus_amb")
    with TestClient(create_app(hub)) as c:
        r = c.post("/api/v1/signups", json={"code": code, "email": "new@shop.test",
                                            "customer_ref": "cus_new"},
                   headers=installer_headers())
        assert r.status_code == 201 and r.json()["partner_id"] is None
        process(hub, st.event("customer.created", st.customer("cus_amb", email="amb@shop.test")))
        process(hub, st.event("invoice.paid", st.invoice(
            "in_new", customer_id="cus_new", amount=2000, currency="eur", subscription_id="s")))
    with hub.sessions() as s:
        ambassador = s.scalars(select(Partner).where(Partner.code == code)).one()
        lines = s.scalars(select(Commission).where(Commission.partner_id == ambassador.id)).all()
        assert [line.amount for line in lines] == [600]  # 30% of €20


def test_milestone_lines_name_an_event(make_hub):
    """Every ledger line names an event: a 90-day bounty names the subscription event in force
    at its moment, or, where there is none, the tick's own `hub` event."""
    from tests.program_scenarios import CTM as plan

    hub = make_hub("sqlite", programs={plan.program: {"plugin": plan.program,
                                                     "currency": plan.currency, **plan.config}})
    with TestClient(create_app(hub)) as c:
        plan.setup(c)
        plan.scenario().run(c, hub, plan.start, plan.end)
    with hub.sessions() as s:
        rows = s.execute(select(Commission, ProviderEvent).outerjoin(
            ProviderEvent, ProviderEvent.id == Commission.event_id).where(
            Commission.payment_id.is_(None), Commission.install_id.is_(None),
            Commission.reverses_id.is_(None))).all()
        assert rows, "the scenario books milestone bounties"
        for line, event in rows:
            assert event is not None
            if event.provider == "hub":
                assert event.type == "milestone.reached" and line.key in event.event_id
            else:
                assert event.provider == "stripe" and event.type.startswith(
                    ("customer.subscription.", "invoice."))


def test_facts_with_wrong_types_are_refused_before_they_reach_the_database():
    at = datetime(2026, 1, 1, tzinfo=UTC)
    good = CustomerSeen(provider="stripe", customer_ref="cus_1", occurred_at=at)
    assert well_typed([good]) == [good]
    with pytest.raises(TypeError, match="customer_ref"):
        well_typed([CustomerSeen(provider="stripe", customer_ref=["x"], occurred_at=at)])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="amount"):
        well_typed([PaymentSucceeded(provider="stripe", payment_ref="in", customer_ref="c",
                                     amount="12", currency="USD", occurred_at=at)])  # type: ignore[arg-type]


def test_timestamps_out_of_range_are_value_errors():
    with pytest.raises(ValueError):
        from_timestamp(10**20)
    assert from_timestamp(0).year == 1970
