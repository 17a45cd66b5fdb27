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
    """A refund (`refund_total`: cumulative; `refund`: one refund), a dispute of a payment
    (`dispute`), a dispute the merchant won (`dispute_won`, same `key` as its dispute), or a
    `link` naming references of one payment (it moves no money)."""

    kind: str
    amount: int
    occurred_at: datetime
    event_id: int | None = None
    key: str = ""


LINK = "link"


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
    # A won dispute gave the money back: what its reversal took beyond `target` is booked back.
    reinstates: bool = False


def refunded_amount(adjustments: Sequence[Adjustment], gross_amount: int) -> int:
    """Stripe reports refunds cumulatively (`refund_total`), PayPal one by one (`refund`)."""
    refunded = max([a.amount for a in adjustments if a.kind == "refund_total"] +
                   [sum(a.amount for a in adjustments if a.kind == "refund")])
    return min(refunded, gross_amount)


def open_disputes(adjustments: Sequence[Adjustment]) -> list[Adjustment]:
    """Disputes not (yet) won: a `dispute_won` closes the dispute of the same key; without keys,
    each won one closes one dispute."""
    disputes = [a for a in adjustments if a.kind == "dispute"]
    won = [a for a in adjustments if a.kind == "dispute_won"]
    won_keys = {a.key for a in won if a.key}
    still = [d for d in disputes if not (d.key and d.key in won_keys)]
    unkeyed_wins = sum(1 for a in won if not a.key)
    return still[unkeyed_wins:]


def reversal_target(line_amount: int, line_currency: str, payment: PaidAmount,
                    adjustments: Sequence[Adjustment]) -> ReversalTarget | None:
    """The reversal every known adjustment of `payment` requires of a line of `line_amount`:
    an open dispute reverses it whole, refunds pro rata to the share of the gross amount
    refunded; a won dispute reverses nothing (what it reversed is booked back)."""
    adjustments = [a for a in adjustments if a.kind != LINK]
    if not adjustments:
        return None
    disputes = open_disputes(adjustments)
    won_ones = [a for a in adjustments if a.kind == "dispute_won"]
    won = bool(won_ones)
    refunds = [a for a in adjustments if a.kind in ("refund", "refund_total")]
    cause = max(disputes or won_ones or refunds or adjustments,
                key=lambda a: (a.kind == "dispute", a.amount, a.occurred_at))
    paid = format_money(payment.gross_amount, payment.currency)
    if disputes:
        return ReversalTarget(
            target=line_amount, reason="dispute", event_id=cause.event_id,
            sentence=f"Dispute of {paid} ({payment.ref}) reverses the whole commission",
            inputs={"payment": payment.ref, "gross": payment.gross_amount,
                    "disputed": cause.amount})
    refunded = refunded_amount(adjustments, payment.gross_amount)
    target = pro_rata(line_amount, refunded, payment.gross_amount)
    sentence = (f"Refund of {format_money(refunded, payment.currency)} of {paid} "
                f"({payment.ref}) reverses {format_money(target, line_currency)} of "
                f"{format_money(line_amount, line_currency)}")
    if won:
        sentence = (f"Dispute of {paid} ({payment.ref}) won: the commission is booked back, "
                    f"less {format_money(target, line_currency)} for refunds of "
                    f"{format_money(refunded, payment.currency)}")
    return ReversalTarget(
        target=target, reason="dispute_won" if won else "refund_pro_rata",
        event_id=cause.event_id, sentence=sentence,
        inputs={"payment": payment.ref, "gross": payment.gross_amount, "refunded": refunded},
        reinstates=won)


def reversed_in_all(line_amount: int, target: ReversalTarget | None) -> int:
    """What `ledger.reverse_to` (and, after a won dispute, `ledger.reinstate_to`) leaves
    reversed once every adjustment is applied: never beyond the line, and never reverses a
    non-positive line."""
    if target is None:
        return 0
    return max(0, min(target.target, line_amount))
