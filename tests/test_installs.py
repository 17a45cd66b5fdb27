"""Installs: reported once per install id; the code they carry attributes later payments."""

from __future__ import annotations

from connectors import stripe_trigger as st
from tests.stripe_helpers import balance, create_partner, post_event


def test_install_is_idempotent_and_attributes_a_later_payment_by_install_id(client):
    partner = create_partner(client)
    body = {"install_id": "inst-1", "partner_code": partner["code"], "product": "odoopbx"}
    assert client.post("/api/v1/installs", json=body).status_code == 201
    assert client.post("/api/v1/installs", json=body).status_code == 200
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
                                              "customer_ref": "cus_j", "site": "a.example"})
    assert r.status_code == 201
    assert balance(client, partner["id"])["pending"] == 1000


def test_install_validation_errors_are_422(client):
    assert client.post("/api/v1/installs", json={"product": "x"}).status_code == 422
    assert client.post("/api/v1/installs",
                       json={"install_id": 5, "product": "x"}).status_code == 422
    assert client.post("/api/v1/installs", content=b"[1").status_code == 400
