"""The ledger's own operations under thousands of generated histories.

Where `test_ledger_properties` drives whole programs through the webhooks (realistic but ~1 s a
history), this drives `hub.ledger.entries` and `hub.payouts.states` directly: bookings in several
currencies, reversals to any target in any order, retractions, hold releases, and payouts that are
queued, paid, returned or rejected; each history is applied once to one partner and, with every
operation delivered twice, to another. After every history both partners satisfy the ledger's
invariants (the same checks as the end-to-end property) and hold the same ledger.

Examples: 2,000 by default (``HYPOTHESIS_PROFILE=ci``, what CI runs); ``dev`` 200;
``thorough`` 20,000.
"""

from __future__ import annotations

import itertools
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as stg
from sqlalchemy import select

from hub.app import build_hub
from hub.config import config_from_dict
from hub.db.models import Commission, Partner
from hub.ingest.events import record
from hub.ledger import entries as ledger
from hub.payouts.requests import create_payout
from hub.payouts.states import transition
from hub.programs import Draft
from tests.test_ledger_properties import _check_partner, _check_sources, _check_transfers, snapshot

COUNTS = {"ci": 2000, "dev": 200, "thorough": 20_000, "debug": 30}
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
EXAMPLES = COUNTS.get(PROFILE, COUNTS["ci"])
T0 = datetime(2026, 1, 1, tzinfo=UTC)
_ids = itertools.count()
GENERATED = {"histories": 0, "operations": 0}

OPS = stg.one_of(
    stg.tuples(stg.just("book"), stg.integers(0, 3), stg.integers(1, 100_000),
               stg.sampled_from(("USD", "EUR", "PLN"))),
    stg.tuples(stg.just("reverse"), stg.integers(0, 3), stg.integers(0, 100)),
    stg.tuples(stg.just("retract"), stg.integers(0, 3)),
    stg.tuples(stg.just("release"), stg.integers(0, 90)),
    stg.tuples(stg.just("payout"), stg.sampled_from(("USD", "EUR", "PLN")),
               stg.lists(stg.sampled_from(("queued", "sent", "paid", "returned", "rejected",
                                           "failed", "approved")), max_size=3)),
)


@pytest.fixture(scope="module")
def core_hub(tmp_path_factory: Any) -> Any:
    hub = build_hub(config_from_dict({
        "database": {"url": f"sqlite:///{tmp_path_factory.mktemp('core') / 'hub.db'}"},
        "programs": {"crazycall": {"plugin": "crazycall"}}}))
    yield hub
    print(f"\nledger core properties ({PROFILE}): {GENERATED}")
    hub.engine.dispose()


class Runner:
    """Applies operations to one partner; commission k is the k-th booking's line."""

    def __init__(self, hub: Any, n: int, tag: str):
        self.hub, self.tag, self.n = hub, tag, n
        with hub.transaction() as s:
            partner = Partner(id=f"prt_core_{n}_{tag}", program="crazycall", kind="partner",
                              status="active", code=f"core-{n}-{tag}", email="c@x.test", name="",
                              paypal_email="c@pay.test", created_at=T0)
            s.add(partner)
        self.partner_id = partner.id
        self.payouts: list[str] = []

    def event(self, s: Any, name: str) -> int:
        """The provider event an operation stands for (a replay finds it stored)."""
        key = f"core-{self.n}-{self.tag}-{name}"
        row = record(s, "test", key, "test.op", T0, {"op": name})
        if row is None:
            from hub.db.models import ProviderEvent
            row = s.scalar(select(ProviderEvent.id).where(ProviderEvent.event_id == key))
        return int(row)

    def line(self, s: Any, k: int) -> Commission | None:
        return s.scalars(select(Commission).where(
            Commission.partner_id == self.partner_id, Commission.key == f"k{k}")).first()

    def apply(self, i: int, op: tuple[Any, ...]) -> None:
        with self.hub.transaction() as s:
            getattr(self, "_" + op[0])(s, i, *op[1:])

    def _book(self, s: Any, i: int, k: int, amount: int, currency: str) -> None:
        program = self.hub.programs["crazycall"]
        draft = Draft(key=f"k{k}", amount=amount, currency=currency,
                      earned_at=T0 + timedelta(days=k * 10), rule="test", sentence="test")
        ledger.book(s, program, self.partner_id, draft, referral_id=None, payment_id=None,
                    event_id=self.event(s, f"book{k}"), plugin_name="crazycall")

    def _reverse(self, s: Any, i: int, k: int, percent: int) -> None:
        line = self.line(s, k)
        if line is not None:
            ledger.reverse_to(s, line, line.amount * percent // 100, reason="refund",
                              sentence="test", event_id=self.event(s, f"rev{k}-{percent}"))

    def _retract(self, s: Any, i: int, k: int) -> None:
        line = self.line(s, k)
        if line is not None:
            ledger.retract(s, line, sentence="test", event_id=self.event(s, f"retract{k}"))

    def _release(self, s: Any, i: int, day: int) -> None:
        # only this partner's lines: other examples' leftovers are not this history's business
        for line in s.scalars(select(Commission).where(
                Commission.partner_id == self.partner_id, Commission.reverses_id.is_(None))):
            if line.available_at <= T0 + timedelta(days=day):
                net = sum(e.amount for e in line_entries(s, line.id, "pending"))
                if net > 0 and not ledger.is_released(s, line.id):
                    ledger.move(s, net, "pending", "payable", partner_id=self.partner_id,
                                currency=line.currency, kind="release", commission_id=line.id)

    def _payout(self, s: Any, i: int, currency: str, steps: list[str]) -> None:
        partner = s.get(Partner, self.partner_id)
        payout = create_payout(s, partner, self.hub.programs["crazycall"], currency,
                               status="requested", method="manual")
        if payout is None:
            return
        for status in steps:
            transition(s, payout, status)


def line_entries(s: Any, commission_id: str, state: str) -> list[Any]:
    from hub.db.models import LedgerEntry
    return list(s.scalars(select(LedgerEntry).where(LedgerEntry.commission_id == commission_id,
                                                     LedgerEntry.state == state)))


def _check(hub: Any, partner_id: str) -> None:
    from tests.conftest import ADMIN_TOKEN  # noqa: F401 - same checks as the end-to-end test
    with hub.sessions() as s:
        balances = ledger.balances(s, partner_id)
        _check_partner(s, balances, partner_id)
        _check_transfers(s, [partner_id])
        _check_sources(s, [partner_id])


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=stg.lists(OPS, min_size=1, max_size=10))
def test_any_operations_keep_the_invariants_and_duplicates_change_nothing(core_hub, ops):
    n = next(_ids)
    GENERATED["histories"] += 1
    GENERATED["operations"] += len(ops)
    once, twice = Runner(core_hub, n, "a"), Runner(core_hub, n, "b")
    for i, op in enumerate(ops):
        once.apply(i, op)
        twice.apply(i, op)
        if op[0] != "payout":  # a second payout request is a new payout, not a duplicate
            twice.apply(i, op)
    _check(core_hub, once.partner_id)  # and `twice` holds the same ledger:
    a = snapshot(core_hub, [once.partner_id])
    b = snapshot(core_hub, [twice.partner_id])
    assert list(a.values()) == list(b.values())
