"""callbell: every customer is a referrer; a fixed amount per new widget installation by a
referred account plus a percentage of every license payment while it stays subscribed.

Source: Callbell Rewards (seed 002). €10 per new installation (once per referred account and
site), 30% of every license payment, every account an ambassador without applying, payout on
request from €50 by a method the referrer picks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlsplit

from hub import hookimpl
from hub.money import format_money
from hub.programs import (
    Draft,
    History,
    Install,
    Payment,
    PayoutPolicy,
    Program,
    ProgramKind,
    ProgramSettings,
    Referral,
    check_not_negative,
    check_rate,
    percentage_draft,
)

NAME = "callbell"
AMBASSADOR = "ambassador"


@dataclass(frozen=True)
class Settings(ProgramSettings):
    currency: str = "EUR"
    rate: Decimal = Decimal("0.30")
    install_bounty: int = 1000
    install_products: tuple[str, ...] = ("widget",)  # empty: any product's installation counts
    minimum_payout: int = 5000
    payout_methods: tuple[str, ...] = ("paypal", "bank_transfer")
    one_pending_withdrawal: bool = False  # true: no second request while one is open

    def __post_init__(self) -> None:
        super().__post_init__()
        check_rate("rate", self.rate)
        check_not_negative(install_bounty=self.install_bounty, minimum_payout=self.minimum_payout)
        if not self.payout_methods:
            raise ValueError("payout_methods needs at least one method")


@hookimpl
def register_programs(register: Callable[[ProgramKind], None]) -> None:
    register(ProgramKind(name=NAME, settings=Settings, kinds=(AMBASSADOR,),
                         description="Every customer refers: per installation plus a percentage"))


@hookimpl
def auto_enroll_kind(program: Program) -> str:
    return AMBASSADOR


def site_key(site: str | None) -> str:
    """One site however the installer wrote it: host only, lower case, without ``www.``."""
    if not site:
        return ""
    host = urlsplit(site if "//" in site else f"//{site}").hostname or site
    return host.lower().removeprefix("www.")


@hookimpl
def commissions_for_install(program: Program, install: Install, referral: Referral,
                            history: History) -> list[Draft]:
    products = program.settings.install_products
    if products and install.product not in products:
        return []
    amount, currency, site = (program.settings.install_bounty, program.currency,
                              site_key(install.site))
    return [Draft(
        key=f"install:{referral.customer_ref}:{site}", amount=amount, currency=currency,
        earned_at=install.occurred_at, rule="install_bounty",
        sentence=(f"{format_money(amount, currency)} for the first {install.product} installation "
                  f"on {site or 'an unnamed site'} by {referral.customer_ref}"),
        inputs={"install": install.install_id, "site": site, "product": install.product})]


@hookimpl
def commissions_for_payment(program: Program, payment: Payment, referral: Referral,
                            history: History) -> list[Draft]:
    # Payments stop when the subscription does, so every license payment is "while subscribed".
    return [percentage_draft(payment, program.settings.rate, history, rule="license_percentage")]


@hookimpl
def payout_policy(program: Program, partner_kind: str) -> PayoutPolicy:
    return PayoutPolicy(mode="request", minimum=program.settings.minimum_payout,
                        one_pending=program.settings.one_pending_withdrawal,
                        methods=program.settings.payout_methods)
