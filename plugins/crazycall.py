"""crazycall: a recurring percentage of every payment, for as long as the customer pays.

Source: CrazyCall Partner Program (seed 001). 20% of every payment (renewals, upgrades, added
seats), 90-day cookie, 14 or 30-day trial links, withdrawal on request from $50 with one request
pending at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from hub import hookimpl
from hub.programs import (
    Draft,
    History,
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

NAME = "crazycall"


@dataclass(frozen=True)
class Settings(ProgramSettings):
    rate: Decimal = Decimal("0.20")
    minimum_payout: int = 5000
    # "the withdrawal button will be inactive" while the previous one is being processed
    one_pending_withdrawal: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check_rate("rate", self.rate)
        check_not_negative(minimum_payout=self.minimum_payout)


@hookimpl
def register_programs(register: Callable[[ProgramKind], None]) -> None:
    register(ProgramKind(name=NAME, settings=Settings,
                         description="A percentage of every payment, with no end"))


@hookimpl
def commissions_for_payment(program: Program, payment: Payment, referral: Referral,
                            history: History) -> list[Draft]:
    # Renewals, upgrades (proration invoices) and added seats are all payments: all earn.
    return [percentage_draft(payment, program.settings.rate, history)]


@hookimpl
def payout_policy(program: Program, partner_kind: str) -> PayoutPolicy:
    return PayoutPolicy(mode="request", minimum=program.settings.minimum_payout,
                        one_pending=program.settings.one_pending_withdrawal)
