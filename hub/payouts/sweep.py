"""The payout sweep of `hub tick`: create what is due, re-send what is stuck, poll the silent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from hub.db.models import Partner, Payout
from hub.notify.outbox import stale_deliveries
from hub.payouts import batches
from hub.payouts.automatic import create_automatic, split_accounts
from hub.payouts.requests import payable_accounts, schedule
from hub.runtime import Hub


def sweep(hub: Hub, now: datetime) -> dict[str, int]:
    """Create due payouts (threshold, monthly, manual list), re-send stuck ones, poll the silent.

    Automatic PayPal payouts are decided set-based, `BATCH_SIZE` accounts per transaction, each
    transaction one PayPal batch and one message (`hub.payouts.automatic`); the other policies
    are decided per partner."""
    with hub.sessions() as session:
        automatic, others = split_accounts(hub, payable_accounts(session))
    created = 0
    for chunk in batches.chunks(automatic, batches.BATCH_SIZE):
        with hub.transaction() as session:
            created += create_automatic(session, chunk)
    for partner_id, currency in others:
        with hub.transaction() as session:
            partner = session.get(Partner, partner_id)
            if partner is not None and schedule(hub, session, partner, currency, now) is not None:
                created += 1
    return {"created": created, **resend_stale(hub, now)}


def resend_stale(hub: Hub, now: datetime) -> dict[str, int]:
    """A lost message only delays: payouts left `queued` are sent again (same sender_batch_id),
    `sent` ones are polled, pending webhook deliveries are delivered again."""
    before = now - timedelta(seconds=hub.config.queue.stale_seconds)
    with hub.sessions() as session:
        stuck = session.execute(select(Payout.id, Payout.batch_id).where(
            Payout.status == "queued", Payout.updated_at < before)).all()
        silent = session.execute(select(Payout.id, Payout.batch_id).where(
            Payout.status.in_(("sent", "unclaimed")), Payout.updated_at < before)).all()
        deliveries = stale_deliveries(session, before)
    queue = hub.queue
    messages = (_per_batch("payout.send", stuck) + _per_batch("payout.check", silent)
                + [("webhook.deliver", d) for d in deliveries])
    for name, item in messages:
        queue.send(name, item)
    return {"resent": len(stuck), "polled": len(silent), "redelivered": len(deliveries)}


def _per_batch(name: str, rows: Sequence[Any]) -> list[tuple[str, str]]:
    """One message per payout sent alone, one per batch for batched ones (`name` + ``_batch``)."""
    alone = [(name, payout_id) for payout_id, batch_id in rows if batch_id is None]
    batches = sorted({batch_id for _, batch_id in rows if batch_id is not None})
    return alone + [(f"{name}_batch", batch_id) for batch_id in batches]
