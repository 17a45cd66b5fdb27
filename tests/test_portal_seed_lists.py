"""The dashboard and lists each program's source text describes (issue 19), through the portal:
the default link with its trial, CallPage's "Expires" and all-time link counts, Callbell's
installs and conversions, CrazyCall's plan per commission and creative previews, and the program
setting that allows a second withdrawal while one is open."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from connectors import stripe_trigger as st
from hub.app import create_app
from hub.db.models import Referral
from hub.jobs.tick import run_tick
from tests.conftest import installer_headers, operator_headers
from tests.payout_helpers import at, pay
from tests.stripe_helpers import create_partner, post_event
from tests.web_helpers import give_password, portal_login

H = operator_headers()
T0 = 1_767_225_600  # 2026-01-01
DAY = 86_400
EXAMPLE = Path(__file__).parent.parent / "config.example.toml"


def portal(make_hub: Any, backend: str, programs: dict[str, Any], **tables: Any) -> Any:
    return make_hub(backend, programs=programs, **tables)


def signed_in(hub: Any, program: str = "crazycall", **fields: Any) -> tuple[TestClient, dict]:
    client = TestClient(create_app(hub))
    partner = create_partner(client, program, **fields)
    give_password(hub, partner["id"])
    assert portal_login(client, partner["email"]).url.path == "/portal/"
    return client, partner


def cell(html: str, testid: str) -> list[str]:
    return re.findall(rf'data-testid="{testid}"[^>]*>([^<]*)<', html)


# -- the default link on the dashboard (CrazyCall, CTM) ---------------------------------------

def test_dashboard_offers_the_default_link_which_carries_the_default_trial(make_hub, backend):
    hub = portal(make_hub, backend, {"crazycall": {"plugin": "crazycall"},
                                     "notrial": {"plugin": "crazycall", "trial_days": [0, 30]}})
    client, partner = signed_in(hub)
    dashboard = client.get("/portal/").text
    url = f"http://hub.test/r/{partner['code']}"
    assert f'id="default-link" readonly value="{url}"' in dashboard
    assert 'data-copy="#default-link"' in dashboard
    assert "get the 14-day trial" in dashboard
    links = client.get("/portal/links").text
    default = links.split(f'data-testid="link-{partner["code"]}"')[1].split("</li>")[0]
    assert "plain · 14-day trial" in default

    landing = client.get(f"/r/{partner['code']}", follow_redirects=False)
    query = parse_qs(urlsplit(landing.headers["location"]).query)
    assert (query["ref"], query["trial_days"]) == ([partner["code"]], ["14"])
    # a link built with its own trial keeps it
    built = client.post(f"/api/v1/partners/{partner['id']}/links",
                        json={"trial_days": 30}, headers=H).json()
    landing = client.get(f"/r/{built['code']}", follow_redirects=False)
    assert parse_qs(urlsplit(landing.headers["location"]).query)["trial_days"] == ["30"]

    other, no_trial = signed_in(hub, "notrial", email="bob@partners.test")
    assert 'data-testid="default-trial"' not in other.get("/portal/").text
    landing = other.get(f"/r/{no_trial['code']}", follow_redirects=False)
    assert "trial_days" not in parse_qs(urlsplit(landing.headers["location"]).query)


# -- CallPage: the clients list's "Expires" ---------------------------------------------------

def test_clients_list_shows_when_the_trial_or_the_paid_period_expires(make_hub, backend):
    hub = portal(make_hub, backend, {"callpage": {"plugin": "callpage"}})
    client, partner = signed_in(hub, "callpage")
    post_event(client, st.event("customer.created", st.customer(
        "cus_x", email="x@customer.test", partner_code=partner["code"]), created=T0))
    trial = st.subscription("sub_x", customer_id="cus_x", status="trialing", plan="pro",
                            trial_end=T0 + 14 * DAY)
    post_event(client, st.event("customer.subscription.created", trial, created=T0 + 60))
    assert cell(client.get("/portal/referrals").text, "expires") == ["2026-01-15"]

    # basil and later: the paid period's end is on the subscription's items
    paying = st.subscription("sub_x", customer_id="cus_x", status="active", plan="pro",
                             period_end=T0 + 45 * DAY)
    post_event(client, st.event("customer.subscription.updated", paying, created=T0 + 15 * DAY))
    assert cell(client.get("/portal/referrals").text, "expires") == ["2026-02-15"]

    # up to acacia: on the subscription itself; a paid invoice in between keeps it
    renewed = st.subscription("sub_x", customer_id="cus_x", status="active", plan="pro")
    renewed["current_period_end"] = T0 + 76 * DAY
    post_event(client, st.event("customer.subscription.updated", renewed, created=T0 + 45 * DAY))
    post_event(client, st.event("invoice.paid", st.invoice(
        "in_x", customer_id="cus_x", amount=4900, subscription_id="sub_x", charge_id="ch_x",
        paid_at=T0 + 45 * DAY + 60, shape="legacy")))
    page = client.get("/portal/referrals").text
    assert cell(page, "expires") == ["2026-03-18"] and ">Expires</th>" in page


# -- Callbell: installs and conversions beside clicks and commission due ----------------------

def test_rewards_stats_count_installs_and_conversions(make_hub, backend):
    hub = portal(make_hub, backend, {"callbell": {"plugin": "callbell"},
                                     "crazycall": {"plugin": "crazycall"}})
    client, partner = signed_in(hub, "callbell")
    code = partner["code"]
    for cus in ("cus_a", "cus_b", "cus_c"):
        post_event(client, st.event("customer.created", st.customer(
            cus, email=f"{cus}@customer.test", partner_code=code)))
    for install_id, cus, site in (("i-1", "cus_a", "a.test"), ("i-2", "cus_a", "shop.a.test"),
                                  ("i-3", "cus_b", "b.test")):
        answer = client.post("/api/v1/installs", headers=installer_headers(), json={
            "install_id": install_id, "product": "widget", "site": site, "customer_ref": cus})
        assert answer.status_code == 201, answer.text
    post_event(client, st.event("invoice.paid", st.invoice(                 # b and c pay
        "in_b", customer_id="cus_b", amount=2000, currency="eur", subscription_id="sub_b",
        charge_id="ch_b", paid_at=T0, shape="legacy")))
    post_event(client, st.event("invoice.paid", st.invoice(
        "in_c", customer_id="cus_c", amount=2000, currency="eur", subscription_id="sub_c",
        charge_id="ch_c", paid_at=T0, shape="legacy")))
    client.get(f"/r/{code}", headers={"user-agent": "Mozilla/5.0"})
    dashboard = client.get("/portal/").text
    assert cell(dashboard, "installs") == ["3"]        # three installations
    assert cell(dashboard, "conversions") == ["3"]     # a installed, b both, c paid
    assert cell(dashboard, "clicks") == ["1"] and "€" in cell(dashboard, "total")[0]

    other, _ = signed_in(hub, "crazycall", email="cc@partners.test")
    assert 'data-testid="installs"' not in other.get("/portal/").text  # no installs to count


# -- CrazyCall: the plan each commission was paid for; creatives previewed ---------------------

def test_commission_list_names_the_plan_paid_for(make_hub, backend):
    hub = portal(make_hub, backend, {"crazycall": {"plugin": "crazycall"}})
    client, partner = signed_in(hub)
    post_event(client, st.event("customer.created", st.customer(
        "cus_p", email="p@customer.test", partner_code=partner["code"])))
    for n, plan in ((1, "plan_b"), (2, "plan_c")):
        post_event(client, st.event("invoice.paid", st.invoice(
            f"in_{n}", customer_id="cus_p", amount=4900 * n, subscription_id="sub_p",
            charge_id=f"ch_{n}", paid_at=T0 + n * DAY, plan=plan, shape="legacy")))
    post_event(client, st.event("charge.refunded", st.charge_refunded(
        "ch_2", amount=9800, amount_refunded=9800, invoice_id="in_2")))
    page = client.get("/portal/transactions").text
    assert ">Plan</th>" in page
    # newest first: the reversal of plan C's payment, then its commission, then plan B's
    assert cell(page, "plan") == ["plan_c", "plan_c", "plan_b"]


def test_links_report_previews_each_links_creative(make_hub, backend):
    links = tomllib.loads(EXAMPLE.read_text())["links"]  # the example offers every creative
    hub = portal(make_hub, backend, {"crazycall": {"plugin": "crazycall"}}, links=links)
    client, partner = signed_in(hub)
    page = client.get("/portal/links").text
    builder = page.split('id="creative"')[1].split("</select>")[0]
    offered = re.findall(r'<option value="(\w+)">', builder)
    assert offered == ["plain", "banner", "logo", "screenshot", "text"]
    codes = {}
    for creative in ("banner", "text", "plain"):
        built = client.post(f"/api/v1/partners/{partner['id']}/links",
                            json={"creative": creative}, headers=H)
        assert built.status_code == 201, built.text
        codes[creative] = built.json()["code"]
    response = client.get("/portal/links")
    page = response.text

    def preview(code: str) -> str:
        return page.split(f'data-testid="preview-{code}"')[1].split("</figure>")[0]

    assert f'<img src="{links["banner_url"]}"' in preview(codes["banner"])
    assert links["ready_text"] in preview(codes["text"])
    assert f">{links['link_text']}</a>" in preview(codes["plain"])
    # the pages allow only their own images; this one also the creatives' host
    policy = response.headers["content-security-policy"]
    assert "img-src 'self' data: https://example.com;" in policy
    assert "img-src 'self' data:;" in client.get("/portal/").headers["content-security-policy"]


# -- CallPage: all-time client counts on the links page ---------------------------------------

def test_links_page_counts_clients_of_all_time(make_hub, backend):
    hub = portal(make_hub, backend, {"callpage": {"plugin": "callpage"}})
    client, partner = signed_in(hub, "callpage")
    post_event(client, st.event("customer.created", st.customer(     # long before the 30 days
        "cus_old", email="old@customer.test", partner_code=partner["code"]), created=T0))
    client.get("/portal/links")  # creates the default link row
    with hub.transaction() as session:  # the client came through the default link
        session.execute(update(Referral).values(link_code=partner["code"]))
    recent = client.get("/portal/links").text
    assert cell(recent, "trials") == ["0"] and "all time" not in recent
    everything = client.get("/portal/links?period=all").text
    assert cell(everything, "trials") == ["1"]
    assert "Counts are for all time" in everything and 'href="/portal/links?period=all"' in recent


# -- whether a second withdrawal may be requested while one is open ---------------------------

@pytest.mark.parametrize("one_pending", [True, False])
def test_second_withdrawal_while_one_is_open_is_a_program_setting(make_hub, backend, one_pending):
    hub = portal(make_hub, backend, {"callpage": {"plugin": "callpage",
                                                  "one_pending_withdrawal": one_pending}})
    client, partner = signed_in(hub, "callpage")
    pay(hub, partner["code"], 40000, currency="usd", when=at("2026-01-05T10:00:00"))
    run_tick(hub, at("2026-02-10T00:00:00"))
    first = client.post(f"/api/v1/partners/{partner['id']}/withdrawals",
                        json={"currency": "USD"}, headers=H)
    assert first.status_code == 201, first.text
    pay(hub, partner["code"], 40000, currency="usd", when=at("2026-01-06T10:00:00"))
    run_tick(hub, at("2026-02-11T00:00:00"))
    payouts = client.get("/portal/payouts").text
    second = client.post(f"/api/v1/partners/{partner['id']}/withdrawals",
                         json={"currency": "USD"}, headers=H)
    if one_pending:
        assert "still being processed" in payouts
        assert second.json()["error"]["code"] == "already_pending"
    else:
        assert "You can withdraw $100.00" in payouts
        assert second.status_code == 201 and second.json()["amount"] == 10000
