"""Issue 19's joining pages in headless Chromium: an ambassador enrolled by a webhook follows its
mailed link, chooses a password and reaches its Rewards area; a CTM affiliate reads the
program's own agreement, accepts it, and is asked again when the version changes."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors import stripe_trigger as st
from hub.ingest.whatif import simulated_program
from hub.jobs.queue import queue_of
from tests.conftest import LiveServer
from tests.stripe_helpers import create_partner, operator_headers, post_event
from tests.test_browser import VIEWPORTS, browser, shoot  # noqa: F401 - the browser fixture
from tests.web_helpers import PASSWORD, give_password

pytestmark = pytest.mark.browser


def mailed_link(hub: Any, to: str) -> str:
    queue_of(hub).join()
    for path in sorted(Path(hub.config.email.dir).glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        if str(message["To"]) == to:
            text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            found = re.search(r"http://hub\.test(/portal/reset/\S+)", text)
            assert found
            return found.group(1)
    raise AssertionError(f"no mail to {to}")


def log_in(page: Any, url: str, email: str, password: str) -> None:
    page.goto(f"{url}/portal/login")
    page.get_by_role("textbox", name="E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_an_ambassador_sets_its_password_from_the_mail(browser, make_hub):  # noqa: F811
    hub = make_hub("sqlite", programs={"callbell": {"plugin": "callbell"}})
    with LiveServer(hub) as server, httpx.Client(base_url=server.url) as api:
        post_event(api, st.event("customer.created", st.customer("cus_amb",
                                                                 email="amb@shop.test")))
        link = mailed_link(hub, "amb@shop.test")
        page = browser.new_page(viewport=VIEWPORTS["desktop"])
        page.goto(f"{server.url}{link}")
        shoot(page, "portal-set-password")
        page.get_by_label("New password").fill("ambassador secret")
        page.get_by_label("Once more").fill("ambassador secret")
        page.get_by_role("button", name="Set password").click()
        page.wait_for_url(f"{server.url}/portal/login")
        log_in(page, server.url, "amb@shop.test", "ambassador secret")
        page.wait_for_url(f"{server.url}/portal/")
        assert page.get_by_role("heading", name="Dashboard").is_visible()
        page.close()


def test_a_new_agreement_version_is_asked_for_again(browser, make_hub):  # noqa: F811
    hub = make_hub("sqlite", programs={"ctm": {
        "plugin": "calltrackingmetrics", "agreement_version": "2026-01",
        "agreement_text": "Promote the product honestly.\n\nNo brand bidding.",
        "agreement_url": "https://example.com/affiliate-agreement"}})
    with LiveServer(hub) as server, httpx.Client(base_url=server.url) as api:
        ctm = create_partner(api, program="ctm", email="ctm@partners.test")
        api.post(f"/api/v1/partners/{ctm['id']}/approve", headers=operator_headers())
        give_password(hub, ctm["id"])
        page = browser.new_page(viewport=VIEWPORTS["desktop"])
        log_in(page, server.url, "ctm@partners.test", PASSWORD)
        page.wait_for_url("**/portal/agreement")
        section = page.locator("section.agreement")
        assert "No brand bidding." in section.inner_text()
        assert "version 2026-01" in section.inner_text()
        assert page.get_by_role("link", name=re.compile("Read the full partner agreement")) \
            .get_attribute("href") == "https://example.com/affiliate-agreement"
        shoot(page, "portal-agreement-versioned")
        page.get_by_role("button", name="Accept the agreement").click()
        page.wait_for_url(f"{server.url}/portal/")
        hub.programs = {**hub.programs, "ctm": simulated_program(
            hub, "ctm", {"agreement_version": "2026-07"})}
        page.goto(f"{server.url}/portal/links")
        page.wait_for_url("**/portal/agreement")
        assert "has changed since you accepted it" in section.inner_text()
        assert "version 2026-07" in section.inner_text()
        page.get_by_role("button", name="Accept the agreement").click()
        page.wait_for_url(f"{server.url}/portal/")
        accepted = api.get(f"/api/v1/partners/{ctm['id']}", headers=operator_headers()).json()
        assert accepted["agreement_version"] == "2026-07"
        page.close()
