"""Outgoing webhooks: a real receiver on 127.0.0.1 checks every signature itself."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from starlette.testclient import TestClient

from connectors import stripe_trigger as st
from connectors.stripe import process as stripe_process
from hub.app import create_app
from hub.jobs.queue import queue_of
from hub.jobs.tick import run_tick
from tests.conftest import operator_headers
from tests.payout_helpers import at, pay, wait_for

H = operator_headers()
SECRET = "whsec_receiver_" + "k" * 20


class Receiver:
    """A partner's server: verifies `Hub-Signature` with its own HMAC code, answers `statuses`."""

    def __init__(self, secret: str, statuses: list[int] | None = None):
        self.secret = secret.encode()
        self.statuses = list(statuses or [])
        self.events: list[dict[str, Any]] = []
        self.bad_signatures = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                ok = outer.check(self.headers.get("Hub-Signature", ""), body)
                status = outer.statuses.pop(0) if outer.statuses else 200
                if ok and status == 200:
                    outer.events.append(json.loads(body))
                self.send_response(status if ok else 400)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def check(self, header: str, body: bytes) -> bool:
        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        expected = hmac.new(self.secret, parts.get("t", "").encode() + b"." + body,
                            hashlib.sha256).hexdigest()
        fresh = parts.get("t", "").isdigit() and abs(time.time() - int(parts["t"])) < 300
        good = fresh and hmac.compare_digest(expected, parts.get("v1", ""))
        self.bad_signatures += 0 if good else 1
        return good

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub(make_hub: Any, backend: str) -> Any:
    return make_hub(backend, queue={"min_backoff_ms": 20, "max_backoff_ms": 50, "max_retries": 2})


@pytest.fixture
def client(hub: Any) -> Iterator[TestClient]:
    with TestClient(create_app(hub)) as c:
        yield c


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(SECRET)
    yield r
    r.close()


def register(client: TestClient, url: str, **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/webhooks/endpoints",
                           json={"url": url, "secret": SECRET, **body}, headers=H)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_signed_events_for_partner_commission_void_and_payout(client, hub, receiver):
    endpoint = register(client, receiver.url)
    assert endpoint["secret"] == SECRET
    partner = client.post("/api/v1/partners", json={"program": "crazycall", "email": "a@p.test",
                                                    "paypal_email": "a@pay.test"}, headers=H).json()
    invoice = pay(hub, partner["code"], 40000, currency="usd")       # 20% = $80.00
    stripe_process(hub, st.event("charge.refunded", st.charge_refunded(
        f"ch_{invoice}", amount=40000, amount_refunded=10000, invoice_id=invoice)))
    run_tick(hub, at("2026-02-10T00:00:00"))
    payout = client.post(f"/api/v1/partners/{partner['id']}/withdrawals", json={"currency": "USD"},
                         headers=H).json()
    client.post(f"/api/v1/payouts/{payout['id']}/mark-paid", json={"reference": "r-1"}, headers=H)
    queue_of(hub).join()
    wait_for(lambda: len(receiver.events) == 5, what="five deliveries")
    assert sorted(receiver.types()) == ["commission.created", "commission.voided",
                                        "partner.created", "payout.paid",
                                        "payout.requested"]  # in any order
    assert receiver.bad_signatures == 0
    by_type = {e["type"]: e for e in receiver.events}
    assert by_type["partner.created"]["data"]["id"] == partner["id"]
    assert by_type["commission.created"]["data"]["amount"] == 8000
    assert by_type["commission.voided"]["data"]["amount"] == -2000
    assert (by_type["payout.paid"]["data"]["amount"],
            by_type["payout.paid"]["data"]["reference"]) == (6000, "r-1")
    log = client.get("/api/v1/webhooks/deliveries", headers=H).json()["items"]
    assert {d["status"] for d in log} == {"delivered"} and len(log) == 5

    # a replayed provider event emits nothing new: the event id comes from its cause
    stripe_process(hub, st.event("charge.refunded", st.charge_refunded(
        f"ch_{invoice}", amount=40000, amount_refunded=10000, invoice_id=invoice)))
    queue_of(hub).join()
    assert len(client.get("/api/v1/webhooks/deliveries", headers=H).json()["items"]) == 5


