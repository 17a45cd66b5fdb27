"""Signups from the product: by click (inside the program's cookie window) or by code."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from starlette.testclient import TestClient

from hub.app import create_app
from hub.clock import utcnow
from hub.db.models import Customer
from tests.attribution_helpers import (
    build_link,
    click,
    freeze_clicks,
    link_stats,
    params,
    referrals,
    signup,
)
from tests.conftest import ADMIN_TOKEN, installer_headers, operator_headers
from tests.stripe_helpers import create_partner


def test_signup_by_click_credits_the_partner_and_keeps_the_trace(client):
    partner = create_partner(client)
    link = build_link(client, partner["id"], description="blog post")
    click_id = params(click(client, link["code"]))["click_id"]
    body = signup(client, click_id=click_id, email="new@customer.test", customer_ref="cus_1")
    assert (body["partner_id"], body["source"]) == (partner["id"], "link")
    [row] = referrals(client, partner_id=partner["id"])
    assert (row["click_id"], row["link_code"]) == (click_id, link["code"])
    assert row["customer_ref"] == "cus_1"
    assert signup(client, expect=200, click_id=click_id, email="new@customer.test",
                  customer_ref="cus_1")["partner_id"] == partner["id"]
    assert link_stats(client, partner["id"])[link["code"]]["signups"] == 1


def test_cookie_window_day_90_credits_day_91_does_not(client, monkeypatch):
    partner = create_partner(client)
    t0 = utcnow() - timedelta(days=120)
    freeze_clicks(monkeypatch, t0)
    first = params(click(client, partner["code"]))["click_id"]
    second = params(click(client, partner["code"]))["click_id"]
    on_day_90 = signup(client, click_id=first, email="a@c.test", customer_ref="cus_90",
                       signed_up_at=t0 + timedelta(days=90))
    on_day_91 = signup(client, click_id=second, email="b@c.test", customer_ref="cus_91",
                       signed_up_at=t0 + timedelta(days=91))
    assert on_day_90["partner_id"] == partner["id"]
    assert on_day_91["partner_id"] is None
    # an expired click does not fall back to the code that came with it
    late = signup(client, click_id=second, code=partner["code"], email="c@c.test",
                  customer_ref="cus_late", signed_up_at=t0 + timedelta(days=91))
    assert late["partner_id"] is None


def test_the_window_is_the_programs_setting(make_hub, backend, monkeypatch):
    hub = make_hub(backend, programs={"short": {"plugin": "crazycall", "cookie_days": 7}})
    with TestClient(create_app(hub)) as c:
        partner = create_partner(c, program="short")
        t0 = utcnow() - timedelta(days=30)
        freeze_clicks(monkeypatch, t0)
        click_id = params(click(c, partner["code"]))["click_id"]
        assert signup(c, click_id=click_id, email="a@c.test", customer_ref="cus_8",
                      signed_up_at=t0 + timedelta(days=8))["partner_id"] is None
        assert signup(c, click_id=click_id, email="a@c.test", customer_ref="cus_7",
                      signed_up_at=t0 + timedelta(days=7))["partner_id"] == partner["id"]


def test_signup_by_code_and_unknown_codes(client):
    partner = create_partner(client)
    body = signup(client, code=partner["code"], email="x@c.test", customer_ref="cus_c")
    assert (body["partner_id"], body["source"]) == (partner["id"], "code")
    nobody = signup(client, code="nobody", email="y@c.test", customer_ref="cus_n")
    assert nobody["partner_id"] is None
    unknown_click = signup(client, click_id="clk_unknown", code=partner["code"], email="z@c.test",
                           customer_ref="cus_u")
    assert unknown_click["partner_id"] == partner["id"]


def test_signup_validation(client):
    for body in ({"email": "a@c.test", "customer_ref": "c"},
                 {"code": "x", "customer_ref": "c"},
                 {"code": "x", "email": "a@c.test"},
                 {"code": "x", "email": "a@c.test", "customer_ref": "c", "provider": "bank"},
                 {"code": "x", "email": "a@c.test", "customer_ref": "c", "signed_up_at": "soon"},
                 {"code": "x", "email": "a@c.test", "customer_ref": "c",
                  "signed_up_at": (utcnow() + timedelta(days=1)).isoformat()}):
        r = client.post("/api/v1/signups", json=body, headers=installer_headers())
        assert r.status_code == 422, body


def _customers(hub):
    with hub.sessions() as session:
        return session.scalar(select(func.count()).select_from(Customer))


def test_signups_need_a_token_and_without_one_configured_are_refused(make_hub, backend):
    """Issue 16 finding 2: an unauthenticated signup with a guessed customer_ref claimed the
    customer before the real checkout did."""
    hub = make_hub(backend, server={"installer_token": ""})
    with TestClient(create_app(hub)) as c:
        partner = create_partner(c)
        body = {"code": partner["code"], "email": "a@c.test", "customer_ref": "cus_guess"}
        r = c.post("/api/v1/signups", json=body)
        assert r.status_code == 403 and "[server] installer_token" in r.json()["error"]["message"]
        assert r.json()["error"]["code"] == "installer_token_not_configured"
        assert c.post("/api/v1/signups", json=body,
                      headers=installer_headers()).status_code == 403
    assert _customers(hub) == 0


def test_signups_take_the_installer_token_or_a_separate_signups_token(make_hub, backend):
    hub = make_hub(backend, server={"signups_token": "signups-token-0123456789abcdef"})
    with TestClient(create_app(hub)) as c:
        partner = create_partner(c)
        body = {"code": partner["code"], "email": "a@c.test", "customer_ref": "cus_1"}
        for auth in (None, "Bearer wrong", f"Bearer {ADMIN_TOKEN}",
                     "signups-token-0123456789abcdef"):
            r = c.post("/api/v1/signups", json=body,
                       headers={"Authorization": auth} if auth else {})
            assert r.status_code == 401, (auth, r.text)
        assert _customers(hub) == 0
        ok = c.post("/api/v1/signups", json=body,
                    headers={"Authorization": "Bearer signups-token-0123456789abcdef"})
        assert ok.status_code == 201 and ok.json()["partner_id"] == partner["id"]
        again = c.post("/api/v1/signups", json=body, headers=installer_headers())
        assert again.status_code == 200


def test_a_signups_token_alone_opens_signups_but_not_installs(make_hub, backend):
    hub = make_hub(backend, server={"installer_token": "", "signups_token": "only-signups-0123"})
    with TestClient(create_app(hub)) as c:
        partner = create_partner(c)
        bearer = {"Authorization": "Bearer only-signups-0123"}
        body = {"code": partner["code"], "email": "a@c.test", "customer_ref": "cus_1"}
        assert c.post("/api/v1/signups", json=body, headers=bearer).status_code == 201
        r = c.post("/api/v1/installs", json={"install_id": "i", "product": "widget",
                                             "partner_code": partner["code"]}, headers=bearer)
        assert r.status_code == 403 and "installer_token" in r.json()["error"]["message"]


def test_self_signup_by_email_is_flagged(client):
    partner = create_partner(client, email="Ann@Partners.test")
    body = signup(client, code=partner["code"], email="ann@partners.TEST", customer_ref="cus_s")
    assert body["self_referral"] is True
    [row] = referrals(client, flagged="true")
    assert row["flag_reason"] == "same email as the partner"


def test_widget_link_clicks_and_signups_carry_source_widget(client):
    # Callbell-style: the customer is itself a partner; its widget shows a "by <product>" link.
    ambassador = create_partner(client, email="shop@customer.test", customer_ref="cus_shop")
    first = client.post(f"/api/v1/partners/{ambassador['id']}/links", json={"kind": "widget"},
                        headers=operator_headers())
    again = client.post(f"/api/v1/partners/{ambassador['id']}/links", json={"kind": "widget"},
                        headers=operator_headers())
    assert (first.status_code, again.status_code) == (201, 200)
    widget = first.json()
    assert widget["kind"] == "widget" and again.json()["code"] == widget["code"]
    click_id = params(click(client, widget["code"]))["click_id"]
    body = signup(client, click_id=click_id, email="visitor@else.test", customer_ref="cus_v")
    assert (body["partner_id"], body["source"]) == (ambassador["id"], "widget")
    by_code = signup(client, code=widget["code"], email="v2@else.test", customer_ref="cus_v2")
    assert by_code["source"] == "widget"
    stats = link_stats(client, ambassador["id"])[widget["code"]]
    assert (stats["clicks"], stats["signups"]) == (1, 2)
