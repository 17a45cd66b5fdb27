"""When a partner is paid: the program's `PayoutPolicy` for the partner, and the periods of the
scheduled policies (monthly close, the manual list every few months).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from hub.db.models import Partner
from hub.payouts.payee import state_of
from hub.programs import PayoutPolicy, Program
from hub.runtime import Hub

DEFAULT_MANUAL_MONTHS = 3


def policy_for(hub: Hub, program: Program, partner: Partner) -> PayoutPolicy:
    """The program's policy for this partner. An automatic PayPal payout needs a PayPal address;
    without one (or having chosen to be paid by hand, `payee.MANUAL`) the partner is paid by
    hand, listed every `every_months` months (default 3). An unconfirmed address keeps the
    automatic policy: its payouts wait for the confirmation."""
    policy = hub.payout_policy(program, partner.kind)
    if policy.mode == "automatic" and state_of(partner) == "none":
        return dataclasses.replace(policy, mode="manual", methods=("manual",),
                                   every_months=policy.every_months or DEFAULT_MANUAL_MONTHS)
    return policy


def month_start(when: datetime, months_back: int = 0) -> datetime:
    index = when.year * 12 + when.month - 1 - months_back
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def monthly_period(now: datetime) -> tuple[str, datetime]:
    """Everything earned through month M is paid at the end of month M+1: at `now` the latest
    closed month is two months back. Returns (period name, earned-before cutoff)."""
    month = month_start(now, 2)
    return f"{month:%Y-%m}", month_start(now, 1)


def manual_period(now: datetime, every_months: int) -> str:
    """The name of the `every_months`-long block `now` falls in (e.g. 2026-04/3m: Apr-Jun)."""
    first = (now.month - 1) // every_months * every_months + 1
    return f"{now.year}-{first:02d}/{every_months}m"
