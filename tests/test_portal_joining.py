"""Issue 19, "Joining and reaching the portal": an automatically enrolled customer (a Callbell
ambassador) gets a mail with a link to choose its password, and the sign-up page sends that link
to an address that has an account instead of refusing it, without telling whether one exists;
the partner agreement's text, URL and version are program settings, the accepted version is
recorded and a new version is asked for again; each program may have its own landing page.

All through the HTTP app: Stripe webhooks, the operator API, the portal pages, `/r/{code}`."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from connectors import stripe_trigger as st
from hub.app import create_app
from hub.db.models import AuditLog, Link, Mail, Partner, PasswordResetToken
from hub.errors import StartupError
from hub.ingest.replay import replay_file
from hub.ingest.whatif import simulated_program
from hub.jobs.queue import queue_of
from hub.programs import CONTACT_KEYS, settings_hash
from tests.conftest import operator_headers
from tests.stripe_helpers import create_partner, post_event
from tests.web_helpers import give_password, portal_login, post_form

H = operator_headers()
T0 = 1_767_225_600  # 2026-01-01
SET_PASSWORD_SUBJECT = "Your callbell partner area is ready: choose a password"
SIGNUP_SUBJECT = "Your callbell partner account: choose a password"


def inbox(hub: Any, to: str) -> list[EmailMessage]:
    queue_of(hub).join()
    messages = [message_from_bytes(p.read_bytes(), policy=policy.default)  # type: ignore[misc]
                for p in sorted(Path(hub.config.email.dir).glob("*.eml"))]
    return [m for m in messages if str(m["To"]) == to]


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def reset_link(message: EmailMessage) -> str:
    found = re.search(r"http://hub\.test(/portal/reset/\S+)", text_of(message))
    assert found, text_of(message)
    return found.group(1)


def choose_password(client: Any, link: str, password: str) -> Any:
    return post_form(client, link, link, password=password, password_again=password)


def without_csrf(html: str) -> str:
    return re.sub(r'name="csrf" value="[^"]+"', "", html)


# -- 1. an automatically enrolled ambassador reaches its Rewards area ------------------------

@pytest.fixture
def callbell(make_hub: Any, backend: str) -> Any:
    return make_hub(backend, programs={"callbell": {"plugin": "callbell"}})


def enrol(client: Any, cus: str, email: str) -> None:
    """A Callbell customer appears (and pays): every customer is an ambassador."""
    post_event(client, st.event("customer.created", st.customer(cus, email=email, created=T0),
                                created=T0))


def test_an_enrolled_ambassador_is_mailed_once_and_its_link_opens_the_portal(callbell):
    hub = callbell
    with TestClient(create_app(hub)) as client:
        enrol(client, "cus_amb", "amb@shop.test")
        # The same customer again: a repeated event, a later one, a payment.
        enrol(client, "cus_amb", "amb@shop.test")
        post_event(client, st.event("customer.updated", st.customer(
            "cus_amb", email="amb@shop.test", created=T0)))
        post_event(client, st.event("invoice.paid", st.invoice(
            "in_amb", customer_id="cus_amb", amount=2000, currency="eur", paid_at=T0 + 60,
            subscription_id="sub_amb", charge_id="ch_amb", shape="legacy")))
        mails = inbox(hub, "amb@shop.test")
        assert [str(m["Subject"]) for m in mails] == [SET_PASSWORD_SUBJECT]
        with hub.sessions() as s:
            partner = s.scalars(select(Partner)).one()
            assert partner.password_hash is None and partner.status == "active"
            keys = list(s.scalars(select(Mail.key)))
        assert keys == [f"enrolment:{partner.id}"]
        body = " ".join(text_of(mails[0]).split())
        assert partner.code in body and "/portal/login" in body
        # No password yet: the log-in refuses; the mailed link sets one, once.
        assert "wrong" in portal_login(client, "amb@shop.test", "ambassador secret").text
        link = reset_link(mails[0])
        done = choose_password(client, link, "ambassador secret")
        assert done.url.path == "/portal/login"
        assert "Link expired" in client.get(link).text
        dashboard = portal_login(client, "amb@shop.test", "ambassador secret")
        assert dashboard.url.path == "/portal/" and "Dashboard" in dashboard.text


def minutes_pass(hub: Any, minutes: int) -> None:
    """Age the one-time links already made, as if `minutes` had passed."""
    with hub.transaction() as s:
        for token in s.scalars(select(PasswordResetToken)):
            token.created_at -= timedelta(minutes=minutes)


def signup(client: Any, email: str) -> Any:
    return post_form(client, "/portal/signup", "/portal/signup", program="callbell",
                     email=email, name="Mallory", password="some other pw")


def test_sign_up_with_an_ambassadors_address_mails_the_link_instead_of_refusing(callbell):
    hub = callbell
    with TestClient(create_app(hub)) as client:
        enrol(client, "cus_amb", "amb@shop.test")
        minutes_pass(hub, 10)
        answer = signup(client, "Amb@Shop.test")
        assert answer.status_code == 200
        text = answer.text.lower()
        assert "if an account uses this address" in text
        assert "already" not in text and "has an account" not in text
        assert client.get("/portal/", follow_redirects=False).status_code == 303  # not in
        subjects = [str(m["Subject"]) for m in inbox(hub, "amb@shop.test")]
        assert sorted(subjects) == sorted([SET_PASSWORD_SUBJECT, SIGNUP_SUBJECT])
        # At most one such link every few minutes: a second try mails nothing more, and says
        # the same.
        again = signup(client, "amb@shop.test")
        assert without_csrf(again.text) == without_csrf(answer.text)
        assert len(inbox(hub, "amb@shop.test")) == 2
        with hub.sessions() as s:
            assert len(s.scalars(select(Partner)).all()) == 1  # nothing created
        signup_mail = next(m for m in inbox(hub, "amb@shop.test")
                           if str(m["Subject"]) == SIGNUP_SUBJECT)
        assert "did not try to sign up" in " ".join(text_of(signup_mail).split())
        client.cookies.clear()
        choose_password(client, reset_link(signup_mail), "now i am in!")
        assert portal_login(client, "amb@shop.test", "now i am in!").url.path == "/portal/"


def test_right_after_the_enrolment_mail_the_sign_up_sends_no_second_link(callbell):
    hub = callbell
    with TestClient(create_app(hub)) as client:
        enrol(client, "cus_amb", "amb@shop.test")
        assert "if an account uses this address" in signup(client, "amb@shop.test").text
        assert [str(m["Subject"]) for m in inbox(hub, "amb@shop.test")] == [
            SET_PASSWORD_SUBJECT]


def test_the_sign_up_answers_a_taken_address_as_it_answers_a_new_one(make_hub, backend):
    """CTM approves every application first: a new address and one with an account get the
    same page, and only the account's owner gets a link."""
    hub = make_hub(backend, programs={"ctm": {"plugin": "calltrackingmetrics"}})
    with TestClient(create_app(hub)) as client:
        ctm = create_partner(client, program="ctm", email="aff@partners.test")
        assert client.post(f"/api/v1/partners/{ctm['id']}/approve", headers=H).status_code == 200
        answers = [post_form(client, "/portal/signup", "/portal/signup", program="ctm",
                             email=email, name="Someone", password="long enough pw")
                   for email in ("aff@partners.test", "new@partners.test")]
        assert [a.status_code for a in answers] == [200, 200]
        assert without_csrf(answers[0].text) == without_csrf(answers[1].text)
        assert "Your ctm partner account: choose a password" in [
            str(m["Subject"]) for m in inbox(hub, "aff@partners.test")]
        assert not [m for m in inbox(hub, "new@partners.test")
                    if "choose a password" in str(m["Subject"])]


