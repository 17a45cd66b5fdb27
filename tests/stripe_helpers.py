"""Posting signed Stripe events through the app, the way Stripe does."""

from __future__ import annotations

from typing import Any

from connectors import stripe_trigger as st
from tests.conftest import WEBHOOK_SECRET, operator_headers


def post_event(client: Any, evt: dict[str, Any], *, secret: str = WEBHOOK_SECRET,
               timestamp: int | None = None) -> Any:
    body, headers = st.signed_request(evt, secret, timestamp)
    response = client.post("/webhooks/stripe", content=body, headers=headers)
    if secret == WEBHOOK_SECRET and timestamp is None:
        assert response.status_code == 200, response.text
    return response


def create_partner(client: Any, program: str = "crazycall", **fields: Any) -> dict[str, Any]:
    body = {"program": program, "email": fields.pop("email", "ann@partners.test"),
            "name": fields.pop("name", "Ann"), **fields}
    response = client.post("/api/v1/partners", json=body, headers=operator_headers())
    assert response.status_code == 201, response.text
    return dict(response.json())


def balance(client: Any, partner_id: str, currency: str = "USD") -> dict[str, int]:
    response = client.get(f"/api/v1/partners/{partner_id}", headers=operator_headers())
    assert response.status_code == 200, response.text
    for entry in response.json()["balances"]:
        if entry["currency"] == currency:
            return dict(entry)
    return {"currency": currency, "pending": 0, "payable": 0, "in_payout": 0, "paid": 0,
            "voided": 0}


def commissions(client: Any, partner_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/partners/{partner_id}/commissions", headers=operator_headers())
    assert response.status_code == 200, response.text
    return list(response.json()["items"])
