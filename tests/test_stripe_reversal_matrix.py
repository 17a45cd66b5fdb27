"""Issue 15's "done when": a basil (and newer) invoice paid, refunded in part, then disputed,
reverses pro rata and then in whole, to the cent, in every order of its events and their
duplicates, on SQLite and PostgreSQL, with and without an API key (Stripe's API mocked by respx).

From 2025-03-31.basil Stripe's webhooks name no payment on an invoice and no invoice on a
charge: the hub learns which payment intent paid an invoice from `invoice_payment.paid`, or,
with an API key, from Stripe's Invoice Payments list. Four events make one paid-then-refunded-
then-disputed invoice: P `invoice.paid`, L `invoice_payment.paid`, R `charge.refunded` (25%),
D `charge.dispute.created`. Each of the 24 orders gets its own partner and customer in one hub,
every event is posted twice (once right away, once more at the end), and after every post each
partner's balance must be exactly what the events seen so far require.
"""

from __future__ import annotations

import itertools
import json
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from starlette.testclient import TestClient

from connectors import stripe_trigger as st
from connectors.stripe_versions import BASIL, VERSIONS
from hub.app import create_app
from tests.conftest import operator_headers
from tests.stripe_helpers import balance, commissions, create_partner, post_event

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
AMOUNT, REFUNDED, EARNED = 10_000, 2_500, 2_000  # crazycall: 20% of the first payment
BASIL_ON = [v for v in VERSIONS if v[:10] >= BASIL]
ORDERS = list(itertools.permutations("PLRD"))


def events(tag: str, code: str, version: str) -> dict[str, dict[str, Any]]:
    inv, ch, pi = f"in_{tag}", f"ch_{tag}", f"pi_{tag}"
    invoice = st.invoice(inv, customer_id=f"cus_{tag}", amount=AMOUNT, subscription_id=f"sub_{tag}",
                         paid_at=T0, partner_code=code, api_version=version)
    paid, link = st.paid_events(invoice, intent_id=pi, api_version=version, created=T0)
    return {
        "P": paid, "L": link,
        "R": st.event("charge.refunded", st.charge_refunded(
            ch, amount=AMOUNT, amount_refunded=REFUNDED, intent_id=pi, api_version=version),
            created=T0 + 60, api_version=version),
        "D": st.event("charge.dispute.created", st.dispute(
            f"dp_{tag}", charge_id=ch, amount=AMOUNT, intent_id=pi),
            created=T0 + 120, api_version=version),
    }


def expected_reversed(seen: set[str], api_key: bool) -> int:
    """What the events seen so far require reversed of the 2,000 commission."""
    if "P" not in seen:
        return 0  # nothing earned yet
    if not (api_key or "L" in seen):
        return 0  # the refund and dispute name only the charge and intent: no link yet
    if "D" in seen:
        return EARNED
    return EARNED * REFUNDED // AMOUNT if "R" in seen else 0


class FakeStripe:
    """Stripe's Invoice Payments list (by invoice or by payment intent) and customers."""

    def __init__(self) -> None:
        self.payments: dict[str, dict[str, Any]] = {}  # invoice id -> InvoicePayment
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        query = parse_qs(request.url.query.decode())
        assert request.headers["authorization"] == "Bearer sk_test_matrix"
        if "invoice" in query:
            found = [p for inv, p in self.payments.items() if inv == query["invoice"][0]]
        else:
            intent = query["payment[payment_intent]"][0]
            found = [p for p in self.payments.values()
                     if p["payment"].get("payment_intent") == intent]
        return httpx.Response(200, json={"object": "list", "data": found, "has_more": False,
                                         "url": "/v1/invoice_payments"})


