"""Issue 19, money safety first: OdooPBX tells a referral without PayPal to "add any address in
the PayPal field" and be paid by hand every 3 months; the hub paid that made-up address.

Now a partner says "I have no PayPal account" (sign-up or settings) and is on the operator's
manual list; a partner can remove its PayPal address (password, audited); the operator can switch
the method (admin page, ``PATCH /api/v1/partners/{id}``); and no automatic payout goes to an
address nobody confirmed through the link mailed to it. Driven through the portal, the admin and
the API; mail is read from the `.eml` files the hub writes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from hub.app import create_app
from hub.clock import utcnow
from hub.db.models import AuditLog, Partner
from hub.jobs.queue import queue_of
from hub.jobs.tick import run_tick
from tests.conftest import operator_headers
from tests.payout_helpers import at, make_partner, pay, payouts_of, policy_registry, programs
from tests.web_helpers import PASSWORD, admin_login, csrf_of, give_password, portal_login, post_form

H = operator_headers()
OPERATOR = "ops@hub.test"
RELEASED = at("2026-02-10T00:00:00")  # the 30-day holds of January's payments are over
LINK = re.compile(r"http://hub\.test(/portal/paypal/confirm/\S+)")


@pytest.fixture
def hub(make_hub: Any, backend: str) -> Any:
    tables = programs()
    tables["odoopbx"] = {"plugin": "odoopbx", "currency": "EUR"}  # the real programme
    return make_hub(backend, programs=tables, registry=policy_registry(),
                    email={"operator": OPERATOR},
                    queue={"min_backoff_ms": 20, "max_backoff_ms": 50})


@pytest.fixture
def client(hub: Any) -> Iterator[TestClient]:
    with TestClient(create_app(hub)) as c:
        yield c


def inbox(hub: Any, to: str) -> list[EmailMessage]:
    queue_of(hub).join()
    mails = [message_from_bytes(p.read_bytes(), policy=policy.default)  # type: ignore[arg-type]
             for p in sorted(Path(hub.config.email.dir).glob("*.eml"))]
    return [m for m in mails if str(m["To"]) == to]  # type: ignore[misc]


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def links_to(hub: Any, address: str) -> list[str]:
    return [m.group(1) for mail in inbox(hub, address) if (m := LINK.search(text_of(mail)))]


def sign_up(client: TestClient, email: str, **fields: str) -> Any:
    return post_form(client, "/portal/signup?program=odoopbx", "/portal/signup",
                     program="odoopbx", name="Rae", email=email, password=PASSWORD, **fields)


def partner_by_email(hub: Any, email: str) -> Partner:
    with hub.sessions() as s:
        partner = s.scalars(select(Partner).where(Partner.email == email)).one()
        s.expunge(partner)
        return partner


def confirm(client: TestClient, path: str) -> Any:
    page = client.get(path)
    if "csrf" not in page.text or "Link expired" in page.text:
        return page
    return client.post(path, data={"csrf": csrf_of(page.text)})


def audit_of(hub: Any, partner_id: str, action: str) -> list[AuditLog]:
    with hub.sessions() as s:
        return list(s.scalars(select(AuditLog).where(AuditLog.subject == partner_id,
                                                     AuditLog.action == action)
                              .order_by(AuditLog.id)))


def test_a_referral_without_paypal_is_paid_by_hand_never_to_a_made_up_address(client, hub):
    # the seed's advice, followed to the letter: "any address", and the new choice ticked
    sign_up(client, "rae@hobby.test", paypal_email="any@address.test", no_paypal="on")
    rae = partner_by_email(hub, "rae@hobby.test")
    assert (rae.kind, rae.status, rae.payout_method, rae.paypal_email) == (
        "referral", "active", "manual", None)
    [told] = inbox(hub, OPERATOR)
    assert "paid by hand" in str(told["Subject"]) and f"/admin/partners/{rae.id}" in text_of(told)
    assert inbox(hub, "any@address.test") == []

    pay(hub, rae.code, 100000, when=at("2026-01-05T10:00:00"))  # 15% = €150, over the €100
    run_tick(hub, RELEASED)
    [payout] = payouts_of(hub, rae.id)
    assert (payout.method, payout.receiver, payout.status, payout.amount, payout.period) == (
        "manual", None, "requested", 15000, "2026-01/3m")
    assert "You have no PayPal account" in client.get("/portal/").text

    with TestClient(create_app(hub)) as operator:
        admin_login(operator)
        page = operator.get("/admin/payouts").text
        manual = page[page.index('data-testid="manual"'):]
        manual = manual[:manual.index("</table>")]
        assert "rae@hobby.test" in manual and "150.00" in manual
        partner_page = operator.get(f"/admin/partners/{rae.id}").text
        assert "by hand (no PayPal account)" in partner_page


def test_an_unconfirmed_address_is_not_paid_until_its_link_is_used(client, hub):
    sign_up(client, "sam@hobby.test", paypal_email="sam@pay.test")
    sam = partner_by_email(hub, "sam@hobby.test")
    assert (sam.payout_method, sam.paypal_email, sam.paypal_confirmed_at) == (
        "paypal", "sam@pay.test", None)
    [link] = links_to(hub, "sam@pay.test")

    pay(hub, sam.code, 100000, when=at("2026-01-05T10:00:00"))
    run_tick(hub, RELEASED)
    assert payouts_of(hub, sam.id) == []  # skipped, not failed: the money waits
    why = " ".join(client.get("/portal/").text.split())
    assert "No payout is made until you confirm your PayPal address sam@pay.test" in why
    settings = " ".join(client.get("/portal/settings").text.split())
    assert "is unconfirmed — we sent a mail to sam@pay.test" in settings
    refused = client.post("/api/v1/partners/" + sam.id + "/withdrawals", headers=H,
                          json={"currency": "EUR"})
    assert refused.json()["error"]["code"] == "automatic_program"

    client.cookies.clear()  # the link works from the PayPal mailbox, logged in or not
    page = client.get(link)
    assert "Confirm sam@pay.test" in page.text
    assert partner_by_email(hub, "sam@hobby.test").paypal_confirmed_at is None  # GET: nothing
    done = confirm(client, link)
    assert "sam@pay.test is confirmed" in done.text
    assert [r.actor for r in audit_of(hub, sam.id, "partner.paypal_confirmed")] == [
        f"partner:{sam.id}"]

    run_tick(hub, at("2026-02-11T00:00:00"))
    [payout] = payouts_of(hub, sam.id)
    assert (payout.receiver, payout.amount, payout.method) == ("sam@pay.test", 15000, "paypal")
    again = confirm(client, link)  # one time only
    assert "Link expired" in again.text
    forged = confirm(client, "/portal/paypal/confirm/not-a-token")
    assert "Link expired" in forged.text


def test_a_link_confirms_its_own_partner_and_address_only(client, hub):
    sign_up(client, "ann@hobby.test", paypal_email="shared@pay.test")
    client.cookies.clear()
    sign_up(client, "bob@hobby.test", paypal_email="shared@pay.test")  # Bob claims Ann's
    ann, bob = partner_by_email(hub, "ann@hobby.test"), partner_by_email(hub, "bob@hobby.test")
    links = links_to(hub, "shared@pay.test")
    assert len(links) == 2
    mails = inbox(hub, "shared@pay.test")
    ann_link = next(LINK.search(text_of(m)).group(1)  # type: ignore[union-attr]
                    for m in mails if ann.code in text_of(m))
    client.cookies.clear()
    confirm(client, ann_link)
    assert partner_by_email(hub, "ann@hobby.test").paypal_confirmed_at is not None
    assert partner_by_email(hub, "bob@hobby.test").paypal_confirmed_at is None

    # Bob moves to another address: the link mailed for the old one confirms nothing
    bob_link = next(link for link in links if link != ann_link)
    portal_login(client, "bob@hobby.test")
    post_form(client, "/portal/settings", "/portal/settings", action="paypal",
              paypal_email="bob@pay.test", current_password=PASSWORD)
    assert "Link expired" in confirm(client, bob_link).text
    assert partner_by_email(hub, "bob@hobby.test").paypal_confirmed_at is None
    [new_link] = links_to(hub, "bob@pay.test")
    confirm(client, new_link)
    assert partner_by_email(hub, "bob@hobby.test").paypal_confirmed_at is not None
    assert bob.id != ann.id


def test_the_confirmation_mail_is_sent_again_at_most_every_few_minutes(client, hub):
    sign_up(client, "cy@hobby.test", paypal_email="cy@pay.test")
    answer = post_form(client, "/portal/settings", "/portal/settings", action="paypal_resend")
    assert "a few minutes ago" in answer.text
    assert len(inbox(hub, "cy@pay.test")) == 1


def test_removing_the_paypal_address_needs_the_password_and_is_audited(client, hub):
    partner = make_partner(hub, "odoopbx", kind="referral", email="di@hobby.test",
                           paypal_email="di@pay.test")  # set by the operator: confirmed
    give_password(hub, partner.id)
    portal_login(client, "di@hobby.test")
    assert 'data-payee="ready"' in client.get("/portal/settings").text
    refused = post_form(client, "/portal/settings", "/portal/settings", action="paypal_remove",
                        current_password="not the password")
    assert "current password is wrong" in refused.text
    assert partner_by_email(hub, "di@hobby.test").paypal_email == "di@pay.test"
    assert audit_of(hub, partner.id, "partner.payee_changed") == []

    post_form(client, "/portal/settings", "/portal/settings", action="paypal_remove",
              current_password=PASSWORD)
    assert partner_by_email(hub, "di@hobby.test").paypal_email is None
    [row] = audit_of(hub, partner.id, "partner.payee_changed")
    assert (row.actor, row.details["field"], row.details["old"], row.details["new"]) == (
        f"partner:{partner.id}", "paypal_email", "di@pay.test", None)
    assert [str(m["Subject"]) for m in inbox(hub, "di@pay.test")] == [
        "Your payout details were changed"]
    # without an address an automatic programme lists the partner for payment by hand
    pay(hub, partner.code, 100000, when=at("2026-01-05T10:00:00"))
    run_tick(hub, RELEASED)
    assert [(p.method, p.receiver) for p in payouts_of(hub, partner.id)] == [("manual", None)]


def test_no_paypal_account_in_the_settings_switches_to_the_manual_list(client, hub):
    partner = make_partner(hub, "odoopbx", kind="referral", email="ed@hobby.test",
                           paypal_email="any@address.test")
    give_password(hub, partner.id)
    portal_login(client, "ed@hobby.test")
    post_form(client, "/portal/settings", "/portal/settings", action="no_paypal",
              current_password=PASSWORD)
    ed = partner_by_email(hub, "ed@hobby.test")
    assert (ed.payout_method, ed.paypal_email) == ("manual", None)
    assert 'data-payee="manual"' in client.get("/portal/settings").text
    [switched] = audit_of(hub, partner.id, "partner.payout_method")
    assert (switched.details["old"], switched.details["new"]) == ("paypal", "manual")
    assert any("paid by hand" in str(m["Subject"]) for m in inbox(hub, OPERATOR))


def test_the_operator_switches_the_method_through_the_api_and_the_admin(client, hub):
    partner = make_partner(hub, "odoopbx", kind="referral", email="fay@hobby.test")
    url = f"/api/v1/partners/{partner.id}"
    manual = client.patch(url, headers=H, json={"payout_method": "manual",
                                                "note": "SEPA every quarter"})
    assert manual.status_code == 200 and manual.json()["payout_method"] == "manual"
    [row] = audit_of(hub, partner.id, "partner.payout_method")
    assert (row.actor, row.details["new"], row.details["note"]) == (
        "operator", "manual", "SEPA every quarter")
    for body, code in (({"payout_method": "cheque"}, "invalid_method"),
                       ({"paypal_email": "not an address"}, "invalid_email"),
                       ({"paypal_email": 7}, "invalid_email"),
                       ({"colour": "red"}, "invalid_field")):
        bad = client.patch(url, headers=H, json=body)
        assert (bad.status_code, bad.json()["error"]["code"]) == (422, code), body
    assert client.patch(url, json={"payout_method": "paypal"}).status_code == 401

    # an address the operator sets counts as confirmed by the operator, and chooses PayPal
    set_by_operator = client.patch(url, headers=H, json={"paypal_email": "fay@pay.test"})
    body = set_by_operator.json()
    assert (body["payout_method"], body["paypal_email"]) == ("paypal", "fay@pay.test")
    assert body["paypal_confirmed_at"] is not None
    assert [r.actor for r in audit_of(hub, partner.id, "partner.paypal_confirmed")] == ["operator"]
    pay(hub, partner.code, 100000, when=at("2026-01-05T10:00:00"))
    run_tick(hub, RELEASED)
    assert [p.receiver for p in payouts_of(hub, partner.id)] == ["fay@pay.test"]

    with TestClient(create_app(hub)) as operator:
        admin_login(operator)
        page = f"/admin/partners/{partner.id}"
        post_form(operator, page, f"{page}/payee", payout_method="manual",
                  note="no PayPal after all")
        assert partner_by_email(hub, "fay@hobby.test").payout_method == "manual"
        assert "by hand (no PayPal account)" in operator.get(page).text
        post_form(operator, page, f"{page}/payee", payout_method="paypal", remove_paypal="on")
    fay = partner_by_email(hub, "fay@hobby.test")
    assert (fay.payout_method, fay.paypal_email) == ("paypal", None)
    notes = [r.details.get("note") for r in audit_of(hub, partner.id, "partner.payout_method")]
    assert notes == ["SEPA every quarter", None, "no PayPal after all", None]

    made = client.post("/api/v1/partners", headers=H, json={
        "program": "odoopbx", "kind": "referral", "email": "gus@hobby.test",
        "payout_method": "manual"})
    assert made.status_code == 201 and made.json()["payout_method"] == "manual"
    bad = client.post("/api/v1/partners", headers=H, json={
        "program": "odoopbx", "email": "hal@hobby.test", "payout_method": "cheque"})
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_method")


@pytest.mark.parametrize("batched", [True, False])
def test_a_payout_whose_address_changed_before_its_first_send_is_held_back(make_hub, backend,
                                                                         batched):
    """A payout made for a confirmed address, its message not sent yet; the partner changes
    the address (unconfirmed now). The send does not pay the old address behind the partner's
    back: the payout is rejected before PayPal sees it and the money is payable again."""
    from hub.payouts.automatic import Account, create_automatic
    from hub.payouts.payee import NOT_SENT
    from hub.payouts.requests import create_payout, lock_partner

    hub = make_hub(backend, programs={"odoopbx": {"plugin": "odoopbx", "currency": "EUR"}},
                   queue={"min_backoff_ms": 20, "max_backoff_ms": 50, "stale_seconds": 0})
    partner = make_partner(hub, "odoopbx", kind="referral", email="gil@hobby.test",
                           paypal_email="gil@pay.test")
    give_password(hub, partner.id)
    pay(hub, partner.code, 100000, when=at("2026-01-05T10:00:00"))
    with hub.sessions() as s, s.begin():  # hold the payouts back: nothing released yet
        s.get(Partner, partner.id).paypal_confirmed_at = None
    run_tick(hub, RELEASED)
    assert payouts_of(hub, partner.id) == []
    with hub.sessions() as s, s.begin():  # made, its message lost (no after-commit send)
        s.get(Partner, partner.id).paypal_confirmed_at = at("2026-02-01T00:00:00")
        if batched:
            create_automatic(s, [Account(partner.id, "EUR", "odoopbx", 10000, "paypal")])
        else:
            create_payout(s, lock_partner(s, partner.id), hub.program("odoopbx"), "EUR",
                          status="queued", method="paypal", receiver="gil@pay.test")
    [made] = payouts_of(hub, partner.id)
    assert (made.status, made.receiver) == ("queued", "gil@pay.test")

    with TestClient(create_app(hub)) as client:
        portal_login(client, "gil@hobby.test")
        post_form(client, "/portal/settings", "/portal/settings", action="paypal",
                  paypal_email="gil-new@pay.test", current_password=PASSWORD)
        run_tick(hub, utcnow() + timedelta(minutes=5))  # the sweep sends what was left queued
        queue_of(hub).join()
        [held] = payouts_of(hub, partner.id)
        assert (held.status, held.failure_reason, held.attempts) == ("rejected", NOT_SENT, 0)
        assert "rejected" in client.get("/portal/payouts").text
        assert ledger_payable(hub, partner.id) == 15000
        # confirmed, the new address is paid at the next tick (the held-back payout blocks
        # nothing: nobody refused it)
        [link] = links_to(hub, "gil-new@pay.test")
        confirm(client, link)
        run_tick(hub, utcnow() + timedelta(minutes=10))
        queue_of(hub).join()
    assert [(p.status, p.receiver) for p in payouts_of(hub, partner.id)] == [
        ("rejected", "gil@pay.test"), ("dry_run", "gil-new@pay.test")]


def ledger_payable(hub: Any, partner_id: str) -> int:
    from hub.ledger import entries as ledger

    with hub.sessions() as s:
        return ledger.payable_balance(s, partner_id, "EUR")


@pytest.mark.parametrize("reason, refused", [("not sent", False), ("wrong address", True)])
def test_a_held_back_payout_does_not_block_its_address(reason, refused):
    from hub.payouts.payee import NOT_SENT
    from hub.payouts.requests import refused_before

    why = NOT_SENT if reason == "not sent" else reason
    assert refused_before("rejected", "x@pay.test", "x@pay.test", why) is refused


def test_the_migration_keeps_running_installs_paying_their_addresses(tmp_path):
    """Addresses stored before the upgrade count as confirmed; new ones wait for their link."""
    from alembic import command
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine, inspect, text

    from hub.db.session import alembic_config

    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = alembic_config(engine)
    before = ScriptDirectory.from_config(cfg).get_revision("a19_paypal_confirmed").down_revision
    assert isinstance(before, str)
    command.upgrade(cfg, before)
    with engine.begin() as conn:
        for pid, paypal in (("prt_paid", "'old@pay.test'"), ("prt_none", "NULL")):
            conn.execute(text(
                "INSERT INTO partners (id, program, kind, status, code, email, name, "
                f"paypal_email, payout_method, created_at) VALUES ('{pid}', 'odoopbx', "
                f"'referral', 'active', '{pid}', '{pid}@x.test', '', {paypal}, 'paypal', "
                "'2025-06-01 10:00:00')"))
    command.upgrade(cfg, "a19_paypal_confirmed")
    with engine.connect() as conn:
        got = dict(conn.execute(text("SELECT id, paypal_confirmed_at FROM partners")).all())
    assert got["prt_paid"] is not None and got["prt_none"] is None
    command.downgrade(cfg, before)
    assert "paypal_confirmed_at" not in {c["name"] for c in inspect(engine).get_columns("partners")}
    engine.dispose()
