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
    with hub.transaction() as session:
        return {"released": ledger.release_due(session, now)}


JOBS: list[tuple[str, TickJob]] = [("holds", release_holds)]


def run_tick(hub: Hub, now: datetime) -> dict[str, dict[str, Any]]:
    return {name: job(hub, now) for name, job in JOBS}
