"""The operator's home page (/admin/): each program's money per currency, funnel and top partners,
through the HTTP app on both backends; and the structure of every chart's SVG (axes labelled
with zero and the maximum, month names, a hover title per point, everything inside the plot box,
a readable single point) on the admin home, the partner dashboard and the what-if page."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, insert
from starlette.testclient import TestClient

from hub.app import create_app
from hub.clock import utcnow
from hub.db.models import (
    Click,
    Commission,
    Customer,
    Partner,
    PaymentRecord,
    Payout,
    ProviderEvent,
    Referral,
    new_id,
)
from hub.ledger import entries as ledger
from hub.ledger.checkpoints import checkpoint_ledger
from hub.runtime import Hub
from hub.web import charts
from tests.test_admin_whatif import simulate
from tests.test_whatif import crazycall_history
from tests.web_helpers import admin_login, give_password, portal_login

NOW = utcnow()
MONTH = re.compile(r"^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4}$")


@pytest.fixture
def web(make_hub: Any, backend: str) -> Hub:
    return make_hub(backend, programs={"crazycall": {"plugin": "crazycall"},
                                       "closed": {"plugin": "crazycall", "self_signup": False,
                                                  "currency": "EUR", "locale": "de"}})


@pytest.fixture
def admin(web: Hub) -> Any:
    with TestClient(create_app(web)) as c:
        admin_login(c)
        yield c


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def _earn(s: Any, program: str, partner_id: str, amount: int, days: float, currency: str,
          release: bool = False) -> None:
    line = new_id("com")
    s.add(Commission(id=line, program=program, partner_id=partner_id, key=line, amount=amount,
                     currency=currency, earned_at=ago(days), available_at=ago(days),
                     rule={}, created_at=ago(days)))
    s.flush()
    ledger.post(s, [("pending", amount)], partner_id=partner_id, currency=currency, kind="earn",
                commission_id=line, line_id=line)
    if release:
        ledger.move(s, amount, "pending", "payable", partner_id=partner_id, currency=currency,
                    kind="release", commission_id=line, line_id=line)


def seed(hub: Hub) -> dict[str, str]:
    """Two programs: crazycall (USD) with three partners, closed (EUR) with one."""
    with hub.transaction() as s:
        ann = Partner(program="crazycall", code="ann", email="ann@p.test", name="Ann",
                      created_at=ago(5))
        bob = Partner(program="crazycall", code="bob", email="bob@p.test", name="Bob",
                      created_at=ago(60))
        cid = Partner(program="crazycall", code="cid", email="cid@p.test", status="applied",
                      created_at=ago(2))
        dan = Partner(program="closed", code="dan", email="dan@p.test", name="Dan",
                      created_at=ago(200))
        event = ProviderEvent(provider="stripe", event_id="evt_seed", type="seed",
                              occurred_at=NOW, received_at=NOW, payload="{}")
        s.add_all([ann, bob, cid, dan, event])
        s.flush()
        # customers 901-905 (ids clear of those a test's webhooks may have created)
        s.execute(insert(Customer), [dict(id=900 + i, provider="stripe", ref=f"cus_{i}",
                                          first_seen_at=ago(400)) for i in range(1, 6)])
        s.execute(insert(Referral), [
            dict(program="crazycall", partner_id=ann.id, customer_id=901, source="code",
                 attributed_at=ago(10)),
            dict(program="crazycall", partner_id=ann.id, customer_id=902, source="code",
                 attributed_at=ago(40)),
            dict(program="crazycall", partner_id=bob.id, customer_id=903, source="link",
                 attributed_at=ago(3)),
            dict(program="closed", partner_id=dan.id, customer_id=904, source="code",
                 attributed_at=ago(100))])
        payments = [(1, 4900, "USD", 9), (2, 4900, "USD", 40), (2, 4900, "USD", 5),
                    (2, 4900, "USD", 400),  # older than the 12 months shown
                    (4, 10000, "EUR", 20), (5, 99999, "USD", 1)]  # 5 was never referred
        s.execute(insert(PaymentRecord), [
            dict(provider="stripe", ref=f"in_{n}", customer_id=900 + c, amount=a, gross_amount=a,
                 currency=cur, occurred_at=ago(d), event_id=event.id)
            for n, (c, a, cur, d) in enumerate(payments)])
        clicks = [(ann.id, True, 1), (ann.id, True, 2), (bob.id, True, 20), (bob.id, False, 20),
                  (bob.id, True, 45)]
        s.execute(insert(Click), [
            dict(id=f"clk{n}", link_code="x", partner_id=p, program="crazycall", visitor=f"v{n}",
                 is_unique=u, clicked_at=ago(d), day=ago(d).date().isoformat())
            for n, (p, u, d) in enumerate(clicks)])
        _earn(s, "crazycall", ann.id, 1000, 9, "USD")
        _earn(s, "crazycall", ann.id, 2000, 40, "USD", release=True)
        _earn(s, "closed", dan.id, 3000, 20, "EUR", release=True)
        ids = {"ann": ann.id, "bob": bob.id, "dan": dan.id}
    checkpoint_ledger(hub, NOW)  # the rest is read past the checkpoint's watermark
    with hub.transaction() as s:
        _earn(s, "crazycall", bob.id, 500, 3, "USD")
        _earn(s, "crazycall", ann.id, 4000, 500, "USD")  # earned before the 12 months
        s.add_all([
            Payout(partner_id=ann.id, program="crazycall", amount=700, currency="USD",
                   status="requested", created_at=ago(1), updated_at=ago(1)),
            Payout(partner_id=ann.id, program="crazycall", amount=1200, currency="USD",
                   status="paid", created_at=ago(4), updated_at=ago(3)),
            Payout(partner_id=ann.id, program="crazycall", amount=300, currency="USD",
                   status="rejected", created_at=ago(2), updated_at=ago(2))])
    return ids


def section(html: str, testid: str) -> str:
    start = html.index(f'data-testid="{testid}"')
    end = html.find('data-testid="program-', start + 10)
    return html[start:end if end > 0 else len(html)]


def by_testid(html: str, name: str) -> str:
    match = re.search(rf'data-testid="{name}">(.*?)</', html, re.S)
    assert match, name
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


def test_the_home_page_shows_each_programs_health(admin: Any, web: Hub) -> None:
    ids = seed(web)
    page = admin.get("/admin/")
    assert page.status_code == 200
    html = page.text
    assert "1 application waiting" in html

    usd = section(html, "money-crazycall-USD")
    assert by_testid(usd, "revenue-30d") == "$98.00"  # two payments in the last 30 days
    assert by_testid(usd, "revenue-12m") == "$147.00"  # and one 40 days ago; not 400 days ago
    # ann's $10 and $40 (an old line never released), bob's $5 booked after the checkpoint
    assert by_testid(usd, "on-hold") == "$55.00"
    assert by_testid(usd, "available") == "$20.00"
    assert by_testid(usd, "payouts-due") == "$7.00"  # the request; not the paid or rejected one
    assert by_testid(usd, "last-paid") == ago(3).strftime("%Y-%m-%d")
    assert "1 payout<" in usd

    eur = section(html, "money-closed-EUR")
    assert by_testid(eur, "revenue-30d") == by_testid(eur, "revenue-12m") == "€100.00"
    assert by_testid(eur, "available") == "€30.00" and by_testid(eur, "on-hold") == "€0.00"
    assert by_testid(eur, "last-paid") == "—"

    crazycall = section(html, "program-crazycall")
    assert "money-crazycall-EUR" not in crazycall  # no money in a currency: no row for it
    funnel = re.sub(r"<[^>]+>", "", re.search(r'data-testid="funnel-crazycall">(.*?)</p>',
                                               crazycall, re.S).group(1))  # type: ignore[union-attr]
    # unique clicks of the last 30 days, customers referred in them, those of them who paid
    assert re.sub(r"\s+", " ", funnel) == "Unique clicks 3 → sign-ups 2 → of them paying 1"
    top = crazycall[crazycall.index('data-testid="top-crazycall"'):]
    top = top[:top.index("</table>")]
    assert re.findall(r'href="/admin/partners/([^"]+)"', top) == [ids["ann"], ids["bob"]]
    assert "$30.00" in top and "$5.00" in top  # ann's $40 from 500 days ago is not counted

    # the program table: new partners in 30 days and applications
    row = html[html.index('href="#program-crazycall"'):]
    row = row[:row.index("</tr>")]
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
    assert cells[-3:] == ["2", "1", "3"]  # ann and cid are new; cid applied; three referrals


def test_the_home_page_of_an_empty_hub(admin: Any) -> None:
    html = admin.get("/admin/").text
    assert by_testid(section(html, "money-crazycall-USD"), "revenue-30d") == "$0.00"
    assert by_testid(section(html, "money-closed-EUR"), "payouts-due") == "€0.00"
    assert "No partner has earned commission" in html


# -- the charts' SVG ---------------------------------------------------------------------------

def svgs(html: str) -> list[ET.Element]:
    return [ET.fromstring(m) for m in re.findall(r'<svg class="chart".*?</svg>', html, re.S)]


def ticks(svg: ET.Element, axis: str) -> list[str]:
    return [t.text or "" for t in svg.iter("text")
            if f"chart-tick {axis}" in (t.get("class") or "")]


def plot_box(svg: ET.Element) -> tuple[float, float, float, float]:
    """(left, right, top, bottom) of the plot: the y axis and the gridlines."""
    axis = next(line for line in svg.iter("line") if line.get("class") == "chart-axis")
    grid = [line for line in svg.iter("line") if line.get("class") == "chart-grid"]
    return (float(axis.get("x1", 0)), float(grid[0].get("x2", 0)),
            min(float(g.get("y1", 0)) for g in grid), max(float(g.get("y1", 0)) for g in grid))


def check_chart(svg: ET.Element, top_label: str | None = None) -> None:
    """The house rules for every chart."""
    assert svg.get("width") == str(charts.WIDTH) and svg.get("height") == str(charts.HEIGHT)
    assert svg.find("title") is not None
    left, right, top, bottom = plot_box(svg)
    assert 0 < left < right <= charts.WIDTH and 0 < top < bottom <= charts.HEIGHT
    assert len([g for g in svg.iter("line") if g.get("class") == "chart-grid"]) >= 3
    y_labels = ticks(svg, "y")
    assert y_labels and any(t.strip("$€ ").replace(",", "").replace(".", "").strip("0") == ""
                            for t in y_labels), y_labels  # zero is labelled
    if top_label is not None:
        assert top_label in y_labels, y_labels  # so is the maximum
    marks = [e for e in svg.iter() if e.tag in ("rect", "circle")]
    assert marks
    for mark in marks:  # a value on hover for every bar and point
        title = mark.find("title")
        assert title is not None and ": " in (title.text or "")
    for x, y in _coordinates(svg):
        assert left - 0.01 <= x <= right + 0.01 and top - 0.01 <= y <= bottom + 0.01, (x, y)
    for text in svg.iter("text"):
        assert 0 <= float(text.get("x", 0)) <= charts.WIDTH
        assert 0 <= float(text.get("y", 0)) <= charts.HEIGHT


def _coordinates(svg: ET.Element) -> list[tuple[float, float]]:
    out = []
    for line in svg.iter("polyline"):
        for pair in (line.get("points") or "").split():
            x, y = pair.split(",")
            out.append((float(x), float(y)))
    for c in svg.iter("circle"):
        out.append((float(c.get("cx", 0)), float(c.get("cy", 0))))
    for r in svg.iter("rect"):
        x, y, w, h = (float(r.get(k, 0)) for k in ("x", "y", "width", "height"))
        out += [(x, y), (x + w, y + h)]
    return out


@pytest.mark.parametrize("values", [[0, 5, 10], [3], [0, 0], [-10, 10], [7] * 30,
                                    [120_000, 0, 5]])
def test_every_chart_kind_keeps_to_the_house_rules(values: list[int]) -> None:
    series = [(f"Mar {i + 1:02d}", v) for i, v in enumerate(values)]
    for draw in (charts.bar_chart, charts.line_chart):
        svg = ET.fromstring(str(draw(series, "Test", str)))
        check_chart(svg, str(max(values)))
        if min(values) < 0:
            assert str(min(values)) in ticks(svg, "y")
        labels = ticks(svg, "x")
        assert labels[-1] == series[-1][0]  # the newest is always named
        assert len(labels) <= 8  # and no more than fit side by side


def test_a_single_point_is_written_out_and_not_stretched() -> None:
    one = charts.comparison_chart(["Jan 2026"], [("current", [5880]), ("simulated", [7155])],
                                  "What-if", lambda v: f"${v / 100:.2f}")
    svg = ET.fromstring(str(one))
    check_chart(svg, "$71.55")
    values = {t.get("class"): t.text for t in svg.iter("text")
              if "chart-value" in (t.get("class") or "")}
    assert values == {"chart-value current": "current $58.80",
                      "chart-value simulated": "simulated $71.55"}
    assert ticks(svg, "x") == ["Jan 2026"]
    bar = ET.fromstring(str(charts.bar_chart([("Jan 2026", 980)], "One", str)))
    (rect,) = list(bar.iter("rect"))
    assert float(rect.get("width", 0)) <= charts.MAX_BAR  # one bar is not the whole plot
    assert [t.text for t in bar.iter("text") if "chart-value" in (t.get("class") or "")] == ["980"]


def test_the_admin_home_charts(admin: Any, web: Hub) -> None:
    seed(web)
    html = admin.get("/admin/").text
    revenue = svgs(section(html, "chart-revenue-crazycall-USD"))[0]
    check_chart(revenue, "$98.00")  # this month or last: both payments of 30 days
    months = ticks(revenue, "x")
    assert months and all(MONTH.match(m) for m in months), months
    assert months[-1] == NOW.strftime("%b %Y")
    titles = [r.find("title").text for r in revenue.iter("rect")]  # type: ignore[union-attr]
    assert len(titles) == 12 and titles[-1].startswith(NOW.strftime("%b %Y") + ": $")
    funnel = svgs(section(html, "chart-funnel-crazycall"))[0]
    check_chart(funnel, "3")
    assert ticks(funnel, "x") == ["Clicks", "Sign-ups", "Paying"]
    assert not [t for t in funnel.iter("text") if "minor" in (t.get("class") or "")]


def test_the_partner_dashboard_charts(web: Hub) -> None:
    ids = seed(web)
    give_password(web, ids["ann"])
    with TestClient(create_app(web)) as c:
        portal_login(c, "ann@p.test")
        html = c.get("/portal/?period=12m").text
        day_html = c.get("/portal/?period=30d").text
    commission = svgs(section(html, "chart-commission"))[0]
    check_chart(commission)
    months = ticks(commission, "x")
    assert months and all(MONTH.match(m) for m in months), months
    for chart in svgs(html) + svgs(day_html):
        check_chart(chart)
    # the real reason: a request is open (not the $20 available below the $50 minimum)
    assert "A withdrawal you requested is still being processed" in html


def test_the_withdraw_button_names_money_on_hold(web: Hub) -> None:
    ids = seed(web)
    with web.transaction() as s:
        _earn(s, "crazycall", ids["bob"], 1500, 60, "USD", release=True)
    give_password(web, ids["bob"])
    with TestClient(create_app(web)) as c:
        portal_login(c, "bob@p.test")
        html = c.get("/portal/payouts").text
    reason = re.search(r'id="withdraw-reason" class="hint">([^<]*)<', html)
    assert reason and reason.group(1) == (
        "$15.00 is available, below the $50.00 minimum; $5.00 more is on hold.")
    assert re.search(r"<button type=\"submit\" disabled", html)


def test_the_whatif_chart_of_one_month(client: Any) -> None:
    crazycall_history(client)
    admin_login(client)
    page = simulate(client, settings="rate=0.25", until="2026-02-01")
    (svg,) = svgs(page.text)
    check_chart(svg, "$9.80")
    assert ticks(svg, "x") == ["Jan 2026"]
    assert sorted(t.text or "" for t in svg.iter("text")
                  if "chart-value" in (t.get("class") or "")) == ["current $7.84",
                                                                  "simulated $9.80"]
    assert "<td>Jan 2026</td>" in page.text  # the table under it names the month too


def test_one_wording_for_money_on_hold(web: Hub) -> None:
    ids = seed(web)
    give_password(web, ids["ann"])
    with TestClient(create_app(web)) as c:
        portal_login(c, "ann@p.test")
        pages = [c.get(p).text for p in ("/portal/", "/portal/transactions", "/portal/payouts")]
    with TestClient(create_app(web)) as a:
        admin_login(a)
        pages += [a.get(f"/admin/partners/{ids['ann']}").text, a.get("/admin/").text]
    for html in pages:
        visible = re.sub(r"<[^>]+>", " ", re.sub(r'(class|data-testid|id)="[^"]*"', "", html))
        assert "pending" not in visible.lower(), re.findall(r".{40}pending.{40}", visible.lower())
    assert ">On hold<" in pages[1] and ">On hold<" in pages[3]  # a line's badge, both sides
    assert "Processing" in pages[2]
    assert "Available balance" in pages[0] and "Available balance" in pages[2]
    assert ">Available<" in pages[3]  # the operator's balance table says the same


def test_the_home_page_reads_the_same_before_and_after_tick(admin: Any, web: Hub) -> None:
    seed(web)
    before = admin.get("/admin/").text
    checkpoint_ledger(web, NOW + timedelta(seconds=1))
    assert admin.get("/admin/").text == before
    assert NOW.tzinfo == UTC


def test_the_home_page_costs_the_same_statements_for_more_partners(web: Hub) -> None:
    """No query per partner or per row: one grouped statement per figure."""

    def statements() -> int:
        count = 0

        def seen(*_: Any) -> None:
            nonlocal count
            count += 1

        event.listen(web.engine, "before_cursor_execute", seen)
        try:
            with TestClient(create_app(web)) as c:
                admin_login(c)
                before = count
                assert c.get("/admin/").status_code == 200
                return count - before
        finally:
            event.remove(web.engine, "before_cursor_execute", seen)

    seed(web)
    few = statements()
    with web.transaction() as s:
        for n in range(40):
            partner = Partner(program="crazycall", code=f"more{n}", email=f"m{n}@p.test",
                              created_at=ago(n))
            s.add(partner)
            s.flush()
            _earn(s, "crazycall", partner.id, 100 + n, n, "USD", release=n % 2 == 0)
            s.add(Payout(partner_id=partner.id, program="crazycall", amount=50, currency="USD",
                         status="paid", created_at=ago(n), updated_at=ago(n)))
    assert statements() == few <= 20
