"""What-if: replay a program's stored history through its rules with changed settings.

The simulation is the third loader of the one decision layer (`hub.ingest.decide`). It reads the
projections the provider events left (payments, refunds and disputes, subscription states,
installs, referrals) in one streaming pass, one referred customer at a time, and hands them to
the same decisions live processing makes: the same views (`history.build_history`), the same
earning test and ownership rule (`referrals.can_earn`, `referrals.holder_at`: before an
operator's reassignment the earlier holder earns), the same payment, install and milestone
decisions (`decide.payment_bookings`, `decide.install_bookings`, `decide.milestone_drafts`) and
the same reversal rule (`reversals.reversal_target`). What the rules return goes to a scratch
ledger in memory; the real database is opened read-only.

Live processing retracts a line its rule no longer gives once an earlier payment arrives late,
so the real ledger always holds what the rules give on the full history: with unchanged
settings the simulation reproduces it exactly.

Compared are commissions *earned* in the window (by their `earned_at`) together with all their
reversals, against the real ledger's lines of the program earned in the same window.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, select

from hub.attribution.referrals import (
    Holder,
    can_earn,
    handover_holders,
    holder_at,
    milestone_referrals,
)
from hub.clock import utcnow
from hub.db.models import (
    Commission,
    Customer,
    InstallRecord,
    Partner,
    PaymentAdjustment,
    PaymentRecord,
    Referral,
    SubscriptionState,
)
from hub.db.session import read_only
from hub.errors import StartupError
from hub.ingest.decide import (
    Earner,
    earner,
    has_milestones,
    install_bookings,
    milestone_drafts,
    payment_bookings,
)
from hub.ledger.history import build_history, histories_of_program
from hub.ledger.reversals import LINK, Adjustment, PaidAmount, reversal_target, reversed_in_all
from hub.money import format_money
from hub.ops.progress import Progress
from hub.programs import Draft, Install, Program
from hub.runtime import Hub
from hub.settings import replace_from_strings

BATCH = 5000


@dataclasses.dataclass
class Totals:
    current: int = 0
    simulated: int = 0

    @property
    def difference(self) -> int:
        return self.simulated - self.current


@dataclasses.dataclass(frozen=True)
class Window:
    """Earning times from `since` (inclusive) to `until` (exclusive); None leaves a side open."""

    since: datetime | None = None
    until: datetime | None = None

    def holds(self, when: datetime) -> bool:
        return ((self.since is None or when >= self.since)
                and (self.until is None or when < self.until))


@dataclasses.dataclass
class WhatIfResult:
    """Current and simulated commission per (partner, currency) and per (month, currency)."""

    program: str
    changes: dict[str, str]
    settings_hash: str
    simulated_settings_hash: str
    window: Window
    partners: dict[tuple[str, str], Totals] = dataclasses.field(default_factory=dict)
    months: dict[tuple[str, str], Totals] = dataclasses.field(default_factory=dict)
    customers: int = 0
    rows: int = 0
    lines: int = 0

    def add(self, side: str, partner_id: str, currency: str, earned_at: datetime,
            amount: int) -> None:
        month = (f"{earned_at.year:04d}-{earned_at.month:02d}", currency)
        for table, key in ((self.partners, (partner_id, currency)), (self.months, month)):
            totals = table.get(key) or table.setdefault(key, Totals())
            if side == "current":
                totals.current += amount
            else:
                totals.simulated += amount

    def totals(self) -> dict[str, Totals]:
        out: dict[str, Totals] = {}
        for (_, currency), t in self.partners.items():
            total = out.setdefault(currency, Totals())
            total.current += t.current
            total.simulated += t.simulated
        return dict(sorted(out.items()))

    def to_json(self) -> dict[str, Any]:
        """The shape `hub whatif --json` prints and the admin page charts."""
        def row(t: Totals, **keys: str) -> dict[str, Any]:
            return {**keys, "current": t.current, "simulated": t.simulated,
                    "difference": t.difference}

        return {
            "program": self.program, "changes": self.changes,
            "settings_hash": self.settings_hash,
            "simulated_settings_hash": self.simulated_settings_hash,
            "since": self.window.since.isoformat() if self.window.since else None,
            "until": self.window.until.isoformat() if self.window.until else None,
            "partners": [row(t, partner_id=p, currency=c)
                         for (p, c), t in sorted(self.partners.items())],
            "totals": [row(t, currency=c) for c, t in self.totals().items()],
            "months": [row(t, month=m, currency=c) for (m, c), t in sorted(self.months.items())],
            "stats": {"customers": self.customers, "rows": self.rows, "lines": self.lines},
        }


def simulated_program(hub: Hub, name: str, changes: dict[str, str]) -> Program:
    """The program `name` with operator-changed settings, validated by the plugin's settings
    dataclass; a bad program, key or value raises `StartupError` naming it."""
    program = hub.program(name)
    if program is None:
        known = ", ".join(sorted(hub.programs)) or "none"
        raise StartupError(f"--program: no enabled program {name!r} (enabled: {known})")
    if "plugin" in changes:
        raise StartupError("--set plugin: the plugin of a program cannot be changed in a what-if")
    known_keys = {f.name for f in dataclasses.fields(program.settings) if f.init}
    for key in changes:
        if key not in known_keys:
            raise StartupError(f"--set {key}: unknown key {key!r} for plugin {program.plugin!r}; "
                               f"known: {', '.join(sorted(known_keys - {'plugin'}))}")
    settings = replace_from_strings(program.settings, changes, f"programs.{name}")
    return dataclasses.replace(program, settings=settings)


def run_whatif(hub: Hub, program_name: str, changes: dict[str, str], *,
               since: datetime | None = None, until: datetime | None = None,
               now: datetime | None = None, progress: bool = False) -> WhatIfResult:
    """Simulate `program_name` with `changes` (setting name -> string value, as `--set`) over
    commissions earned in [since, until); never writes to the database. Milestone rules
    (`commissions_for_tick`) are evaluated as a `hub tick` at `now` would (default: the clock)."""
    program = simulated_program(hub, program_name, changes)
    real = hub.programs[program_name]
    result = WhatIfResult(program=program_name, changes=dict(changes),
                          settings_hash=real.settings_hash,
                          simulated_settings_hash=program.settings_hash,
                          window=Window(since, until))
    with read_only(hub.engine) as conn:
        add_current(conn, result)
        bar = Progress(count_rows(conn, program_name), "whatif") if progress else None
        try:
            Simulation(hub, conn, program, result, bar).run(now or utcnow())
        finally:
            if bar:
                bar.close()
    return result


def _stream(conn: Connection, stmt: Any) -> Iterator[Any]:
    return iter(conn.execution_options(yield_per=BATCH).execute(stmt))


def add_current(conn: Connection, result: WhatIfResult) -> None:
    """The real ledger's side: every line of the program earned in the window, reversals too."""
    stmt = select(Commission.partner_id, Commission.currency, Commission.earned_at,
                  Commission.amount).where(Commission.program == result.program)
    if result.window.since is not None:
        stmt = stmt.where(Commission.earned_at >= result.window.since)
    if result.window.until is not None:
        stmt = stmt.where(Commission.earned_at < result.window.until)
    for partner_id, currency, earned_at, amount in _stream(conn, stmt):
        result.add("current", partner_id, currency, earned_at, amount)


