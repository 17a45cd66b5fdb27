"""`hub tick`: the time-driven jobs, run once for a given moment (deterministic with --now).

Each job is idempotent, so running tick twice for the same moment changes nothing the second
time, and several hosts may run it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from . import ledger
from .runtime import Hub

TickJob = Callable[[Hub, datetime], dict[str, Any]]


def release_holds(hub: Hub, now: datetime) -> dict[str, Any]:
    from .payouts import trigger_automatic

    changed: set[tuple[str, str]] = set()
    with hub.transaction() as session:
        released = ledger.release_due(session, now, changed)
        # The release lifted these balances: automatic programs pay at the threshold, in the
        # same transaction (the payout row) and with a message after the commit.
        paid = sum(1 for partner_id, currency in sorted(changed)
                   if trigger_automatic(hub, session, partner_id, currency) is not None)
    return {"released": released, "payouts": paid}


def payout_sweep(hub: Hub, now: datetime) -> dict[str, Any]:
    from .payouts import sweep

    return sweep(hub, now)


JOBS: list[tuple[str, TickJob]] = [("holds", release_holds), ("payouts", payout_sweep)]


def run_tick(hub: Hub, now: datetime) -> dict[str, dict[str, Any]]:
    result = {name: job(hub, now) for name, job in JOBS}
    from .queue import QUEUE_KEY

    queue = hub.extras.get(QUEUE_KEY)
    if queue is not None:
        queue.join()  # embedded queue: finish the jobs this tick started before exiting
    return result
