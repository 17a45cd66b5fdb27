from decimal import Decimal

import pytest

from hub.money import format_money, percent_of, pro_rata, to_minor


@pytest.mark.parametrize("amount, rate, expected", [
    (4900, "0.20", 980), (4900, "0.25", 1225), (1, "0.5", 1), (3, "0.5", 2), (5, "0.1", 1),
    (4, "0.125", 1), (12, "0.125", 2), (0, "0.3", 0), (99999, "0.15", 15000), (-4900, "0.2", -980),
])
def test_percent_rounds_half_up_once(amount, rate, expected):
    assert percent_of(amount, Decimal(rate)) == expected


@pytest.mark.parametrize("amount, part, whole, expected", [
    (980, 980, 4900, 196), (980, 4900, 4900, 980), (333, 1, 3, 111), (1, 1, 2, 1), (1, 1, 3, 0),
])
def test_pro_rata(amount, part, whole, expected):
    assert pro_rata(amount, part, whole) == expected


@pytest.mark.parametrize("minor, currency, text", [
    (4900, "USD", "$49.00"), (-980, "EUR", "-€9.80"), (123456, "USD", "$1,234.56"),
    (500, "JPY", "¥500"), (1500, "SEK", "15.00 SEK"),
])
def test_format(minor, currency, text):
    assert format_money(minor, currency) == text


def test_to_minor_refuses_extra_precision():
    assert to_minor("49.00", "USD") == 4900
    with pytest.raises(ValueError):
        to_minor("1.005", "USD")