def _referred(program: str) -> Any:
    return Referral.program == program


def count_rows(conn: Connection, program: str) -> int:
    """How many payments and installs of the program's referred customers the pass evaluates."""
    payments = conn.scalar(select(func.count()).select_from(PaymentRecord).join(
        Referral, Referral.customer_id == PaymentRecord.customer_id).where(_referred(program)))
    installs = conn.scalar(select(func.count()).select_from(_installs_join()).where(
        _referred(program)))
    return int(payments or 0) + int(installs or 0)


def _installs_join() -> Any:
    return InstallRecord.__table__.join(Customer, and_(
        Customer.provider == InstallRecord.customer_provider,
        Customer.ref == InstallRecord.customer_ref)).join(
        Referral, Referral.customer_id == Customer.id)


class GroupCursor:
    """Rows of a stream ordered by customer id, handed out one customer at a time."""

    def __init__(self, rows: Iterator[Any]):
        self.rows = rows
        self.head = next(rows, None)

    def take(self, customer_id: int) -> list[Any]:
        out = []
        while self.head is not None and self.head.customer_id <= customer_id:
            if self.head.customer_id == customer_id:
                out.append(self.head)
            self.head = next(self.rows, None)
        return out


class AdjustmentIndex:
    """Refunds and disputes by any of the payment references they name, as live `reconcile`
    finds them (same provider, payment, charge or intent reference, joined through `link`s)."""

    def __init__(self, conn: Connection):
        self.by_ref: dict[tuple[str, int, str], list[tuple[int, Adjustment]]] = {}
        self.links: dict[tuple[str, int, str], list[tuple[str | None, ...]]] = {}
        stmt = select(PaymentAdjustment.id, PaymentAdjustment.provider, PaymentAdjustment.kind,
                      PaymentAdjustment.amount, PaymentAdjustment.occurred_at,
                      PaymentAdjustment.event_id, PaymentAdjustment.payment_ref,
                      PaymentAdjustment.charge_ref, PaymentAdjustment.intent_ref,
                      PaymentAdjustment.key)
        for row in _stream(conn, stmt):
            refs = (row.payment_ref, row.charge_ref, row.intent_ref)
            if row.kind == LINK:
                for slot, ref in enumerate(refs):
                    if ref:
                        self.links.setdefault((row.provider, slot, ref), []).append(refs)
                continue
            item = (row.id, Adjustment(kind=row.kind, amount=row.amount, key=row.key,
                                       occurred_at=row.occurred_at, event_id=row.event_id))
            for slot, ref in enumerate(refs):
                if ref:
                    self.by_ref.setdefault((row.provider, slot, ref), []).append(item)

    def of(self, payment: Any) -> list[Adjustment]:
        refs = {(slot, ref) for slot, ref in enumerate(
            (payment.ref, payment.charge_ref, payment.intent_ref)) if ref}
        if self.links:
            for slot, ref in list(refs):
                for linked in self.links.get((payment.provider, slot, ref), ()):
                    refs.update((s, r) for s, r in enumerate(linked) if r)
        found: dict[int, Adjustment] = {}
        for slot, ref in refs:
            items = self.by_ref.get((payment.provider, slot, ref))
            if items:  # most payments have none: no work beyond three lookups
                found.update(items)
        return list(found.values())


