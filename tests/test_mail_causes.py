"""Which mail each cause sends, read from the `.eml` files the hub writes without an SMTP URL
(`tests/test_mail.py` covers the SMTP side): payouts and withdrawal decisions, the operator's
mails, applications, invitations, payee changes. Each cause mails once, whatever repeats."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from hub.app import create_app
from hub.attribution.partners import transition
from hub.jobs.queue import queue_of
from hub.jobs.tick import run_tick
from hub.payouts.requests import create_payout, lock_partner
from hub.payouts.sending import dead_letter
from tests.conftest import operator_headers
from tests.payout_helpers import at, make_partner, pay, policy_registry, programs
from tests.web_helpers import admin_login, give_password, portal_login, post_form

H = operator_headers()
OPERATOR = "ops@hub.test"


def inbox(hub: Any) -> list[EmailMessage]:
    queue_of(hub).join()
    return [message_from_bytes(p.read_bytes(), policy=policy.default)  # type: ignore[misc]
            for p in sorted(Path(hub.config.email.dir).glob("*.eml"))]


def received(hub: Any, to: str) -> list[str]:
    """The subjects `to` received, sorted."""
    return sorted(str(m["Subject"]) for m in inbox(hub) if str(m["To"]) == to)


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


@pytest.fixture
def hub(make_hub: Any, backend: str) -> Any:
    return make_hub(backend, programs=programs(), registry=policy_registry(),
                    email={"operator": OPERATOR},
                    queue={"min_backoff_ms": 20, "max_backoff_ms": 50})


def earn(hub: Any, code: str, amount: int, currency: str = "eur") -> None:
    pay(hub, code, amount, currency=currency, when=at("2026-01-05T10:00:00"))
    run_tick(hub, at("2026-02-10T00:00:00"))  # the holds are released


def test_withdrawal_request_decisions_and_payment_are_mailed_once_each(hub: Any) -> None:
    partner = make_partner(hub, "callpage_like", email="ann@partners.test", name="Ann")
    earn(hub, partner.code, 30000)
    with TestClient(create_app(hub)) as client:
        first = client.post(f"/api/v1/partners/{partner.id}/withdrawals",
                            json={"currency": "EUR"}, headers=H).json()
        approved = client.post(f"/api/v1/payouts/{first['id']}/approve", json={}, headers=H)
        assert approved.json()["status"] == "approved"
        paid = client.post(f"/api/v1/payouts/{first['id']}/mark-paid",
                           json={"reference": "BANK-1"}, headers=H)
        assert paid.json()["status"] == "paid"
        again = client.post(f"/api/v1/payouts/{first['id']}/mark-paid",
                            json={"reference": "BANK-1"}, headers=H)
        assert again.status_code == 409
        earn(hub, partner.code, 20000)
        second = client.post(f"/api/v1/partners/{partner.id}/withdrawals",
                             json={"currency": "EUR"}, headers=H).json()
        client.post(f"/api/v1/payouts/{second['id']}/reject", json={"reason": "duplicate"},
                    headers=H)
    assert received(hub, "ann@partners.test") == [
        "Welcome to the callpage_like partner program",
        "Your payout of €150.00 is paid",
        "Your withdrawal of €100.00 was not approved",
        "Your withdrawal of €150.00 is approved"]
    assert received(hub, OPERATOR) == ["Withdrawal request: €100.00 for ann@partners.test",
                                       "Withdrawal request: €150.00 for ann@partners.test"]
    rejected = next(m for m in inbox(hub) if "not approved" in str(m["Subject"]))
    assert "not approved: duplicate." in text_of(rejected)
    paid_mail = next(m for m in inbox(hub) if "is paid" in str(m["Subject"]))
    assert "(reference BANK-1)" in text_of(paid_mail)


def test_a_dead_lettered_payout_mails_the_operator_once_then_the_partner_on_rejection(
        hub: Any) -> None:
    partner = make_partner(hub, "crazycall", email="bo@partners.test", paypal_email="bo@pay.test")
    earn(hub, partner.code, 40000, "usd")
    with hub.sessions() as s, s.begin():  # queued, its message lost (no after-commit send)
        payee = lock_partner(s, partner.id)
        payout = create_payout(s, payee, hub.program("crazycall"), "USD", status="queued",
                               method="paypal", receiver=payee.paypal_email)
        assert payout is not None
        payout.attempts, payout.failure_reason = 9, "retrying: PayPal HTTP 503"
    dead_letter(hub, {"args": [payout.id]}, {"retries": 8, "max_retries": 8})
    dead_letter(hub, {"args": [payout.id]}, {"retries": 8, "max_retries": 8})  # twice
    assert received(hub, OPERATOR) == ["A payout needs you: $80.00 for bo@partners.test"]
    alert = next(m for m in inbox(hub) if str(m["To"]) == OPERATOR)
    assert "gave up after 9 attempts: PayPal HTTP 503" in text_of(alert)
    with TestClient(create_app(hub)) as client:
        client.post(f"/api/v1/payouts/{payout.id}/reject", json={"reason": "not at PayPal"},
                    headers=H)
    assert "Your payout of $80.00 failed" in received(hub, "bo@partners.test")


def test_an_application_reaches_the_operator_and_its_decision_the_applicant(
        make_hub: Any, backend: str) -> None:
    hub = make_hub(backend, programs={"ctm": {"plugin": "calltrackingmetrics"}},
                   email={"operator": OPERATOR})
    applied = make_partner(hub, "ctm", email="cy@partners.test", website="https://cy.test")
    declined = make_partner(hub, "ctm", email="di@partners.test")
    with hub.transaction() as session:
        transition(session, applied.id, "approve", "operator")
        transition(session, declined.id, "decline", "operator")
    assert received(hub, OPERATOR) == ["New partner application: cy@partners.test",
                                       "New partner application: di@partners.test"]
    assert received(hub, "cy@partners.test") == ["Your ctm partner application is approved"]
    assert received(hub, "di@partners.test") == ["Your ctm partner application"]


def test_an_invitation_mails_a_link_that_opens_the_account(make_hub: Any, backend: str) -> None:
    hub = make_hub(backend, programs={"ctm": {"plugin": "calltrackingmetrics"}})
    with TestClient(create_app(hub)) as client:
        admin_login(client)
        post_form(client, "/admin/invitations", "/admin/invitations", program="ctm",
                  email="ed@partners.test", name="Ed")
        mail = next(m for m in inbox(hub) if str(m["To"]) == "ed@partners.test")
        assert str(mail["Subject"]) == "You are invited to the ctm partner program"
        link = re.search(r"http://hub\.test(/portal/reset/\S+)", text_of(mail))
        assert link
        client.cookies.clear()
        post_form(client, link.group(1), link.group(1), password="invited and in",
                  password_again="invited and in")
        assert portal_login(client, "ed@partners.test", "invited and in").status_code == 200
        assert "/portal/agreement" in str(client.get("/portal/").url)  # logged in: CTM's page
    assert received(hub, "ed@partners.test") == ["You are invited to the ctm partner program"]


def test_a_changed_paypal_address_is_told_to_the_old_one(hub: Any) -> None:
    partner = make_partner(hub, "crazycall", email="fi@partners.test",
                           paypal_email="fi-old@pay.test")
    give_password(hub, partner.id)
    with TestClient(create_app(hub)) as client:
        portal_login(client, "fi@partners.test")
        post_form(client, "/portal/settings", "/portal/settings", action="paypal",
                  paypal_email="thief@pay.test", current_password="correct horse battery")
        post_form(client, "/portal/settings", "/portal/settings", action="paypal",
                  paypal_email="thief@pay.test", current_password="correct horse battery")
    assert received(hub, "fi-old@pay.test") == ["Your payout details were changed"]
    assert "Your payout details were changed" in received(hub, "fi@partners.test")
    # the new address only hears of its confirmation link (once: the second save is throttled)
    assert received(hub, "thief@pay.test") == ["Confirm your PayPal address for payouts"]
    told = next(m for m in inbox(hub) if str(m["To"]) == "fi-old@pay.test")
    assert "payouts now go to thief@pay.test" in " ".join(text_of(told).split())
