"""odoopbx: two kinds of affiliate in one program, partners and referrals.

Source: OdooPBX partners and referrals (seed 004). Partners join by invitation after the operator
verifies them, earn 30% for the customer's whole subscription, see customer names, are listed in
the public directory and receive their customers' support requests; referrals sign up themselves,
earn 15% for 12 months from the customer's first payment, and see names masked. PayPal payouts
are automatic at €200 (partners) and €100 (referrals); without a PayPal address an affiliate is
listed for a manual payout once every 3 months.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from hub import hookimpl
from hub.programs import (
    Draft,
    History,
    KindProfile,
    Payment,
    PayoutPolicy,
    Program,
    ProgramKind,
    ProgramSettings,
    Referral,
    check_not_negative,
    check_rate,
    first_months_percentage_draft,
    percentage_draft,
)

NAME = "odoopbx"
PARTNER, REFERRAL = "partner", "referral"


@dataclass(frozen=True)
class Settings(ProgramSettings):
    currency: str = "EUR"
    partner_rate: Decimal = Decimal("0.30")
    referral_rate: Decimal = Decimal("0.15")
    referral_months: int = 12
    partner_payout_at: int = 20000
    referral_payout_at: int = 10000
    manual_payout_every_months: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        check_rate("partner_rate", self.partner_rate)
        check_rate("referral_rate", self.referral_rate)
        check_not_negative(partner_payout_at=self.partner_payout_at,
                           referral_payout_at=self.referral_payout_at,
                           manual_payout_every_months=self.manual_payout_every_months)
        if self.referral_months < 1:
            raise ValueError("referral_months must be at least 1")


@hookimpl
def register_programs(register: Callable[[ProgramKind], None]) -> None:
    register(ProgramKind(name=NAME, settings=Settings, kinds=(PARTNER, REFERRAL),
                         description="Invited partners for the whole subscription, "
                                     "self-signed referrals for a year"))


@hookimpl
def new_partner_status(program: Program, partner_kind: str, invited: bool) -> str:
    # Partners join by invitation after verification: an application waits for the operator.
    return "applied" if partner_kind == PARTNER and not invited else "active"


@hookimpl
def commissions_for_payment(program: Program, payment: Payment, referral: Referral,
                            history: History) -> list[Draft]:
    settings: Settings = program.settings
    if referral.partner_kind == PARTNER:
        return [percentage_draft(payment, settings.partner_rate, history,
                                 rule="partner_percentage", note="partner, whole subscription")]
    draft = first_months_percentage_draft(payment, settings.referral_rate, history,
                                          settings.referral_months, rule="referral_percentage",
                                          note="referral")
    return [draft] if draft is not None else []


@hookimpl
def self_signup_kind(program: Program) -> str:
    # Partners are invited after verification; whoever signs up alone is a referral (15%, 12
    # months).
    return REFERRAL


@hookimpl
def partner_kind_profile(program: Program, partner_kind: str) -> KindProfile:
    if partner_kind == PARTNER:
        return KindProfile(sees_customer_names=True, listed_in_directory=True,
                           receives_support=True)
    return KindProfile(sees_customer_names=False, listed_in_directory=False, receives_support=False)


@hookimpl
def payout_policy(program: Program, partner_kind: str) -> PayoutPolicy:
    settings: Settings = program.settings
    minimum = settings.partner_payout_at if partner_kind == PARTNER else settings.referral_payout_at
    return PayoutPolicy(mode="automatic", minimum=minimum,
                        every_months=settings.manual_payout_every_months)
