"""Finding 8 of issue 16: self-referral compares the mailbox an address reaches, not its spelling.

`canonical_email` and `email_match` are pure: a table test. Then the whole path: a signup under a
look-alike of the partner's own address is flagged for the operator's review, on both backends.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from starlette.testclient import TestClient

from hub.app import create_app
from hub.attribution.customers import self_referral_reason
from hub.attribution.emails import canonical_email, email_match
from tests.attribution_helpers import referrals
from tests.stripe_helpers import create_partner

INSTALLER = "installer-test-token"


@pytest.mark.parametrize(("raw", "canonical"), [
    ("bob@example.com", "bob@example.com"),
    ("  Bob@Example.COM  ", "bob@example.com"),
    ("bob+promo@example.com", "bob@example.com"),
    ("bob+a+b@example.com", "bob@example.com"),
    ("bob@example.com.", "bob@example.com"),
    ("bob@example.com..", "bob@example.com"),
    ("b\u200bob@exam\u200dple.com", "bob@example.com"),      # zero-width space / joiner
    ("\ufeffbob@example.com\u2060", "bob@example.com"),       # BOM, word joiner
    ("bo\u00adb@example.com", "bob@example.com"),             # soft hyphen
    ("\uff42\uff4f\uff42\uff20example.com", "bob@example.com"),  # full-width letters and @
    ("STRASSE@example.com", "strasse@example.com"),
    ("straße@example.com", "strasse@example.com"),            # casefold, not lower
    ("B.o.b+x@GMail.com", "bob@gmail.com"),
    ("b.o.b@googlemail.com", "bob@gmail.com"),
    ("b.o.b@example.com", "b.o.b@example.com"),               # dots count elsewhere
    ("bob@ex ample.com", "bob@example.com"),
    ("not-an-address", "not-an-address"),
])
def test_canonical_email(raw, canonical):
    assert canonical_email(raw) == canonical


@pytest.mark.parametrize(("partner", "customer", "match"), [
    ("bob@example.com", "bob@example.com", "same"),
    ("Bob@Example.com", " bob@example.COM ", "same"),
    ("bob@example.com", "bob+promo@example.com", "look-alike"),
    ("bob@example.com", "bob@example.com.", "look-alike"),
    ("bob@example.com", "b\u200bob@example.com", "look-alike"),
    ("bob@gmail.com", "b.o.b@googlemail.com", "look-alike"),
    ("bob@example.com", "bob2@example.com", None),
    ("bob@example.com", "bob@example.org", None),
    ("b.ob@example.com", "bob@example.com", None),
    ("bob@example.com", None, None),
    (None, "bob@example.com", None),
    ("", "", None),
])
def test_email_match(partner, customer, match):
    assert email_match(partner, customer) == match


@pytest.mark.parametrize(("customer_email", "reason"), [
    (" Bob@Example.com ", "same email as the partner"),
    ("bob+promo@example.com", "look-alike of the partner's email (same mailbox)"),
    ("bob@example.com.", "look-alike of the partner's email (same mailbox)"),
    ("someone@else.test", None),
])
def test_self_referral_reason(customer_email, reason):
    partner = SimpleNamespace(email="bob@example.com", customer_ref=None)
    customer = SimpleNamespace(email=customer_email, ref="cus_1")
    assert self_referral_reason(partner, customer) == reason


@pytest.fixture
def client(make_hub, backend):
    hub = make_hub(backend, server={"installer_token": INSTALLER})
    with TestClient(create_app(hub)) as c:
        yield c


@pytest.mark.parametrize("look_alike", ["bob+promo@example.com", "b\u200bob@Example.com.",
                                        "\uff42ob@example.com"])
def test_a_signup_under_a_look_alike_address_is_flagged(client, look_alike):
    partner = create_partner(client, email="bob@example.com")
    response = client.post("/api/v1/signups", headers={"Authorization": f"Bearer {INSTALLER}"},
                           json={"code": partner["code"], "email": look_alike,
                                 "customer_ref": "cus_la"})
    assert response.status_code == 201, response.text
    assert response.json()["self_referral"] is True
    [row] = referrals(client, flagged="true")
    assert row["flag_reason"] == "look-alike of the partner's email (same mailbox)"