def test_failed_deliveries_are_retried_logged_and_replayable(client, hub, receiver):
    receiver.statuses = [500, 503]                                    # then 200
    register(client, receiver.url, events=["partner.created"])
    client.post("/api/v1/partners", json={"program": "crazycall", "email": "b@p.test"}, headers=H)
    queue_of(hub).join()
    wait_for(lambda: receiver.events, what="delivery after retries")
    [delivery] = client.get("/api/v1/webhooks/deliveries", headers=H).json()["items"]
    assert ((delivery["status"], delivery["attempts"], delivery["response_status"])
            == ("delivered", 3, 200))

    receiver.statuses = [500] * 3                                     # more than max_retries
    client.post("/api/v1/partners", json={"program": "crazycall", "email": "c@p.test"}, headers=H)
    queue_of(hub).join()
    failed = wait_for(lambda: [d for d in client.get("/api/v1/webhooks/deliveries?status=failed",
                                                      headers=H).json()["items"]],
                      what="dead letter")
    assert failed[0]["attempts"] == 3 and failed[0]["last_error"] == "HTTP 500"

    replayed = client.post(f"/api/v1/webhooks/deliveries/{failed[0]['id']}/replay", headers=H)
    assert replayed.status_code == 202
    queue_of(hub).join()
    wait_for(lambda: len(receiver.events) == 2, what="replayed delivery")
    assert receiver.events[1]["id"] == failed[0]["event_id"]
    assert receiver.bad_signatures == 0


def test_endpoint_validation_and_filters(client, hub, receiver):
    bad = client.post("/api/v1/webhooks/endpoints", json={"url": "ftp://x"}, headers=H)
    assert bad.status_code == 422
    unknown = client.post("/api/v1/webhooks/endpoints",
                          json={"url": receiver.url, "events": ["payout.exploded"]}, headers=H)
    assert unknown.json()["error"]["code"] == "invalid_event"
    assert client.get("/api/v1/webhooks/endpoints").status_code == 401
    endpoint = register(client, receiver.url, events=["payout.paid"])
    listed = client.get("/api/v1/webhooks/endpoints", headers=H).json()["items"]
    assert "secret" not in listed[0] and listed[0]["events"] == ["payout.paid"]
    client.post("/api/v1/partners", json={"program": "crazycall", "email": "d@p.test"}, headers=H)
    client.post(f"/api/v1/webhooks/endpoints/{endpoint['id']}/disable", headers=H)
    assert client.get("/api/v1/webhooks/deliveries", headers=H).json()["items"] == []


def test_a_withdrawal_request_reaches_the_operators_endpoint_once(client, hub, receiver):
    """CallPage's "a manager will contact you": the request is a `payout.requested` event (beside
    the operator's mail), keyed by the payout, so a retried delivery is the same event."""
    register(client, receiver.url, events=["payout.requested"])
    partner = client.post("/api/v1/partners", json={"program": "crazycall", "email": "w@p.test",
                                                    "paypal_email": "w@pay.test"}, headers=H).json()
    pay(hub, partner["code"], 40000, currency="usd")                  # 20% = $80.00
    run_tick(hub, at("2026-02-10T00:00:00"))
    payout = client.post(f"/api/v1/partners/{partner['id']}/withdrawals", json={"currency": "USD"},
                         headers=H)
    assert payout.status_code == 201, payout.text
    queue_of(hub).join()
    [event] = wait_for(lambda: receiver.events, what="payout.requested")
    assert event["type"] == "payout.requested" and receiver.bad_signatures == 0
    assert {k: event["data"][k] for k in ("id", "partner_id", "amount", "currency", "status")} == {
        "id": payout.json()["id"], "partner_id": partner["id"], "amount": 8000,
        "currency": "USD", "status": "requested"}
    [delivery] = client.get("/api/v1/webhooks/deliveries?event_type=payout.requested",
                            headers=H).json()["items"]
    assert delivery["event_id"] == event["id"] and delivery["status"] == "delivered"
    refused = client.post(f"/api/v1/partners/{partner['id']}/withdrawals",
                          json={"currency": "USD"}, headers=H)    # one pending: nothing emitted
    assert refused.json()["error"]["code"] == "already_pending"
    queue_of(hub).join()
    assert len(client.get("/api/v1/webhooks/deliveries", headers=H).json()["items"]) == 1
