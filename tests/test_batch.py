"""The set-based batch path (`hub.ingest.batch`) and group commit (`hub.ingest.group_commit`).

The property test in `test_ledger_properties` feeds whole generated histories through batches and
compares the ledger with the per-event path; here: when the fast path steps aside (a table of
cases), the status fold against the per-event rule, a failing batch answering each event on its
own, and concurrent duplicate deliveries through group commit on PostgreSQL.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from connectors import stripe_trigger as st
from connectors.stripe import prepare
from hub.db.models import (
    Commission,
    Customer,
    CustomerStatus,
    LedgerEntry,
    ProviderEvent,
    SubscriptionState,
)
from hub.facts import AttributionClaimed, CustomerSeen, PaymentSucceeded, SubscriptionChanged
from hub.ingest.batch import Known, apply_batch, fast_path_refusal, split
from hub.ingest.events import Incoming
from hub.ingest.group_commit import GroupCommit
from hub.ledger.statuses import fold_status, record_state
from tests.batch_helpers import fast_settled
from tests.conftest import WEBHOOK_SECRET, LiveServer
from tests.payout_helpers import make_partner

T = datetime(2026, 3, 1, tzinfo=UTC)


def _payment(**changes: Any) -> PaymentSucceeded:
    fact = PaymentSucceeded(provider="stripe", payment_ref="in_9", customer_ref="cus_1",
                            amount=4900, currency="USD", occurred_at=T, charge_ref="ch_9")
    return replace(fact, **changes)


def _sub(**changes: Any) -> SubscriptionChanged:
    fact = SubscriptionChanged(provider="stripe", subscription_ref="sub_1", customer_ref="cus_1",
                               status="past_due", occurred_at=T)
    return replace(fact, **changes)


def _seen(**changes: Any) -> CustomerSeen:
    return replace(CustomerSeen(provider="stripe", customer_ref="cus_1", occurred_at=T,
                                email="c@x.test"), **changes)


def _known(**changes: Any) -> Known:
    customer = SimpleNamespace(id=1, provider="stripe", ref="cus_1", email="c@x.test",
                               partner_code="code1", install_id=None,
                               first_seen_at=T - timedelta(days=60))
    partner = SimpleNamespace(id="prt_1", code="code1", status="active", kind="partner")
    referral = SimpleNamespace(program="crazycall", effective_from=None, self_referral=False)
    known = Known(customer=customer, referrals=[(referral, partner)],  # type: ignore[arg-type]
                  payments=[SimpleNamespace(ref="in_1", occurred_at=T - timedelta(days=30))])
    for name, value in changes.items():
        setattr(known, name, value)
    return known


def _hub_with(programs: dict[str, Any]) -> Any:
    return SimpleNamespace(programs=programs, constant=lambda program, hook: program.enrolls)


NO_ENROLMENT = _hub_with({})
CASES = [
    ("everyday renewal", _known(), _payment(), None),
    ("unknown customer", None, _payment(), "new customer"),
    ("fills an email",
     _known(customer=SimpleNamespace(**{**vars(_known().customer), "email": None})),
     _payment(email="new@x.test"), "fills the customer's email"),
    ("names a code of nobody referring it", _known(), _payment(partner_code="other"),
     "partner code that may attribute"),
    ("names the code that attributed it", _known(), _payment(partner_code="code1"), None),
    ("installation id", _known(customer=SimpleNamespace(
        **{**vars(_known().customer), "install_id": "inst_1"})), _payment(), "installation code"),
    ("brings an installation id", _known(), _payment(install_id="inst_1"),
     "fills the customer's install_id"),
    ("payment seen before: nothing to settle", _known(), _payment(payment_ref="in_1"), None),
    ("seen before, even if older", _known(),
     _payment(payment_ref="in_1", occurred_at=T - timedelta(days=40)), None),
    ("older than a known payment", _known(), _payment(occurred_at=T - timedelta(days=31)),
     "a later payment is known (its history changes)"),
    ("same instant as a known payment", _known(), _payment(occurred_at=T - timedelta(days=30)),
     "a later payment is known (its history changes)"),
    ("refund waiting for it", _known(adjusted_refs={"ch_9"}), _payment(),
     "refund or dispute waiting"),
    ("before a reassignment", _known(referrals=[(SimpleNamespace(
        program="crazycall", effective_from=T + timedelta(days=1), self_referral=False),
        SimpleNamespace(id="prt_1", code="code1", status="active"))]), _payment(),
     "before an operator's reassignment"),
    ("customer already refused", _known(refused=True), _payment(),
     "an earlier event of the customer took the per-event path"),
    ("before the first sighting", _known(), _payment(occurred_at=T - timedelta(days=61)),
     "earlier than the customer's first sighting"),
    ("subscription renewed", _known(), _sub(), None),
    ("subscription older than a payment: no payment is settled", _known(),
     _sub(occurred_at=T - timedelta(days=45)), None),
    ("subscription naming an unknown code", _known(), _sub(partner_code="other"),
     "partner code that may attribute"),
    ("subscription with an installation", _known(), _sub(install_id="i"),
     "fills the customer's install_id"),
    ("customer updated, nothing new", _known(), _seen(), None),
    ("customer naming the code that attributed it", _known(), _seen(partner_code="code1"), None),
    ("customer naming another code", _known(), _seen(partner_code="code2"),
     "partner code that may attribute"),
    ("customer known by its code only: a payment claims by it", _known(customer=SimpleNamespace(
        **{**vars(_known().customer), "partner_code": "code9"})), _payment(),
     "partner code that may attribute"),
    ("... a subscription change does not", _known(customer=SimpleNamespace(
        **{**vars(_known().customer), "partner_code": "code9"})), _sub(), None),
    ("unknown customer updated", None, _seen(), "new customer"),
]


@pytest.mark.parametrize("name,known,fact,reason", CASES, ids=[c[0] for c in CASES])
def test_fast_path_steps_aside_exactly_when_the_per_event_path_would_do_more(
        name: str, known: Known | None, fact: PaymentSucceeded, reason: str | None) -> None:
    assert fast_path_refusal(NO_ENROLMENT, known, fact) == reason  # type: ignore[arg-type]


def test_automatic_enrolment_not_yet_made_sends_the_event_the_per_event_way() -> None:
    program = SimpleNamespace(name="callbell", enrolls="ambassador")
    hub = _hub_with({"callbell": program})
    from hub.attribution.partners import enrolled_partner_id

    known = _known()
    assert fast_path_refusal(hub, known, _payment()) == "automatic enrolment"  # type: ignore[arg-type]
    assert fast_path_refusal(hub, known, _seen()) == "automatic enrolment"  # type: ignore[arg-type]
    assert fast_path_refusal(hub, known, _sub()) is None  # type: ignore[arg-type]
    known.enrolled = {enrolled_partner_id("callbell", known.customer)}
    assert fast_path_refusal(hub, known, _payment()) is None  # type: ignore[arg-type]


def _item(event_id: str, *facts: Any) -> Incoming:
    return Incoming("stripe", event_id, "test", T, {"id": event_id}, list(facts))


def test_split_keeps_each_customers_events_in_order() -> None:
    claim = AttributionClaimed(provider="stripe", customer_ref="cus_1", code="c", source="code",
                               occurred_at=T)
    stored = [(_item("e1", _payment(payment_ref="in_1")), 1),   # before cus_1's other event
              (_item("e2", claim), 2),
              (_item("e3", _payment(payment_ref="in_3")), 3),   # after it: a candidate
              (_item("e4", _payment(customer_ref="cus_2", payment_ref="in_4")), 4),
              (_item("e5"), 5)]                                  # no facts: per-event
    candidates, others = split(stored, {("stripe", "cus_1"), ("stripe", "cus_2")})
    assert [i.event_id for i, _ in candidates] == ["e3", "e4"]
    assert [i.event_id for i, _ in others] == ["e1", "e2", "e5"]
    # cus_2 is new: its first event creates it the per-event way; its later ones are candidates
    stored.append((_item("e6", _payment(customer_ref="cus_2", payment_ref="in_6")), 6))
    candidates, others = split(stored, {("stripe", "cus_1")})
    assert [i.event_id for i, _ in candidates] == ["e3", "e6"]
    assert [i.event_id for i, _ in others] == ["e1", "e2", "e4", "e5"]


STATUS_CASES = [
    ("first status", [("active", 1, "pro")]),
    ("newer replaces, no plan keeps the plan", [("trial", 1, "pro"), ("active", 2, None)]),
    ("older is ignored", [("cancelled", 5, None), ("active", 2, "basic")]),
    ("tie: later stage wins", [("active", 3, "pro"), ("trial", 3, "basic"), ("past_due", 3, None)]),
    ("unknown status ranks lowest on a tie", [("weird", 4, "x"), ("trial", 4, None)]),
    ("plan changes", [("active", 1, "basic"), ("active", 2, "pro"), ("active", 3, None)]),
]


@pytest.mark.parametrize("name,states", STATUS_CASES, ids=[c[0] for c in STATUS_CASES])
def test_status_fold_equals_the_per_event_rule(hub: Any, name: str, states: list[Any]) -> None:
    """`fold_status` in memory ends where `record_state` one fact at a time ends, from no row and
    from a stored one."""
    rows = [dict(provider="stripe", subscription_ref="sub_1", status=status,
                 occurred_at=T + timedelta(days=day), plan=plan, event_id=None)
            for status, day, plan in states]
    for start in (None, ("active", 2, "seed")):
        with hub.transaction() as s:
            s.query(CustomerStatus).delete()
            from hub.db.models import SubscriptionState
            s.query(SubscriptionState).delete()
            customer = s.scalar(select(Customer)) or Customer(
                provider="stripe", ref="cus_fold", first_seen_at=T)
            s.add(customer)
            s.flush()
            seed = None
            if start is not None:
                record_state(s, dict(provider="stripe", subscription_ref="sub_0",
                                     customer_id=customer.id, status=start[0],
                                     occurred_at=T + timedelta(days=start[1]), plan=start[2],
                                     event_id=None))
                seed = s.get(CustomerStatus, customer.id)
                seed = SimpleNamespace(status=seed.status, plan=seed.plan,
                                       occurred_at=seed.occurred_at)
            for row in rows:
                record_state(s, dict(row, customer_id=customer.id))
            stored = s.get(CustomerStatus, customer.id)
            expected = dict(status=stored.status, plan=stored.plan,
                            occurred_at=stored.occurred_at)
        folded = fold_status(seed, rows)
        assert (folded or dict(seed.__dict__)) == expected, (name, start)


def _futures(n: int) -> list[Future[bool]]:
    return [Future() for _ in range(n)]


def test_a_failing_batch_answers_each_event_on_its_own(hub: Any) -> None:
    partner = make_partner(hub, "crazycall")
    good = [prepare(hub, st.event("invoice.paid", st.invoice(
        f"in_g{i}", customer_id=f"cus_g{i}", amount=4900, subscription_id=f"sub_g{i}",
        partner_code=partner.code),
        event_id=f"evt_g{i}")) for i in range(3)]
    bad = _item("evt_bad", object())  # no handler for this fact: TypeError when applied
    committer = GroupCommit(hub)
    items = [good[0], bad, good[1], good[0], good[2]]
    done = _futures(len(items))
    committer._apply(list(zip(items, done, strict=True)))
    assert [f.exception() is None for f in done] == [True, False, True, True, True]
    assert isinstance(done[1].exception(), TypeError)
    assert [f.result() for i, f in enumerate(done) if i != 1] == [True, True, False, True]
    with hub.sessions() as s:
        assert s.scalar(select(func.count()).select_from(ProviderEvent)) == 3
        assert s.scalar(select(func.count()).select_from(Commission)) == 3


def test_waiting_deliveries_are_applied_as_one_batch(hub: Any) -> None:
    partner = make_partner(hub, "crazycall")
    items = [prepare(hub, st.event("invoice.paid", st.invoice(
        f"in_w{i}", customer_id="cus_w", amount=1000 * (i + 1), subscription_id="sub_w",
        partner_code=partner.code,
        paid_at=1767600000 + i), event_id=f"evt_w{i}")) for i in range(6)]
    committer = GroupCommit(hub, max_batch=4, committers=1)
    batches: list[int] = []
    import hub.ingest.batch as batch_module

    original = batch_module.apply_batch

    def recording(hub_: Any, session: Any, got: list[Incoming], *rest: Any) -> list[bool]:
        batches.append(len(got))
        return original(hub_, session, got, *rest)

    batch_module.apply_batch = recording  # type: ignore[assignment]
    try:
        with committer._ready:  # the committer starts only once all six are waiting
            futures = [committer.submit(item) for item in items + items[:2]]
        assert [f.result(timeout=30) for f in futures] == [True] * 6 + [False, False]
    finally:
        batch_module.apply_batch = original  # type: ignore[assignment]
        committer.close()
    assert batches == [4, 4]
    with hub.sessions() as s:
        amounts = sorted(s.scalars(select(Commission.amount)))
    assert amounts == [200 * (i + 1) for i in range(6)]  # crazycall: 20% of each payment


@pytest.mark.postgres
def test_concurrent_duplicates_through_group_commit_book_each_event_once(make_hub: Any) -> None:
    """Two deliveries of each of 60 events, from 24 threads at once, over real HTTP: every event
    stored and booked once, one answer in each pair says duplicate."""
    hub = make_hub("postgres")
    partner = make_partner(hub, "crazycall")
    bodies = []
    for i in range(60):
        evt = st.event("invoice.paid", st.invoice(
            f"in_c{i}", customer_id=f"cus_c{i % 7}", amount=4900, subscription_id=f"sub_{i % 7}",
            partner_code=partner.code, paid_at=1767600000 + i), event_id=f"evt_c{i}")
        bodies.append(st.signed_request(evt, WEBHOOK_SECRET))
    with LiveServer(hub) as server:
        def deliver(index: int) -> tuple[int, bool]:
            body, headers = bodies[index % 60]
            with httpx.Client(base_url=server.url, timeout=60) as http:
                r = http.post("/webhooks/stripe", content=body, headers=headers)
            return r.status_code, bool(r.json().get("duplicate"))

        with ThreadPoolExecutor(max_workers=24) as pool:
            answers = list(pool.map(deliver, range(120)))
    assert {status for status, _ in answers} == {200}
    assert sum(dup for _, dup in answers) == 60
    with hub.sessions() as s:
        assert s.scalar(select(func.count()).select_from(ProviderEvent)) == 60
        assert s.scalar(select(func.count()).select_from(Commission)) == 60
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == 60
        assert s.scalar(select(func.sum(Commission.amount))) == 60 * 980


def test_fast_path_is_taken_for_everyday_renewals(hub: Any) -> None:
    """A batch of renewals of attributed customers goes the set-based way and books the same
    lines the per-event path books."""
    partner = make_partner(hub, "crazycall")
    first = [prepare(hub, st.event("invoice.paid", st.invoice(
        f"in_f{c}", customer_id=f"cus_f{c}", amount=4900, subscription_id=f"sub_f{c}",
        partner_code=partner.code, paid_at=1767600000), event_id=f"evt_f{c}")) for c in range(3)]
    with hub.transaction() as s:
        apply_batch(hub, s, first)  # new customers: the per-event path
    renewals = [prepare(hub, st.event("invoice.paid", st.invoice(
        f"in_f{c}_{m}", customer_id=f"cus_f{c}", amount=4900, subscription_id=f"sub_f{c}",
        paid_at=1767600000 + m * 2592000), event_id=f"evt_f{c}_{m}"))
        for m in (1, 2) for c in range(3)]
    with fast_settled() as settled:
        with hub.transaction() as s:
            assert apply_batch(hub, s, renewals) == [True] * 6
    assert sorted(settled) == sorted(f"in_f{c}_{m}" for m in (1, 2) for c in range(3))
    with hub.sessions() as s:
        lines = s.execute(select(Commission.key, Commission.amount, Commission.payment_id,
                                 Commission.event_id)).all()
        assert len(lines) == 9 and all(amount == 980 for _, amount, _, _ in lines)
        assert all(pid is not None and eid is not None for _, _, pid, eid in lines)
        statuses = s.scalars(select(CustomerStatus.status)).all()
        assert statuses == ["active"] * 3


def test_the_set_based_path_keeps_when_a_subscriptions_period_ends(hub: Any) -> None:
    """The clients list's "Expires" reads `subscription_states.ends_at`: the batch path stores it
    as the per-event path does (from the subscription's item, as basil and later send it)."""
    partner = make_partner(hub, "crazycall")
    with hub.transaction() as s:
        apply_batch(hub, s, [prepare(hub, st.event("invoice.paid", st.invoice(
            "in_e1", customer_id="cus_e1", amount=4900, subscription_id="sub_e1",
            partner_code=partner.code, paid_at=1767600000), event_id="evt_e1"))])
    updated = [prepare(hub, st.event("customer.subscription.updated", st.subscription(
        "sub_e1", customer_id="cus_e1", period_end=1767600000 + 30 * 86400),
        created=1767600000 + 60 * m, event_id=f"evt_e1_{m}")) for m in (1, 2)]
    with hub.transaction() as s:
        assert apply_batch(hub, s, updated) == [True, True]
    with hub.sessions() as s:
        ends = s.scalars(select(SubscriptionState.ends_at).where(
            SubscriptionState.ends_at.is_not(None))).all()
    assert ends == [datetime(2026, 2, 4, 8, tzinfo=UTC)] * 2


def test_a_new_customer_and_its_invoices_in_one_batch_take_the_set_based_path(hub: Any) -> None:
    """customer.created naming a code, then monthly invoices: the customer is created and
    attributed in bulk, its invoices settled in memory, as the per-event path would."""
    partner = make_partner(hub, "crazycall")
    own = make_partner(hub, "crazycall", email="self@x.test")
    events = []
    for c, (code, email) in enumerate([(partner.code, "n0@x.test"), (own.code, "self@x.test"),
                                       ("nobody", "n2@x.test")]):
        events.append(st.event("customer.created", {
            "id": f"cus_n{c}", "object": "customer", "email": email,
            "metadata": {"partner_code": code}}, created=1767600000, event_id=f"evt_n{c}"))
        events += [st.event("invoice.paid", st.invoice(
            f"in_n{c}_{m}", customer_id=f"cus_n{c}", amount=5000, subscription_id=f"sub_n{c}",
            paid_at=1767600000 + m * 2592000), event_id=f"evt_n{c}_{m}") for m in (1, 2)]
    with fast_settled() as settled:
        with hub.transaction() as s:
            assert apply_batch(hub, s, [prepare(hub, e, s) for e in events]) == [True] * 9
    # the customer naming an unknown code keeps it and goes the per-event way from its invoices
    assert sorted(settled) == ["in_n0_1", "in_n0_2", "in_n1_1", "in_n1_2"]
    from hub.db.models import Referral

    with hub.sessions() as s:
        referrals = {r.partner_id: r for r in s.scalars(select(Referral))}
        assert set(referrals) == {partner.id, own.id}
        assert referrals[own.id].self_referral and not referrals[partner.id].self_referral
        assert referrals[partner.id].source == "code"
        lines = s.execute(select(Commission.partner_id, Commission.amount)).all()
        assert sorted(lines) == [(partner.id, 1000), (partner.id, 1000)]  # none for the self one
        codes = dict(s.execute(select(Customer.ref, Customer.partner_code)).all())
        assert codes["cus_n2"] == "nobody"


@pytest.mark.parametrize("fact,enrols,reason", [
    (CustomerSeen(provider="stripe", customer_ref="c", occurred_at=T, email="a@b.test"), False,
     None),
    (CustomerSeen(provider="stripe", customer_ref="c", occurred_at=T, install_id="i"), False,
     "installation code"),
    (CustomerSeen(provider="stripe", customer_ref="c", occurred_at=T, email="a@b.test"), True,
     "automatic enrolment"),
    (CustomerSeen(provider="stripe", customer_ref="c", occurred_at=T, email="not-an-email"), True,
     None),
])
def test_creating_a_customer_steps_aside_for_installs_and_enrolments(
        fact: CustomerSeen, enrols: bool, reason: str | None) -> None:
    from hub.ingest.batch import creation_refusal

    program = SimpleNamespace(name="callbell", enrolls="ambassador" if enrols else None)
    assert creation_refusal(_hub_with({"callbell": program}), fact) == reason  # type: ignore[arg-type]


def _seeded_stream(hubs: list[Any], rng: Any, seed: int, n_customers: int) -> list[dict[str, Any]]:
    """The same partners in every hub (one of them customer 1's own address: a self-referral),
    then a stream about `n_customers` customers; odd seeds shuffle it with duplicates."""
    from hub.attribution.partners import create_partner

    codes: list[str] = []
    for hub in hubs:
        with hub.transaction() as s:
            made = [create_partner(hub, s, program=p, email=f"p{i}@partners.test",
                                   code=f"code{seed}x{i}")
                    for i, p in enumerate(["crazycall", "callpage", "crazycall"])]
            create_partner(hub, s, program="callpage", email="cus_d1@client.test",
                           code=f"self{seed}")
            codes = [p.code for p in made] + [f"self{seed}"]
    stream = _stream(rng, codes, n_customers)
    if seed % 2:
        stream = stream + rng.sample(stream, k=len(stream) // 3)
        rng.shuffle(stream)
    return stream


def _stream(rng: Any, codes: list[str], n_customers: int) -> list[dict[str, Any]]:
    """Customers with codes (some unknown, some with an email of a partner), monthly invoices
    (now and then an upgrade's plan), subscription changes and refunds."""
    out: list[dict[str, Any]] = []
    t0 = 1767600000
    for c in range(n_customers):
        cus, start = f"cus_d{c}", t0 + rng.randrange(0, 30) * 86400
        code = rng.choice(codes + ["unknown"])
        out.append(st.event("customer.created", {
            "id": cus, "object": "customer", "email": f"{cus}@client.test",
            "metadata": {"partner_code": code}}, created=start, event_id=f"evt_{cus}"))
        for m in range(rng.randrange(1, 17)):
            at = start + m * 30 * 86400 + rng.randrange(0, 3600)
            plan = rng.choice([None, "basic", "pro"])
            out.append(st.event("invoice.paid", st.invoice(
                f"in_{cus}_{m}", customer_id=cus, amount=rng.choice([1000, 4900, 3333]),
                subscription_id=f"sub_{cus}", charge_id=f"ch_{cus}_{m}", paid_at=at, plan=plan,
                shape="legacy"), created=at, event_id=f"evt_in_{cus}_{m}"))
            if rng.random() < 0.2:
                out.append(st.event("customer.subscription.updated", st.subscription(
                    f"sub_{cus}", customer_id=cus, status=rng.choice(["active", "past_due"]),
                    plan=plan), created=at + 60, event_id=f"evt_sub_{cus}_{m}"))
            if rng.random() < 0.1:
                out.append(st.event("charge.refunded", st.charge_refunded(
                    f"ch_{cus}_{m}", amount=4900, amount_refunded=1000, invoice_id=f"in_{cus}_{m}"),
                    created=at + 99, event_id=f"evt_rf_{cus}_{m}"))
    return out


def _ledger(hub: Any) -> Any:
    from hub.db.models import Partner, Referral

    with hub.sessions() as s:  # partners by code: their ids differ between hubs
        code = dict(s.execute(select(Partner.id, Partner.code)).all())
        lines = sorted((code[p], *rest) for p, *rest in s.execute(select(
            Commission.partner_id, Commission.key, Commission.amount, Commission.currency)))
        entries = sorted((code[p], *rest) for p, *rest in s.execute(
            select(LedgerEntry.partner_id, LedgerEntry.state, func.sum(LedgerEntry.amount))
            .group_by(LedgerEntry.partner_id, LedgerEntry.state)))
        referrals = sorted((code[p], *rest) for p, *rest in s.execute(
            select(Referral.partner_id, Customer.ref, Referral.source, Referral.self_referral)
            .join(Customer, Customer.id == Referral.customer_id)))
        statuses = sorted(s.execute(select(Customer.ref, CustomerStatus.status,
                                           CustomerStatus.plan, CustomerStatus.occurred_at)
                                    .join(CustomerStatus)).all())
    return lines, entries, referrals, statuses


@pytest.mark.parametrize("seed", range(6))
def test_batches_of_any_size_in_any_order_book_what_one_event_at_a_time_books(
        make_hub: Any, backend: str, seed: int) -> None:
    """The same stream (in order, or shuffled with duplicates) applied one event per transaction
    and in batches of random sizes: the same lines, balances, referrals and statuses."""
    import random

    from connectors.stripe import process

    programs = {"crazycall": {"plugin": "crazycall", "currency": "USD"},
                "callpage": {"plugin": "callpage", "currency": "USD"}}
    rng = random.Random(seed)
    # one event at a time on SQLite, batched on the backend under test (two hubs on PostgreSQL
    # would share the test schema)
    hubs = [make_hub("sqlite", programs=programs), make_hub(backend, programs=programs)]
    stream = _seeded_stream(hubs, rng, seed, 16)
    one, batched = hubs
    for event in stream:
        process(one, event)
    with fast_settled() as fast:
        rest = list(stream)
        while rest:
            size = rng.choice([1, 2, 5, 17, 40, 200])
            with batched.transaction() as s:
                apply_batch(batched, s, [prepare(batched, e, s) for e in rest[:size]])
            del rest[:size]
    assert _ledger(batched) == _ledger(one)
    assert fast  # the set-based path did the settling it could
