"""callpage: a percentage of each payment in a client's first months, counted from its first
paid payment; nothing after.

Source: CallPage Partner Program (seed 000). 25% of each payment during the first 12 months
from the upgrade (the first paid payment), self sign-up, manual withdrawal from 50 that a manager
marks paid or rejected.
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
    first_months_percentage_draft,
)

NAME = "callpage"


@dataclass(frozen=True)
class Settings(ProgramSettings):
    rate: Decimal = Decimal("0.25")
    months: int = 12
    minimum_payout: int = 5000
    # Refuse a second withdrawal request while one is open. CallPage's text does not forbid a
    # second one; true keeps the hub's behaviour so far.
    one_pending_withdrawal: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check_rate("rate", self.rate)
        check_not_negative(minimum_payout=self.minimum_payout)
        if self.months < 1:
            raise ValueError("months must be at least 1")


@hookimpl
def register_programs(register: Callable[[ProgramKind], None]) -> None:
    register(ProgramKind(name=NAME, settings=Settings,
                         description="A percentage of each payment in the client's first months"))


@hookimpl
def commissions_for_payment(program: Program, payment: Payment, referral: Referral,
                            history: History) -> list[Draft]:
    draft = first_months_percentage_draft(payment, program.settings.rate, history,
                                          program.settings.months, rule="first_months_percentage")
    return [draft] if draft is not None else []


@hookimpl
def payout_policy(program: Program, partner_kind: str) -> PayoutPolicy:
    # The partner presses Withdraw; a manager contacts them and marks the request paid or rejected.
    return PayoutPolicy(mode="request", minimum=program.settings.minimum_payout,
                        one_pending=program.settings.one_pending_withdrawal, methods=("manual",))
