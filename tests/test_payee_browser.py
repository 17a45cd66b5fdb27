"""Issue 19 in Chromium: a referral signs up saying it has no PayPal account, finds that choice
on its settings page, then adds a PayPal address, which waits for its confirmation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from hub.db.models import Partner
from tests.conftest import LiveServer
from tests.test_browser import browser, shoot  # noqa: F401  (the module's Chromium fixture)
from tests.web_helpers import PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture
def live(make_hub: Any, tmp_path: Path) -> Iterator[tuple[Any, LiveServer]]:
    hub = make_hub("sqlite", programs={"odoopbx": {"plugin": "odoopbx", "currency": "EUR"}})
    with LiveServer(hub) as server:
        yield hub, server


def test_no_paypal_at_sign_up_then_an_address_that_waits_for_its_link(browser, live):  # noqa: F811
    hub, server = live
    page = browser.new_page()
    page.goto(f"{server.url}/portal/signup?program=odoopbx")
    page.get_by_label("Name or company").fill("Rae")
    page.get_by_label("E-mail", exact=True).fill("rae@hobby.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("PayPal e-mail").fill("any@address.test")  # as the seed says to
    page.get_by_label("I have no PayPal account").check()
    page.get_by_role("button", name="Create my account").click()
    page.wait_for_url(f"{server.url}/portal/")
    assert "You have no PayPal account" in page.inner_text("main")

    page.goto(f"{server.url}/portal/settings")
    status = page.locator("[data-payee]")
    assert status.get_attribute("data-payee") == "manual"
    assert "paid by hand" in status.inner_text()
    shoot(page, "payee-settings-manual")

    page.fill("#paypal_email", "rae@pay.test")
    page.fill("#pp_password", PASSWORD)
    page.get_by_role("button", name="Add PayPal e-mail").click()
    page.wait_for_url(f"{server.url}/portal/settings")
    status = page.locator("[data-payee]")
    assert status.get_attribute("data-payee") == "unconfirmed"
    assert "we sent a mail to rae@pay.test" in status.inner_text()
    assert page.get_by_role("button", name="Send the mail again").is_visible()
    shoot(page, "payee-settings-unconfirmed")
    with hub.sessions() as s:
        rae = s.scalars(select(Partner).where(Partner.email == "rae@hobby.test")).one()
        assert (rae.payout_method, rae.paypal_email, rae.paypal_confirmed_at) == (
            "paypal", "rae@pay.test", None)
    page.close()
