"""Server time of every partner-portal page for a partner with many referrals.

    python benchmarks/portal_pages.py [--referrals 10000] [--requests 30] [--database-url URL]

Seeds one partner with N referred customers (bulk inserts: customers, referrals, subscription
timelines, payments, commission lines and their ledger entries), logs in, then requests each page
`--requests` times in-process and prints p50 / p95 in milliseconds. Without --database-url it uses
a temporary SQLite file; a PostgreSQL URL gets a private schema that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HUB_LOAD_PLUGINS", "")

from sqlalchemy import create_engine, insert, text  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from hub.app import (
    build_hub,  # noqa: E402
    create_app,  # noqa: E402
)
from hub.attribution.counts import count_changes  # noqa: E402
from hub.attribution.passwords import hash_password  # noqa: E402
from hub.config import config_from_dict  # noqa: E402
from hub.db.models import (  # noqa: E402
    Commission,
    Customer,
    LedgerEntry,
    Partner,
    PaymentRecord,
    ProviderEvent,
    Referral,
    SubscriptionState,
)
from hub.ledger.checkpoints import checkpoint_ledger  # noqa: E402
from hub.ledger.statuses import rebuild_statuses, snapshot_activity  # noqa: E402
from hub.runtime import Hub  # noqa: E402

PASSWORD = "benchmark password"
PAGES = ["/portal/", "/portal/?period=90d", "/portal/?period=12m", "/portal/referrals",
         "/portal/referrals?page=150", "/portal/referrals/{referral}", "/portal/transactions",
         "/portal/transactions?page=300", "/portal/payouts", "/portal/links", "/portal/settings",
         "/portal/materials"]


@contextmanager
def database(url: str | None) -> Iterator[str]:
    if not url:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    schema = f"bench_{secrets.token_hex(4)}"
    admin = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def seed(hub: Hub, referrals: int, now: datetime) -> tuple[str, int]:
    """One partner with `referrals` customers: 30% in trial, 60% paying 3 months, 10% cancelled.
    They joined over the past year (50 minutes apart, closer for more than 10,512), and nothing
    is dated after `now`."""
    with hub.transaction() as s:
        partner = Partner(program="crazycall", code="benchcode", email="bench@partners.test",
                          name="Bench", password_hash=hash_password(PASSWORD), created_at=now)
        s.add(partner)
        event = ProviderEvent(provider="stripe", event_id="evt_bench", type="seed", occurred_at=now,
                              received_at=now, payload="{}")
        s.add(event)
        s.flush()
        start = now - timedelta(days=365)
        gap = timedelta(minutes=min(50, 365 * 24 * 60 / referrals))
        s.execute(insert(Customer), [dict(id=i, provider="stripe", ref=f"cus_{i}",
                                          email=f"client{i}@example.com",
                                          first_seen_at=start + gap * i)
                                     for i in range(1, referrals + 1)])
        s.execute(insert(Referral), [dict(id=i, program="crazycall", partner_id=partner.id,
                                          customer_id=i, source="link" if i % 3 else "code",
                                          link_code=f"lnk{i % 7}" if i % 3 else None,
                                          attributed_at=start + gap * i)
                                     for i in range(1, referrals + 1)])
        states, payments, lines, entries = [], [], [], []
        for i in range(1, referrals + 1):
            joined = start + gap * i
            states.append(dict(provider="stripe", subscription_ref=f"sub_{i}", customer_id=i,
                               status="trial", plan="plan_a", occurred_at=joined))
            if i % 10 < 3 or joined + timedelta(days=14) > now:
                continue
            for month in range(3):
                paid_at = joined + timedelta(days=14 + 30 * month)
                if paid_at > now:
                    break
                pid = len(payments) + 1
                payments.append(dict(id=pid, provider="stripe", ref=f"in_{i}_{month}",
                                     customer_id=i, subscription_ref=f"sub_{i}", plan="plan_a",
                                     amount=4900, gross_amount=4900, currency="USD",
                                     occurred_at=paid_at, event_id=event.id))
                cid = f"com_{pid:016x}"
                lines.append(dict(id=cid, program="crazycall", partner_id=partner.id,
                                  referral_id=i, key=f"pay:stripe:in_{i}_{month}", amount=980,
                                  currency="USD", earned_at=paid_at,
                                  available_at=paid_at + timedelta(days=30), payment_id=pid,
                                  event_id=event.id, created_at=paid_at,
                                  rule={"sentence": "20% of $49.00 = $9.80"}))
                entries.append(dict(transfer_id=f"tr_{pid}", partner_id=partner.id, currency="USD",
                                    state="pending", amount=980, kind="earn", commission_id=cid,
                                    line_id=cid, event_id=event.id, created_at=paid_at))
            states.append(dict(provider="stripe", subscription_ref=f"sub_{i}", customer_id=i,
                               status="active", plan="plan_a",
                               occurred_at=joined + timedelta(days=14)))
            if i % 10 == 9 and joined + timedelta(days=100) <= now:
                states.append(dict(provider="stripe", subscription_ref=f"sub_{i}", customer_id=i,
                                   status="cancelled", plan="plan_a",
                                   occurred_at=joined + timedelta(days=100)))
        for model, rows in ((SubscriptionState, states), (PaymentRecord, payments),
                            (Commission, lines), (LedgerEntry, entries)):
            for chunk in range(0, len(rows), 5000):
                s.execute(insert(model), rows[chunk:chunk + 5000])
        rebuild_statuses(s)  # the projection dispatch keeps when facts arrive one by one
        if s.bind.dialect.name == "postgresql":
            s.execute(text("ANALYZE"))
    snapshot_activity(hub, now)  # what `hub tick` writes
    checkpoint_ledger(hub, now)
    count_changes(hub, now)
    if hub.engine.dialect.name == "postgresql":
        with hub.engine.begin() as conn:  # what autovacuum does after the first tick's updates
            conn.execute(text("ANALYZE"))
    return partner.id, referrals // 2


def measure(client: TestClient, path: str, requests: int) -> tuple[float, float]:
    client.get(path)  # warm caches and templates
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    times.sort()
    return statistics.median(times), times[max(int(len(times) * 0.95) - 1, 0)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--referrals", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--database-url", default=os.environ.get("HUB_BENCH_DATABASE_URL", ""))
    args = parser.parse_args()
    with database(args.database_url) as url, tempfile.TemporaryDirectory() as materials:
        hub = build_hub(config_from_dict({
            "database": {"url": url},
            "server": {"secret_key": "b" * 32, "materials_dir": materials},
            "programs": {"crazycall": {"plugin": "crazycall"}}}))
        started = time.perf_counter()
        _, referral = seed(hub, args.referrals, datetime.now(UTC))
        print(f"{hub.engine.dialect.name}: seeded {args.referrals} referrals in "
              f"{time.perf_counter() - started:.1f}s")
        with TestClient(create_app(hub)) as client:
            form = client.get("/portal/login").text
            token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
            client.post("/portal/login", data={"csrf": token, "email": "bench@partners.test",
                                               "password": PASSWORD})
            print(f"{'page':40} {'p50 ms':>8} {'p95 ms':>8}")
            for page in PAGES:
                path = page.format(referral=referral)
                p50, p95 = measure(client, path, args.requests)
                print(f"{path:40} {p50:8.1f} {p95:8.1f}")
        hub.engine.dispose()


if __name__ == "__main__":
    main()
