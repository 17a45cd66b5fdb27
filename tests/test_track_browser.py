"""The tracking script end to end in headless Chromium: a merchant page served from another
origin (http://localhost:<port>) includes the hub's /track.js (http://127.0.0.1:<port>)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from connectors import stripe_trigger as st
from tests.attribution_helpers import BROWSER, build_link, link_stats, referrals
from tests.conftest import ADMIN_TOKEN, LiveServer
from tests.stripe_helpers import balance, create_partner, post_event
from tests.test_browser import ARTIFACTS, browser  # noqa: F401 - the shared Chromium fixture

pytestmark = pytest.mark.browser

PAGE = """<!doctype html><html><head><title>Shop</title>
{snippet}</head><body>
<h1>Shop</h1>
<a id="pay" href="https://buy.stripe.com/test_abc?prefilled_email=a%40b.test">Buy</a>
<a id="other" href="https://elsewhere.example.org/x">Other</a>
<stripe-pricing-table id="table" pricing-table-id="prctbl_1"></stripe-pricing-table>
<stripe-buy-button id="button" buy-button-id="buy_btn_1"></stripe-buy-button>
<form id="signup" data-hub-referral action="/signup"><input name="email"></form>
<form id="named" data-hub-referral="ref_id" action="/signup"></form>
</body></html>"""


class Merchant:
    """The merchant's site: every path answers the same shop page."""

    def __init__(self, hub_url: str):
        # The page includes the script as the admin's snippet does (a test may paste that one).
        self.snippet = f'<script src="{hub_url}/track.js" defer></script>'
        shop = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                body = PAGE.replace("{snippet}", shop.snippet).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://localhost:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Merchant:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sites(make_hub: Any) -> Iterator[tuple[Any, LiveServer, httpx.Client, Merchant]]:
    hub = make_hub("sqlite", server={"allowed_domains": ["localhost"]})
    with LiveServer(hub) as server, httpx.Client(base_url=server.url) as api, \
            Merchant(server.url) as shop:
        # The hub's public address is where it listens, so the admin's snippet points there.
        hub.config = replace(hub.config, server=replace(hub.config.server, base_url=server.url))
        yield hub, server, api, shop


def referral_of(page: Any) -> Any:
    page.wait_for_function("window.hubReferral !== undefined && "
                           "(window.hubReferral === null || window.hubReferral.startsWith('clk_'))")
    return page.evaluate("window.hubReferral")


def test_visit_with_via_reload_without_it_checkout_credits_the_partner(browser, sites):  # noqa: F811
    hub, server, api, shop = sites
    partner = create_partner(api)
    context = browser.new_context(user_agent=BROWSER)
    page = context.new_page()
    # The operator copies the snippet from the admin and pastes it into the shop's pages.
    page.goto(f"{server.url}/admin/tracking")
    page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/tracking")
    shop.snippet = page.get_by_test_id("track-snippet").input_value()
    assert shop.snippet.startswith(f'<script src="{server.url}/track.js?v=')
    assert page.get_by_test_id("track-domains").inner_text() == "localhost"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-tracking.png"), full_page=True)
    context.clear_cookies()  # the admin's session is on the hub, not the shop

    page.goto(f"{shop.url}/pricing?via={partner['code']}")
    page.wait_for_function("typeof window.hubReferral === 'string'")
    referral = page.evaluate("window.hubReferral")
    assert referral.startswith("clk_")
    cookies = {c["name"]: c for c in context.cookies()}
    assert set(cookies) == {"hub_referral"}  # on the merchant's site, none from the hub
    assert cookies["hub_referral"]["domain"] == "localhost"
    assert cookies["hub_referral"]["value"].startswith(referral + ".")
    assert cookies["hub_referral"]["expires"] > time.time() + 89 * 86400
    assert cookies["hub_referral"]["sameSite"] == "Lax"
    # The id reaches Stripe's links, elements and the marked forms; other links are left alone.
    page.wait_for_function(f"document.getElementById('pay').href.includes('{referral}')")
    assert page.get_attribute("#pay", "href") == (
        f"https://buy.stripe.com/test_abc?prefilled_email=a%40b.test&client_reference_id={referral}")
    assert page.get_attribute("#other", "href") == "https://elsewhere.example.org/x"
    assert page.get_attribute("#table", "client-reference-id") == referral
    assert page.get_attribute("#button", "client-reference-id") == referral
    assert page.input_value("#signup input[name=client_reference_id]") == referral
    assert page.input_value("#named input[name=ref_id]") == referral
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "track-merchant-page.png"))

    # Later pages without ?via= keep the same referral and record no new click.
    page.goto(f"{shop.url}/checkout")
    assert referral_of(page) == referral
    page.reload()
    assert referral_of(page) == referral
    assert page.get_attribute("#button", "client-reference-id") == referral
    stats = link_stats(api, partner["id"])[partner["code"]]
    assert (stats["clicks"], stats["unique_clicks"]) == (1, 1)

    # Stripe reports the checkout with that id: the customer is the partner's, and its payment
    # earns the partner a commission.
    post_event(api, st.event("checkout.session.completed", st.checkout_completed(
        "cs_browser1", customer_id="cus_track", client_reference_id=referral,
        email="buyer@customer.test", subscription_id="sub_track")))
    rows = referrals(api, partner_id=partner["id"])
    assert [r["customer_ref"] for r in rows] == ["cus_track"]
    post_event(api, st.event("invoice.paid", st.invoice(
        "in_track", customer_id="cus_track", amount=4900, subscription_id="sub_track",
        charge_id="ch_track", shape="legacy")))
    assert balance(api, partner["id"])["pending"] == 980
    context.close()


