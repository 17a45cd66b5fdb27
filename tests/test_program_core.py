"""What the core does for every program: late earlier payments, automatic enrolment, the
milestone tick, kind profiles and payout policies, order-free status timelines."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from connectors import stripe_trigger as st
from connectors.stripe import process
from hub.db.models import Partner, Referral
from hub.jobs.tick import program_milestones, run_tick
from hub.programs import CONTACT_KEYS
from tests.conftest import installer_headers, operator_headers
from tests.program_rules import utc
from tests.scenario_runner import ts
from tests.stripe_helpers import balance, commissions, create_partner, post_event

CALLPAGE = {"callpage": {"plugin": "callpage"}}
FIRST = utc(2025, 1, 15, 10)
THIRTEENTH = utc(2026, 1, 15, 10)


def paid(invoice: str, at, amount: int = 4900, customer: str = "cus_a", code: str | None = None):
    return st.event("invoice.paid", st.invoice(
        invoice, customer_id=customer, amount=amount, subscription_id=f"sub_{customer}",
        paid_at=ts(at), charge_id=f"ch_{invoice}", partner_code=code), created=ts(at))


@pytest.fixture
def callpage(make_hub, backend):
    from starlette.testclient import TestClient

    from hub.app import create_app

    hub = make_hub(backend, programs=CALLPAGE)
    with TestClient(create_app(hub)) as client:
        yield hub, client, create_partner(client, "callpage", code="cp-1")


def test_a_late_first_payment_withdraws_the_line_its_window_no_longer_allows(callpage):
    hub, client, partner = callpage
    post_event(client, paid("in_13", THIRTEENTH, code="cp-1"))  # alone, it looks like payment 1
    assert balance(client, partner["id"])["pending"] == 1225
    late = paid("in_1", FIRST, code="cp-1")
    post_event(client, late)
    b = balance(client, partner["id"])
    assert (b["pending"], b["payable"], b["voided"]) == (1225, 0, 0)
    lines = {line["key"]: line for line in commissions(client, partner["id"])}
    assert lines["pay:stripe:in_13"]["state"] == "voided"
    assert lines["pay:stripe:in_13:retract"]["amount"] == -1225
    assert lines["pay:stripe:in_13:retract"]["source_event"] == late["id"]
    post_event(client, late)  # a duplicate changes nothing
    assert balance(client, partner["id"])["pending"] == 1225


def test_withdrawing_a_released_and_partly_refunded_line_leaves_no_trace_in_balances(callpage):
    hub, client, partner = callpage
    post_event(client, paid("in_13", THIRTEENTH, code="cp-1"))
    post_event(client, st.event("charge.refunded", st.charge_refunded(
        "ch_in_13", amount=4900, amount_refunded=2450, invoice_id="in_13")))
    run_tick(hub, THIRTEENTH + timedelta(days=31))
    b = balance(client, partner["id"])
    assert (b["pending"], b["payable"], b["voided"]) == (0, 612, 613)
    post_event(client, paid("in_1", FIRST))
    run_tick(hub, THIRTEENTH + timedelta(days=32))
    b = balance(client, partner["id"])
    assert (b["pending"], b["payable"], b["voided"]) == (0, 1225, 0)


# --- every customer a referrer ----------------------------------------------------------------

@pytest.fixture
def callbell(make_hub, backend):
    from starlette.testclient import TestClient

    from hub.app import create_app

    hub = make_hub(backend, programs={"bell": {"plugin": "callbell"}})
    with TestClient(create_app(hub)) as client:
        yield hub, client


def ambassadors(hub) -> list[Partner]:
    with hub.sessions() as session:
        return list(session.scalars(select(Partner).where(Partner.program == "bell")))


def test_a_customer_becomes_an_ambassador_once_when_its_email_is_known(callbell):
    hub, client = callbell
    post_event(client, st.event("customer.created", {**st.customer("cus_r", email=""),
                                                     "email": None}))
    assert ambassadors(hub) == []
    for _ in range(2):
        post_event(client, st.event("customer.updated", st.customer("cus_r", email="r@x.test")))
    [member] = ambassadors(hub)
    assert (member.kind, member.status, member.customer_ref, member.email) == (
        "ambassador", "active", "cus_r", "r@x.test")
    listed = client.get("/api/v1/partners?program=bell", headers=operator_headers()).json()
    assert [p["code"] for p in listed["items"]] == [member.code]


def test_customers_who_named_an_ambassador_before_it_existed_are_attributed_on_enrolment(callbell):
    hub, client = callbell
    from hub.attribution.partners import derived_code

    code = derived_code("bell:stripe:cus_r")
    post_event(client, st.event("customer.created", st.customer("cus_s", email="s@x.test",
                                                                partner_code=code)))
    post_event(client, paid("in_s1", FIRST, amount=2000, customer="cus_s"))
    post_event(client, st.event("customer.created", st.customer("cus_r", email="r@x.test")))
    member = next(p for p in ambassadors(hub) if p.customer_ref == "cus_r")
    assert member.code == code
    assert balance(client, member.id, "USD")["pending"] == 600


def test_an_ambassador_referring_its_own_other_account_is_flagged_and_earns_nothing(callbell):
    hub, client = callbell
    post_event(client, st.event("customer.created", st.customer("cus_r", email="r@x.test")))
    code = ambassadors(hub)[0].code
    post_event(client, st.event("customer.created", st.customer("cus_r2", email="R@X.test",
                                                                partner_code=code)))
    post_event(client, paid("in_r2", FIRST, amount=2000, customer="cus_r2"))
    with hub.sessions() as session:
        [referral] = session.scalars(select(Referral)).all()
    assert referral.self_referral and "email" in referral.flag_reason
    assert balance(client, ambassadors(hub)[0].id)["pending"] == 0


# --- the milestone tick -----------------------------------------------------------------------

def ctm_hub(make_hub, backend, accounts: int, threshold: int = 25):
    hub = make_hub(backend, programs={"ctm": {"plugin": "calltrackingmetrics",
                                              "tier_threshold": threshold}})
    with hub.transaction() as session:
        session.add(Partner(id="prt_x", program="ctm", kind="affiliate", status="active",
                            code="ctm-x", email="x@aff.test", created_at=utc(2025, 1, 1),
                            agreement_accepted_at=utc(2025, 1, 1)))
    start = utc(2025, 1, 10)
    for n in range(accounts):
        customer = f"cus_{n}"
        process(hub, st.event("customer.created", st.customer(customer, email=f"{n}@c.test",
                                                              partner_code="ctm-x"),
                              created=ts(start)))
        process(hub, st.event("customer.subscription.created", st.subscription(
            f"sub_{n}", customer_id=customer, status="active", plan="growth"), created=ts(start)))
    return hub


def count_statements(hub, job, now) -> tuple[int, dict]:
    seen = []
    listener = lambda *args: seen.append(1)  # noqa: E731
    event.listen(hub.engine, "before_cursor_execute", listener)
    try:
        result = job(hub, now)
    finally:
        event.remove(hub.engine, "before_cursor_execute", listener)
    return len(seen), result


def test_milestones_read_the_same_few_queries_however_many_referrals(make_hub, backend):
    quiet = utc(2025, 3, 1)  # nobody has crossed yet: pure evaluation, no writes
    small, _ = count_statements(ctm_hub(make_hub, backend, 3), program_milestones, quiet)
    large, _ = count_statements(ctm_hub(make_hub, backend, 30), program_milestones, quiet)
    assert small == large <= 6


def test_milestones_are_booked_once_deterministically_for_a_given_now(make_hub, backend, client):
    hub = ctm_hub(make_hub, backend, 25)
    assert run_tick(hub, utc(2025, 4, 30))["milestones"]["booked"] == 0   # April still open
    assert run_tick(hub, utc(2025, 5, 1))["milestones"]["booked"] == 25
    assert run_tick(hub, utc(2025, 5, 1))["milestones"]["booked"] == 0
    assert run_tick(hub, utc(2025, 6, 1))["milestones"]["booked"] == 0
    with hub.sessions() as session:
        from hub.ledger import entries as ledger

        [b] = ledger.balances(session, "prt_x")
    assert b["pending"] + b["payable"] + b["in_payout"] == 25 * 14900  # 25 active: upper tier
    # earned Apr 10, held until May 10; April's earnings go into the payout made at the end of May
    assert b["in_payout"] == 25 * 14900


# --- what the portal and payouts ask of programs -----------------------------------------------

def test_kind_profiles_and_payout_policies_through_the_hub(make_hub):
    from tests.program_scenarios import ALL_PROGRAMS

    hub = make_hub("sqlite", programs=ALL_PROGRAMS)
    odoo = hub.program("odoopbx")
    assert hub.kind_profile(odoo, "partner").listed_in_directory
    assert not hub.kind_profile(odoo, "referral").sees_customer_names
    assert hub.kind_profile(hub.program("crazycall"), "partner").sees_customer_names
    policies = {name: hub.payout_policy(hub.program(name), hub.program(name).kinds[-1])
                for name in ALL_PROGRAMS}
    assert {name: (p.mode, p.minimum) for name, p in policies.items()} == {
        "callpage": ("request", 5000), "crazycall": ("request", 5000),
        "callbell": ("request", 5000), "calltrackingmetrics": ("monthly", 0),
        "odoopbx": ("automatic", 10000)}


def test_statuses_at_the_same_instant_build_one_timeline_whatever_the_arrival_order(
        make_hub, backend):
    from hub.ledger.history import history_for

    timelines = []
    for order in ((0, 1), (1, 0)):
        hub = make_hub(backend, programs=CALLPAGE)
        at = ts(utc(2025, 2, 1))
        evts = [st.event("customer.subscription.updated", st.subscription(
                    "sub_t", customer_id="cus_t", status=s), created=at)
                for s in ("active", "past_due")]
        for i in order:
            process(hub, evts[i])
        with hub.sessions() as session:
            from hub.db.models import Customer

            customer = session.scalars(select(Customer)).one()
            timelines.append(history_for(session, customer.id, customer.ref).statuses)
    assert timelines[0] == timelines[1]
    assert [s.status for s in timelines[0]] == ["active", "past_due"]


@pytest.mark.parametrize("when, status", [
    ("2025-02-03T10:00:00Z", 201), ("yesterday", 422), ("2999-01-01T00:00:00Z", 422)])
def test_installs_may_say_when_they_happened_but_not_in_the_future(client, when, status):
    body = {"install_id": f"i-{when}", "product": "widget", "occurred_at": when}
    r = client.post("/api/v1/installs", json=body, headers=installer_headers())
    assert r.status_code == status


def test_config_example_enables_all_five_programs_with_their_defaults():
    from pathlib import Path

    from hub.config import config_from_dict, load_config
    from hub.registry import load_registry
    from hub.runtime import build_programs

    example = Path(__file__).parent.parent / "config.example.toml"
    programs = build_programs(load_config(str(example), {}), load_registry())
    assert sorted(programs) == ["callbell", "callpage", "calltrackingmetrics", "crazycall",
                                "odoopbx"]
    for name, program in programs.items():
        bare = build_programs(config_from_dict({"programs": {name: {"plugin": name}}}),
                              load_registry())[name]
        # the contact keys show each program's real addresses where its text gives them
        shown = dataclasses.replace(program.settings, **{
            key: getattr(bare.settings, key) for key in CONTACT_KEYS})
        assert shown == bare.settings, f"{name}: example differs from the defaults"
    ctm = programs["calltrackingmetrics"].settings
    assert ctm.contact_email == "Partnership@calltrackingmetrics.com"


@pytest.mark.postgres
def test_concurrent_deliveries_for_one_new_customer_enrol_it_once(make_hub):
    from concurrent.futures import ThreadPoolExecutor

    hub = make_hub("postgres", programs={"bell": {"plugin": "callbell"}})
    events = [st.event("customer.updated", st.customer("cus_race", email="race@x.test"))
              for _ in range(10)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        assert all(pool.map(lambda e: process(hub, e), events))
    assert [p.customer_ref for p in ambassadors(hub)] == ["cus_race"]


def test_retracting_a_line_already_paid_out_owes_it_back_through_payable(make_hub, backend):
    from hub.db.models import Commission
    from hub.ledger import entries as ledger
    from hub.programs import Draft

    hub = make_hub(backend, programs=CALLPAGE)
    with hub.transaction() as session:
        session.add(Partner(id="prt_p", program="callpage", code="cp-p", email="p@x.test",
                            created_at=utc(2025, 1, 1)))
        session.flush()
        line = ledger.book(session, hub.program("callpage"), "prt_p", Draft(
            key="k", amount=1000, currency="USD", earned_at=utc(2025, 1, 1), rule="r",
            sentence="s"), referral_id=None, payment_id=None, event_id=None, plugin_name="callpage")
        ledger.release_due(session, utc(2025, 3, 1))
        # a payout that tagged its legs with the commission, as per-line payouts may
        ledger.move(session, 1000, "payable", "paid", partner_id="prt_p", currency="USD",
                    kind="payout", commission_id=line.id)
        assert ledger.retract(session, line, sentence="gone", event_id=None) is not None
        assert ledger.retract(session, line, sentence="again", event_id=None) is None
        [b] = ledger.balances(session, "prt_p")
        retraction = session.scalars(select(Commission).where(Commission.key == "k:retract")).one()
    assert (b["pending"], b["payable"], b["paid"], b["voided"]) == (0, -1000, 1000, 0)
    assert retraction.amount == -1000


@pytest.mark.parametrize("table, message", [
    ({"plugin": "calltrackingmetrics", "bounties": {"growth": [9900]}},
     "bounties.growth must be two"),
    ({"plugin": "calltrackingmetrics", "plan_aliases": {"x": "gold"}}, "'gold', which is not in"),
    ({"plugin": "calltrackingmetrics", "tier_threshold": "many"}, "tier_threshold must be a whole"),
    ({"plugin": "callbell", "install_bounty": -1}, "install_bounty cannot be negative"),
    ({"plugin": "callbell", "payout_methods": []}, "payout_methods needs at least one"),
    ({"plugin": "callpage", "months": 0}, "months must be at least 1"),
    ({"plugin": "odoopbx", "referral_rate": "1.5"}, "referral_rate must be between 0 and 1"),
    ({"plugin": "odoopbx", "partner_payout_at": "200"}, "partner_payout_at must be a whole"),
])
def test_bad_program_settings_stop_start_up_naming_table_and_key(table, message):
    from hub.config import config_from_dict
    from hub.errors import StartupError
    from hub.registry import load_registry
    from hub.runtime import build_programs

    with pytest.raises(StartupError) as info:
        build_programs(config_from_dict({"programs": {"p": table}}), load_registry())
    assert "[programs.p]" in str(info.value) and message in str(info.value)


def test_a_ctm_code_credits_nobody_until_approved_and_the_agreement_is_accepted(make_hub, backend):
    from starlette.testclient import TestClient

    from hub.app import create_app

    hub = make_hub(backend, programs={"ctm": {"plugin": "calltrackingmetrics"}})
    with TestClient(create_app(hub)) as client:
        partner = create_partner(client, "ctm", code="ctm-z")
        steps = [None, "approve", "agreement"]
        attributed = []
        for n, step in enumerate(steps):
            if step:
                r = client.post(f"/api/v1/partners/{partner['id']}/{step}",
                                headers=operator_headers())
                assert r.status_code == 200, r.text
            post_event(client, st.event("customer.created", st.customer(
                f"cus_z{n}", email=f"z{n}@c.test", partner_code="ctm-z")))
            with hub.sessions() as session:
                attributed.append(session.scalar(select(Referral.id).where(
                    Referral.partner_id == partner["id"]).limit(1)) is not None)
    assert partner["status"] == "applied"
    assert attributed == [False, False, True]
