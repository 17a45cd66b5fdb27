"""A provider's word on a payout (a webhook): found by our ids or the provider's, then applied
through the state machine; a word on a whole batch of ours applies to each of its payouts.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.db.models import Payout
from hub.facts import PayoutStatusChanged
from hub.payouts.batches import apply_batch_fact, batch_of_fact
from hub.payouts.gateway import payout_id_from_sender_id
from hub.payouts.states import transition
from hub.runtime import Hub, send_after_commit


def apply_status_fact(hub: Hub, session: Session, fact: PayoutStatusChanged) -> None:
    """A provider's word on a payout (webhook): find it by our ids or the provider's, apply it.
    A word on a whole batch of ours (``hub-pb_…``) applies to each of its payouts."""
    batch = batch_of_fact(session, fact)
    if batch is not None:
        apply_batch_fact(session, batch, fact)
        return
    payout = _find_payout(session, fact)
    if payout is None:
        return
    if fact.batch_id and not payout.provider_batch_id:
        payout.provider_batch_id = fact.batch_id
    if fact.item_id and not payout.provider_item_id:
        payout.provider_item_id = fact.item_id
    if fact.status:
        transition(session, payout, fact.status, reason=fact.reason,
                   provider_status=fact.provider_status)
    if fact.check:
        send_after_commit(session, "payout.check", payout.id)


def _find_payout(session: Session, fact: PayoutStatusChanged) -> Payout | None:
    payout_id = payout_id_from_sender_id(fact.sender_id)
    if payout_id:
        return session.scalars(select(Payout).where(Payout.id == payout_id)).first()
    for column, value in ((Payout.provider_item_id, fact.item_id),
                          (Payout.provider_batch_id, fact.batch_id)):
        if value:
            found = session.scalars(select(Payout).where(column == value)).first()
            if found is not None:
                return found
    return None
