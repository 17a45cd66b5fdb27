"""Payout policies asked of the program plugins, run by the core: requests with their minimums
and refusals, CTM's month boundary, the quarterly manual list, dry-run PayPal.

These use the embedded queue (a StubBroker and an in-process Dramatiq worker) and PayPal in
dry-run, the defaults a fresh install runs on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from hub.app import create_app
from hub.db.models import AuditLog
from hub.jobs.queue import queue_of
from hub.jobs.tick import run_tick
from tests.conftest import operator_headers
from tests.payout_helpers import (
    at,
    balance_of,
    make_partner,
    pay,
    payouts_of,
    policy_registry,
    programs,
)

RELEASED = at("2026-02-10T00:00:00")
H = operator_headers()


@pytest.fixture
def hub(make_hub: Any, backend: str) -> Any:
    return make_hub(backend, programs=programs(ctm_like={"hold_days": 0}),
                    registry=policy_registry(), queue={"min_backoff_ms": 20, "max_backoff_ms": 50})


@pytest.fixture
def client(hub: Any) -> Iterator[TestClient]:
    with TestClient(create_app(hub)) as c:
        yield c


def withdraw(client: TestClient, partner_id: str, currency: str = "EUR", **body: Any) -> Any:
    return client.post(f"/api/v1/partners/{partner_id}/withdrawals",
                       json={"currency": currency, **body}, headers=H)


def earn(hub: Any, code: str, amount: int, currency: str = "eur", day: int = 5) -> None:
    pay(hub, code, amount, currency=currency, when=at(f"2026-01-{day:02d}T10:00:00"))
    run_tick(hub, RELEASED)


def test_callpage_like_withdrawal_from_50_is_marked_paid_by_a_manager(client, hub):
    partner = make_partner(hub, "callpage_like")
    earn(hub, partner.code, 9000)                                 # €45.00 payable
    refused = withdraw(client, partner.id)
    assert refused.status_code == 422
    assert refused.json()["error"] == {"code": "below_minimum", "message":
                                       "payable balance €45.00 is below the minimum €50.00"}
    earn(hub, partner.code, 2000, day=6)                          # +€10.00
    first = withdraw(client, partner.id)
    assert first.status_code == 201, first.text
    assert {k: first.json()[k] for k in ("status", "amount", "currency", "method")} == {
        "status": "requested", "amount": 5500, "currency": "EUR", "method": "manual"}
    assert (balance_of(hub, partner.id)["in_payout"] == 5500
            and balance_of(hub, partner.id)["payable"] == 0)

    earn(hub, partner.code, 12000, day=7)                         # no one-pending rule here
    second = withdraw(client, partner.id)
    assert second.status_code == 201 and second.json()["amount"] == 6000

    pid = first.json()["id"]
    no_ref = client.post(f"/api/v1/payouts/{pid}/mark-paid", json={}, headers=H)
    assert no_ref.status_code == 422
    paid = client.post(f"/api/v1/payouts/{pid}/mark-paid", json={"reference": "BANK-2026-001"},
                       headers=H)
    assert (paid.status_code == 200
            and (paid.json()["status"], paid.json()["reference"]) == ("paid", "BANK-2026-001"))
    rejected = client.post(f"/api/v1/payouts/{second.json()['id']}/reject",
                           json={"reason": "duplicate account"}, headers=H)
    assert rejected.json()["status"] == "rejected"
    again = client.post(f"/api/v1/payouts/{pid}/reject", json={}, headers=H)
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_state"
    assert balance_of(hub, partner.id) == {"currency": "EUR", "pending": 0, "payable": 6000,
                                           "in_payout": 0, "paid": 5500, "voided": 0}
    listed = client.get(f"/api/v1/payouts?partner_id={partner.id}", headers=H).json()["items"]
    assert sorted(i["status"] for i in listed) == ["paid", "rejected"]
    with hub.sessions() as s:
        actions = sorted(s.scalars(select(AuditLog.action).where(AuditLog.subject.in_(
            [pid, second.json()["id"]]))))
    assert actions == ["payout.mark-paid", "payout.reject", "payout.request", "payout.request"]


def test_crazycall_withdrawal_from_50_usd_one_pending_at_a_time_then_dry_run(client, hub):
    partner = make_partner(hub, "crazycall", paypal_email="ann@pay.test")
    earn(hub, partner.code, 20000, "usd")                          # $40.00
    assert withdraw(client, partner.id, "USD").json()["error"]["code"] == "below_minimum"
    earn(hub, partner.code, 10000, "usd", day=6)                   # $60.00
    first = withdraw(client, partner.id, "USD")
    assert first.status_code == 201 and first.json()["amount"] == 6000
    earn(hub, partner.code, 30000, "usd", day=7)                   # +$60.00 while one is pending
    pending = withdraw(client, partner.id, "USD")
    assert pending.status_code == 422 and pending.json()["error"]["code"] == "already_pending"

    client.post(f"/api/v1/payouts/{first.json()['id']}/reject", json={}, headers=H)
    second = withdraw(client, partner.id, "USD")
    assert second.status_code == 201 and second.json()["amount"] == 12000
    approved = client.post(f"/api/v1/payouts/{second.json()['id']}/approve", headers=H)
    assert approved.json()["status"] == "queued"
    queue_of(hub).join()
    [_, payout] = payouts_of(hub, partner.id)
    assert payout.status == "dry_run" and payout.attempts == 1
    assert payout.request["sender_batch_header"]["sender_batch_id"] == f"hub-{payout.id}"
    assert payout.request["items"][0]["amount"] == {"value": "120.00", "currency": "USD"}
    assert balance_of(hub, partner.id, "USD")["paid"] == 0           # dry-run never pays
    assert balance_of(hub, partner.id, "USD")["in_payout"] == 12000


def test_callbell_like_partner_chooses_paypal_or_bank_transfer(client, hub):
    partner = make_partner(hub, "callbell_like")
    earn(hub, partner.code, 12000)
    assert withdraw(client, partner.id, method="cheque").json()["error"]["code"] == "invalid_method"
    assert withdraw(client, partner.id).json()["error"]["code"] == "no_paypal_email"
    chosen = withdraw(client, partner.id, method="bank_transfer")
    assert chosen.status_code == 201 and chosen.json()["method"] == "bank_transfer"
    pid = chosen.json()["id"]
    assert client.post(f"/api/v1/payouts/{pid}/approve", headers=H).json()["status"] == "approved"
    done = client.post(f"/api/v1/payouts/{pid}/mark-paid", json={"reference": "SEPA-7"}, headers=H)
    assert done.json()["status"] == "paid" and balance_of(hub, partner.id)["paid"] == 6000


def test_automatic_and_scheduled_programs_refuse_withdrawal_requests(client, hub):
    auto = make_partner(hub, "odoopbx_like", kind="referral", paypal_email="a@pay.test")
    monthly = make_partner(hub, "ctm_like")
    quarterly = make_partner(hub, "quarterly_like")
    for partner, code in ((auto, "automatic_program"), (monthly, "scheduled_program"),
                          (quarterly, "scheduled_program")):
        earn(hub, partner.code, 12000)
        refused = withdraw(client, partner.id)
        assert (refused.status_code, refused.json()["error"]["code"]) == (422, code)
    unknown = client.post("/api/v1/partners/prt_nope/withdrawals", json={"currency": "EUR"},
                          headers=H)
    assert unknown.status_code == 404
    bad = withdraw(client, auto.id, currency="euro")
    assert bad.status_code == 422


def test_ctm_like_pays_month_m_at_the_end_of_month_m_plus_1(client, hub):
    partner = make_partner(hub, "ctm_like")
    pay(hub, partner.code, 2000, when=at("2026-01-31T23:59:59"))   # January: €10.00
    pay(hub, partner.code, 4000, when=at("2026-02-01T00:00:00"))   # February: €20.00
    run_tick(hub, at("2026-02-28T23:59:59"))
    assert payouts_of(hub, partner.id) == []                        # January is paid when Feb ends
    run_tick(hub, at("2026-03-01T00:00:00"))
    run_tick(hub, at("2026-03-20T00:00:00"))                        # twice in March: still once
    [january] = payouts_of(hub, partner.id)
    assert (january.period, january.amount, january.status) == ("2026-01", 1000, "requested")
    assert balance_of(hub, partner.id)["payable"] == 2000            # February's money waits
    run_tick(hub, at("2026-04-01T00:00:00"))
    [_, february] = payouts_of(hub, partner.id)
    assert (february.period, february.amount) == ("2026-02", 2000)
    lines = client.get(f"/api/v1/partners/{partner.id}/commissions", headers=H).json()["items"]
    assert {line["state"] for line in lines} == {"in_payout"}


def test_quarterly_manual_list_and_automatic_partners_without_paypal(client, hub):
    manual = make_partner(hub, "quarterly_like")
    no_paypal = make_partner(hub, "odoopbx_like", kind="referral")   # automatic needs PayPal
    earn(hub, manual.code, 3000)
    earn(hub, no_paypal.code, 24000)
    run_tick(hub, at("2026-03-31T23:00:00"))                          # Q1's list, made once
    pay(hub, manual.code, 5000, when=at("2026-02-20T00:00:00"))
    run_tick(hub, at("2026-03-31T23:30:00"))                          # released, but still Q1
    assert [p.period for p in payouts_of(hub, manual.id)] == ["2026-01/3m"]
    run_tick(hub, at("2026-04-01T00:00:00"))                          # Q2: the new money
    listed = client.get("/api/v1/payouts?method=manual&status=requested", headers=H).json()["items"]
    got = sorted((i["partner_id"] == manual.id, i["period"], i["amount"]) for i in listed)
    assert got == [(False, "2026-01/3m", 12000), (True, "2026-01/3m", 1500),
                   (True, "2026-04/3m", 2500)]
    with hub.sessions() as s:
        assert s.scalar(select(func.count()).select_from(AuditLog)) == 0  # nobody acted yet


def test_operator_rejects_a_dead_lettered_payout_and_the_money_returns(client, hub):
    from hub.payouts.requests import create_payout, lock_partner
    from hub.payouts.sending import dead_letter

    partner = make_partner(hub, "crazycall", paypal_email="ann@pay.test")
    earn(hub, partner.code, 40000, "usd")
    with hub.sessions() as s, s.begin():  # queued, its message lost (no after-commit send)
        payee = lock_partner(s, partner.id)
        payout = create_payout(s, payee, hub.program("crazycall"), "USD", status="queued",
                               method="paypal", receiver=payee.paypal_email)
        payout.attempts, payout.failure_reason = 9, "retrying: PayPal HTTP 503"
    not_yet = client.post(f"/api/v1/payouts/{payout.id}/retry", headers=H)
    assert not_yet.status_code == 409
    dead_letter(hub, {"args": [payout.id]}, {"retries": 8, "max_retries": 8})
    dead_letter(hub, {"args": [payout.id]}, {"retries": 8, "max_retries": 8})  # twice
    shown = client.get(f"/api/v1/payouts/{payout.id}", headers=H).json()
    assert (shown["status"], shown["dead_letter"]) == ("failed", True)
    assert shown["failure_reason"] == "gave up after 9 attempts: PayPal HTTP 503"
    assert balance_of(hub, partner.id, "USD")["in_payout"] == 8000
    rejected = client.post(f"/api/v1/payouts/{payout.id}/reject",
                           json={"reason": "checked PayPal: not paid"}, headers=H)
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert balance_of(hub, partner.id, "USD")["payable"] == 8000


def test_hub_worker_without_a_queue_url_says_so(tmp_path, capsys):
    from hub.cli import main

    config = tmp_path / "hub.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "w.db"}"\n')
    assert main(["worker", "--config", str(config)]) == 0
    assert "no [queue] url configured" in capsys.readouterr().out
