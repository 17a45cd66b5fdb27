"""Many provider events in one transaction, set-based for the everyday case.

Webhooks that arrive together (`hub.ingest.group_commit`) and `hub replay` batches come here. The
everyday event is about a customer the hub knows and has attributed, with nothing unusual about
it: a paid invoice, a subscription that changed, the customer updated. For a whole batch of
those, the customers with their referrals, payments and statuses are read in a few queries, the
program rules are asked in memory, and payments, statuses, commission lines and ledger legs are
written as multi-row inserts.

Everything else goes through the per-event path (`hub.ingest.events.apply_facts`), in batch order:
an event of another kind first (with any event of the same customer that precedes it), and a
payment that breaks an assumption of the fast path (`fast_path_refusal`) after the fast ones, with
every later event of its customer (`FastPath`). Both paths call the same rules and write the same
rows, and the tests feed the same histories through both and compare the ledgers.
"""

from __future__ import annotations

import functools
from collections import defaultdict, namedtuple
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from sqlalchemy import bindparam, inspect, or_, select
from sqlalchemy.orm import Session, make_transient_to_detached

from hub.attribution.customers import can_attribute, self_referral_reason
from hub.attribution.partners import EMAIL_RE, enrolled_partner_id, enrolling_programs
from hub.attribution.referrals import Holder, can_earn
from hub.db.keys import one_of
from hub.db.models import (
    Commission,
    Customer,
    CustomerStatus,
    LedgerEntry,
    Mail,
    Partner,
    PaymentAdjustment,
    PaymentRecord,
    Referral,
    SubscriptionState,
)
from hub.db.pipelined import run_one, run_together
from hub.db.upsert import ignore_many, ignored_many, insert_ignore_many, many_rows
from hub.facts import CustomerSeen, PaymentSucceeded, SubscriptionChanged
from hub.ingest.decide import earner, payment_bookings
from hub.ingest.events import Incoming, apply_facts, record_many
from hub.ledger import entries as ledger
from hub.ledger.history import Timeline, history_of, payment_view, timeline
from hub.ledger.statuses import fold_status, status_upsert_statement
from hub.notify import mail, notices, outbox
from hub.programs import History, Payment
from hub.runtime import Hub

CustomerKey = tuple[str, str]
Fact = Any  # one of FAST_KINDS


def apply_batch(hub: Hub, session: Session, items: list[Incoming],
                known: dict[CustomerKey, Known] | None = None) -> list[bool]:
    """Record and apply `items` in the caller's transaction; per item, False for a duplicate.
    `known`: the customers of `items` the hub knows, read with `read_customers` in this
    transaction when the caller has read them already (the group commit does, for their
    attribution), saving the batch that query."""
    row_ids = record_many(session, items)
    stored = [(item, row_id) for item, row_id in zip(items, row_ids, strict=True)
              if row_id is not None]
    existing = _existing(session, [i for i, _ in stored]) if known is None else set(known)
    candidates, others = split(stored, existing)
    for item, row_id in others:
        apply_facts(hub, session, item.facts, row_id)
    # What the per-event path touched is read again; the rest of `known` is as it was read.
    touched = {key for item, _ in others for key in _customers(item)}
    fresh = {k: v for k, v in (known or {}).items() if k not in touched}
    for item, row_id in FastPath(hub, session).apply(candidates, existing, fresh):
        apply_facts(hub, session, item.facts, row_id)
    return [row_id is not None for row_id in row_ids]


def read_customers(session: Session, keys: Iterable[CustomerKey]) -> dict[CustomerKey, Known]:
    """The customers among `keys` the hub knows, each with its referrals and their partners
    (one query per provider)."""
    by_provider: dict[str, set[str]] = defaultdict(set)
    for provider, ref in keys:
        by_provider[provider].add(ref)
    known: dict[CustomerKey, Known] = {}
    stmt = _statements(_dialect(session)).customers
    customer_of, referral_of, partner_of = _ROW_TYPES
    for provider, refs in by_provider.items():
        for row in run_one(session, stmt, {"provider": provider, "refs": sorted(refs)}):
            key = (provider, row[_REF])
            entry = known.get(key)
            if entry is None:
                entry = known[key] = Known(customer_of(row))
            if row[_REFERRAL_ID] is not None and row[_PARTNER_ID] is not None:
                entry.referrals.append((referral_of(row), partner_of(row)))
    return known


