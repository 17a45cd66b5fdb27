"""Installs: reported once per install id; the code they carry attributes later payments."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from connectors import stripe_trigger as st
from hub.app import create_app
from hub.db.models import Customer, ProviderEvent
from tests.conftest import ADMIN_TOKEN, INSTALLER_TOKEN, installer_headers
from tests.stripe_helpers import balance, create_partner, post_event

HEADERS = installer_headers()


def test_install_is_idempotent_and_attributes_a_later_payment_by_install_id(client):
    partner = create_partner(client)
    body = {"install_id": "inst-1", "partner_code": partner["code"], "product": "odoopbx"}
    assert client.post("/api/v1/installs", json=body, headers=HEADERS).status_code == 201
    assert client.post("/api/v1/installs", json=body, headers=HEADERS).status_code == 200
    cust = st.customer("cus_i", email="i@x.test", install_id="inst-1")
    post_event(client, st.event("customer.created", cust))
    post_event(client, st.event("invoice.paid", st.invoice("in_i", customer_id="cus_i",
                                                           amount=10000, subscription_id="s")))
    assert balance(client, partner["id"])["pending"] == 2000


def test_install_with_customer_ref_attributes_immediately(client):
    partner = create_partner(client)
    post_event(client, st.event("invoice.paid", st.invoice("in_j", customer_id="cus_j",
                                                           amount=5000, subscription_id="s")))
    assert balance(client, partner["id"])["pending"] == 0
    r = client.post("/api/v1/installs", json={"install_id": "inst-2", "product": "widget",
                                              "partner_code": partner["code"],
                                              "customer_ref": "cus_j", "site": "a.example"},
                    headers=HEADERS)
    assert r.status_code == 201
    assert balance(client, partner["id"])["pending"] == 1000


def test_install_validation_errors_are_422(client):
    r = client.post("/api/v1/installs", json={"product": "x"}, headers=HEADERS)
    assert r.status_code == 422
    assert client.post("/api/v1/installs",
                       json={"install_id": 5, "product": "x"}, headers=HEADERS).status_code == 422
    assert client.post("/api/v1/installs", content=b"[1", headers=HEADERS).status_code == 400


def _count(hub, model):
    with hub.sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_without_an_installer_token_installs_are_refused_naming_the_setting(make_hub, backend):
    """Issue 16 finding 1: with no token configured an unauthenticated install minted a bounty."""
    hub = make_hub(backend, programs={"callbell": {"plugin": "callbell"}},
                   server={"installer_token": ""})
    with TestClient(create_app(hub)) as c:
        partner = create_partner(c, program="callbell")
        for n in range(3):
            r = c.post("/api/v1/installs", json={
                "install_id": f"fake-{n}", "product": "widget", "site": f"s{n}.example",
                "partner_code": partner["code"], "customer_ref": f"cus_{n}"})
            assert r.status_code == 403, r.text
            assert r.json()["error"]["code"] == "installer_token_not_configured"
            assert "[server] installer_token" in r.json()["error"]["message"]
        assert balance(c, partner["id"], "EUR")["pending"] == 0
    assert _count(hub, ProviderEvent) == 0 and _count(hub, Customer) == 0


@pytest.mark.parametrize("auth", [None, "Bearer wrong-token", f"Basic {INSTALLER_TOKEN}",
                                  f"Bearer {ADMIN_TOKEN}", f"Bearer {INSTALLER_TOKEN}x",
                                  "Bearer signups-only-token-0123456789"])
def test_installs_need_the_installer_token_itself(make_hub, backend, auth):
    hub = make_hub(backend, programs={"callbell": {"plugin": "callbell"}},
                   server={"signups_token": "signups-only-token-0123456789"})
    with TestClient(create_app(hub)) as c:
        partner = create_partner(c, program="callbell")
        body = {"install_id": "i-1", "product": "widget", "site": "a.example",
                "partner_code": partner["code"], "customer_ref": "cus_1"}
        r = c.post("/api/v1/installs", json=body,
                   headers={"Authorization": auth} if auth else {})
        assert r.status_code == 401, r.text
        assert balance(c, partner["id"], "EUR")["pending"] == 0
        assert c.post("/api/v1/installs", json=body, headers=HEADERS).status_code == 201
        assert balance(c, partner["id"], "EUR")["pending"] == 1000
