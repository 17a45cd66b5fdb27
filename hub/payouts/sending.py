"""The payout jobs (declared as actors in `hub.jobs.actors`): send one queued payout through its
gateway, poll it, and give up into the dead letter; each safe to run twice.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from hub.clock import utcnow
from hub.db.models import Payout
from hub.errors import PermanentError, TransientError
from hub.notify import notices
from hub.payouts.batches import dead_letter_all, send_batch
from hub.payouts.gateway import GatewayAnswer, call_gateway, gateway_for, order_for
from hub.payouts.payee import NOT_SENT, unconfirmed_receivers
from hub.payouts.states import get_payout, transition
from hub.runtime import Hub


def send(hub: Hub, payout_id: str) -> None:
    """Pay one queued payout through its gateway; safe to run twice (PayPal refuses a second
    batch with the same sender_batch_id, and the gateway then finds the first). A payout that
    travels in a batch is sent with its whole batch (the same request as the first time)."""
    with hub.sessions() as session:
        batch_id = session.scalar(select(Payout.batch_id).where(Payout.id == payout_id))
    if batch_id is not None:
        send_batch(hub, batch_id)
        return
    with hub.transaction() as session:
        payout = session.get(Payout, payout_id)
        if payout is None or payout.status != "queued":
            return
        if payout.attempts == 0 and unconfirmed_receivers(session, [payout]):
            transition(session, payout, "rejected", reason=NOT_SENT)  # PayPal never saw it
            return
        payout.attempts += 1
        payout.updated_at = utcnow()
        order, method = order_for(payout), payout.method
    _, answer = call_gateway(hub, method, lambda gateway: gateway.send(order),
                             fail=lambda reason: _fail(hub, payout_id, reason),
                             note=lambda reason: _note_error(hub, payout_id, reason))
    _record(hub, payout_id, answer)
    if answer.status == "sent":
        _check_quietly(hub, payout_id)


def _record(hub: Hub, payout_id: str, answer: GatewayAnswer) -> None:
    with hub.transaction() as session:
        payout = get_payout(session, payout_id, lock=True)
        payout.provider_batch_id = answer.batch_id or payout.provider_batch_id
        payout.provider_item_id = answer.item_id or payout.provider_item_id
        payout.request = answer.request or payout.request
        transition(session, payout, answer.status, reason=answer.reason,
                   provider_status=answer.provider_status)


def _fail(hub: Hub, payout_id: str, reason: str) -> None:
    with hub.transaction() as session:
        transition(session, get_payout(session, payout_id, lock=True), "failed",
                   reason=reason[:500])


def _note_error(hub: Hub, payout_id: str, reason: str) -> None:
    with hub.transaction() as session:
        payout = get_payout(session, payout_id)
        payout.failure_reason, payout.updated_at = f"retrying: {reason}"[:500], utcnow()


def _check_quietly(hub: Hub, payout_id: str) -> None:
    """Ask for the item's status right away; if PayPal is slow to say, the webhook or the tick's
    poll will tell later."""
    try:
        check(hub, payout_id)
    except (TransientError, PermanentError):
        pass  # a permanent answer has already failed the payout


def check(hub: Hub, payout_id: str) -> None:
    """Poll the gateway for a payout whose final answer has not arrived."""
    with hub.sessions() as session:
        payout = session.get(Payout, payout_id)
        waiting = payout is not None and payout.status in ("sent", "unclaimed")
        if payout is None or not waiting or not payout.provider_batch_id:
            return
        order, method = order_for(payout), payout.method
    gateway = gateway_for(hub, method)
    if gateway is None:
        return
    try:
        answer = gateway.check(order)
    except PermanentError as exc:
        _fail(hub, payout_id, str(exc))
        raise
    _record(hub, payout_id, answer)


def dead_letter(hub: Hub, message: dict[str, Any], retry_info: dict[str, Any]) -> None:
    """`payout.send` ran out of retries: show it to the operator, keep the money reserved."""
    payout_id = (message.get("args") or [None])[0]
    with hub.transaction() as session:
        payout = session.get(Payout, payout_id) if payout_id else None
        if payout is None or payout.status != "queued":
            return
        if payout.batch_id is not None:
            notices.payouts_dead_lettered(hub, session, dead_letter_all(session, payout.batch_id))
            return
        last = (payout.failure_reason or "").removeprefix("retrying: ")
        payout.status, payout.dead_letter, payout.updated_at = "failed", True, utcnow()
        payout.failure_reason = (f"gave up after {payout.attempts} attempts: {last}")[:500]
        notices.payouts_dead_lettered(hub, session, [payout])