def _plain(model: type[Any]) -> tuple[list[Any], type]:
    """A model's columns and a named tuple with its attribute names: what the batch reads of
    it. The batch only reads these rows (its writes are multi-row inserts), and building ORM
    objects with their identity map and instrumented attributes was a tenth of a group commit's
    CPU."""
    attrs = [(a.key, a.columns[0]) for a in inspect(model).column_attrs]
    return [c for _, c in attrs], namedtuple(model.__name__, [k for k, _ in attrs])  # type: ignore[misc]


def _slicer(kind: Any, start: int, stop: int) -> Any:
    return lambda row: kind._make(row[start:stop])


_COLUMNS, _TYPES = zip(*(_plain(m) for m in (Customer, Referral, Partner)), strict=True)
_EDGES = [0, len(_COLUMNS[0]), len(_COLUMNS[0]) + len(_COLUMNS[1]),
          sum(len(c) for c in _COLUMNS)]
_ROW_TYPES = tuple(_slicer(kind, _EDGES[i], _EDGES[i + 1]) for i, kind in enumerate(_TYPES))
_REF = [c.key for c in _COLUMNS[0]].index("ref")
_REFERRAL_ID, _PARTNER_ID = _EDGES[1], _EDGES[2]  # each table's first column is its id


def is_attributed(known: Known) -> bool:
    """What `hub.attribution.customers.is_attributed` says of the customer: a referral, or a
    partner code held for it."""
    return bool(known.referrals or known.customer.partner_code)


def split(stored: list[tuple[Incoming, int]],
          existing: set[CustomerKey]) -> tuple[list[Any], list[Any]]:
    """(fast-path candidates, the others), each in batch order. A candidate holds one fact of a
    kind the fast path knows; the first event of a customer not in `existing` is one only if it
    is a customer event (`FastPath` creates the customer; otherwise the per-event path does, and
    its later events may be candidates again); one that comes before another event of its
    customer joins the others, so a customer's events keep their order."""
    keys = [_customers(item) for item, _ in stored]
    first: dict[CustomerKey, int] = {}
    for index, item_keys in enumerate(keys):
        for key in item_keys:
            first.setdefault(key, index)

    def candidate(item: Incoming, index: int) -> bool:
        creates = type(item.facts[0]) is CustomerSeen if item.facts else False
        return _candidate(item) and all(k in existing or first[k] < index
                                        or creates and first[k] == index
                                        for k in keys[index])

    fast = [candidate(item, index) for index, (item, _) in enumerate(stored)]
    last_other: dict[CustomerKey, int] = {}
    for index, item_keys in enumerate(keys):
        if not fast[index]:
            for key in item_keys:
                last_other[key] = index
    candidates, others = [], []
    for index, entry in enumerate(stored):
        if fast[index] and all(last_other.get(k, -1) < index for k in keys[index]):
            candidates.append(entry)
        else:
            others.append(entry)
    return candidates, others


def _existing(session: Session, items: list[Incoming]) -> set[CustomerKey]:
    """Which of the customers `items` are about the hub knows (one query per provider)."""
    by_provider: dict[str, set[str]] = defaultdict(set)
    for item in items:
        if _candidate(item):
            for provider, ref in _customers(item):
                by_provider[provider].add(ref)
    known: set[CustomerKey] = set()
    stmt = _statements(_dialect(session)).customer_refs
    for provider, refs in by_provider.items():
        known.update((provider, ref) for ref in session.scalars(
            stmt, {"provider": provider, "refs": list(refs)}))
    return known


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