@pytest.mark.parametrize("api_key", [False, True], ids=["no_api_key", "api_key"])
@pytest.mark.parametrize("version", [BASIL_ON[0], BASIL_ON[-1]])
def test_every_order_and_duplicate_reverses_to_the_cent(make_hub, backend, api_key, version):
    tables: dict[str, Any] = {"connectors": {"stripe": {"api_key": "sk_test_matrix"}}} \
        if api_key else {}
    hub = make_hub(backend, **tables)
    fake = FakeStripe()
    with respx.mock(assert_all_called=False) as net, TestClient(create_app(hub)) as c:
        net.get("https://api.stripe.com/v1/invoice_payments").mock(side_effect=fake)
        runs = []
        for n, order in enumerate(ORDERS):
            partner = create_partner(c, email=f"p{n}@partners.test", name=f"P{n}")
            evts = events(f"m{n}", partner["code"], version)
            fake.payments[f"in_m{n}"] = evts["L"]["data"]["object"]
            runs.append((partner, order, evts))
        for step in range(len("PLRD")):
            for partner, order, evts in runs:
                post_event(c, evts[order[step]])
                if step == 0:
                    post_event(c, evts[order[step]])  # a duplicate right away
                seen = set(order[:step + 1])
                b = balance(c, partner["id"])
                want = expected_reversed(seen, api_key)
                earned = EARNED if "P" in seen else 0
                assert (b["pending"], b["voided"]) == (earned - want, want), (order, seen)
        for partner, order, evts in runs:  # every event once more, in reverse
            for key in reversed(order):
                post_event(c, evts[key])
            b = balance(c, partner["id"])
            assert (b["pending"], b["voided"]) == (0, EARNED), order
            lines = commissions(c, partner["id"])
            assert sum(line["amount"] for line in lines) == 0
            assert len([line for line in lines if line["amount"] > 0]) == 1  # earned once
    if api_key:
        assert fake.calls > 0  # the links no event had brought yet were asked of Stripe
    else:
        assert fake.calls == 0


@pytest.mark.parametrize("won_first", [False, True])
def test_a_won_dispute_books_the_reversal_back_to_the_refund(client, hub, won_first):
    """`charge.dispute.closed` won: the dispute's reversal is undone, the partial refund stays."""
    partner = create_partner(client)
    evts = events("w", partner["code"], VERSIONS[-1])
    won = st.event("charge.dispute.closed", st.dispute(
        "dp_w", charge_id="ch_w", amount=AMOUNT, intent_id="pi_w", status="won"),
        created=T0 + 900)
    order = ["P", "L", "R", "D"]
    for key in order:
        post_event(client, evts[key])
    assert balance(client, partner["id"])["voided"] == EARNED
    post_event(client, won)
    post_event(client, won)
    b = balance(client, partner["id"])
    assert (b["pending"], b["voided"]) == (EARNED - 500, 500)
    for key in order:  # redelivered: the dispute stays won
        post_event(client, evts[key])
    b = balance(client, partner["id"])
    assert (b["pending"], b["voided"]) == (EARNED - 500, 500)
    lines = commissions(client, partner["id"])
    back = [line for line in lines if line["reverses"] and line["amount"] > 0]
    assert [line["amount"] for line in back] == [EARNED - 500]
    assert "won" in back[0]["explanation"]
    explained = client.get(f"/api/v1/commissions/{back[0]['id']}/explain",
                           headers=operator_headers())
    assert explained.status_code == 200, explained.text
    assert explained.json()["reverses"]["amount"] == EARNED


def test_refund_objects_count_once_with_charge_refunded(client, hub):
    """`refund.created` and `charge.refunded` report the same refunds: never added up."""
    partner = create_partner(client)
    evts = events("r", partner["code"], VERSIONS[-1])
    for key in "PL":
        post_event(client, evts[key])
    post_event(client, st.event("refund.created", st.refund(
        "re_r1", amount=1000, charge_id="ch_r", intent_id="pi_r")))
    assert balance(client, partner["id"])["voided"] == 200
    post_event(client, st.event("charge.refunded", st.charge_refunded(
        "ch_r", amount=AMOUNT, amount_refunded=1000, intent_id="pi_r")))
    assert balance(client, partner["id"])["voided"] == 200
    pending = st.refund("re_r2", amount=1500, charge_id="ch_r", intent_id="pi_r",
                        status="pending")
    post_event(client, st.event("refund.created", pending))
    assert balance(client, partner["id"])["voided"] == 200  # not yet
    post_event(client, st.event("refund.updated", {**pending, "status": "succeeded"}))
    assert balance(client, partner["id"])["voided"] == 500