def test_no_referral_no_cookie_and_a_foreign_origin_is_refused(browser, sites):  # noqa: F811
    hub, server, api, shop = sites
    partner = create_partner(api)
    context = browser.new_context(user_agent=BROWSER)
    page = context.new_page()
    page.goto(f"{shop.url}/")
    assert referral_of(page) is None
    page.goto(f"{shop.url}/?via=nobody-has-this")
    assert referral_of(page) is None
    assert context.cookies() == []
    assert page.get_attribute("#pay", "href") == (
        "https://buy.stripe.com/test_abc?prefilled_email=a%40b.test")
    context.close()

    # The same shop on a host name outside allowed_domains: the hub refuses, nothing is counted.
    foreign = browser.new_context(user_agent=BROWSER)
    page = foreign.new_page()
    page.goto(f"{shop.url.replace('localhost', '127.0.0.1')}/?via={partner['code']}")
    assert referral_of(page) is None
    assert foreign.cookies() == []
    foreign.close()
    # A headless browser announcing itself is a bot: no click, no cookie.
    robot = browser.new_context()
    page = robot.new_page()
    page.goto(f"{shop.url}/?via={partner['code']}")
    assert referral_of(page) is None
    assert robot.cookies() == []
    robot.close()
    assert link_stats(api, partner["id"])[partner["code"]]["clicks"] == 0


def test_a_visit_through_r_keeps_the_hubs_click_and_counts_it_once(browser, sites):  # noqa: F811
    hub, server, api, shop = sites
    partner = create_partner(api)
    link = build_link(api, partner["id"], destination=f"{shop.url}/landing")
    context = browser.new_context(user_agent=BROWSER)
    page = context.new_page()
    page.goto(f"{server.url}/r/{link['code']}")
    page.wait_for_url(f"{shop.url}/landing?**")
    arrived = dict(parse_qsl(urlsplit(page.url).query))
    assert arrived["ref"] == partner["code"] and arrived["click_id"].startswith("clk_")
    page.wait_for_function("typeof window.hubReferral === 'string'")
    assert page.evaluate("window.hubReferral") == arrived["click_id"]
    shop_cookie = [c for c in context.cookies() if c["domain"] == "localhost"]
    assert [c["name"] for c in shop_cookie] == ["hub_referral"]
    assert shop_cookie[0]["value"].startswith(arrived["click_id"] + ".")
    stats = link_stats(api, partner["id"])
    assert (stats[link["code"]]["clicks"], stats[partner["code"]]["clicks"]) == (1, 0)
    context.close()
