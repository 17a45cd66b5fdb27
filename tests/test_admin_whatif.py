"""The admin's what-if form (/admin/whatif) and a commission's whole derivation
(/admin/commissions/{id}), through the TestClient and once in headless Chromium."""

from __future__ import annotations

import re
from typing import Any

import pytest

from connectors import stripe_trigger as st
from hub.web.admin_whatif import parse_settings
from tests.stripe_helpers import commissions, create_partner, post_event
from tests.test_browser import T0, VIEWPORTS, browser, live, sale, shoot  # noqa: F401 (fixtures)
from tests.test_whatif import crazycall_history, dump
from tests.web_helpers import admin_login, csrf_of, post_form


def simulate(client: Any, **fields: str) -> Any:
    return post_form(client, "/admin/whatif", "/admin/whatif",
                     **{"program": "crazycall", "settings": "", "since": "", "until": "",
                        **fields})


def cells(html: str) -> list[list[str]]:
    """The what-if table's rows as lists of cell texts."""
    table = html[html.index('id="whatif-table"'):]
    table = table[:table.index("</table>")]
    cell = re.compile(r"<t[dh][^>]*>(.*?)</t[dh]>")
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in cell.findall(row)]
            for row in re.findall(r"<tr>(.*?)</tr>", table)]


def test_the_form_needs_an_operator_session_and_is_in_the_navigation(client):
    assert client.get("/admin/whatif", follow_redirects=False).headers["location"] == (
        "/admin/login?next=/admin/whatif")
    admin_login(client)
    page = client.get("/admin/whatif")
    assert page.status_code == 200
    assert '<option selected>crazycall</option>' not in page.text  # nothing chosen yet
    assert 'name="settings"' in page.text and csrf_of(page.text)
    assert 'href="/admin/whatif"' in client.get("/admin/partners").text


def test_rate_20_to_25_shows_partners_totals_and_the_monthly_chart(client, hub):
    ids = crazycall_history(client)
    admin_login(client)
    before = dump(hub)

    page = simulate(client, settings="# raise it\nrate=0.25\n")

    assert page.status_code == 200, page.text
    assert dump(hub) == before
    rows = cells(page.text)
    assert rows[0] == ["Partner", "Currency", "Current", "Simulated", "Difference"]
    assert ["Ann", "USD", "$27.64", "$34.55", "+$6.91"] in rows
    assert any(r[1:] == ["EUR", "€20.00", "€25.00", "+€5.00"] for r in rows)
    assert ["Total", "USD", "$27.64", "$34.55", "+$6.91"] in rows
    assert f'href="/admin/partners/{ids["ann"]}"' in page.text
    # one chart per currency, current and simulated as two lines in one frame
    assert page.text.count('<svg class="chart"') == 2
    assert page.text.count('class="chart-line current"') == 2
    assert page.text.count('class="chart-line simulated"') == 2
    assert "Commission per month in USD: current and simulated" in page.text
    assert "<code>rate=0.25</code>" in page.text


def test_the_window_limits_what_is_compared(client):
    crazycall_history(client)
    admin_login(client)
    page = simulate(client, settings="rate=0.25", until="2026-02-01")
    rows = cells(page.text)
    assert ["Total", "USD", "$7.84", "$9.80", "+$1.96"] in rows
    assert not any("EUR" in r for r in rows)


@pytest.mark.parametrize("fields, named", [
    ({"settings": "rat=0.3"}, "unknown key 'rat'"),
    ({"settings": "rate=abc"}, "rate must be a number"),
    ({"settings": "rate=2"}, "rate must be between 0 and 1"),
    ({"settings": "rate=0.25\nrate"}, "settings line 2 ('rate'): expected key=value"),
    ({"settings": "plugin=x"}, "plugin"),
    ({"since": "yesterday"}, "since: 'yesterday' is not a date"),
    ({"program": "nope"}, "no enabled program 'nope'"),
])
def test_bad_input_is_a_422_on_the_form_naming_the_key(client, fields, named):
    admin_login(client)
    page = simulate(client, **fields)
    assert page.status_code == 422
    error = re.search(r'id="whatif-error">(.*?)</div>', page.text, re.S)
    assert error and named in error.group(1).replace("&#39;", "'")
    assert 'name="settings"' in page.text  # the form again, with what was typed
    assert "whatif-table" not in page.text


