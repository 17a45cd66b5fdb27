"""The tracking script's server side: GET /track.js (caching, settings written in) and the click
it records from a merchant's page (origin check, the /r/ click model, attribution through a
checkout). The script itself runs in Chromium in tests/test_browser.py."""

from __future__ import annotations

import html
import json
import re

from starlette.testclient import TestClient

from connectors import stripe_trigger as st
from hub.api.track import script_snippet, script_version
from hub.app import create_app
from tests.attribution_helpers import BROWSER, click, link_stats, params, referrals
from tests.stripe_helpers import create_partner, post_event
from tests.web_helpers import admin_login

SHOP = "https://shop.example.com"


def track(client, code, *, origin=SHOP, agent=BROWSER, **extra):
    body = json.dumps({"code": code, **extra})
    return client.post("/api/v1/track/clicks", content=body,
                       headers={"Origin": origin, "User-Agent": agent,
                                "Content-Type": "text/plain"})


def test_script_is_cached_long_with_its_version_and_revalidates_by_etag(client):
    hub = client.app.state.hub
    version = script_version(hub.config)
    plain = client.get("/track.js")
    assert plain.status_code == 200
    assert plain.headers["content-type"].startswith("text/javascript")
    assert plain.headers["cache-control"] == "public, max-age=86400"
    assert plain.headers["etag"] == f'"{version}"'
    assert '"params": ["via", "ref"]' in plain.text and "hub_referral" in plain.text
    # No third-party requests: the only URL it names is the Payment Links prefix it fills.
    code = plain.text.split("*/", 1)[1]
    assert re.findall(r"[a-z]+://[^\s\"']*", code) == ["https://buy.stripe.com/"]
    versioned = client.get(f"/track.js?v={version}")
    assert versioned.headers["cache-control"] == "public, max-age=31536000, immutable"
    again = client.get("/track.js", headers={"If-None-Match": f'"{version}"'})
    assert again.status_code == 304 and again.content == b""
    assert script_snippet(hub.config) == (
        f'<script src="http://hub.test/track.js?v={version}" defer></script>')


def test_query_names_and_cookie_are_configurable_and_change_the_version(make_hub):
    hub = make_hub(links={"track_params": ["partner"], "track_cookie": "aff"})
    default = make_hub()
    with TestClient(create_app(hub)) as c:
        text = c.get("/track.js").text
    assert '"params": ["partner"]' in text and '"cookie": "aff"' in text
    assert script_version(hub.config) != script_version(default.config)


def test_a_click_from_an_allowed_page_follows_the_click_model(client):
    partner = create_partner(client)
    first = track(client, partner["code"])
    assert first.status_code == 200
    assert first.headers["access-control-allow-origin"] == SHOP
    body = first.json()
    assert body["referral"].startswith("clk_")
    assert body["cookie"].startswith(body["referral"] + ".")
    assert body["max_age"] == 90 * 86400
    # The same visitor again (the script sends its cookie back): a click, not a unique one.
    second = track(client, partner["code"], cookie=body["cookie"]).json()
    assert second["referral"] != body["referral"]
    stats = link_stats(client, partner["id"])[partner["code"]]
    assert (stats["clicks"], stats["unique_clicks"]) == (2, 1)


def test_bots_unknown_codes_and_other_origins_record_nothing(client):
    partner = create_partner(client)
    assert track(client, partner["code"], agent="Googlebot/2.1").json() == {"referral": None}
    assert track(client, partner["code"], agent="Mozilla/5.0 HeadlessChrome/120").json() == {
        "referral": None}
    assert track(client, "nobody").json() == {"referral": None}
    for origin in ("https://evil.test", "https://example.com.evil.test", "null", None):
        headers = {"User-Agent": BROWSER, "Content-Type": "text/plain"}
        if origin:
            headers["Origin"] = origin
        refused = client.post("/api/v1/track/clicks", content=json.dumps(
            {"code": partner["code"]}), headers=headers)
        assert refused.status_code == 403, origin
        assert "access-control-allow-origin" not in refused.headers
        assert "allowed_domains" in refused.json()["error"]["message"]
    preflight = client.options("/api/v1/track/clicks", headers={
        "Origin": "https://evil.test", "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 403
    allowed = client.options("/api/v1/track/clicks", headers={
        "Origin": SHOP, "Access-Control-Request-Method": "POST"})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == SHOP
    assert link_stats(client, partner["id"])[partner["code"]]["clicks"] == 0


def test_malformed_bodies_are_400_not_500(client):
    for body in ("", "[1]", "{", json.dumps({"code": 5}), json.dumps({"code": "x" * 5000})):
        response = client.post("/api/v1/track/clicks", content=body,
                               headers={"Origin": SHOP, "User-Agent": BROWSER})
        assert response.status_code in (400, 413), (body, response.text)


def test_the_click_of_an_r_redirect_is_kept_not_counted_twice(client):
    partner = create_partner(client)
    got = params(click(client, partner["code"]))
    body = track(client, got["ref"], click=got["click_id"]).json()
    assert body["referral"] == got["click_id"]
    stats = link_stats(client, partner["id"])[partner["code"]]
    assert stats["clicks"] == 1
    # A click id that belongs to someone else is not adopted: the code's own click is recorded.
    other = create_partner(client, email="bob@partners.test", name="Bob")
    mine = track(client, other["code"], click=got["click_id"]).json()
    assert mine["referral"] != got["click_id"]


def test_a_checkout_with_the_referral_attributes_the_customer(client):
    partner = create_partner(client)
    referral = track(client, partner["code"]).json()["referral"]
    post_event(client, st.event("checkout.session.completed", st.checkout_completed(
        "cs_track1", customer_id="cus_track1", client_reference_id=referral,
        email="buyer@customer.test")))
    rows = referrals(client, partner_id=partner["id"])
    assert len(rows) == 1
    assert rows[0]["customer_ref"] == "cus_track1"


def test_the_admin_shows_the_snippet_and_the_setting_it_needs(make_hub):
    for domains, expected in ((["shop.example.com"], "shop.example.com"),
                              ([], "set [server] allowed_domains")):
        hub = make_hub(server={"allowed_domains": domains})
        with TestClient(create_app(hub)) as c:
            admin_login(c)
            page = c.get("/admin/tracking")
            assert page.status_code == 200
            assert script_snippet(hub.config) in html.unescape(page.text)
            assert expected in page.text.replace("<code>", "").replace("</code>", "")
            assert 'href="/admin/tracking"' in c.get("/admin/").text
