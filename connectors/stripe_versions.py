"""Which Stripe API versions the connector reads, and what each one puts in a webhook.

A webhook event is rendered in the API version of its endpoint (`event.api_version`), so one hub
can receive several shapes at once. The differences that matter here:

- up to 2025-02-24.acacia an invoice names its `charge`, `payment_intent` and `subscription`,
  and a charge names its `invoice`;
- from 2025-03-31.basil an invoice names none of them (the subscription moved to
  `parent.subscription_details`, the payments to the `payments` list that a webhook never
  carries, because it is only returned when expanded), and a charge names no invoice: the link
  from an invoice to what paid it arrives as its own event, `invoice_payment.paid`.
"""

from __future__ import annotations

import stripe

# From 2023-10-16 to the version the pinned `stripe` package sends (a test checks that the last
# one is `stripe.api_version`); see docs/connectors.md for what changed in each.
VERSIONS: tuple[str, ...] = (
    "2023-10-16", "2024-04-10", "2024-06-20",
    "2024-09-30.acacia", "2024-10-28.acacia", "2024-11-20.acacia", "2024-12-18.acacia",
    "2025-01-27.acacia", "2025-02-24.acacia",
    "2025-03-31.basil", "2025-04-30.basil", "2025-05-28.basil", "2025-06-30.basil",
    "2025-07-30.basil", "2025-08-27.basil",
    "2025-09-30.clover", "2025-10-29.clover", "2025-11-17.clover", "2025-12-15.clover",
    "2026-01-28.clover", "2026-02-25.clover",
    "2026-03-25.dahlia", "2026-04-22.dahlia", "2026-05-27.dahlia", "2026-06-24.dahlia",
    "2026-07-29.dahlia",
    "2026-09-30.endive", "2026-10-28.endive",
)
NEWEST: str = str(stripe.api_version)
BASIL = "2025-03-31"


def invoice_names_payment(api_version: str | None) -> bool:
    """Whether an invoice of this version names its charge and payment intent (before basil).
    An event without a version is read as the newest (Stripe always sends one)."""
    return (api_version or NEWEST)[:10] < BASIL