@functools.cache
def _statements(dialect: str) -> SimpleNamespace:
    """The batch's reads, built once per dialect (each key list is one parameter)."""
    provider_is = Customer.provider == bindparam("provider")
    of_customers = {t: one_of(dialect, t.customer_id, "ids")
                    for t in (PaymentRecord, SubscriptionState, CustomerStatus)}
    adjustment_refs = (PaymentAdjustment.payment_ref, PaymentAdjustment.charge_ref,
                       PaymentAdjustment.intent_ref)
    return SimpleNamespace(
        customer_refs=select(Customer.ref).where(
            provider_is, one_of(dialect, Customer.ref, "refs")),
        customers=select(*_COLUMNS[0], *_COLUMNS[1], *_COLUMNS[2])
        .outerjoin(Referral, Referral.customer_id == Customer.id)
        .outerjoin(Partner, Partner.id == Referral.partner_id)
        .where(provider_is, one_of(dialect, Customer.ref, "refs")),
        payments=select(*PaymentRecord.__table__.c).where(of_customers[PaymentRecord])
        .order_by(PaymentRecord.occurred_at, PaymentRecord.ref),
        states=select(*SubscriptionState.__table__.c).where(of_customers[SubscriptionState])
        .order_by(SubscriptionState.occurred_at, SubscriptionState.id),
        statuses=select(*CustomerStatus.__table__.c).where(of_customers[CustomerStatus]),
        # Every reference kind is matched against all the batch's references: a superset of
        # each kind against its own, narrowed in Python.
        adjustments=select(*adjustment_refs).where(
            one_of(dialect, PaymentAdjustment.provider, "providers"),
            or_(*(one_of(dialect, column, "refs") for column in adjustment_refs))),
        partners_by_code=select(Partner).where(one_of(dialect, Partner.code, "codes")),
        partner_ids=select(Partner.id).where(one_of(dialect, Partner.id, "ids")),
    )


FAST_KINDS = (PaymentSucceeded, SubscriptionChanged, CustomerSeen)
Fast = PaymentSucceeded | SubscriptionChanged | CustomerSeen


def _candidate(item: Incoming) -> bool:
    return len(item.facts) == 1 and type(item.facts[0]) in FAST_KINDS


def customers_of(item: Incoming) -> list[CustomerKey]:
    """The (provider, ref) of every customer `item`'s facts are about."""
    return _customers(item)


def _customers(item: Incoming) -> list[CustomerKey]:
    keys = []
    for fact in item.facts:
        ref = getattr(fact, "customer_ref", None)
        if ref:
            keys.append((getattr(fact, "customer_provider", None) or fact.provider, ref))
    return keys


@dataclass
class Known:
    """What the batch knows of one customer: read once, then extended by its fast payments."""

    customer: Customer
    referrals: list[tuple[Referral, Partner]] = field(default_factory=list)
    payments: list[Any] = field(default_factory=list)
    states: list[Any] = field(default_factory=list)
    state_keys: set[tuple[Any, ...]] = field(default_factory=set)  # `_state_key` of `states`
    status: Any = None
    adjusted_refs: set[str] = field(default_factory=set)
    enrolled: set[str] = field(default_factory=set)
    refused: bool = False
    # The rules' view of `payments` and `states`, kept between the customer's payments in a
    # batch (both lists only grow) instead of built again from all of them for each one.
    views: list[Payment] = field(default_factory=list)
    states_seen: tuple[int, Timeline] | None = None  # (how many of `states`, their timeline)

    def history(self) -> History:
        """The customer's history as the rules see it, with every payment in `payments`."""
        ref = self.customer.ref
        self.views.extend(payment_view(p, ref) for p in self.payments[len(self.views):])
        if self.states_seen is None or self.states_seen[0] != len(self.states):
            self.states_seen = (len(self.states), timeline(self.states))
        return history_of(self.views, self.states_seen[1])


def fast_path_refusal(hub: Hub, known: Known | None, fact: Fact) -> str | None:
    """Why `fact` needs the per-event path, or None when the fast path gives the same result:
    nothing about the customer changes, no attribution or enrolment can happen, no later
    payment's history changes and no refund or dispute waits for a new payment."""
    if known is None:
        return "new customer"
    if known.refused:
        return "an earlier event of the customer took the per-event path"
    customer = known.customer
    for name in ("email", "partner_code", "install_id"):
        if getattr(fact, name, None) and getattr(customer, name) is None:
            return f"fills the customer's {name}"
    if fact.occurred_at < customer.first_seen_at:
        return "earlier than the customer's first sighting"
    # What each handler of `hub.ingest.apply` claims by: a payment also by the customer's own code
    # and installation, the others by the fact's.
    paid = isinstance(fact, PaymentSucceeded)
    if fact.install_id or paid and customer.install_id:
        return "installation code"
    code = ((fact.partner_code or (customer.partner_code if paid else None)) or "").strip()
    if code and not any(p.code == code for _, p in known.referrals):
        return "partner code that may attribute"
    if not isinstance(fact, SubscriptionChanged) and _enrolment_due(hub, known):
        return "automatic enrolment"
    if not paid or any(p.ref == fact.payment_ref for p in known.payments):
        return None  # a payment stored before is not settled again
    if known.payments and known.payments[-1].occurred_at >= fact.occurred_at:
        return "a later payment is known (its history changes)"
    if {fact.payment_ref, fact.charge_ref, fact.intent_ref} & known.adjusted_refs:
        return "refund or dispute waiting"
    if any(r.effective_from is not None and fact.occurred_at < r.effective_from
           for r, _ in known.referrals):
        return "before an operator's reassignment"
    return None