def test_a_suspended_account_gets_no_link_and_the_same_page(callbell):
    hub = callbell
    with TestClient(create_app(hub)) as client:
        enrol(client, "cus_a", "a@shop.test")
        enrol(client, "cus_b", "b@shop.test")
        with hub.sessions() as s:
            b_id = s.scalars(select(Partner.id).where(Partner.email == "b@shop.test")).one()
        assert client.post(f"/api/v1/partners/{b_id}/suspend", headers=H).status_code == 200
        minutes_pass(hub, 10)
        pages = [without_csrf(post_form(client, "/portal/signup", "/portal/signup",
                                        program="callbell", email=email, name="X",
                                        password="long enough pw").text)
                 for email in ("a@shop.test", "b@shop.test")]
        assert pages[0] == pages[1]
        assert [str(m["Subject"]) for m in inbox(hub, "b@shop.test")] == [SET_PASSWORD_SUBJECT]
        assert len(inbox(hub, "a@shop.test")) == 2


# -- 2. the agreement is a program setting, with a version ------------------------------------

AGREEMENT = {"plugin": "calltrackingmetrics",
             "agreement_text": "Promote <b>honestly</b>.\n\nNo brand bidding.",
             "agreement_url": "https://example.com/affiliate-agreement",
             "agreement_version": "2026-01"}