class Simulation:
    """One pass over the program's referred customers into the result's simulated side."""

    def __init__(self, hub: Hub, conn: Connection, program: Program, result: WhatIfResult,
                 bar: Progress | None):
        self.hub, self.conn, self.program, self.result, self.bar = hub, conn, program, result, bar
        self.booked: set[int] = set()
        self.adjustments = AdjustmentIndex(conn)
        self.handovers = handover_holders(conn, program.name)

    def run(self, now: datetime) -> None:
        name = self.program.name
        payments = GroupCursor(_stream(self.conn, select(
            PaymentRecord.customer_id, PaymentRecord.provider, PaymentRecord.ref,
            PaymentRecord.charge_ref, PaymentRecord.intent_ref, PaymentRecord.subscription_ref,
            PaymentRecord.plan, PaymentRecord.amount, PaymentRecord.gross_amount,
            PaymentRecord.currency, PaymentRecord.occurred_at)
            .join(Referral, Referral.customer_id == PaymentRecord.customer_id)
            .where(_referred(name))
            .order_by(PaymentRecord.customer_id, PaymentRecord.occurred_at, PaymentRecord.ref)))
        states = GroupCursor(_stream(self.conn, select(
            SubscriptionState.customer_id, SubscriptionState.status, SubscriptionState.plan,
            SubscriptionState.occurred_at)
            .join(Referral, Referral.customer_id == SubscriptionState.customer_id)
            .where(_referred(name))
            .order_by(SubscriptionState.customer_id, SubscriptionState.occurred_at,
                      SubscriptionState.id)))
        installs = GroupCursor(_stream(self.conn, select(
            Customer.id.label("customer_id"), InstallRecord.install_id, InstallRecord.product,
            InstallRecord.site, InstallRecord.occurred_at).select_from(_installs_join())
            .where(_referred(name)).order_by(Customer.id, InstallRecord.occurred_at,
                                             InstallRecord.id)))
        for referral in _stream(self.conn, select(
                Referral.id, Referral.customer_id, Referral.partner_id, Referral.source,
                Referral.attributed_at, Referral.effective_from, Referral.self_referral,
                Partner.kind, Partner.status, Customer.ref.label("customer_ref"))
                .join(Partner, Partner.id == Referral.partner_id)
                .join(Customer, Customer.id == Referral.customer_id)
                .where(_referred(name)).order_by(Referral.customer_id)):
            cid = referral.customer_id
            self.customer(referral, payments.take(cid), states.take(cid), installs.take(cid))
        self.milestones(now)

    def milestones(self, now: datetime) -> None:
        """What `hub tick` at `now` books for the program, through the tick job's own pure
        evaluation (`decide.milestone_drafts`)."""
        if not has_milestones(self.hub, self.program):
            return
        referrals = milestone_referrals(self.conn, self.program.name, now)
        histories = histories_of_program(self.conn, self.program.name,
                                         {r.customer_id: r.customer_ref for r in referrals})
        for m in milestone_drafts(self.hub, self.program, referrals, histories, now):
            self.book(m.partner_id, m.draft, None)

    def customer(self, referral: Any, payments: list[Any], states: list[Any],
                 installs: list[Any]) -> None:
        """Settle one referred customer the way `apply.settle_customer` does, each payment
        and install for its holder at that moment (`referrals.holder_at`)."""
        self.result.customers += 1
        self.result.rows += len(payments) + len(installs)
        if self.bar:
            self.bar.advance(len(payments) + len(installs))
        current = Holder(referral.partner_id, referral.kind,
                         can_earn(referral.self_referral, referral.status))
        if not current.earns:
            return
        history = build_history(payments, states, referral.customer_ref)
        who = self.holders(referral, current)
        for row, view in zip(payments, history.payments, strict=True):
            earner = who(view.occurred_at)
            if earner is not None:
                for booking in payment_bookings(self.hub, [earner], view, history):
                    self.book(earner.partner_id, booking.draft, row)
        for row in installs:
            install = Install(install_id=row.install_id, product=row.product, site=row.site,
                              customer_ref=referral.customer_ref, occurred_at=row.occurred_at)
            earner = who(row.occurred_at)
            if earner is not None:
                for booking in install_bookings(self.hub, [earner], install, history):
                    self.book(earner.partner_id, booking.draft, None)

    def holders(self, referral: Any, current: Holder) -> Callable[[datetime], Earner | None]:
        """The referral as the rules see it for something dated `at`: its holder then
        (`referrals.holder_at`), None when nobody earns."""
        def view(holder: Holder) -> Earner:
            return earner(self.program, referral.id, holder, customer_ref=referral.customer_ref,
                          source=referral.source, attributed_at=referral.attributed_at)

        now_held = view(current)
        if referral.effective_from is None:
            return lambda at: now_held  # never reassigned: holder_at is `current` at any date
        earlier = self.handovers.get(referral.id, ())
        earlier_views = {h.partner_id: view(h) for h in earlier}

        def who(at: datetime) -> Earner | None:
            holder = holder_at(current, referral.effective_from, earlier, at)
            if holder is None:
                return None
            return now_held if holder is current else earlier_views[holder.partner_id]

        return who

    def book(self, partner_id: str, draft: Draft, payment: Any) -> None:
        """`ledger.book` then `apply.reconcile`, on the scratch ledger: once per (partner,
        key), reversed as far as the payment's adjustments require."""
        if not draft.amount:
            return
        key = hash((partner_id, draft.key))  # 64-bit: keeps the set small at millions of lines
        if key in self.booked:
            return
        self.booked.add(key)
        amount = draft.amount
        if payment is not None:
            adjustments = self.adjustments.of(payment)
            if adjustments:
                paid = PaidAmount(ref=payment.ref, gross_amount=payment.gross_amount,
                                  currency=payment.currency)
                target = reversal_target(amount, draft.currency, paid, adjustments)
                amount -= reversed_in_all(amount, target)
        if self.result.window.holds(draft.earned_at):
            self.result.lines += 1
            self.result.add("simulated", partner_id, draft.currency, draft.earned_at, amount)




def render_text(result: WhatIfResult) -> str:
    """The table `hub whatif` prints: per partner and currency, then the program totals."""
    changes = " ".join(f"{k}={v}" for k, v in result.changes.items()) or "no changes"
    lines = [f"program {result.program}: {changes} (settings {result.settings_hash} -> "
             f"{result.simulated_settings_hash})", "",
             f"{'partner':<24} {'currency':<8} {'current':>14} {'simulated':>14} "
             f"{'difference':>14}"]

    def row(label: str, currency: str, t: Totals) -> str:
        diff = format_money(t.difference, currency)
        return (f"{label:<24} {currency:<8} {format_money(t.current, currency):>14} "
                f"{format_money(t.simulated, currency):>14} "
                f"{('+' if t.difference > 0 else '') + diff:>14}")

    lines += [row(p, c, t) for (p, c), t in sorted(result.partners.items())]
    lines += [""] + [row("total", c, t) for c, t in result.totals().items()]
    lines.append(f"\n{result.customers:,} referred customers, {result.rows:,} payments and "
                 f"installs evaluated, {result.lines:,} simulated lines")
    return "\n".join(lines)
