"""How the pages write amounts, dates and customers' e-mail addresses."""

from __future__ import annotations

from datetime import date, datetime

from hub.money import format_money

# One wording for a commission's ledger state on every page, the partner's and the operator's:
# "pending" was "On hold" on the dashboard and "pending" elsewhere (and "pending" also named a
# withdrawal under way), so the pages show these words and keep the state names for the API.
STATE_LABELS = {"pending": "On hold", "payable": "Available", "in_payout": "In payout",
                "paid": "Paid", "voided": "Reversed"}


def state_label(state: str) -> str:
    return STATE_LABELS.get(state, state.replace("_", " ").capitalize())


def money(minor: int | None, currency: str, locale: str = "en") -> str:
    return format_money(int(minor or 0), currency, locale)


def day(value: date | datetime | None) -> str:
    if value is None:
        return "—"
    return value.strftime("%Y-%m-%d")


def when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.strftime("%Y-%m-%d %H:%M UTC")


def mask_email(email: str | None) -> str:
    """'bob.smith@example.com' -> 'b*******h@e*****e.com': enough to recognise, not to contact."""
    if not email or "@" not in email:
        return "—"
    local, _, domain = email.partition("@")
    name, dot, tld = domain.rpartition(".")
    return f"{_mask(local)}@{_mask(name) if dot else _mask(tld)}{dot}{tld if dot else ''}"


def _mask(part: str) -> str:
    if len(part) <= 2:
        return part[:1] + "*" * (len(part) - 1)
    return part[0] + "*" * (len(part) - 2) + part[-1]
