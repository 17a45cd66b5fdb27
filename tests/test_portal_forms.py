"""The second pass of the portal and admin forms through a TestClient: the link builder, withdrawals
and the operator's payout actions, the agreement, manual attribution, webhook replay, the partner
directory, masking by kind profile; each with its CSRF refusal and partner scoping. Also the
status projection and the activity snapshots behind the dashboard."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from connectors import stripe_trigger as st
from hub.app import create_app
from hub.db.models import (
    ActivityDay,
    CustomerStatus,
    Link,
    Partner,
    Payout,
    Referral,
    SubscriptionState,
    WebhookDelivery,
)
from hub.jobs.tick import run_tick
from hub.ledger.statuses import record_state, snapshot_activity
from hub.web import trends
from tests.stripe_helpers import create_partner, operator_headers, post_event
from tests.web_helpers import admin_login, give_password, portal_login, post_form

T0 = 1_767_225_600  # 2026-01-01


@pytest.fixture
def web(make_hub, backend, tmp_path):
    return make_hub(backend, server={"materials_dir": str(tmp_path / "m")},
                    programs={"crazycall": {"plugin": "crazycall"},
                              "ctm": {"plugin": "calltrackingmetrics"},
                              "odoopbx": {"plugin": "odoopbx"}})


@pytest.fixture
def client(web):
    with TestClient(create_app(web)) as c:
        yield c


def other(hub):
    return TestClient(create_app(hub))


def sale(client, code, cus, amount=4900, paid_at=T0, currency="usd"):
    post_event(client, st.event("customer.created", st.customer(
        cus, email=f"{cus}@customer.test", partner_code=code)))
    post_event(client, st.event("invoice.paid", st.invoice(
        f"in_{cus}", customer_id=cus, amount=amount, subscription_id=f"sub_{cus}",
        charge_id=f"ch_{cus}", paid_at=paid_at, shape="legacy", currency=currency)))


def payable_partner(client, web, email="ann@partners.test", cus="cus_big"):
    """A crazycall partner with $60.00 payable: a $300 sale, then a tick past the hold."""
    partner = create_partner(client, email=email, paypal_email="ann@pay.test")
    give_password(web, partner["id"])
    sale(client, partner["code"], cus, amount=30000)
    run_tick(web, datetime.fromtimestamp(T0, UTC) + timedelta(days=90))
    return partner


def test_link_builder_makes_a_link_only_for_the_signed_in_partner(client, web):
    ann = create_partner(client)
    bob = create_partner(client, email="bob@partners.test", name="Bob")
    give_password(web, ann["id"])
    give_password(web, bob["id"])
    portal_login(client, "ann@partners.test")
    form = {"creative": "plain", "destination": "https://example.com/pricing",
            "trial_days": "30", "description": "newsletter"}
    assert client.post("/portal/links", data=form).status_code == 403  # no CSRF token
    page = post_form(client, "/portal/links", "/portal/links", **form)
    with web.sessions() as s:
        link = s.scalars(select(Link).where(Link.partner_id == ann["id"],
                                            Link.kind == "custom")).one()
    assert link.trial_days == 30 and link.destination == "https://example.com/pricing"
    assert f"http://hub.test/r/{link.code}" in page.text and "&lt;a href=" in page.text

    bad = post_form(client, "/portal/links", "/portal/links", **{**form, "destination":
                                                                 "https://evil.test/"})
    assert "allowed domains" in bad.text
    bob_client = other(web)
    portal_login(bob_client, "bob@partners.test")
    assert link.code not in bob_client.get("/portal/links").text
    post_form(bob_client, "/portal/links", "/portal/links", **form)
    with web.sessions() as s:  # Bob's post made Bob's link, never Ann's
        assert s.scalar(select(Link.partner_id).where(Link.description == "newsletter",
                                                      Link.partner_id != ann["id"])) == bob["id"]


def test_link_stats_count_clicks_trials_and_subscriptions_in_the_range(client, web):
    ann = create_partner(client)
    give_password(web, ann["id"])
    assert client.get(f"/r/{ann['code']}", follow_redirects=False).status_code == 302
    portal_login(client, "ann@partners.test")
    today = datetime.now(UTC).date()
    page = client.get(f"/portal/links?from={today.isoformat()}&to={today.isoformat()}").text
    assert f'data-testid="link-{ann["code"]}"' in page
    block = page.split(f'data-testid="link-{ann["code"]}"')[1]
    assert 'data-testid="clicks">1<' in block
    earlier = client.get("/portal/links?from=2020-01-01&to=2020-01-31").text
    assert 'data-testid="clicks">0<' in earlier.split(f'link-{ann["code"]}')[1]
    assert 'data-testid="clicks">1<' in client.get("/portal/").text  # unique clicks, 30 days


def test_withdraw_form_asks_the_payouts_core_and_the_operator_approves(client, web):
    ann = payable_partner(client, web)
    bob = create_partner(client, email="bob@partners.test", name="Bob", paypal_email="b@pay.test")
    give_password(web, bob["id"])
    portal_login(client, "ann@partners.test")
    assert not client.get("/portal/").text.count('disabled aria-describedby="withdraw-reason"')
    assert client.post("/portal/withdrawals", data={}).status_code == 403
    done = post_form(client, "/portal/payouts", "/portal/withdrawals")
    assert "Withdrawal of $60.00 requested" in done.text
    again = post_form(client, "/portal/payouts", "/portal/withdrawals")
    assert "already pending" in again.text or "still being processed" in again.text

    bob_client = other(web)
    portal_login(bob_client, "bob@partners.test")
    refused = post_form(bob_client, "/portal/payouts", "/portal/withdrawals")
    assert "below the minimum" in refused.text and "$60.00" not in refused.text
    with web.sessions() as s:
        payouts = s.scalars(select(Payout)).all()
    assert [(p.partner_id, p.amount, p.status) for p in payouts] == [(ann["id"], 6000, "requested")]

    admin = other(web)
    admin_login(admin)
    assert admin.post(f"/admin/payouts/{payouts[0].id}/approve", data={}).status_code == 403
    refused = post_form(admin, "/admin/payouts", f"/admin/payouts/{payouts[0].id}/mark-paid")
    assert "reference is required" in refused.text
    paid = post_form(admin, "/admin/payouts", f"/admin/payouts/{payouts[0].id}/mark-paid",
                     reference="BANK-42")
    assert "is now paid" in paid.text
    history = client.get("/portal/payouts").text
    assert "BANK-42" in history and ">paid<" in history


def test_method_choice_where_the_program_offers_several(make_hub, tmp_path):
    hub = make_hub("sqlite", programs={"callbell": {"plugin": "callbell"}})
    with TestClient(create_app(hub)) as client:
        partner = create_partner(client, program="callbell", paypal_email="p@pay.test")
        give_password(hub, partner["id"])
        sale(client, partner["code"], "cus_cb", amount=30000, currency="eur")
        run_tick(hub, datetime.fromtimestamp(T0, UTC) + timedelta(days=90))
        portal_login(client, "ann@partners.test")
        page = client.get("/portal/payouts").text
        assert 'value="paypal"' in page and 'value="bank_transfer"' in page
        post_form(client, "/portal/payouts", "/portal/withdrawals", method="bank_transfer")
        with hub.sessions() as s:
            assert s.scalars(select(Payout.method)).one() == "bank_transfer"


def test_agreement_comes_first_and_is_recorded(client, web):
    partner = create_partner(client, program="ctm", email="ctm@partners.test")
    assert client.post(f"/api/v1/partners/{partner['id']}/approve",
                       headers=operator_headers()).status_code == 200
    give_password(web, partner["id"])
    portal_login(client, "ctm@partners.test")
    for path in ("/portal/", "/portal/links", "/portal/payouts"):
        response = client.get(path, follow_redirects=False)
        assert response.headers["location"] == "/portal/agreement"
    assert client.post("/portal/agreement", data={}).status_code == 403
    assert client.get(f"/r/{partner['code']}", follow_redirects=False).headers[
        "location"].startswith("https://example.com/") is True
    post_form(client, "/portal/agreement", "/portal/agreement")
    with web.sessions() as s:
        assert s.get(Partner, partner["id"]).agreement_accepted_at is not None
    assert client.get("/portal/", follow_redirects=False).status_code == 200
    assert f"ref={partner['code']}" in client.get(f"/r/{partner['code']}",
                                                  follow_redirects=False).headers["location"]


def test_referral_kind_sees_masked_emails_and_the_directory_lists_partners_only(client, web):
    referral = create_partner(client, program="odoopbx", kind="referral", email="r@ref.test",
                              name="Rita")
    listed = create_partner(client, program="odoopbx", kind="partner", email="p@pbx.test",
                            name="PBX Experts", website="https://pbx.example.com")
    client.post(f"/api/v1/partners/{listed['id']}/approve", headers=operator_headers())
    give_password(web, referral["id"])
    sale(client, referral["code"], "cus_odoo")
    portal_login(client, "r@ref.test")
    clients = client.get("/portal/referrals").text
    assert "cus_odoo@customer.test" not in clients and "c******o@c******r.test" in clients

    directory = other(web).get("/partners/odoopbx")
    assert directory.status_code == 200
    assert "PBX Experts" in directory.text and "pbx.example.com" in directory.text
    assert "Rita" not in directory.text and "@" not in directory.text.split("<main")[1]
    assert other(web).get("/partners/crazycall").status_code == 404


def test_manual_attribution_form_and_webhook_replay(client, web):
    ann = create_partner(client)
    admin = other(web)
    admin_login(admin)
    form = {"customer_ref": "cus_manual", "provider": "stripe", "partner_id": ann["id"],
            "effective_from": "2026-01-05T10:00"}
    assert admin.post("/admin/attribution", data=form).status_code == 403
    page = post_form(admin, "/admin/attribution", "/admin/attribution", **form)
    assert "assigned" in page.text
    with web.sessions() as s:
        referral = s.scalars(select(Referral).where(Referral.partner_id == ann["id"])).one()
    assert referral.source == "manual" and referral.attributed_at.day == 5

    client.post("/api/v1/webhooks/endpoints", json={"url": "http://127.0.0.1:9/hook"},
                headers=operator_headers())
    create_partner(client, email="bob@partners.test")  # emits partner.created
    with web.sessions() as s:
        delivery = s.scalars(select(WebhookDelivery)).first()
    assert delivery is not None
    assert admin.post(f"/admin/webhooks/{delivery.id}/replay", data={}).status_code == 403
    log = post_form(admin, "/admin/webhooks", f"/admin/webhooks/{delivery.id}/replay")
    assert "queued again" in log.text and "partner.created" in log.text


def test_admin_partner_page_shows_each_commissions_derivation(client, web):
    ann = create_partner(client)
    sale(client, ann["code"], "cus_x")
    admin = other(web)
    admin_login(admin)
    page = admin.get(f"/admin/partners/{ann['id']}").text
    assert "recurring_percentage" in page or "crazycall /" in page
    with web.sessions() as s:
        line_id = s.scalar(select(Referral.id))
    assert line_id is not None
    href = page.split('href="/admin/commissions/')[1].split('"')[0]
    detail = admin.get(f"/admin/commissions/{href}").text
    assert "20% of $49.00" in detail and "invoice.paid" in detail


def _state(customer_id, status, at):
    return dict(provider="stripe", subscription_ref=f"sub_{customer_id}", customer_id=customer_id,
                status=status, plan="p", occurred_at=at)


def test_status_projection_is_the_newest_fact_in_any_order(web, client):
    ann = create_partner(client)
    sale(client, ann["code"], "cus_p")
    with web.sessions() as s:
        customer_id = s.scalar(select(Referral.customer_id))
    t = datetime(2026, 2, 1, tzinfo=UTC)
    facts = [_state(customer_id, "trial", t), _state(customer_id, "active", t + timedelta(days=14)),
             _state(customer_id, "past_due", t + timedelta(days=44)),
             _state(customer_id, "cancelled", t + timedelta(days=44))]
    random.Random(7).shuffle(facts)
    for fact in facts + facts:  # twice: duplicates change nothing
        with web.transaction() as s:
            record_state(s, fact)
    with web.sessions() as s:
        assert s.get(CustomerStatus, customer_id).status == "cancelled"


def test_activity_snapshots_match_the_timelines(web, client):
    ann = create_partner(client)
    for cus in ("cus_a", "cus_b", "cus_c"):
        sale(client, ann["code"], cus)
    with web.sessions() as s:
        ids = list(s.scalars(select(Referral.customer_id).order_by(Referral.id)))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with web.transaction() as s:
        for i, cid in enumerate(ids):
            record_state(s, _state(cid, "trial", start + timedelta(days=3 * i)))
            record_state(s, _state(cid, "cancelled", start + timedelta(days=20 + i)))
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert snapshot_activity(web, now)["days"] > 0
    assert snapshot_activity(web, now)["days"] > 0  # again: replaced, not added
    with web.sessions() as s:
        rows = {r.day: (r.trials, r.paying) for r in s.scalars(
            select(ActivityDay).where(ActivityDay.partner_id == ann["id"]))}
        timelines = {}
        for st_row in s.scalars(select(SubscriptionState).order_by(
                SubscriptionState.occurred_at, SubscriptionState.id)):
            timelines.setdefault(st_row.customer_id, []).append(
                (st_row.occurred_at.date(), st_row.status))
    days = [date(2025, 12, 31) + timedelta(days=i) for i in range(60)]
    expected_trials = trends.counts_over_time(timelines.values(), {"trial"}, days)
    expected_paying = trends.counts_over_time(timelines.values(), {"active", "past_due"}, days)
    assert [rows[d.isoformat()] for d in days] == list(zip(expected_trials, expected_paying,
                                                           strict=True))
    assert len(rows) == len(set(rows))
