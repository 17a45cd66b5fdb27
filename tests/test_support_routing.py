"""Issue 19: who supports a customer, and how partners reach their program.

OdooPBX sends a customer's support request to the customer's partner when the partner's kind
takes support ("partner"), not when it is a "referral": the operator API answers who, and the
partner's Clients page says which clients it supports. Every program may name its contact and
support addresses; the portal shows them in the footer and on /portal/help."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from connectors import stripe_trigger as st
from hub.app import create_app
from hub.config import config_from_dict
from hub.errors import StartupError
from hub.registry import load_registry
from hub.runtime import build_programs
from tests.conftest import operator_headers
from tests.stripe_helpers import create_partner, post_event
from tests.web_helpers import give_password, portal_login

ODOO = {"plugin": "odoopbx", "support_email": "support@odoopbx.test",
        "support_url": "https://odoopbx.test/help"}
CTM = {"plugin": "calltrackingmetrics", "contact_email": "Partnership@calltrackingmetrics.com"}
OPERATOR = "ops@hub.test"


@pytest.fixture
def world(make_hub, backend):
    hub = make_hub(backend, programs={"odoopbx": dict(ODOO), "calltrackingmetrics": dict(CTM),
                                      "crazycall": {"plugin": "crazycall"}},
                   email={"operator": OPERATOR})
    with TestClient(create_app(hub)) as op:
        pia = create_partner(op, "odoopbx", email="pia@partners.test", name="Pia Partner",
                             kind="partner", invited=True, website="https://pia.test")
        rex = create_partner(op, "odoopbx", email="rex@referrals.test", name="Rex",
                             kind="referral")
        cleo = create_partner(op, "crazycall", email="cleo@partners.test", name="Cleo")
        tess = create_partner(op, "calltrackingmetrics", email="tess@partners.test", name="Tess",
                              invited=True)
        assert op.post(f"/api/v1/partners/{tess['id']}/agreement",  # CTM's comes first
                       headers=operator_headers()).status_code == 200
        for partner, customer in ((pia, "cus_pia"), (rex, "cus_rex")):
            made = op.post("/api/v1/referrals", headers=operator_headers(), json={
                "partner_id": partner["id"], "customer_ref": customer})
            assert made.status_code == 201, made.text
        post_event(op, st.event("customer.created", st.customer("cus_alone",
                                                                email="alone@client.test")))
    for partner in (pia, rex, cleo, tess):
        give_password(hub, partner["id"])
    return {"hub": hub, "pia": pia, "rex": rex, "cleo": cleo, "tess": tess}


def _support(hub, ref, provider="stripe", headers=None, **params):
    with TestClient(create_app(hub)) as c:
        return c.get(f"/api/v1/customers/{provider}/{ref}/support", params=params,
                     headers=operator_headers() if headers is None else headers)


def test_a_partner_kind_customer_is_routed_to_its_partner(world):
    r = _support(world["hub"], "cus_pia")
    assert r.status_code == 200, r.text
    assert r.json() == {"provider": "stripe", "customer_ref": "cus_pia", "routed_to": "partner",
                        "program": "odoopbx", "partner_id": world["pia"]["id"],
                        "name": "Pia Partner", "email": "pia@partners.test",
                        "website": "https://pia.test"}


def test_a_referral_kind_customer_is_routed_to_the_programs_support(world):
    body = _support(world["hub"], "cus_rex").json()
    assert body["routed_to"] == "operator" and body["partner_id"] is None
    assert (body["program"], body["email"], body["website"]) == (
        "odoopbx", "support@odoopbx.test", "https://odoopbx.test/help")
    assert "rex@referrals.test" not in str(body)


def test_a_suspended_partner_no_longer_takes_support(world):
    hub = world["hub"]
    with TestClient(create_app(hub)) as op:
        assert op.post(f"/api/v1/partners/{world['pia']['id']}/suspend",
                       headers=operator_headers()).status_code == 200
    assert _support(hub, "cus_pia").json()["routed_to"] == "operator"


def test_an_unreferred_customer_is_the_operators(world):
    body = _support(world["hub"], "cus_alone").json()
    # three programs, none named and no referral: the operator's own address
    assert (body["routed_to"], body["program"], body["email"]) == ("operator", None, OPERATOR)
    named = _support(world["hub"], "cus_alone", program="calltrackingmetrics").json()
    assert (named["program"], named["email"]) == ("calltrackingmetrics",
                                                  "Partnership@calltrackingmetrics.com")


def test_unknown_customer_provider_program_and_no_token(world):
    hub = world["hub"]
    missing = _support(hub, "cus_nobody")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    bad_provider = _support(hub, "cus_pia", provider="nosuch")
    assert bad_provider.status_code == 422 and "stripe" in bad_provider.json()["error"]["message"]
    assert _support(hub, "cus_pia", program="nosuch").status_code == 422
    assert _support(hub, "cus_pia", headers={}).status_code == 401
    wrong = _support(hub, "cus_pia", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "pia@partners.test" not in wrong.text


def _portal(hub, email):
    client = TestClient(create_app(hub))
    portal_login(client, email)
    return client


def test_the_partner_sees_which_clients_it_supports(world):
    with _portal(world["hub"], "pia@partners.test") as pia:
        page = pia.get("/portal/referrals").text
        assert "You support this client" in page
        detail = re.search(r'href="(/portal/referrals/\d+)"', page)
        assert detail and "You support this client" in pia.get(detail.group(1)).text
        assert "the request is sent on to you" in pia.get("/portal/help").text
    with _portal(world["hub"], "rex@referrals.test") as rex:
        page = rex.get("/portal/referrals")
        detail = re.search(r'href="(/portal/referrals/\d+)"', page.text)
        assert detail  # rex's client is listed ...
        assert "You support this client" not in page.text  # ... but not supported by rex
        assert "You support this client" not in rex.get(detail.group(1)).text
        assert "sent on to you" not in rex.get("/portal/help").text


def test_help_page_and_footer_show_the_programs_contacts(world):
    with _portal(world["hub"], "tess@partners.test") as tess:
        help_page = tess.get("/portal/help")
        assert help_page.status_code == 200
        assert "mailto:Partnership@calltrackingmetrics.com" in help_page.text
        footer = tess.get("/portal/").text.split('<footer class="foot">')[1]
        assert "Partnership@calltrackingmetrics.com" in footer and 'href="/portal/help"' in footer
        # another program's contacts are not shown, nor the operator's (the program has its own)
        assert "odoopbx.test" not in help_page.text and OPERATOR not in help_page.text
    with _portal(world["hub"], "pia@partners.test") as pia:
        footer = pia.get("/portal/settings").text.split('<footer class="foot">')[1]
        assert "mailto:support@odoopbx.test" in footer
        assert 'href="https://odoopbx.test/help"' in footer
        assert "calltrackingmetrics" not in footer.lower()


def test_a_program_without_contacts_shows_the_operator(world, make_hub, backend):
    with _portal(world["hub"], "cleo@partners.test") as cleo:
        footer = cleo.get("/portal/").text.split('<footer class="foot">')[1]
        assert f"mailto:{OPERATOR}" in footer
        assert "odoopbx.test" not in footer and "calltrackingmetrics.com" not in footer
    bare = make_hub(backend)  # no contacts and no [email] operator: no address at all
    with TestClient(create_app(bare)) as op:
        create_partner(op, email="nora@partners.test", name="Nora")
    nora_id = _partner_id(bare, "nora@partners.test")
    give_password(bare, nora_id)
    with _portal(bare, "nora@partners.test") as nora:
        page = nora.get("/portal/help").text
        assert "has not published a contact address" in page and "mailto:" not in page


def _partner_id(hub, email):
    from sqlalchemy import select

    from hub.db.models import Partner
    with hub.sessions() as s:
        return s.scalar(select(Partner.id).where(Partner.email == email))


@pytest.mark.parametrize(("key", "value", "says"), [
    ("contact_email", "partnership at ctm", "contact_email must be an e-mail address"),
    ("support_email", "@nohost", "support_email must be an e-mail address"),
    ("support_url", "javascript:alert(1)", "support_url must be an http(s):// URL"),
])
def test_bad_contacts_stop_the_start_naming_table_and_key(key, value, says):
    config = config_from_dict({"programs": {"ctm": {"plugin": "calltrackingmetrics",
                                                    key: value}}})
    with pytest.raises(StartupError) as failed:
        build_programs(config, load_registry())
    assert "[programs.ctm]" in str(failed.value) and says in str(failed.value)


def test_contacts_do_not_change_the_settings_hash():
    """Contact details are not rules: changing them must not flag past commissions as made
    under other settings."""
    registry = load_registry()
    plain = build_programs(config_from_dict({"programs": {"x": {"plugin": "crazycall"}}}),
                           registry)["x"]
    named = build_programs(config_from_dict({"programs": {"x": {
        "plugin": "crazycall", "contact_email": "a@b.test"}}}), registry)["x"]
    raised = build_programs(config_from_dict({"programs": {"x": {
        "plugin": "crazycall", "rate": "0.3"}}}), registry)["x"]
    assert plain.settings_hash == named.settings_hash != raised.settings_hash


def test_a_self_referred_customer_is_not_its_own_supporter(world):
    hub = world["hub"]
    with TestClient(create_app(hub)) as op:
        sam = create_partner(op, "odoopbx", email="sam@partners.test", name="Sam",
                             kind="partner", invited=True)
        made = op.post("/api/v1/referrals", headers=operator_headers(), json={
            "partner_id": sam["id"], "customer_ref": "cus_sam", "email": "sam@partners.test"})
        assert made.status_code == 201 and made.json()["self_referral"] is True, made.text
    assert _support(hub, "cus_sam").json()["routed_to"] == "operator"
