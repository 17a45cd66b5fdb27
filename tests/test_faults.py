"""Faults: processes killed, servers restarted, providers failing. Nothing lost, nothing doubled.

* `hub serve` SIGKILLed at random moments while signed Stripe events pour in; restarted; every
  event re-delivered (as Stripe retries): the ledger equals one fed each event exactly once.
* A private PostgreSQL restarted in the middle of ingest: failed deliveries are retried, the
  ledger is exact.
* A private Redis restarted with payouts queued (the messages are gone): the tick's sweep
  re-sends them; each is paid once.
* PayPal answering 500, timing out and sending a malformed body after accepting a batch: the
  payout is paid once, by one batch.
* The Stripe API timing out during attribution look-ups: the events are kept, attribution comes
  with the customer's own event, nothing is booked twice.

Bounded: a few seconds each. The counts of faults injected are printed (and summed in FAULTS).
"""

from __future__ import annotations

import random
import shutil
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import func, select
from starlette.testclient import TestClient

from connectors import stripe_trigger as st
from connectors.stripe import process
from hub.app import build_hub, create_app
from hub.clock import utcnow
from hub.config import config_from_dict, load_config
from hub.db.models import Commission, Partner, ProviderEvent
from hub.jobs.queue import close_queue, queue_of
from hub.jobs.tick import run_tick
from hub.ledger import entries as ledger
from hub.payouts.requests import request_withdrawal
from hub.payouts.states import operator_action
from tests.conftest import ADMIN_TOKEN, WEBHOOK_SECRET, need
from tests.payout_helpers import (
    SANDBOX,
    FakePaypal,
    FakePaypalServer,
    at,
    balance_of,
    make_partner,
    pay,
    payouts_of,
)
from tests.process_helpers import (
    HubServer,
    PrivatePostgres,
    PrivateRedis,
    start_worker,
    stop,
    wait_until,
)

pytestmark = pytest.mark.faults
FAULTS: dict[str, int] = {}
T0 = 1_767_225_600  # 2026-01-01
CODES = ("fa-ann", "fa-bob")


