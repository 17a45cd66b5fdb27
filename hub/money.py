"""Money arithmetic: integer minor units, `Decimal` rates, half-up rounding once per line."""

from __future__ import annotations

import functools
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# The ISO 4217 currencies the hub books, with their minor-unit exponents (ISO 4217 list one,
# 2024; funds codes included, precious metals and testing codes left out). A provider event in
# any other currency is refused at the door (`hub.facts.well_typed`).
_ISO_4217_BY_EXPONENT = {
    0: "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF",
    2: "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP "
       "BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR "
       "FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW "
       "KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN "
       "NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD "
       "SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU "
       "UZS VED VES WST XCD XCG YER ZAR ZMW ZWG ZWL",
    3: "BHD IQD JOD KWD LYD OMR TND",
    4: "CLF UYW",
}
CURRENCIES: dict[str, int] = {code: exp for exp, codes in _ISO_4217_BY_EXPONENT.items()
                              for code in codes.split()}

# The largest amount the hub books, exclusive: 10^12 minor units ($10 billion in cents). Far above
# any real invoice, and low enough that sums of millions of entries stay inside a 64-bit integer
# (the databases' BIGINT), so no balance, chart or `hub tick` can overflow.
MAX_MINOR = 10**12
_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "PLN": "zł", "CHF": "CHF "}


def exponent(currency: str) -> int:
    """The currency's minor-unit exponent (2 for a code the table does not hold)."""
    return CURRENCIES.get(currency.upper(), 2)


def known_currency(currency: object) -> bool:
    """An upper-case ISO 4217 code from the table above."""
    return isinstance(currency, str) and currency in CURRENCIES


def minor_units(value: object, name: str = "amount") -> int:
    """A provider's amount in minor units: an integer (not a string, float or bool) in
    `0 <= value < MAX_MINOR`; absent (None) is 0. TypeError or ValueError naming `name` else, so
    a signed event carrying it is refused (400) rather than booked."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer number of minor units, not "
                        f"{type(value).__name__}")
    if not 0 <= value < MAX_MINOR:
        raise ValueError(f"{name} is outside 0..{MAX_MINOR - 1} minor units")
    return value


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
    """'49.00' USD -> 4900. Refuses (ValueError) text that is not a finite number and amounts
    with more precision than the currency has."""
    try:
        value = Decimal(str(major)) * (Decimal(10) ** exponent(currency))
    except InvalidOperation:
        raise ValueError(f"{str(major)[:40]!r} is not an amount") from None
    if not value.is_finite() or abs(value) >= MAX_MINOR:
        raise ValueError(f"an amount must be a finite number below {MAX_MINOR} minor units")
    if value != value.to_integral_value():
        raise ValueError(f"{major} has more decimals than {currency} allows")
    return int(value)


# locale -> (thousands separator, decimal separator, symbol after the number)
_LOCALES = {"en": (",", ".", False), "de": (".", ",", True), "fr": ("\u202f", ",", True),
            "it": (".", ",", True), "es": (".", ",", True), "nl": (".", ",", False),
            "pl": ("\u00a0", ",", True), "ch": ("'", ".", False)}


@functools.lru_cache(maxsize=4096)  # pure, and asked for every commission line and mail
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
