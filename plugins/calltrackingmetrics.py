"""calltrackingmetrics: a one-time bounty per referred account once it has been active for 90
days, tiered by plan and by how many active referral accounts the affiliate has that month.

Source: CTM Affiliate Program (seed 003). Apply, be approved, accept the agreement, then the
link works. The bounty is earned in the month the account first crosses 90 days active; the
tier uses the affiliate's count of active referral accounts in that calendar month, so a bounty
is booked by the first tick after that month has closed (the count is final then, and the
booking does not depend on which day a tick happened to run). Everything earned through month M
is paid at the end of month M+1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from hub import hookimpl
from hub.money import format_money
from hub.programs import (
    Draft,
    History,
    PayoutPolicy,
    Program,
    ProgramKind,
    ProgramSettings,
    Referral,
    TickContext,
    check_not_negative,
    month_bounds,
    tier_input,
)

NAME = "calltrackingmetrics"
AFFILIATE = "affiliate"


def _default_bounties() -> dict[str, tuple[int, ...]]:
    # plan -> (under `tier_threshold` active referrals that month, at or over it)
    return {"performance": (3900, 5900), "growth": (9900, 14900), "connect": (29900, 44900)}


@dataclass(frozen=True)
class Settings(ProgramSettings):
    # No refund window to wait out: a bounty is earned by an account that already stayed 90 days,
    # and "earned in month M, paid at the end of M+1" is the program's own grace period. A
    # 30-day hold would push bounties from the month's last days into the following payout.
    hold_days: int = 0
    active_days: int = 90
    tier_threshold: int = 25
    bounties: dict[str, tuple[int, ...]] = field(default_factory=_default_bounties)
    plan_aliases: dict[str, str] = field(default_factory=dict)  # provider plan -> bounties key

    def __post_init__(self) -> None:
        super().__post_init__()
        check_not_negative(active_days=self.active_days, tier_threshold=self.tier_threshold)
        for plan, amounts in self.bounties.items():
            if len(amounts) != 2 or min(amounts) < 0:
                raise ValueError(f"bounties.{plan} must be two amounts: [under, at or over "
                                 f"tier_threshold]")
        unknown = sorted(set(self.plan_aliases.values()) - set(self.bounties))
        if unknown:
            raise ValueError(f"plan_aliases points to {unknown[0]!r}, which is not in bounties")


@hookimpl
def register_programs(register: Callable[[ProgramKind], None]) -> None:
    register(ProgramKind(name=NAME, settings=Settings, kinds=(AFFILIATE,),
                         description="A one-time bounty per account active for 90 days"))


@hookimpl
def new_partner_status(program: Program, partner_kind: str, invited: bool) -> str:
    return "active" if invited else "applied"


@hookimpl
def link_requirements(program: Program) -> list[str]:
    return ["agreement"]


def bounty_plan(settings: Settings, plan: str | None) -> str | None:
    """The bounties key for a provider plan: through `plan_aliases`, else by name (any case)."""
    if not plan:
        return None
    if plan in settings.plan_aliases:
        return settings.plan_aliases[plan]
    return plan.lower() if plan.lower() in settings.bounties else None


@hookimpl
def commissions_for_tick(program: Program, referral: Referral, history: History,
                         tick: TickContext) -> list[Draft]:
    settings: Settings = program.settings
    crossed = history.good_standing_reached(timedelta(days=settings.active_days))
    if crossed is None or crossed >= month_bounds(tick.now)[0]:
        return []  # not yet, or its month is still open
    plan = bounty_plan(settings, history.plan_at(crossed))
    if plan is None:
        return []
    active = tick.active_referrals_in(crossed)
    upper = active >= settings.tier_threshold
    amount, currency = settings.bounties[plan][1 if upper else 0], program.currency
    month = crossed.strftime("%Y-%m")
    threshold = settings.tier_threshold
    label = (f"{threshold} or more active referral accounts" if upper
             else f"under {threshold} active referral accounts")
    return [Draft(
        key=f"bounty:{referral.customer_ref}", amount=amount, currency=currency, earned_at=crossed,
        rule="active_days_bounty",
        sentence=(f"{format_money(amount, currency)} for {referral.customer_ref} on {plan}: "
                  f"{settings.active_days} days active on {crossed.date().isoformat()}, with "
                  f"{active} active referral accounts in {month} "
                  f"({'at or over' if upper else 'under'} {settings.tier_threshold})"),
        inputs={"plan": plan, "bounty": amount, "tier": tier_input(label, active, threshold),
                "active_referrals": active, "month": month, "crossed_at": crossed.isoformat(),
                "threshold": threshold})]


@hookimpl
def payout_policy(program: Program, partner_kind: str) -> PayoutPolicy:
    return PayoutPolicy(mode="monthly")
