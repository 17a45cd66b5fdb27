"""crazycall: a recurring percentage of every payment, for as long as the customer pays.

Source: CrazyCall Partner Program (seed 001). 20% of every payment (renewals, upgrades, added
seats), 90-day cookie, 14 or 30-day trial links, withdrawal on request from $50 with one request
pending at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Callable

from hub import hookimpl
from hub.money import percent_of
from hub.programs import (Draft, History, Payment, PayoutPolicy, Program, ProgramKind,
                          ProgramSettings, Referral, rate_sentence)

NAME = "crazycall"


@dataclass(frozen=True)
class Settings(ProgramSettings):
    rate: Decimal = Decimal("0.20")
    minimum_payout: int = 5000
    trial_days: tuple[int, ...] = (14, 30)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not Decimal(0) <= self.rate <= Decimal(1):
            raise ValueError("rate must be between 0 and 1")
        if self.minimum_payout < 0:
            raise ValueError("minimum_payout cannot be negative")


@hookimpl
def register_programs(register: Callable[[ProgramKind], None]) -> None:
    register(ProgramKind(name=NAME, settings=Settings,
                         description="A percentage of every payment, with no end"))


@hookimpl
def commissions_for_payment(program: Program, payment: Payment, referral: Referral,
                            history: History) -> list[Draft]:
    rate: Decimal = program.settings.rate
    number = history.payment_number(payment)
    return [Draft(
        key=f"pay:{payment.provider}:{payment.ref}", amount=percent_of(payment.amount, rate),
        currency=payment.currency, earned_at=payment.occurred_at, rule="recurring_percentage",
        sentence=rate_sentence(rate, payment.amount, payment.currency, payment.occurred_at,
                               f"{payment.ref}, payment {number}"),
        inputs={"base": payment.amount, "rate": str(rate), "payment_number": number,
                "payment": payment.ref})]


@hookimpl
def payout_policy(program: Program, partner_kind: str) -> PayoutPolicy:
    return PayoutPolicy(mode="request", minimum=program.settings.minimum_payout, one_pending=True)
