"""The real pages in headless Chromium (Debian's `chromium`, driven by Playwright for Python).

Each test starts the app with uvicorn on a free port, drives it like a person would, and saves a
screenshot of every page it visits, at desktop and phone widths, under tests/artifacts/.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from connectors import stripe_trigger as st
from hub.db.models import Partner, Payout, Referral
from hub.jobs.tick import run_tick
from tests.conftest import LiveServer, installer_headers, need
from tests.stripe_helpers import create_partner, operator_headers, post_event
from tests.web_helpers import PASSWORD, give_password

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).parent / "artifacts"
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
T0 = 1_767_225_600


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        need(f"needs Chromium at {CHROMIUM} (.ci/run does: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def live(make_hub: Any, tmp_path: Path) -> Iterator[tuple[Any, LiveServer, httpx.Client]]:
    hub = make_hub("sqlite", server={"materials_dir": str(tmp_path / "materials")})
    with LiveServer(hub) as server, httpx.Client(base_url=server.url) as api:
        yield hub, server, api


def shoot(page: Any, name: str) -> None:
    """A full-page screenshot at this width; then the same page at phone width."""
    ARTIFACTS.mkdir(exist_ok=True)
    for label, size in VIEWPORTS.items():
        page.set_viewport_size(size)
        page.screenshot(path=str(ARTIFACTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(VIEWPORTS["desktop"])


def log_in(page: Any, url: str, email: str) -> None:
    page.goto(f"{url}/portal/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{url}/portal/")


def sale(api: httpx.Client, code: str, cus: str = "cus_b1") -> dict[str, Any]:
    post_event(api, st.event("customer.created", st.customer(cus, email=f"{cus}@customer.test",
                                                             partner_code=code)))
    paid = st.event("invoice.paid", st.invoice(f"in_{cus}", customer_id=cus, amount=4900,
                                               subscription_id=f"sub_{cus}", charge_id=f"ch_{cus}",
                                               paid_at=T0, shape="legacy"))
    post_event(api, paid)
    return paid


def test_partner_logs_in_and_sees_a_commission_after_a_webhook(browser, live):
    hub, server, api = live
    partner = create_partner(api)
    give_password(hub, partner["id"])
    page = browser.new_page(viewport=VIEWPORTS["desktop"], accept_downloads=True)
    log_in(page, server.url, "ann@partners.test")
    assert page.get_by_test_id("total").inner_text() == "$0.00"

    paid = sale(api, partner["code"])
    page.reload()
    assert page.get_by_test_id("total").inner_text() == "$9.80"
    assert page.get_by_test_id("pending").inner_text() == "$9.80"
    assert page.get_by_role("button", name="Withdraw").is_disabled()
    reason = page.locator("#withdraw-reason").inner_text()  # the real reason: money on hold
    assert "Your $9.80 is still on hold" in reason and "below" not in reason
    page.get_by_label("Period").select_option("12m")  # the picker submits itself
    page.wait_for_url("**period=12m")
    assert page.get_by_test_id("chart-commission").locator("svg rect.chart-bar").count() == 12
    shoot(page, "portal-dashboard")

    page.get_by_role("link", name="Clients").click()
    assert page.locator("table.rows tbody tr").count() == 1
    shoot(page, "portal-clients")
    page.locator("table.rows tbody tr a").first.click()
    assert "20% of $49.00" in page.content()
    shoot(page, "portal-client")

    page.get_by_role("link", name="Transactions").click()
    assert "20% of $49.00" in page.get_by_test_id("commissions").inner_text()
    shoot(page, "portal-transactions")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    text = Path(download.value.path()).read_text()
    assert paid["id"] in text and "9.80" in text

    for name in ("Links", "Payouts", "Materials", "Settings"):
        page.get_by_role("link", name=name, exact=True).click()
        assert page.get_by_role("heading", level=1).inner_text() == name
        shoot(page, f"portal-{name.lower()}")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/portal/login")
    shoot(page, "portal-login")
    page.close()


def test_a_second_partner_cannot_open_the_first_ones_pages(browser, live):
    hub, server, api = live
    ann = create_partner(api)
    bob = create_partner(api, email="bob@partners.test", name="Bob")
    give_password(hub, ann["id"])
    give_password(hub, bob["id"])
    sale(api, ann["code"])
    with hub.sessions() as session:
        ann_referral = session.scalar(select(Referral.id).where(Referral.partner_id == ann["id"]))

    page = browser.new_page(viewport=VIEWPORTS["desktop"])
    log_in(page, server.url, "bob@partners.test")
    response = page.goto(f"{server.url}/portal/referrals/{ann_referral}")
    assert response.status == 404
    shoot(page, "portal-forbidden")
    page.goto(f"{server.url}/portal/referrals")
    assert "No clients yet" in page.content()
    assert page.goto(f"{server.url}/admin/").url.endswith("/admin/login?next=/admin/")
    page.close()


def test_operator_logs_in_and_approves_an_application(browser, live):
    hub, server, api = live
    applicant = create_partner(api, email="cleo@partners.test", name="Cleo")
    with hub.transaction() as session:
        session.get(Partner, applicant["id"]).status = "applied"
    page = browser.new_page(viewport=VIEWPORTS["desktop"])
    page.goto(f"{server.url}/admin/applications")
    page.get_by_label("Admin token").fill("admin-test-token-0123456789")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/applications")
    shoot(page, "admin-applications")
    page.get_by_role("button", name="Approve cleo@partners.test").click()
    page.wait_for_url("**/admin/applications")
    assert "cleo@partners.test is now active" in page.content()
    with hub.sessions() as session:
        assert session.get(Partner, applicant["id"]).status == "active"

    for name in ("Programs", "Partners", "Invitations", "Payouts", "Self-referrals", "Materials",
                 "Exports", "Audit log"):
        page.get_by_role("link", name=name, exact=True).click()
        shoot(page, f"admin-{name.lower().replace(' ', '-')}")
    assert "partner.approve" in page.content()
    page.get_by_role("link", name="Partners", exact=True).click()
    page.get_by_role("link", name="Cleo").click()
    shoot(page, "admin-partner")
    page.close()


def test_partner_builds_a_link_earns_withdraws_and_the_operator_approves(browser, live):
    """The whole flow: log in, build a link, a webhook books a commission, the hold passes, the
    partner asks to be paid, the operator approves; another partner sees none of it."""
    hub, server, api = live
    ann = create_partner(api, paypal_email="ann@pay.test")
    bob = create_partner(api, email="bob@partners.test", name="Bob")
    give_password(hub, ann["id"])
    give_password(hub, bob["id"])
    page = browser.new_page(viewport=VIEWPORTS["desktop"])
    log_in(page, server.url, "ann@partners.test")
    page.get_by_role("link", name="Links", exact=True).click()
    page.get_by_label("Destination").fill("https://example.com/pricing")
    page.get_by_label("Description").fill("newsletter")
    page.get_by_role("button", name="Create link").click()
    page.wait_for_url("**/portal/links#built")
    built = page.locator("li.built input[readonly]").input_value()
    assert "/r/" in built and "&lt;a href=" not in page.locator("li.built textarea").input_value()
    shoot(page, "portal-link-built")

    code = built.rsplit("/r/", 1)[1]
    for cus in ("cus_f1",):  # a visitor signs up with the link's code, then pays
        assert api.post("/api/v1/signups", json={"code": code, "email": f"{cus}@c.test",
                                                 "customer_ref": cus,
                                                 "signed_up_at": "2025-12-31T00:00:00Z"},
                        headers=installer_headers()).status_code in (200, 201)
        post_event(api, st.event("invoice.paid", st.invoice(
            f"in_{cus}", customer_id=cus, amount=30000, subscription_id=f"sub_{cus}",
            charge_id=f"ch_{cus}", paid_at=T0, shape="legacy")))
    page.get_by_role("link", name="Dashboard").click()
    assert page.get_by_test_id("total").inner_text() == "$60.00"
    run_tick(hub, datetime.fromtimestamp(T0, UTC) + timedelta(days=90))
    page.get_by_role("link", name="Payouts", exact=True).click()
    page.get_by_role("button", name="Withdraw").click()
    page.wait_for_url("**/portal/payouts")
    assert "Withdrawal of $60.00 requested" in page.content()
    assert page.get_by_role("button", name="Withdraw").is_disabled()
    shoot(page, "portal-withdrawal-requested")
    with hub.sessions() as session:
        payout_id = session.scalars(select(Payout.id)).one()

    operator = browser.new_page(viewport=VIEWPORTS["desktop"])
    operator.goto(f"{server.url}/admin/payouts")
    operator.get_by_label("Admin token").fill("admin-test-token-0123456789")
    operator.get_by_role("button", name="Log in").click()
    operator.wait_for_url("**/admin/payouts")
    shoot(operator, "admin-payouts-request")
    operator.locator(f'[data-testid="requests"] tr[data-payout="{payout_id}"]').get_by_role(
        "button", name="Approve").click()
    operator.wait_for_url("**/admin/payouts")
    assert f"Payout {payout_id} is now" in operator.content()
    with hub.sessions() as session:
        assert session.get(Payout, payout_id).status in ("queued", "dry_run")
    for name in ("Attribution", "Webhooks"):
        operator.get_by_role("link", name=name, exact=True).click()
        shoot(operator, f"admin-{name.lower()}")
    operator.goto(f"{server.url}/admin/partners/{ann['id']}")
    shoot(operator, "admin-partner-derivation")
    operator.close()

    page.context.clear_cookies()
    log_in(page, server.url, "bob@partners.test")
    page.goto(f"{server.url}/portal/links")
    assert code not in page.content()
    page.goto(f"{server.url}/portal/payouts")
    assert "$60.00" not in page.content()
    assert "Nothing to withdraw yet" in page.locator("#withdraw-reason").inner_text()
    page.close()


def test_public_directory_and_agreement_pages(browser, make_hub, tmp_path):
    hub = make_hub("sqlite", programs={"odoopbx": {"plugin": "odoopbx"},
                                       "ctm": {"plugin": "calltrackingmetrics"}})
    with LiveServer(hub) as server, httpx.Client(base_url=server.url) as api:
        listed = create_partner(api, program="odoopbx", kind="partner", name="PBX Experts",
                                website="https://pbx.example.com", email="p@pbx.test")
        ctm = create_partner(api, program="ctm", email="ctm@partners.test")
        for who in (listed, ctm):
            api.post(f"/api/v1/partners/{who['id']}/approve", headers=operator_headers())
        give_password(hub, ctm["id"])
        page = browser.new_page(viewport=VIEWPORTS["desktop"])
        page.goto(f"{server.url}/partners/odoopbx")
        assert "PBX Experts" in page.content()
        shoot(page, "public-directory")
        page.goto(f"{server.url}/portal/login")
        page.get_by_role("textbox", name="E-mail").fill("ctm@partners.test")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/portal/agreement")
        shoot(page, "portal-agreement")
        page.get_by_role("button", name="Accept the agreement").click()
        page.wait_for_url(f"{server.url}/portal/")
        page.close()


def test_dashboard_copy_button_copies_the_whole_default_link(browser, live):
    """CrazyCall and CTM: the partner grabs the default link (the full URL) from the dashboard."""
    from playwright.sync_api import expect

    hub, server, api = live
    partner = create_partner(api)
    give_password(hub, partner["id"])
    context = browser.new_context(viewport=VIEWPORTS["desktop"],
                                  permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    log_in(page, server.url, "ann@partners.test")
    url = f"{hub.config.server.base_url}/r/{partner['code']}"
    assert page.get_by_label("Your link").input_value() == url
    assert "14-day trial" in page.get_by_test_id("default-trial").inner_text()
    button = page.locator('button[data-copy="#default-link"]')
    button.click()
    expect(button).to_have_text("Copied")  # once the clipboard took it (a promise)
    assert page.evaluate("navigator.clipboard.readText()") == url
    shoot(page, "portal-dashboard-share")
    context.close()


def log_in_to(page: Any, url: str, email: str, program: str) -> None:
    """The log-in of a hub with several programs: the e-mail, then which program."""
    page.goto(f"{url}/portal/login")
    page.locator("#email").fill(email)
    page.locator("#program").select_option(program)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{url}/portal/")


def test_each_programs_lists_in_the_browser(browser, make_hub, tmp_path):
    """CallPage's clients list with "Expires" and its links page for all time; Callbell's
    Rewards stats with installs and conversions; CrazyCall's commissions with their plan."""
    hub = make_hub("sqlite", programs={"callpage": {"plugin": "callpage"},
                                       "callbell": {"plugin": "callbell"},
                                       "crazycall": {"plugin": "crazycall"}},
                   server={"materials_dir": str(tmp_path / "materials")})
    with LiveServer(hub) as server, httpx.Client(base_url=server.url) as api:
        callpage = create_partner(api, "callpage", email="cp@partners.test")
        callbell = create_partner(api, "callbell", email="cb@partners.test")
        crazycall = create_partner(api, "crazycall", email="cc@partners.test")
        for partner in (callpage, callbell, crazycall):
            give_password(hub, partner["id"])
        post_event(api, st.event("customer.created", st.customer(
            "cus_cp", email="cp@customer.test", partner_code=callpage["code"]), created=T0))
        post_event(api, st.event("customer.subscription.created", st.subscription(
            "sub_cp", customer_id="cus_cp", status="trialing", plan="pro",
            trial_end=T0 + 14 * 86_400), created=T0 + 60))
        post_event(api, st.event("customer.created", st.customer(
            "cus_cb", email="cb@customer.test", partner_code=callbell["code"])))
        installed = api.post("/api/v1/installs", headers=installer_headers(), json={
            "install_id": "i-1", "product": "widget", "site": "a.test", "customer_ref": "cus_cb"})
        assert installed.status_code == 201, installed.text
        post_event(api, st.event("customer.created", st.customer(
            "cus_cc", email="cc@customer.test", partner_code=crazycall["code"])))
        post_event(api, st.event("invoice.paid", st.invoice(
            "in_cc", customer_id="cus_cc", amount=4900, subscription_id="sub_cc",
            charge_id="ch_cc", paid_at=T0, plan="plan_b", shape="legacy")))

        page = browser.new_page(viewport=VIEWPORTS["desktop"])
        log_in_to(page, server.url, "cp@partners.test", "callpage")
        page.get_by_role("link", name="Clients").click()
        headers = page.locator("table.rows thead th").all_inner_texts()
        assert "Expires" in headers
        assert page.get_by_test_id("expires").inner_text() == "2026-01-15"
        shoot(page, "portal-clients-expires")
        page.get_by_role("link", name="Links", exact=True).click()
        assert "all time" not in page.get_by_test_id("range").inner_text()
        page.get_by_test_id("all-time").click()
        page.wait_for_url("**period=all")
        assert page.get_by_test_id("range").inner_text().startswith("Counts are for all time")
        page.get_by_role("button", name="Log out").click()

        log_in_to(page, server.url, "cb@partners.test", "callbell")
        assert page.get_by_test_id("installs").inner_text() == "1"
        assert page.get_by_test_id("conversions").inner_text() == "1"
        shoot(page, "portal-rewards-installs")
        page.get_by_role("button", name="Log out").click()

        log_in_to(page, server.url, "cc@partners.test", "crazycall")
        page.get_by_role("link", name="Transactions").click()
        assert page.get_by_test_id("plan").all_inner_texts() == ["plan_b"]
        page.close()
