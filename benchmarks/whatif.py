"""How fast `hub whatif` replays a program's history: N stored events on a scratch database.

    python benchmarks/whatif.py --events 1000000            # SQLite file in a temp dir
    python benchmarks/whatif.py --events 200000 --database-url postgresql://...  # an EMPTY db
    python benchmarks/whatif.py --reuse --database-url sqlite:////tmp/hub-whatif-bench-…/bench.db

It writes a realistic history straight into the tables (bulk inserts, much faster than the
webhook path, which the tests cover): per customer a `customer.created`, a
`customer.subscription.created` and monthly `invoice.paid` events, 3% of payments refunded in
part, 0.5% disputed; 90% of customers referred by one of the partners; the real ledger's
crazycall lines at 20% with their reversals. Then it runs the what-if (20% -> 25%) with the
progress bar and prints events/s and the time 1,000,000 events would take.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HUB_LOAD_PLUGINS", "")

from sqlalchemy import insert  # noqa: E402

from hub.app import build_hub  # noqa: E402
from hub.config import config_from_dict  # noqa: E402
from hub.db.models import (  # noqa: E402
    Commission,
    Customer,
    Partner,
    PaymentAdjustment,
    PaymentRecord,
    ProviderEvent,
    Referral,
    SubscriptionState,
)
from hub.ingest.whatif import run_whatif  # noqa: E402
from hub.ledger.reversals import Adjustment, PaidAmount, reversal_target, reversed_in_all  # noqa: E402
from hub.money import percent_of  # noqa: E402
from hub.runtime import Hub  # noqa: E402

START = datetime(2024, 1, 1, tzinfo=UTC)
RATE = Decimal("0.20")
PAYMENTS_PER_CUSTOMER = 22
CHUNK = 20_000


class Writer:
    """Buffers rows per table and inserts them in chunks (executemany)."""

    def __init__(self, hub: Hub):
        self.hub, self.buffers = hub, {}  # type: ignore[var-annotated]
        self.next_event = 0

    def add(self, model: Any, **row: Any) -> None:
        rows = self.buffers.setdefault(model, [])
        rows.append(row)
        if len(rows) >= CHUNK:
            self.flush()

    def event(self, type_: str, at: datetime, obj: dict[str, Any]) -> int:
        self.next_event += 1
        payload = json.dumps({"id": f"evt_{self.next_event}", "type": type_,
                              "created": int(at.timestamp()), "data": {"object": obj}},
                             separators=(",", ":"))
        self.add(ProviderEvent, id=self.next_event, provider="stripe",
                 event_id=f"evt_{self.next_event}", type=type_, occurred_at=at, received_at=at,
                 payload=payload, outcome="processed")
        return self.next_event

    def flush(self) -> None:
        """Every buffer, parents before children, so foreign keys hold at every chunk."""
        order = [Partner, ProviderEvent, Customer, Referral, PaymentRecord, PaymentAdjustment,
                 SubscriptionState, Commission]
        with self.hub.engine.begin() as conn:
            for model in order:
                rows = self.buffers.pop(model, [])
                if rows:
                    conn.execute(insert(model), rows)


def generate(hub: Hub, events: int, seed: int = 7) -> dict[str, int]:
    rnd = random.Random(seed)
    w = Writer(hub)
    partners = [f"prt_bench{i:05d}" for i in range(max(events // 5000, 2))]
    for i, pid in enumerate(partners):
        w.add(Partner, id=pid, program="crazycall", kind="partner", status="active",
              code=f"code{i}", email=f"p{i}@bench.test", name=f"P{i}", payout_method="paypal",
              created_at=START)
    w.flush()
    customers = 0
    while w.next_event < events:
        customers += 1
        _customer(w, rnd, customers, partners)
    w.flush()
    return {"events": w.next_event, "customers": customers, "partners": len(partners)}


def _customer(w: Writer, rnd: random.Random, cid: int, partners: list[str]) -> None:
    at = START + timedelta(days=rnd.randrange(0, 365), seconds=rnd.randrange(86400))
    ref = f"cus_{cid}"
    ev = w.event("customer.created", at, {"id": ref, "object": "customer"})
    w.add(Customer, id=cid, provider="stripe", ref=ref, email=f"c{cid}@x.test",
          first_seen_at=at)
    partner = rnd.choice(partners) if rnd.random() < 0.9 else None
    if partner:
        w.add(Referral, id=cid, program="crazycall", partner_id=partner, customer_id=cid,
              source="code", attributed_at=at, self_referral=False, event_id=ev)
    sub_ev = w.event("customer.subscription.created", at, {"id": f"sub_{cid}", "customer": ref})
    w.add(SubscriptionState, provider="stripe", subscription_ref=f"sub_{cid}", customer_id=cid,
          status="active", plan="pro", occurred_at=at, event_id=sub_ev)
    for n in range(PAYMENTS_PER_CUSTOMER):
        _payment(w, rnd, cid, ref, partner, at + timedelta(days=30 * n), n)


def _payment(w: Writer, rnd: random.Random, cid: int, ref: str, partner: str | None,
             at: datetime, n: int) -> None:
    amount = rnd.choice((2900, 4900, 9900, 19900))
    inv, charge = f"in_{cid}_{n}", f"ch_{cid}_{n}"
    ev = w.event("invoice.paid", at, {"id": inv, "customer": ref, "amount_paid": amount,
                                      "currency": "usd", "charge": charge})
    pay_id = cid * 100 + n
    w.add(PaymentRecord, id=pay_id, provider="stripe", ref=inv, charge_ref=charge,
          intent_ref=None, customer_id=cid, subscription_ref=f"sub_{cid}", plan="pro",
          amount=amount, gross_amount=amount, currency="USD", occurred_at=at, event_id=ev)
    adjustments = _adjustments(w, rnd, inv, charge, amount, at)
    if partner:
        _current_line(w, partner, cid, pay_id, inv, amount, at, ev, adjustments)


def _adjustments(w: Writer, rnd: random.Random, inv: str, charge: str, amount: int,
                 at: datetime) -> list[Adjustment]:
    roll = rnd.random()
    if roll >= 0.035:
        return []
    later = at + timedelta(days=3)
    if roll < 0.005:
        ev = w.event("charge.dispute.created", later, {"id": f"dp_{charge}", "charge": charge})
        kind, key, value = "dispute", f"dp_{charge}", amount
    else:
        value = amount // rnd.choice((1, 2, 5))
        ev = w.event("charge.refunded", later, {"id": charge, "amount_refunded": value})
        kind, key = "refund_total", f"{charge}:{value}"
    w.add(PaymentAdjustment, provider="stripe", kind=kind, key=key, payment_ref=inv,
          charge_ref=charge, intent_ref=None, amount=value, occurred_at=later, event_id=ev)
    return [Adjustment(kind=kind, amount=value, occurred_at=later, event_id=ev)]


def _current_line(w: Writer, partner: str, cid: int, pay_id: int, inv: str, amount: int,
                  at: datetime, ev: int, adjustments: list[Adjustment]) -> None:
    """The real ledger's line, as crazycall booked it at 20% (and its reversal)."""
    line = percent_of(amount, RATE)
    cid_line = f"com_b{pay_id}"
    w.add(Commission, id=cid_line, program="crazycall", partner_id=partner, referral_id=cid,
          key=f"pay:stripe:{inv}", amount=line, currency="USD", earned_at=at,
          available_at=at + timedelta(days=30), payment_id=pay_id, event_id=ev,
          rule={"rule": "recurring_percentage"}, created_at=at)
    target = reversal_target(line, "USD", PaidAmount(inv, amount, "USD"), adjustments)
    reversed_ = reversed_in_all(line, target)
    if reversed_:
        w.add(Commission, id=f"{cid_line}r", program="crazycall", partner_id=partner,
              referral_id=cid, key=f"pay:stripe:{inv}:rev:{reversed_}", amount=-reversed_,
              currency="USD", earned_at=at, available_at=at + timedelta(days=30),
              reverses_id=cid_line, payment_id=pay_id, event_id=adjustments[0].event_id,
              rule={"rule": "refund"}, created_at=at)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--database-url", help="an empty database (default: SQLite in a temp dir)")
    p.add_argument("--reuse", action="store_true",
                   help="time the what-if on the database given, generated by an earlier run")
    p.add_argument("--profile", action="store_true", help="profile the what-if with cProfile")
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="hub-whatif-bench-")
    url = args.database_url or f"sqlite:///{tmp}/bench.db"
    hub = build_hub(config_from_dict({"database": {"url": url},
                                      "programs": {"crazycall": {"plugin": "crazycall"}}}))
    started = time.perf_counter()
    stats = _existing(hub) if args.reuse else generate(hub, args.events)
    print(f"generated {stats['events']:,} events ({stats['customers']:,} customers, "
          f"{stats['partners']:,} partners) in {time.perf_counter() - started:.1f}s on "
          f"{hub.engine.dialect.name} ({url})", file=sys.stderr)
    result, elapsed = _timed_whatif(hub, args.profile)
    rate = stats["events"] / elapsed
    totals = result.to_json()["totals"]
    print(json.dumps({"events": stats["events"], "seconds": round(elapsed, 2),
                      "events_per_second": round(rate), "payments_evaluated": result.rows,
                      "extrapolated_seconds_for_1M": round(1_000_000 / rate, 1),
                      "backend": hub.engine.dialect.name, "totals": totals}, indent=2))
    return 0


def _existing(hub: Hub) -> dict[str, int]:
    from sqlalchemy import func, select

    with hub.engine.connect() as conn:
        def count(model: Any) -> int:
            return int(conn.scalar(select(func.count()).select_from(model)) or 0)

        return {"events": count(ProviderEvent), "customers": count(Customer),
                "partners": count(Partner)}


def _timed_whatif(hub: Hub, profile: bool) -> tuple[Any, float]:
    import cProfile
    import pstats

    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    result = run_whatif(hub, "crazycall", {"rate": "0.25"}, progress=True)
    if profiler:
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
    return result, time.perf_counter() - started


if __name__ == "__main__":
    sys.exit(main())
