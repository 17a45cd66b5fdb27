"""Properties of the ledger over generated histories of all five programs.

Each history has partners in every program (crazycall, callpage, calltrackingmetrics, odoopbx
partner and referral kinds, a callbell ambassador) and customers attributed to them by customer
metadata, Checkout, a signup report or an installation, who then subscribe, upgrade, pay in
several currencies, are refunded in part or in full, dispute, cancel, while clicks arrive and
ticks run; then partners withdraw, operators approve, reject or mark paid, automatic payouts go
out, and late refunds and disputes claw paid money back.

The same history goes into three hubs: one in business-time order with the ticks in between (as
in production), one shuffled with duplicates and the ticks only after, and one fed the same
shuffled deliveries with the Stripe events grouped into batches of random sizes
(`hub.ingest.batch.apply_batch`, what group commit and `hub replay` run). All must end with the same
balances and the same net per earning; the batched hub's customer statuses must equal the
shuffled one's (same deliveries, same order); and each must satisfy the invariants:

* every balance is the sum of its entries, and what the accounts hold is what the lines net to;
* no account goes negative, except ``payable`` by at most what reversals and retractions took
  out of it after release (a clawback of paid money);
* ``paid`` equals the paid payouts, and ``in_payout`` what open payouts hold;
* every two-leg transfer sums to zero; every earn/reverse/retract line and entry names the
  provider event that caused it (tick-made milestones name the tick's pseudo-event).

How many histories: 40 by default (``HYPOTHESIS_PROFILE=ci``, what CI runs: about a minute and a
half); ``dev`` 15; ``thorough`` 2,000. `test_ledger_core_properties` adds thousands of cheaper
histories of the ledger operations themselves. The run prints the counts it generated.
"""

from __future__ import annotations

import itertools
import os
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as stg
from sqlalchemy import func, select
from starlette.testclient import TestClient

from connectors import stripe_trigger as st
from connectors.stripe import process
from hub.app import create_app
from hub.attribution.partners import create_partner, derived_code, transition
from hub.db.models import Commission, LedgerEntry, Payout, ProviderEvent
from hub.errors import HTTPError
from hub.jobs.tick import run_tick
from hub.ledger import entries as ledger
from hub.payouts.requests import request_withdrawal
from hub.payouts.states import operator_action
from tests.conftest import installer_headers

# Examples per run, by HYPOTHESIS_PROFILE: "ci" is the default (what plain `python -m pytest`
# and CI run); "dev" is quicker for local work, "thorough" for a long soak.
COUNTS = {"ci": 40, "dev": 15, "thorough": 2000, "debug": 5}
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
EXAMPLES = COUNTS.get(PROFILE, COUNTS["ci"])

DAY = 86400
# Business time: the past year (installs and signups may not be dated in the future).
T0 = int((datetime.now(UTC) - timedelta(days=420)).timestamp()) // DAY * DAY
PROGRAMS = {
    "crazycall": {"plugin": "crazycall", "currency": "USD"},
    "callpage": {"plugin": "callpage", "currency": "USD"},
    "callbell": {"plugin": "callbell", "currency": "EUR"},
    "calltrackingmetrics": {"plugin": "calltrackingmetrics", "currency": "USD"},
    "odoopbx": {"plugin": "odoopbx", "currency": "EUR"},
}
CURRENCIES = ("usd", "eur", "pln")
CTM_PLANS = ("performance", "growth", "connect")
# who refers: (program, partner kind, how the customer is attributed)
REFERRERS = ("crazycall", "callpage", "ctm", "odoo_partner", "odoo_referral", "callbell")
ATTRIBUTIONS = ("metadata", "checkout", "signup", "install")
_ids = itertools.count()
GENERATED: dict[str, int] = {"histories": 0, "events": 0, "payout_actions": 0,
                             "fast_path_payments": 0}


def at(day: float) -> int:
    return int(T0 + day * DAY)


def iso(day: float) -> str:
    return datetime.fromtimestamp(at(day), UTC).isoformat()


class Codes:
    """The partner codes of one history (unique across histories sharing a hub)."""

    def __init__(self, n: int):
        self.n = n
        self.by_referrer = {r: f"{r.replace('_', '-')}-{n}" for r in REFERRERS}
        self.ambassador = f"cus_{n}_amb"
        self.by_referrer["callbell"] = derived_code(f"callbell:stripe:{self.ambassador}")


