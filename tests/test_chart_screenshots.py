"""The charts in headless Chromium at 1280 and 390 px: the operator's home, the partner dashboard
and the what-if page (one month and two). Saves tests/artifacts/charts-*.png (committed, so a
change in how the charts look shows in review) and checks what a screenshot cannot prove: the
chart text stays readable (between 9 and 16 px on screen at both widths) and no page scrolls
sideways on a phone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from hub.db.models import PaymentRecord, ProviderEvent
from tests.conftest import ADMIN_TOKEN, LiveServer
from tests.test_admin_home import _earn, ago, seed
from tests.test_browser import VIEWPORTS, browser, shoot  # noqa: F401 (fixture)
from tests.test_whatif import crazycall_history
from tests.web_helpers import PASSWORD, give_password

pytestmark = pytest.mark.browser


@pytest.fixture
def live(make_hub: Any, tmp_path: Path) -> Iterator[tuple[Any, LiveServer, httpx.Client]]:
    hub = make_hub("sqlite", server={"materials_dir": str(tmp_path / "materials")},
                   programs={"crazycall": {"plugin": "crazycall"},
                             "closed": {"plugin": "crazycall", "self_signup": False,
                                        "currency": "EUR", "locale": "de"}})
    with LiveServer(hub) as server, httpx.Client(base_url=server.url) as api:
        yield hub, server, api


def a_year_of_sales(hub: Any, ids: dict[str, str]) -> None:
    """A payment and a commission in most of the last 12 months, so the charts have a shape."""
    with hub.transaction() as s:
        event = s.query(ProviderEvent).filter_by(event_id="evt_seed").one()
        s.execute(insert(PaymentRecord), [
            dict(provider="stripe", ref=f"in_year_{m}", customer_id=901,
                 amount=4900 + 1000 * (m % 5), gross_amount=4900, currency="USD",
                 occurred_at=ago(30 * m + 12), event_id=event.id)
            for m in range(11) if m != 4])
        for m in range(11):
            _earn(s, "crazycall", ids["ann"], 980 + 200 * (m % 4), 30 * m + 12, "USD",
                  release=m > 2)


def text_heights(page: Any) -> list[float]:
    """The on-screen height of every chart label that is shown, in CSS pixels."""
    return page.evaluate("""() => [...document.querySelectorAll('svg.chart text')]
        .filter(t => getComputedStyle(t).display !== 'none')
        .map(t => t.getBoundingClientRect().height)""")


def check_readable(page: Any) -> None:
    for label, size in VIEWPORTS.items():
        page.set_viewport_size(size)
        heights = text_heights(page)
        assert heights, "no chart text on the page"
        # a 12px font is about 14px tall; 40px letters were the old bug
        assert all(9 <= h <= 19 for h in heights), (label, sorted(set(heights)))
        overflow = page.evaluate("() => document.documentElement.scrollWidth")
        assert overflow <= size["width"], (label, overflow)
    page.set_viewport_size(VIEWPORTS["desktop"])


def test_chart_screenshots(browser, live):  # noqa: F811
    hub, server, api = live
    crazycall_history(api)  # January and February 2026: the what-if's history
    operator = browser.new_page(viewport=VIEWPORTS["desktop"])
    operator.goto(f"{server.url}/admin/login")
    operator.get_by_label("Admin token").fill(ADMIN_TOKEN)
    operator.get_by_role("button", name="Log in").click()
    operator.wait_for_url(f"{server.url}/admin/")
    operator.goto(f"{server.url}/admin/whatif")
    operator.get_by_label("Program").select_option("crazycall")
    operator.get_by_label("Changed settings").fill("rate=0.25")
    operator.get_by_label("Earned before").fill("2026-02-01")
    operator.get_by_role("button", name="Simulate").click()
    operator.wait_for_selector("#whatif-table")
    values = operator.locator("svg.chart text.chart-value").all_text_contents()
    assert sorted(values) == ["current $7.84", "simulated $9.80"]
    check_readable(operator)
    shoot(operator, "charts-whatif-one-month")
    operator.get_by_label("Earned before").fill("")
    operator.get_by_role("button", name="Simulate").click()
    operator.wait_for_selector("#whatif-table")
    check_readable(operator)
    shoot(operator, "charts-whatif")
    ids = seed(hub)  # after the what-if: its rows have no events to replay
    a_year_of_sales(hub, ids)
    operator.goto(f"{server.url}/admin/")
    assert operator.get_by_test_id("chart-revenue-crazycall-USD").locator(
        "svg rect.chart-bar").count() == 12
    check_readable(operator)
    shoot(operator, "charts-admin-home")
    operator.close()

    give_password(hub, ids["ann"])
    page = browser.new_page(viewport=VIEWPORTS["desktop"])
    page.goto(f"{server.url}/portal/login")
    page.get_by_label("E-mail", exact=True).fill("ann@p.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{server.url}/portal/")
    page.get_by_label("Period").select_option("12m")
    page.wait_for_url("**period=12m")
    assert page.get_by_test_id("chart-commission").locator("svg rect.chart-bar").count() == 12
    check_readable(page)
    shoot(page, "charts-portal-dashboard")
    page.get_by_label("Period").select_option("30d")
    page.wait_for_url("**period=30d")
    check_readable(page)
    shoot(page, "charts-portal-dashboard-30d")
    page.close()
