"""The worker dies after PayPal accepted a batch but before the hub recorded it.

`hub worker` runs as a real subprocess on Redis, talking to a fake PayPal over real HTTP. The fake
accepts the batch and then never answers; the test SIGKILLs the worker. After a restart and the
tick's sweep, the payout completes once: PayPal refuses the second batch with the same
sender_batch_id and the hub picks up the first.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from datetime import timedelta
from typing import Any

import pytest

from hub.app import build_hub
from hub.clock import utcnow
from hub.config import load_config
from hub.jobs.queue import close_queue
from hub.jobs.tick import run_tick
from tests.payout_helpers import (
    FakePaypal,
    FakePaypalServer,
    balance_of,
    make_partner,
    pay,
    payouts_of,
    wait_for,
)
from tests.process_helpers import start_worker, write_config
from tests.test_payouts_redis import RELEASED, _status, namespace, redis_client  # noqa: F401

pytestmark = pytest.mark.redis


def test_worker_killed_after_paypal_accepted_completes_the_payout_once(
        tmp_path: Any, request: Any, backend: str, namespace: str) -> None:  # noqa: F811
    database = (request.getfixturevalue("pg_schema_url") if backend == "postgres"
                else f"sqlite:///{tmp_path / 'crash.db'}")
    fake = FakePaypal()
    fake.hang_after_accept = threading.Event()
    with FakePaypalServer(fake) as server:
        config = write_config(tmp_path / "hub.toml", database, namespace, server.url)
        hub = build_hub(load_config(str(config)))
        if backend == "postgres":
            from tests.conftest import _truncate_all
            _truncate_all(hub)
        worker = start_worker(config)
        try:
            partner = make_partner(hub, "crazycall", paypal_email="ann@pay.test")
            pay(hub, partner.code, 30000, currency="usd")  # 20% = $60.00
            run_tick(hub, RELEASED)
            from hub.payouts.requests import request_withdrawal
            from hub.payouts.states import operator_action
            with hub.transaction() as s:
                payout_id = request_withdrawal(hub, s, partner.id, "USD", None, "test").id
            with hub.transaction() as s:
                operator_action(s, payout_id, "approve", "operator")  # queued -> Redis

            assert fake.accepted.wait(30), "the worker never reached PayPal"
            os.kill(worker.pid, signal.SIGKILL)  # PayPal has the batch; the hub never heard
            worker.wait(10)
            assert _status(hub, payout_id) == "queued" and len(fake.batches) == 1
            fake.hang_after_accept.set()
            fake.hang_after_accept = None

            worker = start_worker(config)  # restart; the lost message is re-sent by the sweep
            run_tick(hub, utcnow() + timedelta(minutes=1))
            wait_for(lambda: _status(hub, payout_id) == "paid", timeout=30,
                     what="paid after restart")
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(15)
            except subprocess.TimeoutExpired:
                worker.kill()
            close_queue(hub)
            hub.engine.dispose()
    sender_ids = [b["sender_batch_header"]["sender_batch_id"] for b in fake.creates()]
    assert sender_ids == [f"hub-{payout_id}"] * 2  # asked twice, PayPal paid once
    assert len(fake.batches) == 1
    [payout] = payouts_of(hub, partner.id)
    assert payout.provider_batch_id == fake.batches[f"hub-{payout_id}"]["id"]
    assert balance_of(hub, partner.id, "USD")["paid"] == 6000
    assert balance_of(hub, partner.id, "USD")["in_payout"] == 0