def test_a_post_without_the_csrf_token_is_refused(client):
    admin_login(client)
    response = client.post("/admin/whatif", data={"program": "crazycall", "settings": ""})
    assert response.status_code == 403


def test_parse_settings_skips_blank_lines_and_comments():
    assert parse_settings("\n# note\n rate = 0.25 \n\nminimum_payout=6000") == {
        "rate": "0.25", "minimum_payout": "6000"}


def test_the_partner_page_links_each_line_to_its_whole_derivation(client):
    ids = crazycall_history(client)
    admin_login(client)
    lines = commissions(client, ids["ann"])
    refund = next(line for line in lines if line["amount"] < 0)
    earning = next(line for line in lines if line["id"] == refund["reverses"])
    partner_page = client.get(f"/admin/partners/{ids['ann']}").text
    assert f'href="/admin/commissions/{earning["id"]}"' in partner_page

    page = client.get(f"/admin/commissions/{earning['id']}")
    assert page.status_code == 200
    text = page.text.replace("&#39;", "'")
    assert "20% of $49.00 paid on 2026-01-01 (in_a1, payment 1) = $9.80" in text
    for fact in ("recurring_percentage", "crazycall", "base $49.00", "rate 20%",
                 "the customer's payment number 1", "invoice.paid", "in_a1", "still in force",
                 f'href="/admin/commissions/{refund["id"]}"', "Reversed by"):
        assert fact in text, fact
    reversal = client.get(f"/admin/commissions/{refund['id']}").text
    assert "Refund of $9.80 of $49.00 (in_a1) reverses $1.96 of $9.80" in reversal
    assert "refund_pro_rata" in reversal and "charge.refunded" in reversal
    assert f'href="/admin/commissions/{earning["id"]}"' in reversal
    assert client.get("/admin/commissions/com_nope").status_code == 404


def test_operator_simulates_a_rate_change_in_the_browser(browser, live):  # noqa: F811
    hub, server, api = live
    partner = create_partner(api, email="ann@partners.test", name="Ann")
    sale(api, partner["code"], "cus_w1")
    sale(api, partner["code"], "cus_w2")
    post_event(api, st.event("invoice.paid", st.invoice(  # a second month for the chart
        "in_feb", customer_id="cus_w1", amount=9900, subscription_id="sub_cus_w1",
        charge_id="ch_feb", paid_at=T0 + 31 * 86400, shape="legacy")))
    page = browser.new_page(viewport=VIEWPORTS["desktop"])
    page.goto(f"{server.url}/admin/whatif")
    page.get_by_label("Admin token").fill("admin-test-token-0123456789")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/whatif")
    page.get_by_label("Program").select_option("crazycall")
    page.get_by_label("Changed settings").fill("rate=0.25")
    page.get_by_role("button", name="Simulate").click()
    page.wait_for_selector("#whatif-table")
    table = page.locator("#whatif-table").inner_text()
    # 2 x 20% of $49.00 + 20% of $99.00 = $39.40; at 25%: $49.25
    assert "$39.40" in table and "$49.25" in table and "+$9.85" in table
    assert page.locator("svg.chart polyline.chart-line.simulated").count() == 1
    assert page.locator("svg.chart circle.chart-dot.current").count() == 2
    shoot(page, "admin-whatif")
    page.get_by_label("Changed settings").fill("rat=0.3")
    page.get_by_role("button", name="Simulate").click()
    page.wait_for_selector("#whatif-error")
    assert "unknown key 'rat'" in page.locator("#whatif-error").inner_text()
    page.goto(f"{server.url}/admin/partners/{partner['id']}")
    page.get_by_role("link", name="20% of $49.00").first.click()
    page.wait_for_url("**/admin/commissions/*")
    assert "recurring_percentage" in page.content()
    shoot(page, "admin-commission")
    page.close()