@pytest.fixture
def ctm(make_hub: Any, backend: str) -> Any:
    return make_hub(backend, programs={"ctm": dict(AGREEMENT)})


def approved_affiliate(client: Any, hub: Any, email: str = "aff@partners.test") -> dict[str, Any]:
    partner = create_partner(client, program="ctm", email=email)
    assert client.post(f"/api/v1/partners/{partner['id']}/approve", headers=H).status_code == 200
    give_password(hub, partner["id"])
    return partner


def new_version(hub: Any, version: str) -> None:
    """The operator publishes a new agreement (what a restart with the new config does)."""
    hub.programs = {**hub.programs, "ctm": simulated_program(
        hub, "ctm", {"agreement_version": version})}


def test_the_portal_shows_the_programs_agreement_and_records_its_version(ctm):
    hub = ctm
    with TestClient(create_app(hub)) as client:
        partner = approved_affiliate(client, hub)
        page = portal_login(client, "aff@partners.test")
        assert page.url.path == "/portal/agreement"
        assert "<p>Promote &lt;b&gt;honestly&lt;/b&gt;.</p>" in page.text  # escaped, paragraphs
        assert "<p>No brand bidding.</p>" in page.text
        assert 'href="https://example.com/affiliate-agreement"' in page.text
        assert "version 2026-01" in page.text
        assert "bid on its brand name" not in page.text  # not the generic text
        post_form(client, "/portal/agreement", "/portal/agreement")
        assert client.get("/portal/", follow_redirects=False).status_code == 200
        body = client.get(f"/api/v1/partners/{partner['id']}", headers=H).json()
        assert body["agreement_version"] == "2026-01" and body["agreement_accepted_at"]


def test_a_new_version_is_asked_for_again_while_the_links_keep_crediting(ctm):
    hub = ctm
    with TestClient(create_app(hub)) as client:
        partner = approved_affiliate(client, hub)
        portal_login(client, "aff@partners.test")
        post_form(client, "/portal/agreement", "/portal/agreement")
        with hub.sessions() as s:
            first = s.get(Partner, partner["id"]).agreement_accepted_at
        new_version(hub, "2026-07")
        for path in ("/portal/", "/portal/links", "/portal/payouts"):
            assert client.get(path, follow_redirects=False).headers["location"] == \
                "/portal/agreement"
        page = client.get("/portal/agreement").text
        assert "has changed since you accepted it (version 2026-01)" in page
        assert "version 2026-07" in page
        # Accepted once, so a click still credits the affiliate meanwhile.
        assert f"ref={partner['code']}" in client.get(
            f"/r/{partner['code']}", follow_redirects=False).headers["location"]
        post_form(client, "/portal/agreement", "/portal/agreement")
        assert client.get("/portal/", follow_redirects=False).status_code == 200
        with hub.sessions() as s:
            now = s.get(Partner, partner["id"])
            assert now.agreement_version == "2026-07" and now.agreement_accepted_at >= first
            versions = [r.details.get("version") for r in s.scalars(
                select(AuditLog).where(AuditLog.action == "partner.agreement")
                .order_by(AuditLog.id))]
        assert versions == ["2026-01", "2026-07"]


