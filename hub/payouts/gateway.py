"""What a payment connector provides to pay payouts (`PayoutGateway`), and the orders and ids the
hub hands it: every id is derived from the payout id, so a resend after a crash cannot pay twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from hub.db.models import Partner, Payout
from hub.errors import PermanentError, TransientError
from hub.money import format_money
from hub.payouts.payee import state_of
from hub.runtime import Hub

T = TypeVar("T")


@dataclass(frozen=True)
class PayoutOrder:
    """What a gateway needs to pay one payout; the ids are derived from the payout id."""

    payout_id: str
    amount: int
    currency: str
    receiver: str
    note: str
    batch_id: str | None = None
    item_id: str | None = None
    hub_batch: str | None = None  # the hub's batch this payout travels in, if any

    @property
    def sender_batch_id(self) -> str:
        return sender_batch_id(self.hub_batch or self.payout_id)

    @property
    def sender_item_id(self) -> str:
        return sender_item_id(self.payout_id)


@dataclass(frozen=True)
class GatewayAnswer:
    """A gateway's answer: a hub status (sent, paid, failed, returned, unclaimed, dry_run).
    For one item of a batch, `sender_item_id` says which payout it is about."""

    status: str
    batch_id: str | None = None
    item_id: str | None = None
    provider_status: str | None = None
    reason: str | None = None
    request: dict[str, Any] | None = None
    sender_item_id: str | None = None


class PayoutGateway(Protocol):
    def send(self, order: PayoutOrder) -> GatewayAnswer:
        """Create the payment (idempotent per `order.sender_batch_id`). Raises `TransientError`
        to be retried, `PermanentError` when retrying cannot help."""

    def check(self, order: PayoutOrder) -> GatewayAnswer:
        """The current status of a payment created earlier."""

    def send_batch(self, sender_batch_id: str, orders: list[PayoutOrder]) -> GatewayAnswer:
        """Create one provider batch of `orders` (idempotent per `sender_batch_id`); the answer
        is the batch's (sent, failed, dry_run), its items' come from `check_batch`."""

    def check_batch(self, batch_id: str) -> tuple[str | None, list[GatewayAnswer]]:
        """The batch's provider status and one answer per item (with `sender_item_id`)."""


def sender_batch_id(key: str) -> str:
    """The provider's idempotency key for a batch: from the batch id (``pb_…``) for batched
    payouts, from the payout id (``po_…``) for one sent alone."""
    return f"hub-{key}"


def sender_batch_of(payout: Payout) -> str:
    return sender_batch_id(payout.batch_id or payout.id)


def sender_item_id(payout_id: str) -> str:
    return f"{payout_id}-1"


def payout_id_from_sender_id(value: str | None) -> str | None:
    if value and value.startswith("hub-"):
        return value[4:]
    if value and value.endswith("-1"):
        return value[:-2]
    return None


def batch_id_from_sender_id(value: str | None) -> str | None:
    """The hub batch a ``hub-pb_…`` sender_batch_id names (None for a payout's own)."""
    key = payout_id_from_sender_id(value) if value and value.startswith("hub-") else None
    return key if key and key.startswith("pb_") else None


def has_gateway(hub: Hub, method: str) -> bool:
    """Whether a connector pays payouts of `method` (one registered under that name with a
    `payout_gateway`); other methods are paid by hand from the operator's list."""
    connector = hub.connector(method)
    return connector is not None and connector.payout_gateway is not None


def payee_of(hub: Hub, partner: Partner, method: str | None) -> str | None:
    """The partner's address at the gateway that pays `method`, or None: a method paid by hand,
    a partner without an address, paid by hand, or whose address is not confirmed
    (`hub.payouts.payee`). Partners keep one gateway address (`paypal_email`, the name the HTTP
    contract gives it)."""
    if method is None or not has_gateway(hub, method) or state_of(partner) != "ready":
        return None
    return partner.paypal_email or None


def gateway_for(hub: Hub, method: str) -> PayoutGateway | None:
    """The gateway of the connector named like the method (``paypal``); None for manual methods."""
    key = f"gateway:{method}"
    if key not in hub.extras:
        connector = hub.connector(method)
        factory = getattr(connector, "payout_gateway", None)
        hub.extras[key] = factory(hub) if factory else None
    return hub.extras[key]  # type: ignore[no-any-return]


def order_for(payout: Payout) -> PayoutOrder:
    return order_of(payout.id, payout.amount, payout.currency, payout.receiver,
                    payout.provider_batch_id, payout.provider_item_id, payout.batch_id)


def order_of(payout_id: str, amount: int, currency: str, receiver: str | None,
             batch_id: str | None = None, item_id: str | None = None,
             hub_batch: str | None = None) -> PayoutOrder:
    """The gateway order of a payout: derived from the row alone, so a resend is the same."""
    note = f"Commission payout {payout_id} ({format_money(amount, currency)})"
    return PayoutOrder(payout_id=payout_id, amount=amount, currency=currency,
                       receiver=receiver or "", note=note, batch_id=batch_id, item_id=item_id,
                       hub_batch=hub_batch)


def call_gateway(hub: Hub, method: str, call: Callable[[PayoutGateway], T], *,
                 fail: Callable[[str], None],
                 note: Callable[[str], None]) -> tuple[PayoutGateway, T]:
    """`call` the gateway that pays `method`, with the send jobs' one error policy: no gateway,
    or a refusal retrying cannot fix, `fail`s the payouts and raises `PermanentError` (the job
    is not retried); a transient error is `note`d on them and raised again, so the job retries
    with backoff."""
    gateway = gateway_for(hub, method)
    if gateway is None:
        fail(f"no gateway for method {method!r}")
        raise PermanentError(f"no gateway for {method!r}")
    try:
        return gateway, call(gateway)
    except PermanentError as exc:
        fail(str(exc))
        raise
    except TransientError as exc:
        note(str(exc))
        raise
