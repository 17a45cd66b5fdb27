"""Scale-out: two `hub serve` and two `hub worker` processes on one PostgreSQL and one Redis.

2,000 signed Stripe `invoice.paid` events (odoopbx referrals, each partner with a PayPal
address and the automatic €100 threshold) are each delivered twice, to both API processes at
once. Two `hub tick` processes race to release the holds and sweep payouts twice on the way,
and the workers pay them through a fake PayPal on a real port. Afterwards: every commission
once, every payout once (PayPal got each sender_batch_id's money once), and every partner's
balances equal to one in-process hub fed each event once.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import func, select

from connectors import stripe_trigger as st
from connectors.stripe import process as stripe_process
from hub.app import build_hub
from hub.config import load_config
from hub.db.models import Commission, Partner, Payout, ProviderEvent
from hub.jobs.queue import close_queue
from hub.jobs.tick import run_tick as tick_in_process
from hub.ledger import entries as ledger
from hub.runtime import Hub
from tests.conftest import WEBHOOK_SECRET, _truncate_all
from tests.payout_helpers import FakePaypal, FakePaypalServer, make_partner, wait_for
from tests.process_helpers import (
    run_tick,
    start_server,
    start_worker,
    stop,
    wait_serving,
    write_config,
)
from tests.test_payouts_redis import namespace, paypal_config, redis_client  # noqa: F401

pytestmark = [pytest.mark.scaleout, pytest.mark.postgres, pytest.mark.redis]

PARTNERS, CUSTOMERS, MONTHS = 40, 5, 10  # 2,000 invoices
ODOOPBX = '[programs.odoopbx]\nplugin = "odoopbx"\n'
# Holds are 30 days: each tick releases the months before it, crossing €100 for every partner.
TICKS = ("2026-07-05T00:00:00+00:00", "2026-12-05T00:00:00+00:00")


def paid_at(month: int) -> int:
    return int(datetime(2026, month + 1, 3, 12, tzinfo=UTC).timestamp())


def events() -> list[dict[str, Any]]:
    """Month by month, every referred customer pays €100 (15% = €15 to its referrer)."""
    out = []
    for month in range(MONTHS):
        for p in range(PARTNERS):
            for c in range(CUSTOMERS):
                cus = f"cus_{p}_{c}"
                out.append(st.event("invoice.paid", st.invoice(
                    f"in_{p}_{c}_{month}", customer_id=cus, amount=10000, currency="eur",
                    subscription_id=f"sub_{cus}", charge_id=f"ch_{p}_{c}_{month}",
                    paid_at=paid_at(month), partner_code=f"so{p:03d}", shape="legacy"),
                    created=paid_at(month), event_id=f"evt_{p}_{c}_{month}"))
    return out


def make_partners(hub: Hub) -> None:
    for p in range(PARTNERS):
        make_partner(hub, "odoopbx", kind="referral", code=f"so{p:03d}",
                     email=f"so{p}@partners.test", paypal_email=f"so{p}@pay.test")


def deliver_twice(urls: list[str], batch: list[dict[str, Any]]) -> list[int]:
    """Each event to both API processes at the same moment; the HTTP statuses."""
    with httpx.Client(timeout=60, limits=httpx.Limits(max_connections=32)) as client:
        def post(args: tuple[str, dict[str, Any]]) -> int:
            url, event = args
            body, headers = st.signed_request(event, WEBHOOK_SECRET)
            return client.post(f"{url}/webhooks/stripe", content=body, headers=headers).status_code

        jobs = [(url, event) for event in batch for url in urls]
        with ThreadPoolExecutor(16) as pool:
            return list(pool.map(post, jobs))


def balances_by_code(hub: Hub) -> dict[str, list[dict[str, Any]]]:
    with hub.sessions() as session:
        partners = session.execute(select(Partner.id, Partner.code)).all()
        return {code: ledger.balances(session, pid) for pid, code in partners}


def single_process_balances(make_hub: Any, namespace: str, all_events: list[Any]) -> Any:  # noqa: F811
    """The same events, once each, through one in-process hub (SQLite, in-process queue)."""
    fake = FakePaypal()
    with respx.mock(assert_all_called=False) as router:
        router.route(host="api.sandbox.paypal.com").mock(side_effect=fake.respx_side_effect)
        hub = make_hub("sqlite", programs={"odoopbx": {"plugin": "odoopbx"}},
                       connectors=paypal_config(namespace)["connectors"])
        make_partners(hub)
        half = len(all_events) // 2
        for part, when in ((all_events[:half], TICKS[0]), (all_events[half:], TICKS[1])):
            for event in part:
                stripe_process(hub, event)
            tick_in_process(hub, datetime.fromisoformat(when))
            wait_for(lambda: _open_payouts(hub) == 0, timeout=60, what="in-process payouts")
        return balances_by_code(hub)


def _open_payouts(hub: Hub) -> int:
    with hub.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Payout).where(
            Payout.status.in_(("queued", "sent")))) or 0)


def test_two_servers_two_workers_every_commission_and_payout_once(
        tmp_path: Path, pg_schema_url: str, namespace: str, make_hub: Any) -> None:  # noqa: F811
    all_events = events()
    fake = FakePaypal()
    with FakePaypalServer(fake) as paypal:
        config = write_config(tmp_path / "hub.toml", pg_schema_url, namespace, paypal.url,
                              programs=ODOOPBX)
        hub = build_hub(load_config(str(config)))
        _truncate_all(hub)
        make_partners(hub)
        procs = [start_server(config) for _ in range(2)]
        workers = [start_worker(config, threads=2) for _ in range(2)]
        try:
            for proc, url in procs:
                wait_serving(proc, url)
            urls = [url for _, url in procs]
            half = len(all_events) // 2
            for part, when in ((all_events[:half], TICKS[0]), (all_events[half:], TICKS[1])):
                statuses = deliver_twice(urls, part)
                assert set(statuses) == {200}, sorted(set(statuses))
                ticks = [run_tick(config, when) for _ in range(2)]  # racing sweeps
                outputs = [t.communicate(timeout=120)[0].decode()[-3000:] for t in ticks]
                assert [t.returncode for t in ticks] == [0, 0], outputs
                wait_for(lambda: _open_payouts(hub) == 0, timeout=60, what="payouts paid")
            with hub.sessions() as session:
                stored = session.scalar(select(func.count()).select_from(ProviderEvent))
                lines = session.execute(select(Commission.key, func.count()).where(
                    Commission.reverses_id.is_(None)).group_by(Commission.key)).all()
                payouts = list(session.scalars(select(Payout)))
            result = balances_by_code(hub)
        finally:
            for proc, _ in procs:
                stop(proc)
            for worker in workers:
                stop(worker)
            close_queue(hub)
            hub.engine.dispose()

    assert stored == len(all_events)
    assert len(lines) == len(all_events) and {n for _, n in lines} == {1}
    # Every partner crossed €100 in both halves: two payouts each, each paid once by PayPal.
    assert len(payouts) == 2 * PARTNERS and {p.status for p in payouts} == {"paid"}
    # The racing ticks' payouts travel in PayPal batches (one per tick transaction that created
    # any): PayPal holds exactly one item per payout, for its amount, in the payout's batch.
    assert sorted(fake.batches) == sorted({f"hub-{p.batch_id}" for p in payouts})
    items = {entry["item"]["sender_item_id"]: (sender_batch_id, entry["item"])
             for sender_batch_id, batch in fake.batches.items() for entry in batch["items"]}
    assert len(items) == sum(len(b["items"]) for b in fake.batches.values()) == len(payouts)
    for payout in payouts:
        sender_batch_id, item = items[f"{payout.id}-1"]
        assert sender_batch_id == f"hub-{payout.batch_id}"
        assert int(round(float(item["amount"]["value"]) * 100)) == payout.amount
    assert result == single_process_balances(make_hub, namespace, all_events)
    assert all(b[0]["paid"] == CUSTOMERS * MONTHS * 1500 for b in result.values())