def events(n_customers: int = 12, seed: int = 7) -> list[dict[str, Any]]:
    """Customers of two partners paying, some refunded in part, one disputed."""
    rng = random.Random(seed)
    out = []
    for c in range(n_customers):
        cus = f"cus_f{c}"
        out.append(st.event("customer.created", st.customer(
            cus, email=f"{cus}@x.test", partner_code=CODES[c % 2]), created=T0 + c))
        for p in range(3):
            inv, when = f"in_{cus}_{p}", T0 + 86400 * (30 * p + 1) + c
            amount = rng.randint(1000, 90000)
            out.append(st.event("invoice.paid", st.invoice(
                inv, customer_id=cus, amount=amount, subscription_id=f"sub_{cus}",
                charge_id=f"ch_{inv}", paid_at=when, shape="legacy"), created=when))
            if rng.random() < 0.3:
                out.append(st.event("charge.refunded", st.charge_refunded(
                    f"ch_{inv}", amount=amount, amount_refunded=amount // 3, invoice_id=inv),
                    created=when + 3600))
    return out


def config_dict(database: str, **extra: Any) -> dict[str, Any]:
    raw = {"database": {"url": database},
           "server": {"admin_token": ADMIN_TOKEN, "secret_key": "s" * 32},
           "connectors": {"stripe": {"webhook_secret": WEBHOOK_SECRET}},
           "programs": {"crazycall": {"plugin": "crazycall"}}}
    raw.update(extra)
    return raw


def with_partners(hub: Any) -> Any:
    for code in CODES:
        make_partner(hub, "crazycall", code=code, email=f"{code}@p.test")
    return hub


def ledger_of(hub: Any) -> dict[str, Any]:
    """Per partner code: balances, and the commission lines by key with their amounts."""
    out = {}
    with hub.sessions() as s:
        for pid, code in s.execute(select(Partner.id, Partner.code)).all():
            lines = sorted((c.key, c.amount) for c in s.scalars(
                select(Commission).where(Commission.partner_id == pid)))
            out[code] = (ledger.balances(s, pid), lines)
    return out


def reference(tmp_path: Path, evts: list[dict[str, Any]]) -> dict[str, Any]:
    hub = with_partners(build_hub(config_from_dict(config_dict(
        f"sqlite:///{tmp_path / 'reference.db'}"))))
    for evt in evts:
        process(hub, evt)
    result = ledger_of(hub)
    hub.engine.dispose()
    return result


def post(client: Any, evt: dict[str, Any]) -> int:
    body, headers = st.signed_request(evt, WEBHOOK_SECRET)
    try:
        return int(client.post("/webhooks/stripe", content=body, headers=headers).status_code)
    except (httpx.HTTPError, OSError):
        return 0  # the server died under the request: Stripe would retry


def database_for(request: Any, tmp_path: Path) -> str:
    from tests.conftest import PG_URL

    if PG_URL:
        return str(request.getfixturevalue("pg_schema_url"))
    return f"sqlite:///{tmp_path / 'hub.db'}"


def _write(path: Path, raw: dict[str, Any]) -> Path:
    from tests.test_secrets_never_leak import _toml

    path.write_text(_toml(raw))
    return path


# --- hub serve killed during ingest -----------------------------------------------------------

def test_serve_sigkilled_during_ingest_loses_and_doubles_nothing(request, tmp_path):
    evts = events()
    expected = reference(tmp_path, evts)
    config = _write(tmp_path / "hub.toml", config_dict(database_for(request, tmp_path)))
    hub = build_hub(load_config(str(config)))
    if "postgresql" in str(hub.engine.url):
        from tests.conftest import _truncate_all
        _truncate_all(hub)
    with_partners(hub)
    server, rng, kills, answered = HubServer(config), random.Random(11), 0, 0
    stream = evts + rng.sample(evts, k=len(evts) // 3)  # Stripe sends some twice anyway
    rng.shuffle(stream)
    position = [0]

    def load() -> None:
        with httpx.Client(base_url=server.url, timeout=5) as c:
            while position[0] < len(stream):
                if post(c, stream[position[0]]) == 0:
                    return
                position[0] += 1

    try:
        for _ in range(4):
            server.start()
            loader = threading.Thread(target=load)
            loader.start()
            time.sleep(rng.uniform(0.05, 0.6))  # somewhere in the middle of the stream
            server.kill()
            kills += 1
            loader.join(10)
        server.start()
        answered = position[0]
        with httpx.Client(base_url=server.url, timeout=10) as c:  # Stripe retries everything
            statuses = [post(c, evt) for evt in evts]
        assert set(statuses) == {200}
    finally:
        server.stop()
    FAULTS["serve_sigkill"] = kills
    print(f"\nserve: {kills} SIGKILLs, {answered} of {len(stream)} answered before the last")
    assert ledger_of(hub) == expected
    with hub.sessions() as s:
        assert s.scalar(select(func.count()).select_from(ProviderEvent)) == len(evts)
    hub.engine.dispose()


# --- PostgreSQL restarted mid-run -------------------------------------------------------------

@pytest.fixture
def private_pg() -> Any:
    if not sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        need("needs PostgreSQL's server binaries (/usr/lib/postgresql/*/bin/initdb)")
    pg = PrivatePostgres()
    try:
        pg.init().start()
    except Exception as exc:  # noqa: BLE001
        pg.destroy()
        pytest.fail(f"could not start a private PostgreSQL: {exc}")
    yield pg
    pg.destroy()


def test_postgres_restarted_mid_ingest_loses_and_doubles_nothing(private_pg, tmp_path):
    evts = events(n_customers=10, seed=3)
    expected = reference(tmp_path, evts)
    hub = with_partners(build_hub(config_from_dict(config_dict(private_pg.url))))
    failed, restarts = [], 0
    with TestClient(create_app(hub), raise_server_exceptions=False) as c:
        for i, evt in enumerate(evts):
            if i in (len(evts) // 3, 2 * len(evts) // 3):
                restarter = threading.Thread(target=private_pg.restart)
                restarter.start()
                restarts += 1
            status = post(c, evt)
            if status != 200:
                failed.append(evt)
            if i in (len(evts) // 3 + 3, 2 * len(evts) // 3 + 3):
                restarter.join(60)
        for evt in evts:  # the provider retries every delivery
            assert wait_until(lambda evt=evt: post(c, evt) == 200, timeout=30, what="delivery")
    FAULTS["postgres_restart"] = restarts
    print(f"\npostgres: {restarts} restarts, {len(failed)} deliveries failed and were retried")
    assert ledger_of(hub) == expected
    hub.engine.dispose()


# --- Redis restarted with payouts queued ------------------------------------------------------

def test_redis_restarted_with_payouts_queued_pays_each_once(request, tmp_path):
    if shutil.which("redis-server") is None:
        need("needs redis-server on the PATH")
    redis = PrivateRedis().start()
    fake = FakePaypal()
    database = database_for(request, tmp_path)
    raw = config_dict(database, queue={"url": redis.url, "namespace": "faults",
                                       "min_backoff_ms": 50, "max_backoff_ms": 200,
                                       "stale_seconds": 0})
    worker = None
    with FakePaypalServer(fake) as paypal:
        raw["connectors"]["paypal"] = {"mode": "sandbox", "client_id": "cid",
                                       "client_secret": "cs", "webhook_id": "WH",
                                       "api_base": paypal.url}
        config = _write(tmp_path / "hub.toml", raw)
        hub = build_hub(load_config(str(config)))
        try:
            if "postgresql" in database:
                from tests.conftest import _truncate_all
                _truncate_all(hub)
            payout_ids = []
            for n in range(3):
                partner = make_partner(hub, "crazycall", paypal_email=f"p{n}@pay.test")
                pay(hub, partner.code, 40_000 + n, currency="usd")
            run_tick(hub, at("2026-02-10T00:00:00"))
            with hub.sessions() as s:
                partner_ids = list(s.scalars(select(Partner.id)))
            for pid in partner_ids:
                with hub.transaction() as s:
                    payout_ids.append(request_withdrawal(hub, s, pid, "USD", None, "t").id)
                with hub.transaction() as s:
                    operator_action(s, payout_ids[-1], "approve", "operator")  # queued in Redis
            redis.restart()  # the queued messages are gone
            FAULTS["redis_restart"] = 1
            worker = start_worker(config)
            time.sleep(1.0)
            assert len(fake.batches) == 0  # nothing left in the queue to work on
            run_tick(hub, utcnow() + timedelta(minutes=1))  # the sweep re-sends stale payouts
            wait_until(lambda: all(_status(hub, p) == "paid" for p in payout_ids), 30,
                       "every payout paid")
            run_tick(hub, utcnow() + timedelta(minutes=2))  # and again: nothing more
            time.sleep(0.5)
        finally:
            if worker is not None:
                stop(worker)
            close_queue(hub)
            redis.stop()
    assert len(fake.batches) == 3
    assert sorted(b["header"]["sender_batch_id"] for b in fake.batches.values()) == \
        sorted(f"hub-{p}" for p in payout_ids)
    for pid in partner_ids:
        bal = balance_of(hub, pid, "USD")
        assert bal["in_payout"] == 0 and bal["paid"] == sum(p.amount for p in payouts_of(hub, pid))
    hub.engine.dispose()


def _status(hub: Any, payout_id: str) -> str:
    from hub.db.models import Payout

    with hub.sessions() as s:
        return str(s.get(Payout, payout_id).status)


# --- PayPal failing ---------------------------------------------------------------------------

def test_paypal_500_timeout_and_malformed_body_pay_once(make_hub, backend):
    fake = FakePaypal()
    script = ["500", "accept-then-garbage", "timeout", "real"]

    def create(request: httpx.Request) -> httpx.Response:
        step = script.pop(0) if script else "real"
        if step == "500":
            return httpx.Response(500, json={"name": "INTERNAL_SERVICE_ERROR"})
        if step == "timeout":
            raise httpx.ReadTimeout("PayPal is slow")
        response = fake.respx_side_effect(request)
        if step == "accept-then-garbage":  # PayPal created the batch; the answer is mangled
            return httpx.Response(200, content=b"<html><body>502 Bad Gateway</body></html>")
        return response

    with respx.mock(assert_all_called=False) as net:
        net.post(f"{SANDBOX}/v1/payments/payouts").mock(side_effect=create)
        net.route(host="api.sandbox.paypal.com").mock(side_effect=fake.respx_side_effect)
        hub = make_hub(backend, connectors={"paypal": {
            "mode": "sandbox", "client_id": "cid", "client_secret": "cs", "webhook_id": "WH"}},
            queue={"min_backoff_ms": 10, "max_backoff_ms": 30, "max_retries": 8})
        partner = make_partner(hub, "crazycall", paypal_email="ann@pay.test")
        pay(hub, partner.code, 50_000, currency="usd")
        run_tick(hub, at("2026-02-10T00:00:00"))
        with hub.transaction() as s:
            payout_id = request_withdrawal(hub, s, partner.id, "USD", None, "t").id
        with hub.transaction() as s:
            operator_action(s, payout_id, "approve", "operator")
        queue_of(hub).join()
        for _ in range(5):  # the sweep and status checks until PayPal's answer is in
            if _status(hub, payout_id) == "paid":
                break
            run_tick(hub, utcnow() + timedelta(minutes=5))
            queue_of(hub).join()
    FAULTS["paypal"] = 3
    assert _status(hub, payout_id) == "paid"
    assert len(fake.batches) == 1
    bal = balance_of(hub, partner.id, "USD")
    assert (bal["paid"], bal["in_payout"], bal["payable"]) == (10_000, 0, 0)


# --- Stripe API timing out during attribution -------------------------------------------------

def test_stripe_lookup_timeouts_lose_nothing(make_hub, backend):
    hub = make_hub(backend, connectors={"stripe": {"api_key": "sk_test_faults"}})
    with respx.mock() as net, TestClient(create_app(hub)) as c:
        partner = make_partner(hub, "crazycall", code="fa-look")
        net.get(url__regex=r"https://api.stripe.com/v1/customers/.*").mock(
            side_effect=httpx.ConnectTimeout("stripe is slow"))
        evts = [st.event("invoice.paid", st.invoice(
            f"in_l{i}", customer_id=f"cus_l{i}", amount=10_000, subscription_id=f"s{i}",
            paid_at=T0 + i, shape="legacy"), created=T0 + i) for i in range(4)]
        for evt in evts + evts[:2]:
            assert post(c, evt) == 200  # kept, even though the look-up failed
        lookups = len(net.calls)
        for i in range(4):  # the customers' own events bring the attribution
            assert post(c, st.event("customer.created", st.customer(
                f"cus_l{i}", email=f"l{i}@x.test", partner_code="fa-look"), created=T0)) == 200
        for evt in evts:
            assert post(c, evt) == 200
    FAULTS["stripe_lookup_timeouts"] = lookups
    bal = balance_of(hub, partner.id, "USD")
    assert bal["pending"] == 4 * 2000
    with hub.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Commission)) == 4


def test_zz_report_faults() -> None:
    """Prints the faults injected by this module's tests (run last in the file)."""
    print(f"\nfaults injected: {FAULTS}, total {sum(FAULTS.values())}")
