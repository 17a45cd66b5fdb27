"""Our Stripe helpers build only what Stripe sends: every field of every event they build, for
every API version from 2023-10-16 to the newest, is a field Stripe's own example object of that
type carries in that version (tests/providers/stripe/fields.json, derived from Stripe's
published fixtures), and for the newest version also a field of the pinned `stripe` package's
type. A field Stripe returns only when expanded (an invoice's `payments`) fails it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import stripe

from connectors import stripe_trigger as st
from connectors.stripe_versions import BASIL, NEWEST, VERSIONS, invoice_names_payment

FIELDS = json.loads((Path(__file__).parent / "providers/stripe/fields.json").read_text())
TYPES = {"invoice": stripe.Invoice, "invoice_payment": stripe.InvoicePayment,
         "charge": stripe.Charge, "refund": stripe.Refund, "dispute": stripe.Dispute,
         "customer": stripe.Customer, "subscription": stripe.Subscription,
         "checkout.session": stripe.checkout.Session, "event": stripe.Event,
         "line_item": stripe.InvoiceLineItem}
TRIGGER_TYPES = ("customer.created", "customer.updated", "invoice.paid", "invoice_payment.paid",
                 "charge.refunded", "refund.created", "refund.updated", "charge.dispute.created",
                 "charge.dispute.closed", "checkout.session.completed",
                 "customer.subscription.created", "customer.subscription.updated",
                 "customer.subscription.deleted")


def allowed(version: str, object_type: str) -> set[str]:
    shape = FIELDS["shapes"][FIELDS["versions"][version]]
    fields = set(shape[object_type])
    if version == NEWEST:
        typed = {k for c in TYPES[object_type].__mro__ for k in getattr(c, "__annotations__", {})}
        fields &= typed
    return fields


def stray_fields(evt: dict[str, Any]) -> list[str]:
    """Fields of `evt` (the event, its object, an invoice's line items) that Stripe's example
    objects of its API version do not have."""
    version = evt["api_version"]
    out = [f"event.{k}" for k in set(evt) - allowed(version, "event")]
    obj = evt["data"]["object"]
    out += [f"{obj['object']}.{k}" for k in set(obj) - allowed(version, obj["object"])]
    for line in (obj.get("lines") or {}).get("data") or [] if obj["object"] == "invoice" else []:
        out += [f"line_item.{k}" for k in set(line) - allowed(version, "line_item")]
    return sorted(out)


def helper_events(version: str) -> list[dict[str, Any]]:
    """Every event our helpers build for `version`: the trigger's and the builders' own."""
    types = [t for t in TRIGGER_TYPES
             if t != "invoice_payment.paid" or not invoice_names_payment(version)]
    evts = [e for t in types for e in st.build_all(t, api_version=version)]
    inv = st.invoice("in_c", customer_id="cus_c", amount=4900, subscription_id="sub_c",
                     charge_id="ch_c", intent_id="pi_c", partner_code="p", tax=100,
                     api_version=version)
    evts += st.paid_events(inv, intent_id="pi_c", api_version=version)
    evts.append(st.event("charge.refunded", st.charge_refunded(
        "ch_c", amount=4900, amount_refunded=100, invoice_id="in_c", intent_id="pi_c",
        api_version=version), api_version=version))
    evts.append(st.event("charge.dispute.closed", st.dispute(
        "dp_c", charge_id="ch_c", amount=4900, intent_id="pi_c", status="won"),
        api_version=version))
    return evts


def test_the_versions_run_to_the_pinned_package_and_each_has_stripes_fields():
    assert VERSIONS[-1] == NEWEST == stripe.api_version
    assert VERSIONS[0] == "2023-10-16"
    assert list(VERSIONS) == sorted(VERSIONS)
    assert set(FIELDS["versions"]) == set(VERSIONS)
    assert BASIL + ".basil" in VERSIONS


@pytest.mark.parametrize("version", VERSIONS)
def test_every_helper_event_has_only_fields_stripe_sends_in_its_version(version):
    evts = helper_events(version)
    assert {e["api_version"] for e in evts} == {version}
    assert {e["type"] for e in evts} >= set(TRIGGER_TYPES) - (
        {"invoice_payment.paid"} if invoice_names_payment(version) else set())
    for evt in evts:
        assert stray_fields(evt) == [], evt["type"]


@pytest.mark.parametrize("version", VERSIONS)
def test_the_shape_changes_at_basil(version):
    """The fields this issue is about, as Stripe's fixtures have them per version."""
    invoice, charge = allowed(version, "invoice"), allowed(version, "charge")
    if invoice_names_payment(version):
        assert {"charge", "payment_intent"} <= invoice and "invoice" in charge
    else:
        assert not {"charge", "payment_intent", "payments"} & invoice
        assert "invoice" not in charge and "parent" in invoice


def test_the_trigger_refuses_an_event_the_version_does_not_have():
    with pytest.raises(ValueError, match="basil"):
        st.build_all("invoice_payment.paid", api_version="2024-06-20")
    legacy = st.build_all("invoice.paid", api_version="2024-06-20")
    assert [e["type"] for e in legacy] == ["invoice.paid"]
    assert legacy[0]["data"]["object"]["payment_intent"].startswith("pi_")
    newest = st.build_all("invoice.paid")
    assert [e["type"] for e in newest] == ["invoice.paid", "invoice_payment.paid"]
    assert newest[1]["data"]["object"]["invoice"] == newest[0]["data"]["object"]["id"]


def test_the_contract_catches_a_field_stripe_only_sends_expanded():
    inv = st.invoice("in_x", customer_id="cus_x", amount=100, api_version=NEWEST)
    evt = st.event("invoice.paid", {**inv, "payments": {"object": "list", "data": []}})
    assert stray_fields(evt) == ["invoice.payments"]
    legacy_charge = st.charge_refunded("ch_x", amount=1, amount_refunded=1, invoice_id="in_x")
    assert stray_fields(st.event("charge.refunded", legacy_charge, api_version=NEWEST)) == [
        "charge.invoice"]
    assert st.event("charge.refunded", legacy_charge)["api_version"] == st.LEGACY
