"""Issue 19 in Chromium: an odoopbx partner follows the footer's Help link to its program's
contacts, and its Clients page marks the clients it supports; a referral's does not."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.stripe_helpers import create_partner, operator_headers
from tests.test_browser import browser, log_in, shoot  # noqa: F401 - the shared Chromium fixture
from tests.web_helpers import give_password

pytestmark = pytest.mark.browser


@pytest.fixture
def live(make_hub: Any) -> Iterator[tuple[Any, LiveServer, httpx.Client]]:
    hub = make_hub("sqlite", programs={"odoopbx": {
        "plugin": "odoopbx", "contact_email": "partners@odoopbx.test",
        "support_url": "https://odoopbx.test/support"}})
    with LiveServer(hub) as server, httpx.Client(base_url=server.url) as api:
        yield hub, server, api


def test_footer_help_and_supported_clients(browser, live):  # noqa: F811
    hub, server, api = live
    pia = create_partner(api, "odoopbx", email="pia@partners.test", name="Pia", kind="partner",
                         invited=True)
    rex = create_partner(api, "odoopbx", email="rex@referrals.test", name="Rex", kind="referral")
    for partner, customer in ((pia, "cus_p1"), (rex, "cus_r1")):
        give_password(hub, partner["id"])
        assert api.post("/api/v1/referrals", headers=operator_headers(), json={
            "partner_id": partner["id"], "customer_ref": customer}).status_code == 201
    page = browser.new_page()
    log_in(page, server.url, "pia@partners.test")
    footer = page.locator("footer")
    assert "partners@odoopbx.test" in footer.inner_text()
    footer.get_by_role("link", name="Help").click()
    page.wait_for_url(f"{server.url}/portal/help")
    assert page.get_by_role("link", name="https://odoopbx.test/support").is_visible()
    assert page.get_by_text("the request is sent on to you").is_visible()
    shoot(page, "portal-help")
    page.get_by_role("link", name="Clients").first.click()
    page.wait_for_url(f"{server.url}/portal/referrals")
    assert page.get_by_role("columnheader", name="Support").is_visible()
    assert page.get_by_text("You support this client").count() == 1
    shoot(page, "portal-clients-supported")
    page.close()
    other = browser.new_page()
    log_in(other, server.url, "rex@referrals.test")
    other.goto(f"{server.url}/portal/referrals")
    assert other.locator("tbody tr").count() == 1
    assert other.get_by_text("You support this client").count() == 0
    other.close()