@pytest.mark.parametrize("version", ["2024-06-20", BASIL_ON[0], VERSIONS[-1]])
def test_the_readme_demo_through_hub_trigger_in_each_shape(client, hub, version, capsys,
                                                           monkeypatch):
    """`hub trigger` as the README runs it: the payment and its refund meet in every version."""
    import argparse

    from tests.conftest import WEBHOOK_SECRET

    monkeypatch.delenv("HUB_CONFIG", raising=False)
    partner = create_partner(client)
    sent: list[str] = []

    def relay(request: httpx.Request) -> httpx.Response:
        evt = json.loads(request.content)
        sent.append(f"{evt['type']}@{evt['api_version']}")
        answer = client.post("/webhooks/stripe", content=request.content,
                             headers=dict(request.headers))
        return httpx.Response(answer.status_code, json=answer.json())

    def trigger(type_: str, **opts: Any) -> int:
        fields = dict(url="http://hub.test", secret=WEBHOOK_SECRET, config=None,
                      customer="cus_demo", email=None, partner_code=None, amount=4900,
                      currency="usd", invoice=None, charge="ch_demo", intent=None,
                      refunded=None, api_version=version)
        return int(st.cmd_trigger(argparse.Namespace(type=type_, **{**fields, **opts})))

    with respx.mock(assert_all_called=False) as net:
        net.post("http://hub.test/webhooks/stripe").mock(side_effect=relay)
        assert trigger("customer.created", partner_code=partner["code"]) == 0
        assert trigger("invoice.paid") == 0
        assert balance(client, partner["id"])["pending"] == 980
        assert trigger("charge.refunded", refunded=980) == 0
    assert balance(client, partner["id"])["voided"] == 196  # a fifth refunded, a fifth reversed
    paid = ["invoice.paid"] + ([] if version < BASIL else ["invoice_payment.paid"])
    assert sent == [f"{t}@{version}" for t in ["customer.created", *paid, "charge.refunded"]]
    assert capsys.readouterr().out.count('"status": 200') == len(sent)


@pytest.mark.parametrize("steps", ["PLR", "RDLP", "PLRDW"])
def test_what_if_reverses_through_links_as_the_ledger_does(client, hub, steps):
    """`hub whatif` with unchanged settings reproduces the ledger of a basil invoice whose
    refund, dispute and won dispute meet it only through `invoice_payment.paid`."""
    from hub.ingest.whatif import run_whatif

    partner = create_partner(client)
    evts = events("wi", partner["code"], VERSIONS[-1])
    evts["W"] = st.event("charge.dispute.closed", st.dispute(
        "dp_wi", charge_id="ch_wi", amount=AMOUNT, intent_id="pi_wi", status="won"))
    for key in steps:
        post_event(client, evts[key])
    b = balance(client, partner["id"])
    assert b["voided"] == {"PLR": 500, "RDLP": EARNED, "PLRDW": 500}[steps]
    result = run_whatif(hub, "crazycall", {}).to_json()
    assert result["partners"] and all(p["difference"] == 0 for p in result["partners"])
    assert sum(p["simulated"] for p in result["partners"]) == EARNED - b["voided"]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_api_version_pays_refunds_and_disputes(client, hub, version):
    """Each version's own shape, refund and dispute first: pro rata once the payment (and from
    basil on its link) is known, then whole."""
    partner = create_partner(client)
    inv = st.invoice("in_v", customer_id="cus_v", amount=AMOUNT, subscription_id="sub_v",
                     charge_id="ch_v", intent_id="pi_v", paid_at=T0, partner_code=partner["code"],
                     api_version=version)
    refund = st.event("charge.refunded", st.charge_refunded(
        "ch_v", amount=AMOUNT, amount_refunded=REFUNDED, invoice_id="in_v", intent_id="pi_v",
        api_version=version), api_version=version)
    post_event(client, refund)
    for evt in st.paid_events(inv, intent_id="pi_v", api_version=version, created=T0):
        assert evt["api_version"] == version
        post_event(client, evt)
    assert balance(client, partner["id"])["voided"] == 500
    post_event(client, st.event("charge.dispute.created", st.dispute(
        "dp_v", charge_id="ch_v", amount=AMOUNT, intent_id="pi_v"), api_version=version))
    assert (balance(client, partner["id"])["pending"], balance(client, partner["id"])["voided"]) \
        == (0, EARNED)


def test_the_stripe_client_is_built_once_per_hub(make_hub, monkeypatch):
    """Not per event (`dict.setdefault(k, Cls(...))` would build one on every call)."""
    from connectors import stripe as connector

    built: list[object] = []
    original = connector.StripeLookup.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        built.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(connector.StripeLookup, "__init__", counting)
    hub = make_hub(connectors={"stripe": {"api_key": "sk_test_matrix"}})
    first = connector.lookup_of(hub, "sk_test_matrix")
    assert connector.lookup_of(hub, "sk_test_matrix") is first
    assert len(built) == 1
