"""Benchmark 3: the partner dashboard for the largest partner among many, on PostgreSQL.

Seeds `--partners` partners and about `--entries` ledger entries: the largest partner gets
about a tenth of them as real referrals (joined over the past year), payments, commission lines
and entries (the portal benchmark's seed), the others share the rest. Then runs what `hub tick`
writes (activity snapshots, ledger checkpoints) and books `--tail` more lines for the largest
partner after that, so reads also cover entries newer than the last tick. Measures in-process,
for the partner with the most entries, the p95 server time (from a request's arrival at the app
until its response is sent; `*_with_client` adds the test client's own work) of the dashboard
API (`GET /api/v1/partners/{id}` with balances, and the first page of `/commissions`, together)
and of the portal page `/portal/` (also `?period=12m`), against the reference: the same two
reads as hand-written SQL through psycopg.

    python benchmarks/dashboard.py [--partners 10000] [--entries 1000000] [--tail 1000]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text
from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HUB_LOAD_PLUGINS", "")

from benchmarks.ingest import schema_url  # noqa: E402
from benchmarks.portal_pages import PASSWORD, seed  # noqa: E402
from hub.app import (
    build_hub,  # noqa: E402
    create_app,  # noqa: E402
)
from hub.config import config_from_dict  # noqa: E402
from hub.ledger.checkpoints import checkpoint_ledger  # noqa: E402

TOKEN = "bench-admin-token-0123456789"
REFERENCE_SQL = (
    "SELECT currency, state, sum(amount) FROM (SELECT currency, state, amount "
    "FROM balance_checkpoints WHERE partner_id = %(p)s UNION ALL SELECT currency, state, amount "
    "FROM ledger_entries WHERE partner_id = %(p)s AND id > (SELECT through_id FROM "
    "ledger_watermark)) t GROUP BY currency, state",
    "SELECT c.id, c.amount, c.currency, c.earned_at, e.event_id FROM commissions c "
    "LEFT JOIN provider_events e ON e.id = c.event_id WHERE c.partner_id = %(p)s "
    "ORDER BY c.created_at DESC, c.id LIMIT 100")


def p95(run: Callable[[], Any], requests: int, clock: ServerClock | None = None) -> float:
    """The 95th percentile of one `run` in ms: wall time, or with `clock` the server time the
    app spent on the requests `run` made."""
    run()  # warm caches, templates, prepared statements
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        if clock:
            clock.spent = 0.0
        run()
        times.append((clock.spent if clock else time.perf_counter() - start) * 1000)
    times.sort()
    return times[max(int(len(times) * 0.95) - 1, 0)]


class ServerClock:
    """ASGI wrapper around the app: adds up the time from a request's arrival until its
    response is sent (middleware, routing, the thread hop, SQL, rendering), without the test
    client's own work."""

    def __init__(self, app: Any):
        self.app, self.spent = app, 0.0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http":
                self.spent += time.perf_counter() - start


def fill(hub: Any, partners: int, entries: int) -> None:
    """Other partners and their entries, set-based (the hub is not what is measured here)."""
    with hub.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO partners (id, program, kind, status, code, email, name, payout_method, "
            "created_at) SELECT 'prt_f' || g, 'crazycall', 'partner', 'active', 'fill' || g, "
            "'f' || g || '@partners.test', '', 'paypal', now() FROM generate_series(1, :n) g"),
            {"n": partners - 1})
        conn.execute(text(
            "INSERT INTO ledger_entries (transfer_id, partner_id, currency, state, amount, kind, "
            "created_at) SELECT 'trf_' || g, 'prt_f' || (1 + g % :p), 'USD', "
            "(ARRAY['pending','payable','paid'])[1 + g % 3], 980, 'earn', now() "
            "FROM generate_series(1, :n) g"), {"p": partners - 1, "n": entries})
        conn.execute(text("ANALYZE"))