def creation_refusal(hub: Hub, fact: CustomerSeen) -> str | None:
    """Why a customer seen for the first time needs the per-event path, or None."""
    if fact.install_id:
        return "installation code"
    if fact.email and EMAIL_RE.match(fact.email) and enrolling_programs(hub):
        return "automatic enrolment"
    return None


def _enrolment_due(hub: Hub, known: Known) -> bool:
    customer = known.customer
    if not customer.email or not EMAIL_RE.match(customer.email):
        return False
    return any(enrolled_partner_id(program.name, customer) not in known.enrolled
               for program, _ in enrolling_programs(hub))


class FastPath:
    """The set-based path for a batch's candidates."""

    def __init__(self, hub: Hub, session: Session):
        self.hub, self.session = hub, session
        self.payments: list[dict[str, Any]] = []
        self.states: list[dict[str, Any]] = []
        self.lines: list[dict[str, Any]] = []

    def apply(self, candidates: list[tuple[Incoming, int]], existing: set[CustomerKey],
              read: dict[CustomerKey, Known] | None = None) -> list[tuple[Incoming, int]]:
        """Apply what the fast path can; the rest, in batch order, for the per-event path.
        `read`: customers read already in this transaction (`read_customers`)."""
        if not candidates:
            return []
        facts = [item.facts[0] for item, _ in candidates]
        created = self._create([(fact, row_id)
                                for (_, row_id), fact in zip(candidates, facts, strict=True)
                                if (fact.provider, fact.customer_ref) not in existing])
        known = self._read(facts, read or {})
        refused = []
        for (item, row_id), fact in zip(candidates, facts, strict=True):
            if row_id in created:
                continue
            entry = known.get((fact.provider, fact.customer_ref))
            if fast_path_refusal(self.hub, entry, fact) is not None:
                if entry is not None:
                    entry.refused = True
                refused.append((item, row_id))
                continue
            assert entry is not None
            if isinstance(fact, PaymentSucceeded):
                self._settle(entry, fact, row_id)
            elif isinstance(fact, SubscriptionChanged):
                self._state(entry, fact, fact.status, fact.plan, row_id)
        self._write(known)
        return refused

    def _create(self, first_events: list[tuple[Fact, int]]) -> set[int]:
        """What `apply._customer_seen` does for a customer seen for the first time, with a
        code or none, for all of them at once: insert the customers, attribute those whose code
        names a partner that may take them. The events it applied (by row id); the others are
        left to the per-event path (an installation code, an automatic enrolment, a customer
        another process created meanwhile)."""
        wanted = {(f.provider, f.customer_ref): (f, row_id) for f, row_id in reversed(first_events)
                  if isinstance(f, CustomerSeen) and creation_refusal(self.hub, f) is None}
        if not wanted:
            return set()
        rows = [dict(provider=f.provider, ref=f.customer_ref, email=f.email,
                     partner_code=f.partner_code, install_id=None, first_seen_at=f.occurred_at)
                for f, _ in wanted.values()]
        ids = insert_ignore_many(self.session, Customer, sorted(rows, key=lambda r: (
            r["provider"], r["ref"])), ("provider", "ref"))
        codes = {f.partner_code.strip() for f, _ in wanted.values() if f.partner_code}
        partners = {p.code: p for p in self.session.scalars(
            _statements(_dialect(self.session)).partners_by_code,
            {"codes": sorted(codes)})} if codes else {}
        referrals = []
        for key, (fact, row_id) in wanted.items():
            partner = partners.get((fact.partner_code or "").strip())
            if key not in ids or partner is None or not can_attribute(self.hub, partner):
                continue
            customer = SimpleNamespace(ref=fact.customer_ref, email=fact.email)
            reason = self_referral_reason(partner, customer)  # type: ignore[arg-type]
            referrals.append(dict(
                program=partner.program, partner_id=partner.id, customer_id=ids[key],
                source="code", attributed_at=fact.occurred_at, click_id=None, link_code=None,
                self_referral=reason is not None, flag_reason=reason, event_id=row_id))
        insert_ignore_many(self.session, Referral, referrals, ("program", "customer_id"))
        return {row_id for key, (_, row_id) in wanted.items() if key in ids}

    def _read(self, facts: list[Fact], read: dict[CustomerKey, Known]
              ) -> dict[CustomerKey, Known]:
        """The facts' customers (those in `read` as given, the others read now) with their
        payments, states, status and waiting refunds; the last four in one round trip."""
        s = self.session
        keys = {(fact.provider, fact.customer_ref) for fact in facts}
        known = {k: read[k] for k in keys if k in read}
        known.update(read_customers(s, keys - set(known)) if keys - set(known) else {})
        by_id = {k.customer.id: k for k in known.values()}
        if not by_id:
            return known
        stmts = _statements(_dialect(s))
        ids: dict[str, Any] = {"ids": list(by_id)}
        paid = [f for f in facts if isinstance(f, PaymentSucceeded)]
        refs = sorted({r for f in paid for r in (f.payment_ref, f.charge_ref, f.intent_ref) if r})
        reads: list[tuple[Any, dict[str, Any]]] = [
            (stmts.payments, ids), (stmts.states, ids), (stmts.statuses, ids)]
        endpoints = outbox.endpoints_read(s)  # asked by `_write`, read in the same trip
        if endpoints is not None:
            reads.append((endpoints, {}))
        if refs:
            # Refunds and disputes stored before their payment (matched as `apply.reconcile`
            # matches them: by payment, charge or intent reference).
            reads.append((stmts.adjustments, {"providers": sorted({f.provider for f in paid}),
                                              "refs": refs}))
        payments, states, statuses, *more = run_together(s, reads)
        if endpoints is not None:
            outbox.know_endpoints(s, more.pop(0))
        adjustments = more
        for p in payments:
            by_id[p.customer_id].payments.append(p)
        for st in states:
            holder = by_id[st.customer_id]
            holder.states.append(st)
            holder.state_keys.add(_state_key(st))
        for row in statuses:
            by_id[row.customer_id].status = row
        waiting = {r for row in (adjustments[0] if adjustments else []) for r in row if r}
        for fact in paid:
            entry = known.get((fact.provider, fact.customer_ref))
            if entry is not None:
                entry.adjusted_refs |= waiting & {fact.payment_ref, fact.charge_ref,
                                                  fact.intent_ref}
        self._read_enrolments(known)
        return known

    def _read_enrolments(self, known: dict[CustomerKey, Known]) -> None:
        programs = [p for p, _ in enrolling_programs(self.hub)]
        if not programs:
            return
        wanted = {enrolled_partner_id(p.name, k.customer): k for k in known.values()
                  for p in programs}
        for partner_id in self.session.scalars(_statements(_dialect(self.session)).partner_ids,
                                               {"ids": list(wanted)}):
            wanted[partner_id].enrolled.add(partner_id)

    def _settle(self, known: Known, fact: PaymentSucceeded, event_id: int) -> None:
        """What `apply._payment_succeeded` does for such a payment, into the batch's rows."""
        if fact.subscription_ref:
            # A paid invoice means the account is in good standing from now on.
            self._state(known, fact, "active", fact.plan, event_id)
        if any(p.ref == fact.payment_ref for p in known.payments):
            return
        customer = known.customer
        payment = dict(
            provider=fact.provider, ref=fact.payment_ref, charge_ref=fact.charge_ref,
            intent_ref=fact.intent_ref, customer_id=customer.id,
            subscription_ref=fact.subscription_ref, plan=fact.plan, amount=fact.amount,
            currency=fact.currency.upper(),
            gross_amount=fact.amount if fact.gross_amount is None else fact.gross_amount,
            occurred_at=fact.occurred_at, event_id=event_id)
        self.payments.append(payment)
        known.payments.append(SimpleNamespace(**payment))
        earners = [earner(program, referral.id, Holder(partner.id, partner.kind, True),
                          customer_ref=customer.ref, source=referral.source,
                          attributed_at=referral.attributed_at)
                   for referral, partner in known.referrals
                   if (program := self.hub.program(referral.program)) is not None
                   and can_earn(referral.self_referral, partner.status)]
        if not earners:
            return
        history = known.history()
        for booking in payment_bookings(self.hub, earners, history.payments[-1], history):
            program = booking.earner.program
            self.lines.append(ledger.line_values(
                program, booking.earner.partner_id, booking.draft,
                referral_id=booking.earner.referral_id, payment_id=None, event_id=event_id,
                plugin_name=program.plugin) | {"_payment": (fact.provider, fact.payment_ref)})

    def _state(self, known: Known, fact: Any, status: str, plan: str | None,
               event_id: int) -> None:
        """A subscription fact, as `statuses.record_state` stores it."""
        state = dict(provider=fact.provider,
                     subscription_ref=getattr(fact, "subscription_ref", None) or fact.customer_ref,
                     customer_id=known.customer.id, status=status, plan=plan,
                     occurred_at=fact.occurred_at, event_id=event_id,
                     ends_at=getattr(fact, "ends_at", None))
        self.states.append(state)
        key = _state_key(state)
        if key not in known.state_keys:
            known.state_keys.add(key)
            known.states.append(SimpleNamespace(**state))

    def _write(self, known: dict[CustomerKey, Known]) -> None:
        s = self.session
        payments = sorted(self.payments, key=lambda p: (p["provider"], p["ref"]))
        states = sorted(self.states, key=_state_key)
        # Payments and states need nothing of each other: one round trip, as are the statuses
        # and the commission lines below (which need the states' and the payments' answers).
        paid, stated = _together(s, [
            ignore_many(s, PaymentRecord, payments, PAYMENT_KEY) if payments else None,
            ignore_many(s, SubscriptionState, states, STATE_KEY) if states else None])
        payment_ids = ignored_many(paid, PAYMENT_KEY)
        new_states = ignored_many(stated, STATE_KEY)
        statuses = self._statuses([st for st in self.states if _state_key(st) in new_states],
                                  known)
        lines = []
        for line in self.lines:
            # A payment another process stored first is settled by that process.
            pid = payment_ids.get(line.pop("_payment"))
            if pid is not None:
                lines.append(line | {"payment_id": pid})
        lines.sort(key=lambda line: (line["program"], line["partner_id"], line["key"]))
        _, booked_rows = _together(s, [
            status_upsert_statement(s, statuses) if statuses else None,
            ignore_many(s, Commission, lines, COMMISSION_KEY) if lines else None])
        booked = ignored_many(booked_rows, COMMISSION_KEY)
        lines = [line for line in lines
                 if (line["program"], line["partner_id"], line["key"]) in booked]
        if outbox.wanted(s, "commission.created"):
            for line in lines:
                row = Commission(**line)
                make_transient_to_detached(row)
                outbox.emit(s, "commission.created", line["id"], ledger.commission_event(row))
        # The ledger legs and the partners' mails need nothing of each other: one round trip.
        legs = ledger.earn_legs(lines)
        mails = mail.mail_rows(notices.commission_mails(self.hub, s, lines, partners={
            partner.id: partner for entry in known.values() for _, partner in entry.referrals}))
        _, mailed = _together(s, [
            many_rows(s, LedgerEntry.__table__, legs) if legs else None,
            ignore_many(s, Mail, mails, MAIL_KEY) if mails else None])
        mail.send_queued(s, mails, ignored_many(mailed, MAIL_KEY))

    @staticmethod
    def _statuses(new_states: list[dict[str, Any]],
                  known: dict[CustomerKey, Known]) -> list[dict[str, Any]]:
        """The `customer_statuses` rows the batch's new states change."""
        by_customer: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for state in new_states:
            by_customer[state["customer_id"]].append(state)
        current = {k.customer.id: k.status for k in known.values()}
        rows = []
        for customer_id, states in sorted(by_customer.items()):
            row = fold_status(current.get(customer_id), states)
            if row is not None:
                rows.append(dict(customer_id=customer_id, **row))
        return rows


PAYMENT_KEY = ("provider", "ref")
STATE_KEY = ("provider", "subscription_ref", "occurred_at", "status")
COMMISSION_KEY = ("program", "partner_id", "key")
MAIL_KEY = ("key",)


def _together(session: Session, statements: list[tuple[Any, Any] | None]) -> list[list[Any]]:
    """`run_together` for the statements given (None: nothing to write), each one's rows."""
    rows = iter(run_together(session, [st for st in statements if st is not None]))
    return [next(rows) if st is not None else [] for st in statements]


def _state_key(state: Any) -> tuple[Any, ...]:
    get = state.get if isinstance(state, dict) else lambda k: getattr(state, k)
    return (get("provider"), get("subscription_ref"), get("occurred_at"), get("status"))
