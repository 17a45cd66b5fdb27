"""A partner's referrals counted by current status and by link code, read without scanning the
partner's referrals: `referral_counts` as `hub tick` last counted them, corrected by what changed.

Each referral is counted as its `counted_partner_id` and `counted_link_code`, with its customer's
`counted_status`; only `hub tick` (job `counts`) sets those columns, and it changes
`referral_counts` by exactly the difference in the same transaction. Writers change the live columns
only (`partner_id`, `link_code`, `customer_statuses.status`, or insert rows whose `counted_*` is
empty), so a row whose live and counted values differ is one the counts do not reflect yet; two
partial indexes hold exactly those. A read is the stored counts plus, for those rows, minus what
they were counted as and plus what they are: equal to counting the live rows, in one statement.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, literal, select, union_all, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hub.db.models import CustomerStatus, Referral, ReferralCount
from hub.ledger.checkpoints import prefer_index_probes
from hub.runtime import Hub


def _referral_changed() -> Any:
    return Referral.uncounted == 1


def _status_changed() -> Any:
    return CustomerStatus.uncounted == 1


def counts(session: Session, partner_id: str) -> dict[str, dict[str, int]]:
    """The partner's live referrals per status (`status`) and per link code (`link`)."""
    pairs = select(Referral.partner_id, Referral.counted_partner_id, Referral.link_code,
                   Referral.counted_link_code, CustomerStatus.status,
                   CustomerStatus.counted_status).join(
        CustomerStatus, CustomerStatus.customer_id == Referral.customer_id, isouter=True)
    changed = union_all(  # a referral changed, or (only) its customer's status did
        pairs.where(_referral_changed(), (Referral.partner_id == partner_id)
                    | (Referral.counted_partner_id == partner_id)),
        pairs.where(_status_changed(), Referral.uncounted == 0,
                    Referral.partner_id == partner_id)).cte("changed")
    corrections = [
        select(literal(dimension), value, literal(sign)).where(partner == partner_id,
                                                               value.is_not(None))
        for dimension, live, counted in (
            ("status", changed.c.status, changed.c.counted_status),
            ("link", changed.c.link_code, changed.c.counted_link_code))
        for partner, value, sign in ((changed.c.partner_id, live, 1),
                                     (changed.c.counted_partner_id, counted, -1))]
    parts = union_all(
        select(ReferralCount.dimension, ReferralCount.value, ReferralCount.n)
        .where(ReferralCount.partner_id == partner_id), *corrections).subquery()
    dimension, value, n = parts.c
    prefer_index_probes(session)
    out: dict[str, dict[str, int]] = {"status": {}, "link": {}}
    for d, v, total in session.execute(select(dimension, value, func.sum(n))
                                       .group_by(dimension, value)):
        if total:
            out[d][v] = int(total)
    return out


def count_changes(hub: Hub, now: datetime) -> dict[str, Any]:
    """`hub tick` job: bring `referral_counts` and the `counted_*` columns up to date."""
    with hub.transaction() as session:
        return fold_changes(session)


def fold_changes(session: Session) -> dict[str, Any]:
    # Lock first the changed statuses (so no referral of those customers changes count under
    # us), then the referrals to recount and their customers' statuses. A row that changes
    # after it was read here is left for the next tick, counted as it was.
    customers = set(session.scalars(select(CustomerStatus.customer_id).where(_status_changed())
                                    .order_by(CustomerStatus.customer_id).with_for_update()))
    recount = _referral_changed() | Referral.customer_id.in_(
        select(CustomerStatus.customer_id).where(_status_changed()))
    referrals = session.execute(
        select(Referral.id, Referral.customer_id, Referral.partner_id, Referral.counted_partner_id,
               Referral.link_code, Referral.counted_link_code)
        .where(recount).order_by(Referral.id).with_for_update()).all()
    statuses = {c: (s, old) for c, s, old in session.execute(
        select(CustomerStatus.customer_id, CustomerStatus.status, CustomerStatus.counted_status)
        .where(CustomerStatus.customer_id.in_(select(Referral.customer_id).where(recount)))
        .order_by(CustomerStatus.customer_id).with_for_update())}
    delta: Counter[tuple[str, str, str]] = Counter()
    for r in referrals:
        live, old = statuses.get(r.customer_id, (None, None))
        new = live if r.customer_id in customers else old  # the others keep their counted status
        _count(delta, r.counted_partner_id, r.counted_link_code, old, -1)
        _count(delta, r.partner_id, r.link_code, new, 1)
    _add(session, delta)
    if referrals:
        table = cast(Table, Referral.__table__)
        session.execute(update(table).where(table.c.id == bindparam("rid")).values(
            counted_partner_id=bindparam("p"), counted_link_code=bindparam("l")),
            [dict(rid=r.id, p=r.partner_id, l=r.link_code) for r in referrals])
    ordered = sorted(customers)
    for chunk in range(0, len(ordered), 5000):
        session.execute(update(CustomerStatus)
                        .where(CustomerStatus.customer_id.in_(ordered[chunk:chunk + 5000]))
                        .values(counted_status=CustomerStatus.status))
    return {"referrals": len(referrals), "customers": len(customers)}


def _count(delta: Counter[tuple[str, str, str]], partner: str | None, link: str | None,
           status: str | None, sign: int) -> None:
    if partner is None:
        return
    if status is not None:
        delta[(partner, "status", status)] += sign
    if link is not None:
        delta[(partner, "link", link)] += sign


def _add(session: Session, delta: Counter[tuple[str, str, str]]) -> None:
    rows = [dict(partner_id=p, dimension=d, value=v, n=n) for (p, d, v), n in sorted(delta.items())
            if n]
    if not rows:
        return
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    table = ReferralCount.__table__
    stmt = module.insert(table)
    session.execute(stmt.on_conflict_do_update(
        index_elements=["partner_id", "dimension", "value"],
        set_={"n": table.c.n + stmt.excluded.n}), rows)


def forget_counts(session: Session) -> None:
    """Start counting over (the next tick counts every referral again): after the statuses
    were rebuilt, which loses what each one was counted as."""
    session.execute(delete(ReferralCount))
    session.execute(update(Referral).values(counted_partner_id=None, counted_link_code=None))