def tail(hub: Any, partner_id: str, lines: int) -> None:
    """What arrives between two ticks for the partner: `lines` commission lines of today, and a
    fifth as many new clients in trial plus as many clients whose status changed."""
    with hub.engine.begin() as conn:
        first = conn.scalar(text("SELECT max(id) FROM customers")) + 1
        clients = {"p": partner_id, "a": first, "b": first + lines // 5 - 1}
        conn.execute(text(
            "INSERT INTO customers (id, provider, ref, first_seen_at) SELECT g, 'stripe', "
            "'cus_tail' || g, now() FROM generate_series(CAST(:a AS int), CAST(:b AS int)) g"),
            clients)
        conn.execute(text(
            "INSERT INTO referrals (id, program, partner_id, customer_id, source, link_code, "
            "attributed_at, self_referral) SELECT g, 'crazycall', :p, g, 'link', 'lnk1', "
            "now(), false "
            "FROM generate_series(CAST(:a AS int), CAST(:b AS int)) g"), clients)
        conn.execute(text(
            "INSERT INTO customer_statuses (customer_id, status, occurred_at) "
            "SELECT g, 'trial', now() FROM generate_series(CAST(:a AS int), CAST(:b AS int)) g"),
            clients)
        conn.execute(text(
            "UPDATE customer_statuses SET status = 'cancelled', occurred_at = now() "
            "WHERE customer_id IN (SELECT customer_id FROM customer_statuses "
            "WHERE status = 'active' ORDER BY customer_id LIMIT :n)"), {"n": lines // 5})
        conn.execute(text(
            "INSERT INTO commissions (id, program, partner_id, key, amount, currency, earned_at, "
            "available_at, rule, created_at) SELECT 'com_tail' || g, 'crazycall', :p, 'tail' || g, "
            "980, 'USD', now(), now() + interval '30 days', '{}', now() "
            "FROM generate_series(1, :n) g"), {"p": partner_id, "n": lines})
        conn.execute(text(
            "INSERT INTO ledger_entries (transfer_id, partner_id, currency, state, amount, kind, "
            "commission_id, line_id, created_at) SELECT 'trt_' || g, :p, 'USD', 'pending', 980, "
            "'earn', 'com_tail' || g, 'com_tail' || g, now() FROM generate_series(1, :n) g"),
            {"p": partner_id, "n": lines})


def run(database: str, partners: int, entries: int, requests: int = 100,
        tail_lines: int = 1000) -> dict[str, Any]:
    url = schema_url(database, "bench_dashboard")
    with tempfile.TemporaryDirectory() as materials:
        hub = build_hub(config_from_dict({
            "database": {"url": url},
            "server": {"secret_key": "b" * 32, "materials_dir": materials, "admin_token": TOKEN},
            "programs": {"crazycall": {"plugin": "crazycall"}}}))
        # ~1.9 entries per referral in the portal seed: the largest partner holds a tenth.
        now = datetime.now(UTC)
        partner_id, _ = seed(hub, max(entries // 19, 10), now)
        fill(hub, partners, entries - entries // 10)
        checkpoint_ledger(hub, now)
        tail(hub, partner_id, tail_lines)
        with hub.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        with hub.engine.connect() as conn:
            total = conn.scalar(text("SELECT count(*) FROM ledger_entries"))
            top, largest = conn.execute(text(
                "SELECT partner_id, count(*) FROM ledger_entries GROUP BY partner_id "
                "ORDER BY count(*) DESC LIMIT 1")).one()
            assert top == partner_id, "the measured partner must be the largest"
            after = conn.scalar(text(
                "SELECT count(*) FROM ledger_entries WHERE partner_id = :p AND id > "
                "(SELECT through_id FROM ledger_watermark)"), {"p": partner_id})
        auth = {"Authorization": f"Bearer {TOKEN}"}
        clock = ServerClock(create_app(hub))
        with TestClient(clock) as client:
            def api_reads() -> None:
                _ok(client.get(f"/api/v1/partners/{partner_id}", headers=auth))
                _ok(client.get(f"/api/v1/partners/{partner_id}/commissions?limit=100",
                               headers=auth))

            api = p95(api_reads, requests, clock)
            api_wall = p95(api_reads, requests)
            form = client.get("/portal/login").text
            token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
            client.post("/portal/login", data={"csrf": token, "email": "bench@partners.test",
                                               "password": PASSWORD})
            page = p95(lambda: _ok(client.get("/portal/")), requests, clock)
            page_wall = p95(lambda: _ok(client.get("/portal/")), requests)
            page_12m = p95(lambda: _ok(client.get("/portal/?period=12m")), requests, clock)
        hub.engine.dispose()
    raw = database.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(raw, options="-csearch_path=bench_dashboard") as conn:
        reference = p95(lambda: [conn.execute(q, {"p": partner_id}).fetchall()
                                 for q in REFERENCE_SQL], requests)
    return {"api_p95_ms": api, "page_p95_ms": page, "page_12m_p95_ms": page_12m,
            "api_p95_ms_with_client": api_wall, "page_p95_ms_with_client": page_wall,
            "reference_p95_ms": reference,
            "entries": total, "largest_partner_entries": largest,
            "largest_partner_entries_after_checkpoint": after, "partners": partners}


def _ok(response: Any) -> None:
    assert response.status_code == 200, response.status_code


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database", default=os.environ.get(
        "HUB_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--partners", type=int, default=10_000)
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--tail", type=int, default=1000,
                    help="lines booked for the largest partner after the last tick")
    args = ap.parse_args()
    result = run(args.database, args.partners, args.entries, tail_lines=args.tail)
    for key, value in result.items():
        print(f"{key:26} {value:,.1f}" if isinstance(value, float) else f"{key:26} {value}")


if __name__ == "__main__":
    main()
