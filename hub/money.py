"""Money arithmetic: integer minor units, `Decimal` rates, half-up rounding once per line."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

# ISO 4217 minor-unit exponents that differ from 2; everything else has cents.
_EXPONENTS = {"JPY": 0, "KRW": 0, "CLP": 0, "VND": 0, "ISK": 0, "HUF": 2, "BHD": 3, "KWD": 3,
              "JOD": 3, "OMR": 3, "TND": 3}
_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "PLN": "zł", "CHF": "CHF "}


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency.upper(), 2)


def round_half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def percent_of(amount: int, rate: Decimal) -> int:
    """`rate` of `amount` minor units, rounded half-up to the minor unit."""
    return round_half_up(Decimal(amount) * rate)


def pro_rata(amount: int, part: int, whole: int) -> int:
    """The share `part / whole` of `amount`, rounded half-up; `whole` must be positive."""
    if whole <= 0:
        raise ValueError("pro_rata needs a positive whole")
    return round_half_up(Decimal(amount) * Decimal(part) / Decimal(whole))


def to_minor(major: str | int | Decimal, currency: str) -> int:
    """'49.00' USD -> 4900. Refuses amounts with more precision than the currency has."""
    value = Decimal(str(major)) * (Decimal(10) ** exponent(currency))
    if value != value.to_integral_value():
        raise ValueError(f"{major} has more decimals than {currency} allows")
    return int(value)


# locale -> (thousands separator, decimal separator, symbol after the number)
_LOCALES = {"en": (",", ".", False), "de": (".", ",", True), "fr": ("\u202f", ",", True),
            "it": (".", ",", True), "es": (".", ",", True), "nl": (".", ",", False),
            "pl": ("\u00a0", ",", True), "ch": ("'", ".", False)}


def format_money(minor: int, currency: str, locale: str = "en") -> str:
    """4900, 'USD' -> '$49.00'; negative amounts keep their sign in front: '-$9.80'.

    `locale` picks the separators and where the symbol goes: 123456, 'EUR', 'de' -> '1.234,56 €'.
    Unknown locales write like 'en'.
    """
    exp = exponent(currency)
    sign = "-" if minor < 0 else ""
    major = Decimal(abs(minor)).scaleb(-exp).quantize(Decimal(1).scaleb(-exp))
    group, point, after = _LOCALES.get(locale.split("-")[0].split("_")[0].lower(), _LOCALES["en"])
    text = f"{major:,}".replace(",", "\0").replace(".", point).replace("\0", group)
    symbol = _SYMBOLS.get(currency.upper())
    if symbol is None:
        return f"{sign}{text} {currency.upper()}"
    if after:
        return f"{sign}{text}\u00a0{symbol.strip()}"
    return f"{sign}{symbol}{text}"


def format_rate(rate: Decimal) -> str:
    """Decimal('0.25') -> '25%'; Decimal('0.125') -> '12.5%'."""
    pct = (rate * 100).normalize()
    return f"{pct:f}%"