def test_the_operator_api_records_the_current_version(ctm):
    hub = ctm
    with TestClient(create_app(hub)) as client:
        partner = approved_affiliate(client, hub)
        assert create_partner(client, program="ctm", email="x@p.test")["agreement_version"] is None
        url = f"/api/v1/partners/{partner['id']}/agreement"
        accepted = client.post(url, headers=H).json()
        assert accepted["agreement_version"] == "2026-01"
        assert client.post(url, headers=H).json() == accepted  # once per version
        new_version(hub, "2026-07")
        again = client.post(url, headers=H).json()
        assert again["agreement_version"] == "2026-07"
        listed = client.get("/api/v1/partners", headers=H).json()["items"]
        assert {p["agreement_version"] for p in listed if p["id"] == partner["id"]} == {"2026-07"}
        portal_login(client, "aff@partners.test")
        assert client.get("/portal/", follow_redirects=False).status_code == 200


def test_an_agreement_url_makes_any_program_ask_for_it(make_hub, backend):
    hub = make_hub(backend, programs={"crazycall": {
        "plugin": "crazycall", "agreement_url": "https://example.com/terms"}})
    with TestClient(create_app(hub)) as client:
        partner = create_partner(client, email="cc@partners.test")
        give_password(hub, partner["id"])
        page = portal_login(client, "cc@partners.test")
        assert page.url.path == "/portal/agreement"
        assert 'href="https://example.com/terms"' in page.text
        assert "version" not in page.text.split("<h1>")[1].split("</h2>")[0]
        assert "ref=" not in client.get(f"/r/{partner['code']}",
                                        follow_redirects=False).headers["location"]
        post_form(client, "/portal/agreement", "/portal/agreement")
        assert client.get("/portal/", follow_redirects=False).status_code == 200
        with hub.sessions() as s:
            assert s.get(Partner, partner["id"]).agreement_version is None  # no version named


def test_without_a_text_or_url_the_generic_agreement_is_shown(make_hub, backend):
    hub = make_hub(backend, programs={"ctm": {"plugin": "calltrackingmetrics"}})
    with TestClient(create_app(hub)) as client:
        approved_affiliate(client, hub)
        page = portal_login(client, "aff@partners.test")
        assert page.url.path == "/portal/agreement" and "bid on its brand name" in page.text


# -- 3. a landing page per program ------------------------------------------------------------

@pytest.fixture
def landings(make_hub: Any, backend: str) -> Any:
    return make_hub(backend, programs={
        "crazycall": {"plugin": "crazycall"},
        "ctm": {"plugin": "calltrackingmetrics", "default_landing": "https://example.com/plans"}})


def target(client: Any, code: str) -> str:
    response = client.get(f"/r/{code}", follow_redirects=False)
    assert response.status_code == 302
    return str(response.headers["location"])