@stg.composite
def customer_story(draw: Any, codes: Codes, c: int) -> list[tuple[float, str, Any]]:
    """One referred customer's events as (business day, kind, payload)."""
    n = codes.n
    cus, sub = f"cus_{n}_{c}", f"sub_{n}_{c}"
    referrer = draw(stg.sampled_from(REFERRERS))
    how = draw(stg.sampled_from(ATTRIBUTIONS))
    code = codes.by_referrer[referrer]
    start = draw(stg.integers(0, 60)) + c * 0.01
    out: list[tuple[float, str, Any]] = []
    if how == "install" or referrer == "callbell":
        body = {"install_id": f"inst_{n}_{c}", "product": "odoopbx" if referrer.startswith("odoo")
                else "widget", "customer_ref": cus, "site": f"s{c}.shop{n}.test"}
        if referrer != "callbell":
            body["partner_code"] = code
        out.append((start, "install", body))
    meta_code = code if how in ("metadata", "install") and not referrer.startswith("odoo") else None
    install = f"inst_{n}_{c}" if how == "install" and referrer.startswith("odoo") else None
    out.append((start + 0.1, "stripe", st.event("customer.created", st.customer(
        cus, email=f"{cus}@client.test", partner_code=meta_code if how != "install" or referrer
        != "callbell" else None, install_id=install, created=at(start)), created=at(start))))
    if how == "checkout":
        out.append((start + 0.2, "stripe", st.event("checkout.session.completed",
                    st.checkout_completed(f"cs_{cus}", customer_id=cus,
                                          client_reference_id=code), created=at(start + 0.2))))
    elif how == "signup":
        out.append((start + 0.2, "signup", {"code": code, "email": f"{cus}@client.test",
                                            "customer_ref": cus, "signed_up_at": iso(start + 0.2)}))
    plan = draw(stg.sampled_from(CTM_PLANS))
    out.append((start + 0.3, "stripe", st.event("customer.subscription.created", st.subscription(
        sub, customer_id=cus, status="trialing", plan=plan), created=at(start + 0.3))))
    currency = draw(stg.sampled_from(CURRENCIES))
    for p in range(draw(stg.integers(0, 5))):
        day = start + 14 + 30 * p
        if draw(stg.integers(0, 4)) == 0:  # an upgrade to another plan
            plan = draw(stg.sampled_from(CTM_PLANS))
            out.append((day - 1, "stripe", st.event("customer.subscription.updated",
                        st.subscription(sub, customer_id=cus, status="active", plan=plan),
                        created=at(day - 1))))
        amount = draw(stg.integers(1, 60_000) | stg.integers(20_000, 150_000))
        inv = f"in_{cus}_{p}"
        out.append((day, "stripe", st.event("invoice.paid", st.invoice(
            inv, customer_id=cus, amount=amount, currency=currency, subscription_id=sub,
            paid_at=at(day), charge_id=f"ch_{inv}", intent_id=f"pi_{inv}", plan=plan,
            tax=draw(stg.sampled_from((0, 0, amount // 5)))), created=at(day))))
        # From basil on Stripe names the invoice's payment intent only in invoice_payment.paid.
        out.append((day, "stripe", st.event("invoice_payment.paid", st.invoice_payment(
            inv, amount=amount, intent_id=f"pi_{inv}", currency=currency,
            paid_at=int(at(day))), created=at(day))))
        out.extend(_money_back(draw, inv, amount, currency, day))
    if draw(stg.booleans()):
        day = start + draw(stg.integers(20, 200))
        out.append((day, "stripe", st.event("customer.subscription.deleted", st.subscription(
            sub, customer_id=cus, status="canceled", plan=plan), created=at(day))))
    return out


def _money_back(draw: Any, inv: str, amount: int, currency: str,
                day: float) -> list[tuple[float, str, Any]]:
    """Refunds (cumulative, partial or full) and maybe a dispute of one payment."""
    out: list[tuple[float, str, Any]] = []
    refunded = 0
    for r in range(draw(stg.integers(0, 2))):
        refunded = draw(stg.integers(refunded, amount))
        later = day + draw(stg.sampled_from((0.5, 3, 45, 120)))  # within and after the hold
        out.append((later + r * 0.01, "stripe", st.event("charge.refunded", st.charge_refunded(
            f"ch_{inv}", amount=amount, amount_refunded=refunded, invoice_id=inv,
            intent_id=f"pi_{inv}", currency=currency), created=at(later))))
    if draw(stg.integers(0, 5)) == 0:
        later = day + draw(stg.sampled_from((2, 60)))
        out.append((later, "stripe", st.event("charge.dispute.created", st.dispute(
            f"dp_{inv}", charge_id=f"ch_{inv}", amount=amount, intent_id=f"pi_{inv}",
            currency=currency), created=at(later))))
    return out


@stg.composite
def histories(draw: Any) -> dict[str, Any]:
    codes = Codes(next(_ids))
    n = codes.n
    amb = codes.ambassador
    items: list[tuple[float, str, Any]] = [(0, "stripe", st.event("customer.created", st.customer(
        amb, email=f"{amb}@shop.test", created=at(0)), created=at(0)))]
    for c in range(draw(stg.integers(1, 4))):
        items.extend(draw(customer_story(codes, c)))
    for _ in range(draw(stg.integers(0, 3))):  # clicks on partner links: counted, earn nothing
        items.append((draw(stg.integers(0, 200)), "click", draw(stg.sampled_from(REFERRERS))))
    items.sort(key=lambda item: item[0])
    ticks = sorted(set(draw(stg.lists(stg.integers(10, 400), max_size=4))))
    actions = draw(stg.lists(stg.tuples(stg.sampled_from(("crazycall", "callpage", "callbell",
                                                          "ctm", "odoo_partner")),
                                        stg.sampled_from(("approve", "mark-paid", "reject",
                                                          "leave"))), max_size=4))
    late = draw(stg.lists(stg.tuples(stg.integers(0, 30), stg.booleans()), max_size=3))
    return {"codes": codes, "items": items, "ticks": [at(d) for d in ticks], "actions": actions,
            "late": late, "seed": draw(stg.integers(0, 2**32)), "n": n}


# --- feeding ----------------------------------------------------------------------------------

def setup_partners(hub: Any, codes: Codes) -> dict[str, str]:
    """The referrers of one history, active and able to earn. Returns referrer -> partner id."""
    ids: dict[str, str] = {}
    with hub.transaction() as s:
        for referrer, program, kind in (("crazycall", "crazycall", None),
                                        ("callpage", "callpage", None),
                                        ("ctm", "calltrackingmetrics", None),
                                        ("odoo_partner", "odoopbx", "partner"),
                                        ("odoo_referral", "odoopbx", "referral")):
            p = create_partner(hub, s, program=program, kind=kind, code=codes.by_referrer[referrer],
                               email=f"{referrer.replace('_', '-')}{codes.n}@partners.test",
                               paypal_email=f"pp{codes.n}@partners.test")
            if p.status == "applied":
                transition(s, p.id, "approve", "test")
            if program == "calltrackingmetrics":
                from hub.attribution.partners import accept_agreement
                accept_agreement(s, p.id, "test")
            ids[referrer] = p.id
    return ids


def deliver(hub: Any, client: TestClient, codes: Codes, item: tuple[float, str, Any]) -> None:
    _, kind, payload = item
    if kind == "stripe":
        process(hub, payload)
    elif kind == "install":
        body = {**payload, "occurred_at": iso(_day_of(item))}
        r = client.post("/api/v1/installs", json=body, headers=installer_headers())
        assert r.status_code in (200, 201), r.text
    elif kind == "signup":
        r = client.post("/api/v1/signups", json=payload, headers=installer_headers())
        assert r.status_code in (200, 201), r.text
    elif kind == "click":
        r = client.get(f"/r/{codes.by_referrer[payload]}", follow_redirects=False)
        assert r.status_code == 302, r.text


def deliver_batched(hub: Any, client: TestClient, codes: Codes,
                    items: list[tuple[float, str, Any]], rng: random.Random) -> None:
    """Runs of Stripe events applied as batches of 1 to 24 (one transaction each); the other
    deliveries one by one in between, in the same order."""
    from connectors.stripe import prepare
    from hub.ingest.batch import apply_batch

    run: list[Any] = []

    def flush() -> None:
        while run:
            size = rng.randint(1, 24)
            with hub.transaction() as session:
                apply_batch(hub, session, [prepare(hub, e, session) for e in run[:size]])
            del run[:size]

    for item in items:
        if item[1] == "stripe":
            run.append(item[2])
            continue
        flush()
        deliver(hub, client, codes, item)
    flush()


def statuses(hub: Any) -> list[tuple[Any, ...]]:
    from hub.db.models import Customer, CustomerStatus

    with hub.sessions() as s:
        return sorted(s.execute(select(Customer.provider, Customer.ref, CustomerStatus.status,
                                       CustomerStatus.plan, CustomerStatus.occurred_at)
                                .join(CustomerStatus, CustomerStatus.customer_id == Customer.id)
                                ).all())


def _day_of(item: tuple[float, str, Any]) -> float:
    return item[0]


def feed(hub: Any, client: TestClient, history: dict[str, Any], shuffled: bool,
         batched: bool = False) -> None:
    codes, items, ticks = history["codes"], list(history["items"]), list(history["ticks"])
    if shuffled:
        rng = random.Random(history["seed"])
        items += rng.sample(items, k=len(items) // 2)
        rng.shuffle(items)
        if batched:
            deliver_batched(hub, client, codes, items, random.Random(history["seed"] + 1))
        else:
            for item in items:
                deliver(hub, client, codes, item)
        for now in ticks:
            _tick(hub, now)
        return
    for item in items:  # in business time, each tick at its moment
        while ticks and ticks[0] <= at(item[0]):
            _tick(hub, ticks.pop(0))
        deliver(hub, client, codes, item)
    for now in ticks:
        _tick(hub, now)


def _tick(hub: Any, now: int) -> None:
    run_tick(hub, datetime.fromtimestamp(now, UTC))


def payouts(hub: Any, partners: dict[str, str], history: dict[str, Any]) -> None:
    """Withdrawals and operator decisions; 4xx answers (below minimum, automatic program, one
    already pending, a decision not allowed now) are part of the game."""
    for referrer, decision in history["actions"]:
        partner_id = _partner_of(hub, partners, history, referrer)
        if partner_id is None:
            continue
        with hub.sessions() as s:  # the currency it has the most payable money in
            held = sorted((b["payable"], b["currency"]) for b in ledger.balances(s, partner_id))
        if not held:
            continue
        method = "bank_transfer" if referrer == "callbell" else None
        try:
            with hub.transaction() as s:
                payout_id = request_withdrawal(hub, s, partner_id, held[-1][1], method, "test").id
            GENERATED["payout_actions"] += 1
            for action in {"approve": ["approve"], "mark-paid": ["approve", "mark-paid"],
                           "reject": ["reject"], "leave": []}[decision]:
                with hub.transaction() as s:
                    operator_action(s, payout_id, action, "operator", reference="bank-1")
        except HTTPError as exc:
            GENERATED.setdefault(f"refused:{exc.code}", 0)
            GENERATED[f"refused:{exc.code}"] += 1
            continue


def _partner_of(hub: Any, partners: dict[str, str], history: dict[str, Any],
                referrer: str) -> str | None:
    if referrer != "callbell":
        return partners[referrer]
    from hub.db.models import Partner
    with hub.sessions() as s:
        return s.scalar(select(Partner.id).where(Partner.code == history["codes"].by_referrer[
            "callbell"]))


def late_money_back(history: dict[str, Any]) -> list[tuple[float, str, Any]]:
    """Refunds and disputes arriving after the payouts, of payments made long before."""
    payments = [i for i in history["items"] if i[1] == "stripe" and i[2]["type"] == "invoice.paid"]
    out = []
    for pick, dispute in history["late"]:
        if not payments:
            break
        inv = payments[pick % len(payments)][2]["data"]["object"]
        day = 410
        if dispute:
            evt = st.event("charge.dispute.created", st.dispute(
                f"dp_late_{inv['id']}", charge_id=f"ch_{inv['id']}", amount=inv["amount_paid"],
                intent_id=f"pi_{inv['id']}", currency=inv["currency"]), created=at(day))
        else:
            evt = st.event("charge.refunded", st.charge_refunded(
                f"ch_{inv['id']}", amount=inv["amount_paid"], amount_refunded=inv["amount_paid"],
                invoice_id=inv["id"], intent_id=f"pi_{inv['id']}", currency=inv["currency"]),
                created=at(day))
        out.append((day, "stripe", evt))
    return out


# --- what must hold ---------------------------------------------------------------------------

def snapshot(hub: Any, partner_ids: list[str]) -> dict[str, Any]:
    """Per partner code: balances and each earning's net after its reversals (how the net was
    reached may differ: refunds seen as 10 then 20 reverse in two steps, seen as 20 alone in
    one)."""
    from hub.db.models import Partner

    out: dict[str, Any] = {}
    with hub.sessions() as s:
        for pid in partner_ids:
            lines = s.scalars(select(Commission).where(Commission.partner_id == pid)).all()
            keys = {c.id: c.key for c in lines if c.reverses_id is None}
            net: dict[str, int] = {}
            for c in lines:
                key = keys[c.reverses_id or c.id]
                net[key] = net.get(key, 0) + c.amount
            code = s.scalar(select(Partner.code).where(Partner.id == pid))
            # Automatic payouts fire at the tick that finds the threshold crossed, so when money
            # moved from payable to a payout depends on timing; what the partner is owed does not.
            owed = [(b["currency"], b["pending"], b["payable"] + b["in_payout"] + b["paid"],
                     b["voided"]) for b in ledger.balances(s, pid)]
            out[code] = (owed, sorted(net.items()))
    return out


def check_invariants(hub: Any, client: TestClient, partner_ids: list[str]) -> None:
    api = {pid: client.get(f"/api/v1/partners/{pid}", headers=_op()).json()["balances"]
           for pid in partner_ids}
    with hub.sessions() as s:
        for pid in partner_ids:
            _check_partner(s, api[pid], pid)
        _check_transfers(s, partner_ids)
        _check_sources(s, partner_ids)


def _check_partner(s: Any, api: list[dict[str, Any]], pid: str) -> None:
    by_currency = {b["currency"]: b for b in api}
    sums = s.execute(select(LedgerEntry.currency, LedgerEntry.state, func.sum(LedgerEntry.amount))
                     .where(LedgerEntry.partner_id == pid)
                     .group_by(LedgerEntry.currency, LedgerEntry.state)).all()
    for currency, state, total in sums:  # the API's balance is the sum of the entries
        assert by_currency[currency][state] == int(total)
    for b in api:
        cur = b["currency"]
        lines = int(s.scalar(select(func.coalesce(func.sum(Commission.amount), 0)).where(
            Commission.partner_id == pid, Commission.currency == cur)) or 0)
        assert b["pending"] + b["payable"] + b["in_payout"] + b["paid"] == lines, (b, lines)
        for state in ("pending", "in_payout", "paid", "voided"):
            assert b[state] >= 0, (state, b)
        clawed = -int(s.scalar(select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
            LedgerEntry.partner_id == pid, LedgerEntry.currency == cur,
            LedgerEntry.state == "payable", LedgerEntry.kind.in_(("reverse", "retract")))) or 0)
        assert b["payable"] >= -clawed, (b, clawed)  # below zero only by clawed-back money
        paid = _payout_sum(s, pid, cur, ("paid",))
        assert b["paid"] == paid, (b, paid)
        held = _payout_sum(s, pid, cur, ("requested", "approved", "queued", "sent", "unclaimed",
                                         "dry_run"))
        assert b["in_payout"] == held, (b, held)
    per_line = s.execute(select(LedgerEntry.commission_id, LedgerEntry.state,
                                func.sum(LedgerEntry.amount))
                         .where(LedgerEntry.partner_id == pid,
                                LedgerEntry.state.in_(("pending", "voided")))
                         .group_by(LedgerEntry.commission_id, LedgerEntry.state)).all()
    assert all(int(total) >= 0 for _, _, total in per_line), per_line


def _payout_sum(s: Any, pid: str, currency: str, statuses: tuple[str, ...]) -> int:
    return int(s.scalar(select(func.coalesce(func.sum(Payout.amount), 0)).where(
        Payout.partner_id == pid, Payout.currency == currency,
        Payout.status.in_(statuses))) or 0)


def _check_transfers(s: Any, partner_ids: list[str]) -> None:
    rows = s.execute(select(LedgerEntry.transfer_id, LedgerEntry.kind, func.sum(LedgerEntry.amount),
                            func.count()).where(LedgerEntry.partner_id.in_(partner_ids))
                     .group_by(LedgerEntry.transfer_id, LedgerEntry.kind)).all()
    for transfer, kind, total, legs in rows:
        if kind == "earn":
            assert legs == 1 and total > 0
        elif kind != "retract":
            assert int(total) == 0, (transfer, kind, total)


def _check_sources(s: Any, partner_ids: list[str]) -> None:
    """Every earn/reverse/retract entry and line names its event; every payout leg its payout."""
    untraced = s.scalar(select(func.count()).select_from(LedgerEntry).where(
        LedgerEntry.partner_id.in_(partner_ids),
        LedgerEntry.kind.in_(("earn", "reverse", "retract")),
        LedgerEntry.event_id.is_(None)))
    assert untraced == 0
    lines = s.scalar(select(func.count()).select_from(Commission).outerjoin(
        ProviderEvent, ProviderEvent.id == Commission.event_id).where(
        Commission.partner_id.in_(partner_ids), ProviderEvent.id.is_(None)))
    assert lines == 0
    loose = s.scalar(select(func.count()).select_from(LedgerEntry).where(
        LedgerEntry.partner_id.in_(partner_ids), LedgerEntry.kind.like("payout%"),
        LedgerEntry.payout_id.is_(None)))
    assert loose == 0


def _op() -> dict[str, str]:
    from tests.conftest import operator_headers
    return operator_headers()


# --- the property -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pair(tmp_path_factory: Any) -> Any:
    """Two hubs (in order / shuffled) shared by all examples: histories use their own codes."""
    from hub.app import build_hub
    from hub.config import config_from_dict
    from tests.conftest import ADMIN_TOKEN, INSTALLER_TOKEN, WEBHOOK_SECRET

    hubs = []
    for name in ("ordered", "shuffled", "batched"):
        url = f"sqlite:///{tmp_path_factory.mktemp(name) / 'hub.db'}"
        hubs.append(build_hub(config_from_dict({
            "database": {"url": url},
            "server": {"admin_token": ADMIN_TOKEN, "installer_token": INSTALLER_TOKEN,
                       "secret_key": "s" * 32, "allowed_domains": ["example.com"],
                       "base_url": "http://hub.test"},
            "connectors": {"stripe": {"webhook_secret": WEBHOOK_SECRET}},
            "programs": PROGRAMS})))
    clients = [TestClient(create_app(h)) for h in hubs]
    from tests.batch_helpers import fast_settled

    with fast_settled() as settled:
        yield list(zip(hubs, clients, strict=True))
    GENERATED["fast_path_payments"] = len(settled)
    print(f"\nledger properties ({PROFILE}): {GENERATED}")
    for h in hubs:
        h.engine.dispose()
    # The batched hub must have taken the set-based path, not only the per-event fallback.
    assert GENERATED["fast_path_payments"] > 0


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(history=histories())
def test_any_order_any_duplicates_same_ledger_and_invariants_hold(pair, history):
    GENERATED["histories"] += 1
    GENERATED["events"] += len(history["items"])
    (live, live_client), (shuf, shuf_client), (bat, bat_client) = pair
    ids = []
    for hub, client, shuffled, batched in ((live, live_client, False, False),
                                           (shuf, shuf_client, True, False),
                                           (bat, bat_client, True, True)):
        partners = setup_partners(hub, history["codes"])
        feed(hub, client, history, shuffled, batched)
        _tick(hub, at(402))  # every hub: every hold ended, every milestone due
        ids.append(partners)
    everyone = [_all_partners(h, history) for h, _ in pair]
    a, b = snapshot(live, everyone[0]), snapshot(shuf, everyone[1])
    assert snapshot(bat, everyone[2]) == a
    assert statuses(bat) == statuses(shuf)
    if a != b and os.environ.get("LEDGER_DEBUG"):
        for item in history["items"]:
            print(item[0], item[1], item[2].get("type") if item[1] == "stripe" else item[2],
                  item[2]["data"]["object"].get("metadata") if item[1] == "stripe" else "")
        print("ticks", history["ticks"])
    assert a == b
    for (hub, client), partners, all_ids in zip(pair, ids, everyone, strict=True):
        check_invariants(hub, client, all_ids)
        payouts(hub, partners, history)
        late = late_money_back(history)
        for item in late + late[:1]:  # a late refund delivered twice
            deliver(hub, client, history["codes"], item)
        _tick(hub, at(415))
        check_invariants(hub, client, all_ids)


def _all_partners(hub: Any, history: dict[str, Any]) -> list[str]:
    from hub.db.models import Partner
    codes = list(history["codes"].by_referrer.values())
    with hub.sessions() as s:
        return list(s.scalars(select(Partner.id).where(Partner.code.in_(codes))))
