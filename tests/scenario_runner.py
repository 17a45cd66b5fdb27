"""Drive a program through simulated time: real-shaped signed events, installs, and `hub tick`
day by day, through the HTTP app, the way the hub meets them in production."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from connectors import stripe_trigger as st
from hub.jobs.tick import run_tick
from tests.conftest import installer_headers
from tests.stripe_helpers import post_event


def ts(at: datetime) -> int:
    return int(at.timestamp())


@dataclass
class Scenario:
    """Events in business time; `run` posts them in time order and ticks once a day."""

    name: str
    items: list[tuple[datetime, int, str, dict[str, Any]]] = field(default_factory=list)

    def stripe(self, at: datetime, type_: str, obj: dict[str, Any]) -> dict[str, Any]:
        evt = st.event(type_, obj, created=ts(at), event_id=f"evt_{self.name}_{len(self.items)}")
        self.items.append((at, len(self.items), "stripe", evt))
        return evt

    def install(self, at: datetime, **body: Any) -> None:
        self.items.append((at, len(self.items), "install", {**body, "occurred_at": at.isoformat()}))

    def customer(self, at: datetime, ref: str, email: str, code: str | None = None,
                 install_id: str | None = None) -> None:
        self.stripe(at, "customer.created", st.customer(ref, email=email, partner_code=code,
                                                        install_id=install_id, created=ts(at)))

    def paid(self, at: datetime, invoice: str, customer: str, amount: int, currency: str = "usd",
             sub: str | None = None, plan: str | None = None, tax: int = 0,
             email: str | None = None) -> None:
        inv = st.invoice(
            invoice, customer_id=customer, amount=amount, currency=currency,
            subscription_id=sub or f"sub_{customer}", paid_at=ts(at), charge_id=f"ch_{invoice}",
            intent_id=f"pi_{invoice}", plan=plan, tax=tax, email=email)
        self.stripe(at, "invoice.paid", inv)
        # From basil on, Stripe links the invoice and its payment intent in a second event.
        self.stripe(at, "invoice_payment.paid", st.invoice_payment(
            invoice, amount=amount, intent_id=f"pi_{invoice}", currency=currency,
            paid_at=ts(at)))

    def subscription(self, at: datetime, type_: str, sub: str, customer: str, status: str,
                     plan: str | None = None) -> None:
        self.stripe(at, f"customer.subscription.{type_}",
                    st.subscription(sub, customer_id=customer, status=status, plan=plan))

    def refund(self, at: datetime, invoice: str, amount: int, refunded: int,
               currency: str = "usd") -> None:
        self.stripe(at, "charge.refunded", st.charge_refunded(
            f"ch_{invoice}", amount=amount, amount_refunded=refunded,
            intent_id=f"pi_{invoice}", currency=currency))

    def dispute(self, at: datetime, invoice: str, amount: int, currency: str = "usd") -> None:
        self.stripe(at, "charge.dispute.created", st.dispute(
            f"dp_{invoice}", charge_id=f"ch_{invoice}", amount=amount, intent_id=f"pi_{invoice}",
            currency=currency))

    def ordered(self) -> list[tuple[datetime, int, str, dict[str, Any]]]:
        return sorted(self.items, key=lambda item: (item[0], item[1]))

    def stripe_events(self) -> list[dict[str, Any]]:
        return [payload for _, _, kind, payload in self.ordered() if kind == "stripe"]

    def installs(self) -> list[dict[str, Any]]:
        return [payload for _, _, kind, payload in self.ordered() if kind == "install"]

    def run(self, client: Any, hub: Any, start: datetime, end: datetime) -> int:
        """Post every item before each midnight, then tick at that midnight; returns tick count."""
        pending = self.ordered()
        ticks, moment = 0, start
        while moment < end:
            moment = min(moment + timedelta(days=1), end)
            while pending and pending[0][0] < moment:
                post_item(client, pending.pop(0))
            run_tick(hub, moment)
            ticks += 1
        assert not pending, "events after the end of the scenario"
        return ticks


def post_item(client: Any, item: tuple[datetime, int, str, dict[str, Any]]) -> None:
    _, _, kind, payload = item
    if kind == "stripe":
        post_event(client, payload)
    else:
        response = client.post("/api/v1/installs", json=payload, headers=installer_headers())
        assert response.status_code in (200, 201), response.text


def write_jsonl(path: Any, events: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for evt in events:
            fh.write(json.dumps(evt, separators=(",", ":")) + "\n")
