"""How far a payment's refunds and disputes reverse a commission line: one pure function.

Live processing (`apply.reconcile`) and the what-if simulation (`hub.ingest.whatif`) both call
`reversal_target`, so a refund is reversed the same way whether it is booked or simulated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.money import format_money, pro_rata


@dataclass(frozen=True)
class Adjustment:
    """A refund (`refund_total`: cumulative; `refund`: one refund) or a dispute of a payment."""

    kind: str
    amount: int
    occurred_at: datetime
    event_id: int | None = None


@dataclass(frozen=True)
class PaidAmount:
    """What the adjustments are a share of: the payment's reference and gross amount."""

    ref: str
    gross_amount: int
    currency: str


@dataclass(frozen=True)
class ReversalTarget:
    """Reverse the line until `target` of it is reversed in all (never more than the line)."""

    target: int
    reason: str
    sentence: str
    event_id: int | None
    inputs: dict[str, Any]


def refunded_amount(adjustments: Sequence[Adjustment], gross_amount: int) -> int:
    """Stripe reports refunds cumulatively (`refund_total`), PayPal one by one (`refund`)."""
    refunded = max([a.amount for a in adjustments if a.kind == "refund_total"] +
                   [sum(a.amount for a in adjustments if a.kind == "refund")])
    return min(refunded, gross_amount)


def reversal_target(line_amount: int, line_currency: str, payment: PaidAmount,
                    adjustments: Sequence[Adjustment]) -> ReversalTarget | None:
    """The reversal every known adjustment of `payment` requires of a line of `line_amount`:
    a dispute reverses it whole, refunds pro rata to the share of the gross amount refunded."""
    if not adjustments:
        return None
    cause = max(adjustments, key=lambda a: (a.kind == "dispute", a.amount, a.occurred_at))
    paid = format_money(payment.gross_amount, payment.currency)
    if any(a.kind == "dispute" for a in adjustments):
        return ReversalTarget(
            target=line_amount, reason="dispute", event_id=cause.event_id,
            sentence=f"Dispute of {paid} ({payment.ref}) reverses the whole commission",
            inputs={"payment": payment.ref, "gross": payment.gross_amount,
                    "disputed": cause.amount})
    refunded = refunded_amount(adjustments, payment.gross_amount)
    target = pro_rata(line_amount, refunded, payment.gross_amount)
    return ReversalTarget(
        target=target, reason="refund_pro_rata", event_id=cause.event_id,
        sentence=(f"Refund of {format_money(refunded, payment.currency)} of {paid} "
                  f"({payment.ref}) reverses {format_money(target, line_currency)} of "
                  f"{format_money(line_amount, line_currency)}"),
        inputs={"payment": payment.ref, "gross": payment.gross_amount, "refunded": refunded})


def reversed_in_all(line_amount: int, target: ReversalTarget | None) -> int:
    """What `ledger.reverse_to` leaves reversed once every adjustment is applied: it only ever
    reverses more, never beyond the line, and never reverses a non-positive line."""
    if target is None:
        return 0
    return max(0, min(target.target, line_amount))
