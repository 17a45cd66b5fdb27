"""Finding 3 of issue 16: changing where a partner's money goes needs the current password, is
audited, and does not redirect a payout already made.

The attack: with a stolen portal session, change the bank details of a partner whose bank
transfer is approved; the operator's pay-by-hand list then showed the attacker's IBAN."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from hub.app import create_app
from hub.db.models import AuditLog, Partner, Payout
from hub.jobs.tick import run_tick
from tests.conftest import operator_headers
from tests.payout_helpers import at, make_partner, pay, policy_registry, programs
from tests.web_helpers import PASSWORD, admin_login, give_password, portal_login, post_form

H = operator_headers()
OWN_IBAN = "Ann Example, IBAN DE02 1203 0000 0000 2020 51"
THIEF_IBAN = "Mallory, IBAN GB33 BUKB 2020 1555 5555 55"


@pytest.fixture
def hub(make_hub: Any, backend: str) -> Any:
    return make_hub(backend, programs=programs(), registry=policy_registry())


@pytest.fixture
def client(hub: Any) -> Iterator[TestClient]:
    with TestClient(create_app(hub)) as c:
        yield c


def _partner(hub: Any) -> Any:
    partner = make_partner(hub, "callbell_like", email="ann@partners.test",
                           name="Ann")
    with hub.transaction() as s:
        s.get(Partner, partner.id).billing_details = OWN_IBAN
    give_password(hub, partner.id)
    return partner


def _settings(client: TestClient, **fields: str) -> Any:
    return post_form(client, "/portal/settings", "/portal/settings",
                     **{"action": "profile", "name": "Ann", "website": "", **fields})


def _billing(hub: Any, partner_id: str) -> str | None:
    with hub.sessions() as s:
        return s.get(Partner, partner_id).billing_details


def test_billing_details_change_needs_the_current_password(client, hub):
    partner = _partner(hub)
    portal_login(client, "ann@partners.test")
    refused = _settings(client, billing_details=THIEF_IBAN)
    assert "current password is wrong" in refused.text and _billing(hub, partner.id) == OWN_IBAN
    refused = _settings(client, billing_details=THIEF_IBAN, current_password="not the password")
    assert "current password is wrong" in refused.text and _billing(hub, partner.id) == OWN_IBAN
    # the rest of the profile still saves without it, as long as the billing details stay
    _settings(client, billing_details=OWN_IBAN, name="Ann B.")
    with hub.sessions() as s:
        assert s.get(Partner, partner.id).name == "Ann B."
    _settings(client, billing_details=THIEF_IBAN, current_password=PASSWORD)
    assert _billing(hub, partner.id) == THIEF_IBAN


def test_payee_changes_are_audited_without_the_bank_details(client, hub):
    partner = _partner(hub)
    portal_login(client, "ann@partners.test")
    _settings(client, billing_details="New Bank, IBAN FR76 3000 6000 0112 3456 7890 189",
              current_password=PASSWORD)
    post_form(client, "/portal/settings", "/portal/settings", action="paypal",
              paypal_email="ann@paypal.test", current_password=PASSWORD)
    with hub.sessions() as s:
        rows = s.scalars(select(AuditLog).where(AuditLog.action == "partner.payee_changed",
                                                AuditLog.subject == partner.id)
                         .order_by(AuditLog.id)).all()
    assert [(r.actor, r.details["field"]) for r in rows] == [
        (f"partner:{partner.id}", "billing_details"), (f"partner:{partner.id}", "paypal_email")]
    assert "IBAN" not in str(rows[0].details) and rows[0].details["old"] != rows[0].details["new"]
    assert (rows[1].details["old"], rows[1].details["new"]) == (None, "ann@paypal.test")


def test_a_payout_keeps_the_payee_details_it_was_created_with(client, hub):
    partner = _partner(hub)
    pay(hub, partner.code, 12000, when=at("2026-01-05T10:00:00"))
    run_tick(hub, at("2026-02-10T00:00:00"))
    made = client.post(f"/api/v1/partners/{partner.id}/withdrawals", headers=H,
                       json={"currency": "EUR", "method": "bank_transfer"})
    assert made.status_code == 201, made.text
    payout_id = made.json()["id"]
    assert client.post(f"/api/v1/payouts/{payout_id}/approve", headers=H).status_code == 200
    with hub.sessions() as s:
        assert s.get(Payout, payout_id).payee_details == OWN_IBAN

    portal_login(client, "ann@partners.test")
    _settings(client, billing_details=THIEF_IBAN, current_password=PASSWORD)
    assert _billing(hub, partner.id) == THIEF_IBAN

    with TestClient(create_app(hub)) as operator:
        admin_login(operator)
        page = operator.get("/admin/payouts").text
    manual = page[page.index('data-testid="manual"'):]
    manual = manual[:manual.index("</table>")]
    assert "DE02 1203" in manual and "GB33" not in manual
