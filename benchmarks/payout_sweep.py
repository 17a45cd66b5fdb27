"""Benchmark 4: the payout sweep for many partners over their automatic threshold.

Seeds `--partners` odoopbx referral partners with PayPal addresses and €120 payable each, runs
the sweep of `hub tick` (`hub.payouts.states.sweep`) and waits until the in-process worker has
handed every payout to PayPal (sandbox mode, answered by the tests' fake PayPal through respx) and
recorded the answer. The sweep pays them in PayPal batches of up to
`hub.payouts.batches.BATCH_SIZE` items (one transaction, one message and one PayPal request per
batch). The reference bulk-inserts the same number of payout rows.

    python benchmarks/payout_sweep.py [--partners 10000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import respx
from sqlalchemy import create_engine, func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HUB_LOAD_PLUGINS", "")

from benchmarks.ingest import schema_url  # noqa: E402
from hub.app import build_hub  # noqa: E402
from hub.config import config_from_dict  # noqa: E402
from hub.db.models import Payout  # noqa: E402
from hub.jobs.queue import close_queue, queue_of  # noqa: E402
from hub.payouts.sweep import sweep  # noqa: E402
from tests.payout_helpers import FakePaypal  # noqa: E402


def seed(hub: Any, partners: int) -> None:
    with hub.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO partners (id, program, kind, status, code, email, name, payout_method, "
            "paypal_email, created_at) SELECT 'prt_' || g, 'odoopbx', 'referral', 'active', "
            "'code' || g, 'p' || g || '@partners.test', '', 'paypal', 'p' || g || '@pay.test', "
            "now() FROM generate_series(1, :n) g"), {"n": partners})
        conn.execute(text(
            "INSERT INTO ledger_entries (transfer_id, partner_id, currency, state, amount, kind, "
            "created_at) SELECT 'trf_' || g, 'prt_' || g, 'EUR', 'payable', 12000, 'release', "
            "now() FROM generate_series(1, :n) g"), {"n": partners})
        conn.execute(text("ANALYZE"))


def reference(url: str, partners: int) -> float:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE ref_payouts (id text PRIMARY KEY, partner_id text, "
                          "amount bigint, currency text, status text, receiver text, "
                          "created_at timestamptz)"))
    rows = [{"id": f"po_{i}", "p": f"prt_{i}", "r": f"p{i}@pay.test"} for i in range(partners)]
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO ref_payouts VALUES (:id, :p, 12000, 'EUR', 'queued', :r, "
                          "now())"), rows)
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def run(database: str, partners: int) -> dict[str, Any]:
    url = schema_url(database, "bench_payouts")
    fake = FakePaypal()
    with respx.mock(assert_all_called=False) as router:
        router.route(host="api.sandbox.paypal.com").mock(side_effect=fake.respx_side_effect)
        hub = build_hub(config_from_dict({
            "database": {"url": url},
            "connectors": {"paypal": {"mode": "sandbox", "client_id": "id",
                                      "client_secret": "secret", "webhook_id": "WH-1"}},
            "programs": {"odoopbx": {"plugin": "odoopbx"}}}))
        seed(hub, partners)
        started = time.perf_counter()
        created = sweep(hub, datetime.now(UTC))["created"]
        swept = time.perf_counter() - started
        queue_of(hub).join(timeout_ms=600_000)
        elapsed = time.perf_counter() - started
        with hub.sessions() as session:
            statuses = dict(session.execute(select(Payout.status, func.count())
                                            .group_by(Payout.status)).all())
        close_queue(hub)
        hub.engine.dispose()
    ref = reference(schema_url(database, "bench_payouts_ref"), partners)
    return {"partners": partners, "payouts_created": created, "sweep_seconds": swept,
            "seconds_until_handed_to_paypal": elapsed, "paypal_batches": len(fake.batches),
            "paypal_items": sum(len(b["items"]) for b in fake.batches.values()),
            "largest_batch": max((len(b["items"]) for b in fake.batches.values()), default=0),
            "statuses": statuses, "reference_seconds": ref}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database", default=os.environ.get(
        "HUB_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--partners", type=int, default=10_000)
    args = ap.parse_args()
    for key, value in run(args.database, args.partners).items():
        print(f"{key:32} {value:,.2f}" if isinstance(value, float) else f"{key:32} {value}")


if __name__ == "__main__":
    main()
