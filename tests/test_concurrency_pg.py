"""Concurrent duplicate deliveries over real HTTP on PostgreSQL: one commission, always."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from connectors import stripe_trigger as st
from hub.db.models import Commission, LedgerEntry, ProviderEvent
from tests.conftest import WEBHOOK_SECRET, LiveServer, operator_headers

pytestmark = pytest.mark.postgres


def test_same_event_twenty_times_concurrently_yields_one_commission(make_hub):
    hub = make_hub("postgres")
    with LiveServer(hub) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        partner = http.post("/api/v1/partners", json={"program": "crazycall",
                                                      "email": "p@x.test"},
                            headers=operator_headers()).json()
        evt = st.event("invoice.paid", st.invoice("in_c", customer_id="cus_c", amount=4900,
                                                  subscription_id="sub_c",
                                                  partner_code=partner["code"]))
        body, headers = st.signed_request(evt, WEBHOOK_SECRET)

        def deliver(_: int) -> int:
            with httpx.Client(base_url=server.url, timeout=30) as own:
                return own.post("/webhooks/stripe", content=body, headers=headers).status_code

        with ThreadPoolExecutor(max_workers=20) as pool:
            statuses = list(pool.map(deliver, range(20)))
        assert statuses == [200] * 20
        balances = http.get(f"/api/v1/partners/{partner['id']}", headers=operator_headers()).json()
    assert balances["balances"][0]["pending"] == 980
    with hub.sessions() as s:
        assert s.scalar(select(func.count()).select_from(ProviderEvent)) == 1
        assert s.scalar(select(func.count()).select_from(Commission)) == 1
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == 1


def test_concurrent_refunds_reverse_exactly_once(make_hub):
    """Two different cumulative refunds racing must end at the larger target, not the sum."""
    hub = make_hub("postgres")
    from connectors.stripe import process

    with hub.transaction() as s:
        from hub.attribution.partners import create_partner
        partner = create_partner(hub, s, program="crazycall", email="r@x.test")
    process(hub, st.event("invoice.paid", st.invoice(
        "in_r", customer_id="cus_r", amount=10000, charge_id="ch_r", subscription_id="s",
        partner_code=partner.code, shape="legacy")))
    events = [st.event("charge.refunded", st.charge_refunded("ch_r", amount=10000,
                                                             amount_refunded=amt,
                                                             invoice_id="in_r"))
              for amt in (1000, 2000, 3000, 2000, 1000, 3000)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda e: process(hub, e), events))
    with hub.sessions() as s:
        reversed_total = s.scalar(select(func.sum(Commission.amount)).where(
            Commission.reverses_id.is_not(None)))
    assert reversed_total == -600  # 30% of the 2000 commission, once
