"""The pure parts of the pages: chart geometry, trend buckets, masking, locale money."""

from __future__ import annotations

from datetime import date

import pytest

from hub.money import format_money
from hub.web import charts, trends
from hub.web.formatting import mask_email


@pytest.mark.parametrize("values, points", [
    # each point in the middle of its slot, between the y axis (x=36) and the right edge (466)
    ([0, 5, 10], [(107.7, 190.0), (251.0, 102.0), (394.3, 14.0)]),
    ([3], [(251.0, 14.0)]),
    ([0, 0], [(143.5, 190.0), (358.5, 190.0)]),  # a flat zero line sits on the baseline
    ([-10, 10], [(143.5, 190.0), (358.5, 14.0)]),
])
def test_line_points(values, points):
    assert charts.line_points(values) == points


def test_bars_hang_from_zero_and_negative_bars_go_below():
    (x1, y1, w1, h1), (x2, y2, w2, h2) = charts.bar_rects([10, -5])
    zero = charts.frame_for([10, -5]).y(0)
    assert y1 + h1 == pytest.approx(zero) and y2 == zero
    assert h1 == pytest.approx(2 * h2, abs=0.2) and w1 == w2 and x2 > x1


def test_charts_are_accessible_svg_or_say_there_is_no_data():
    svg = charts.bar_chart([("Mar 01", 980), ("Mar 02", 0)], "Commission <in $>",
                           lambda v: f"${v / 100:.2f}")
    assert svg.startswith('<svg class="chart"') and 'role="img"' in svg
    assert "<title>Commission &lt;in $&gt;</title>" in svg and "$9.80" in svg
    assert "style=" not in svg  # the CSP forbids inline styles
    assert "no data" in charts.line_chart([], "Active trials")


@pytest.mark.parametrize("key, today, first, count", [
    ("30d", date(2026, 3, 4), date(2026, 2, 3), 30),
    ("90d", date(2026, 3, 4), date(2025, 12, 8), 13),  # Mondays
    ("12m", date(2026, 3, 4), date(2025, 4, 1), 12),
    ("nonsense", date(2026, 3, 4), date(2026, 2, 3), 30),
])
def test_bucket_starts(key, today, first, count):
    starts = trends.bucket_starts(trends.period_of(key), today)
    assert (starts[0], len(starts)) == (first, count)
    assert starts[-1] <= today and starts == sorted(starts)


def test_fold_sums_days_into_buckets_and_drops_days_outside():
    period = trends.period_of("12m")
    folded = trends.fold([(date(2026, 3, 1), 100), (date(2026, 3, 31), 50),
                          (date(2026, 2, 10), 7), (date(2024, 1, 1), 999)], period,
                         date(2026, 3, 31))
    assert folded[-1] == ("Mar 2026", 150) and folded[-2] == ("Feb 2026", 7)
    assert sum(v for _, v in folded) == 157


def test_counts_over_time_follow_each_timeline():
    days = [date(2026, 3, d) for d in (1, 2, 3, 4, 5)]
    timelines = [
        [(date(2026, 3, 1), "trial"), (date(2026, 3, 3), "active")],
        [(date(2026, 3, 2), "trial"), (date(2026, 3, 2), "cancelled")],  # same day: last wins
        [(date(2026, 2, 1), "active"), (date(2026, 3, 5), "cancelled")],
    ]
    assert trends.counts_over_time(timelines, {"trial"}, days) == [1, 1, 0, 0, 0]
    assert trends.counts_over_time(timelines, {"active"}, days) == [1, 1, 2, 2, 1]


@pytest.mark.parametrize("email, masked", [
    ("bob.smith@example.com", "b*******h@e*****e.com"),
    ("ab@x.io", "a*@x.io"),
    (None, "—"),
    ("not-an-address", "—"),
])
def test_mask_email(email, masked):
    assert mask_email(email) == masked


@pytest.mark.parametrize("minor, currency, locale, text", [
    (123456, "USD", "en", "$1,234.56"),
    (123456, "EUR", "de", "1.234,56\u00a0€"),
    (-980, "EUR", "it", "-9,80\u00a0€"),
    (123456789, "PLN", "pl", "1\u00a0234\u00a0567,89\u00a0zł"),
    (5000, "JPY", "en", "¥5,000"),
    (100050, "SEK", "de", "1.000,50 SEK"),
    (4900, "USD", "xx", "$49.00"),
])
def test_locale_money(minor, currency, locale, text):
    assert format_money(minor, currency, locale) == text