def test_links_without_a_destination_land_on_the_programs_page(landings):
    hub = landings
    with TestClient(create_app(hub)) as client:
        aff = create_partner(client, program="ctm", email="aff@partners.test")
        assert target(client, aff["code"]) == "https://example.com/plans"  # not credited yet
        client.post(f"/api/v1/partners/{aff['id']}/approve", headers=H)
        client.post(f"/api/v1/partners/{aff['id']}/agreement", headers=H)
        assert target(client, aff["code"]).startswith(
            f"https://example.com/plans?ref={aff['code']}&click_id=clk_")
        built = client.post(f"/api/v1/partners/{aff['id']}/links", json={}, headers=H).json()
        assert built["destination"] is None
        assert target(client, built["code"]).startswith(
            f"https://example.com/plans?ref={aff['code']}&click_id=")
        deep = client.post(f"/api/v1/partners/{aff['id']}/links",
                           json={"destination": "https://example.com/pricing"}, headers=H).json()
        assert target(client, deep["code"]).startswith("https://example.com/pricing?ref=")
        # From the portal's link builder too.
        give_password(hub, aff["id"])
        portal_login(client, "aff@partners.test")
        assert "(empty: https://example.com/plans)" in client.get("/portal/links").text
        post_form(client, "/portal/links", "/portal/links", creative="plain", trial_days="14")
        with hub.sessions() as s:
            codes = set(s.scalars(select(Link.code).where(Link.partner_id == aff["id"])))
        portal_code = (codes - {aff["code"], built["code"], deep["code"]}).pop()
        assert target(client, portal_code).startswith("https://example.com/plans?ref=")
        # Another program without one, and unknown codes: the server's landing.
        other = create_partner(client, email="cc@partners.test")
        assert target(client, other["code"]).startswith(
            f"https://example.com/?ref={other['code']}&click_id=")
        assert target(client, "nobody-has-this") == "https://example.com/"


def test_the_servers_default_landing_is_the_fallback(make_hub, backend):
    hub = make_hub(backend, programs={"crazycall": {"plugin": "crazycall"}},
                   server={"default_landing": "https://example.com/welcome"})
    with TestClient(create_app(hub)) as client:
        partner = create_partner(client, email="cc@partners.test")
        assert target(client, partner["code"]).startswith(
            f"https://example.com/welcome?ref={partner['code']}")
        assert target(client, "nobody-has-this") == "https://example.com/welcome"


@pytest.mark.parametrize("key", ["default_landing", "agreement_url"])
def test_a_landing_or_agreement_url_must_be_a_web_address(make_hub, key):
    with pytest.raises(StartupError, match=key):
        make_hub("sqlite", programs={"ctm": {"plugin": "calltrackingmetrics",
                                             key: "javascript:alert(1)"}})


def test_the_new_settings_at_their_defaults_leave_the_settings_hash_as_it_was(landings):
    """Lines booked before these settings existed must not look computed with other settings."""
    settings = landings.programs["crazycall"].settings
    before = {k: v for k, v in dataclasses.asdict(settings).items()
              if k not in ("agreement_text", "agreement_url", "agreement_version",
                           "default_landing", *CONTACT_KEYS)}
    old_hash = hashlib.sha256(json.dumps(before, sort_keys=True, default=str).encode())
    assert settings_hash(settings) == old_hash.hexdigest()[:12]
    ctm = landings.programs["ctm"].settings  # a landing set: a settings change
    assert settings_hash(ctm) != settings_hash(dataclasses.replace(ctm, default_landing=""))


def test_a_batched_replay_enrols_and_mails_each_ambassador_once(callbell, tmp_path):
    """`hub replay` (the batch path, which leaves enrolments to the per-event path) mails each
    new ambassador once, however often the export is replayed."""
    events = [st.event("customer.created", st.customer(f"cus_r{n}", email=f"r{n}@shop.test",
                                                       created=T0 + n),
                       created=T0 + n, event_id=f"evt_c{n}") for n in range(3)]
    events += [st.event("invoice.paid", st.invoice(
        f"in_r{n}", customer_id=f"cus_r{n}", amount=2000, currency="eur", paid_at=T0 + 99,
        charge_id=f"ch_r{n}", shape="legacy"), created=T0 + 99, event_id=f"evt_p{n}")
        for n in range(3)]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    assert replay_file(callbell, str(path), progress=False, batch=4)["new"] == 6
    path.write_text("\n".join(json.dumps(e) for e in events[::-1]) + "\n")
    replay_file(callbell, str(path), progress=False, batch=4)
    for n in range(3):
        assert [str(m["Subject"]) for m in inbox(callbell, f"r{n}@shop.test")] == [
            SET_PASSWORD_SUBJECT]
