"""Referral links: the redirect, the cookie, the builder, open-redirect refusal, unique clicks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from hub.app import create_app
from hub.clock import utcnow
from tests.attribution_helpers import BROWSER, build_link, click, freeze_clicks, link_stats, params
from tests.stripe_helpers import create_partner


def test_default_link_counts_sets_cookie_and_redirects_with_referral_params(client):
    partner = create_partner(client)
    response = click(client, partner["code"])
    assert response.headers["location"].startswith("https://example.com/?")
    got = params(response)
    assert got["ref"] == partner["code"] and got["click_id"].startswith("clk_")
    cookie = response.headers["set-cookie"]
    assert f"Max-Age={90 * 86400}" in cookie and "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "SameSite=Lax" in cookie
    assert cookie.split("=", 1)[1].startswith(got["click_id"] + ".")
    stats = link_stats(client, partner["id"])[partner["code"]]
    assert (stats["kind"], stats["clicks"], stats["unique_clicks"]) == ("default", 1, 1)


def test_cookie_max_age_follows_the_program(make_hub, backend):
    hub = make_hub(backend, programs={"short": {"plugin": "crazycall", "cookie_days": 7}})
    with TestClient(create_app(hub)) as c:
        partner = create_partner(c, program="short")
        assert f"Max-Age={7 * 86400}" in click(c, partner["code"]).headers["set-cookie"]


def test_unknown_code_and_injection_attempts_land_on_the_default_page(make_hub, backend):
    hub = make_hub(backend, server={"default_landing": "https://www.example.com/welcome"})
    with TestClient(create_app(hub)) as c:
        for code in ("nope", "%0d%0aSet-Cookie:%20a=b", "x" * 300, "a%2Fb/c"):
            response = c.get(f"/r/{code}", follow_redirects=False)
            assert response.status_code == 302
            assert response.headers["location"] == "https://www.example.com/welcome"
            assert "set-cookie" not in response.headers


def test_builder_returns_share_url_and_embed_and_redirect_carries_trial(client):
    partner = create_partner(client)
    link = build_link(client, partner["id"], destination="https://app.example.com/signup?plan=pro",
                      trial_days=30, creative="plain", description="newsletter <march>")
    assert link["url"] == f"http://hub.test/r/{link['code']}"
    assert f'href="{link["url"]}"' in link["html"]
    assert link["description"] == "newsletter <march>"
    response = click(client, link["code"])
    assert response.headers["location"].startswith("https://app.example.com/signup?")
    got = params(response)
    assert (got["plan"], got["ref"], got["trial_days"]) == ("pro", partner["code"], "30")
    text = build_link(client, partner["id"], creative="text")
    assert text["trial_days"] == 14 and "<p>" in text["html"]


def test_image_creatives_need_a_configured_image(make_hub, backend):
    hub = make_hub(backend, links={"banner_url": "https://cdn.example.com/b.png"})
    with TestClient(create_app(hub)) as c:
        partner = create_partner(c)
        banner = build_link(c, partner["id"], creative="banner")
        assert '<img src="https://cdn.example.com/b.png"' in banner["html"]
        assert build_link(c, partner["id"], expect=422, creative="logo")["error"]["code"] == \
            "invalid_creative"


@pytest.mark.parametrize("destination", [
    "https://evil.com/", "https://example.com.evil.com/", "https://evil.com/?next=example.com",
    "javascript:alert(1)", "//evil.com/", "https://user@evil.com/", "https://example.com@evil.com/",
    "https://evil.com\\@example.com/", "https://example.com/\r\nSet-Cookie: a=b",
    "http://notexample.com/", "ftp://example.com/file", "https://example.com:99999/",
])
def test_destinations_off_the_allowed_domains_are_422(client, destination):
    partner = create_partner(client)
    body = build_link(client, partner["id"], expect=422, destination=destination)
    assert body["error"]["code"] == "destination_not_allowed"


def test_trial_length_is_checked_against_the_program(client):
    partner = create_partner(client)
    assert build_link(client, partner["id"], expect=422, trial_days=7)["error"]["code"] == \
        "invalid_trial"
    assert build_link(client, partner["id"], expect=422, trial_days="30")["error"]["code"] == \
        "invalid_field"
    assert build_link(client, partner["id"], destination="https://www.example.com/x",
                      trial_days=14)["trial_days"] == 14


def test_unique_clicks_once_per_visitor_per_link_per_30_days_and_bots_ignored(client, monkeypatch):
    partner = create_partner(client)
    code = partner["code"]
    t0 = utcnow() - timedelta(days=40)
    freeze_clicks(monkeypatch, t0)
    for _ in range(3):
        click(client, code)  # the cookie names the visitor
    client.cookies.clear()
    click(client, code)  # no cookie: the same IP and agent hash to the same visitor
    client.cookies.clear()
    click(client, code, agent=BROWSER + " Other")  # another visitor
    for bot in ("Googlebot/2.1 (+http://www.google.com/bot.html)", "curl/8.5.0", ""):
        response = click(client, code, agent=bot)
        assert "set-cookie" not in response.headers and "click_id" not in params(response)
    head = client.head(f"/r/{code}", headers={"User-Agent": BROWSER}, follow_redirects=False)
    assert head.status_code == 302 and "set-cookie" not in head.headers
    day = t0.date().isoformat()
    stats = link_stats(client, partner["id"], **{"from": day, "to": day})[code]
    assert (stats["clicks"], stats["unique_clicks"]) == (5, 2)
    client.cookies.clear()
    freeze_clicks(monkeypatch, t0 + timedelta(days=29, hours=23))
    click(client, code)
    freeze_clicks(monkeypatch, t0 + timedelta(days=31))
    click(client, code)
    stats = link_stats(client, partner["id"], **{"from": day})[code]
    assert (stats["clicks"], stats["unique_clicks"]) == (7, 3)
    response = client.get(f"/api/v1/partners/{partner['id']}/links", params={"from": day},
                          headers={"Authorization": "Bearer admin-test-token-0123456789"})
    assert [d["unique_clicks"] for d in response.json()["days"]] == [2, 0, 1]


def test_suspended_partner_links_credit_nobody(client):
    from tests.conftest import operator_headers

    partner = create_partner(client)
    client.post(f"/api/v1/partners/{partner['id']}/suspend", headers=operator_headers())
    response = click(client, partner["code"])
    assert response.headers["location"] == "https://example.com/"
    assert "set-cookie" not in response.headers


def test_link_routes_appear_in_openapi(client):
    doc = client.get("/openapi.json").json()["paths"]
    assert "requestBody" in doc["/api/v1/partners/{partner_id}/links"]["post"]
    assert "requestBody" in doc["/api/v1/signups"]["post"]
    assert "requestBody" in doc["/api/v1/referrals"]["post"]
    assert "get" in doc["/r/{link_code}"] and "get" in doc["/download/{product}"]
