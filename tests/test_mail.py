"""E-mail against a real SMTP server: aiosmtpd's `Controller` on a local port, and what arrived.

A mail is written with its cause, sent by the queue after the commit, never twice for one cause,
and an SMTP outage delays it (the booking succeeds; retries or `hub tick` send it later).
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import socket
import ssl
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import redis
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from starlette.testclient import TestClient

from connectors import stripe_trigger as st
from connectors.stripe import prepare
from connectors.stripe import process as stripe_process
from hub.app import create_app
from hub.clock import utcnow
from hub.config import config_from_dict
from hub.db.models import Commission, Mail, Partner
from hub.errors import StartupError, TransientError
from hub.ingest.batch import apply_batch
from hub.jobs.queue import queue_of
from hub.jobs.tick import run_tick
from hub.notify import notices
from hub.notify.mail import _claim, queue_mail, queue_mails, render, send, smtp_target, templates
from tests.payout_helpers import make_partner, pay, wait_for
from tests.web_helpers import PASSWORD, csrf_of, give_password, portal_login, post_form

SMTP_USER, SMTP_PASSWORD = "mailer", "s3cret-p@ss:word"
QUOTED_PASSWORD = "s3cret-p%40ss%3Aword"
OPERATOR = "ops@hub.test"
REDIS_URL = os.environ.get("HUB_TEST_REDIS_URL") or "redis://127.0.0.1:6379/5"


class Inbox:
    """The SMTP server's side: every message it accepted, and every log-in it saw."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.logins: list[tuple[str, str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        return "250 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                     auth_data: Any) -> AuthResult:
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.logins.append((login, password))
        return AuthResult(success=(login, password) == (SMTP_USER, SMTP_PASSWORD))

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.messages]

    def to(self, address: str, subject_start: str) -> list[EmailMessage]:
        return [m for m in self.messages if str(m["To"]) == address
                and str(m["Subject"]).startswith(subject_start)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpServer:
    """aiosmtpd on a local port: plain (log-in allowed without TLS), STARTTLS required, or
    implicit TLS (``smtps``), with the certificate of `tls_files`."""

    def __init__(self, port: int | None = None, *, tls: str = "",
                 tls_files: tuple[Path, Path] | None = None) -> None:
        self.port = port or free_port()
        self.inbox = Inbox()
        self.controller: Controller | None = None
        self.tls, self.tls_files = tls, tls_files

    def start(self) -> SmtpServer:
        # aiosmtpd counts only STARTTLS as TLS for AUTH; smtps is encrypted from the start.
        options: dict[str, Any] = {"authenticator": self.inbox.authenticate,
                                   "auth_require_tls": self.tls == "starttls"}
        if self.tls:
            assert self.tls_files is not None
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*map(str, self.tls_files))
            key = "tls_context" if self.tls == "starttls" else "ssl_context"
            options[key] = context
            if self.tls == "starttls":
                options["require_starttls"] = True
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port,
                                     **options)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def url(self) -> str:
        scheme = "smtps" if self.tls == "smtps" else "smtp"
        query = "?starttls=true" if self.tls == "starttls" else ""
        return f"{scheme}://{SMTP_USER}:{QUOTED_PASSWORD}@127.0.0.1:{self.port}{query}"


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "smtp.pem", folder / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def mail_hub(make_hub: Any, backend: str, url: str, **tables: Any) -> Any:
    return make_hub(backend, email={"url": url, "operator": OPERATOR},
                    queue={"min_backoff_ms": 20, "max_backoff_ms": 50, "max_retries": 1},
                    **tables)


def mails(hub: Any, template: str | None = None) -> list[Mail]:
    with hub.sessions() as session:
        query = select(Mail).order_by(Mail.created_at)
        if template:
            query = query.where(Mail.template == template)
        return list(session.scalars(query))


def body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def invoice_event(partner_code: str, amount: int = 4900, when: Any = None) -> dict[str, Any]:
    invoice_id = f"in_{secrets.token_hex(6)}"
    return st.event("invoice.paid", st.invoice(
        invoice_id, customer_id=f"cus_{secrets.token_hex(5)}", amount=amount, currency="usd",
        subscription_id=f"sub_{secrets.token_hex(4)}",
        paid_at=int((when or utcnow()).timestamp()), partner_code=partner_code,
        charge_id=f"ch_{invoice_id}", shape="legacy"))


# -- the commission mail, through the queue, once per cause ------------------------------------

def test_a_commission_mail_arrives_once_even_when_the_provider_event_is_replayed(
        make_hub: Any, backend: str, smtp: SmtpServer) -> None:
    hub = mail_hub(make_hub, backend, smtp.url)
    partner = make_partner(hub, "crazycall", email="ann@partners.test", name="Ann")
    event = invoice_event(partner.code)
    stripe_process(hub, event)
    stripe_process(hub, event)  # the provider delivers it again
    queue_of(hub).join()
    earned = wait_for(lambda: smtp.inbox.to("ann@partners.test", "You earned"), what="the mail")
    time.sleep(0.2)
    assert len(smtp.inbox.to("ann@partners.test", "You earned")) == 1
    message = earned[0]
    assert str(message["Subject"]) == "You earned $9.80"
    text = body(message)
    assert "Hello Ann," in text and "http://hub.test/portal/transactions" in text
    html = message.get_body(("html",))
    assert html is not None and "<p>" in str(html.get_content())  # type: ignore[attr-defined]
    assert smtp.inbox.logins and set(smtp.inbox.logins) == {(SMTP_USER, SMTP_PASSWORD)}
    # The welcome mail came too (an active partner), and the rows say both were sent.
    assert smtp.inbox.to("ann@partners.test", "Welcome to the crazycall partner program")
    rows = mails(hub, "commission_earned")
    assert len(rows) == 1 and rows[0].status == "sent" and rows[0].context == {}
    with hub.sessions() as session:
        line_id = session.scalar(select(Commission.id))
    assert rows[0].key == f"commission:{line_id}"
    assert message["Message-ID"] == f"<{rows[0].id}@localhost>"


def test_the_batch_path_mails_each_new_commission_once(make_hub: Any, backend: str,
                                                       smtp: SmtpServer) -> None:
    hub = mail_hub(make_hub, backend, smtp.url)
    partner = make_partner(hub, "crazycall", email="bo@partners.test")
    events = [invoice_event(partner.code, 4900 + i * 100) for i in range(3)]
    for _ in range(2):  # the same three events twice: the second batch books nothing
        with hub.transaction() as session:
            apply_batch(hub, session, [prepare(hub, e) for e in events])
    queue_of(hub).join()
    wait_for(lambda: len(smtp.inbox.to("bo@partners.test", "You earned")) == 3, what="3 mails")
    assert len(mails(hub, "commission_earned")) == 3


def test_the_partner_can_turn_commission_mails_off(make_hub: Any, backend: str,
                                                   smtp: SmtpServer) -> None:
    hub = mail_hub(make_hub, backend, smtp.url)
    partner = make_partner(hub, "crazycall", email="cy@partners.test")
    give_password(hub, partner.id)
    with TestClient(create_app(hub)) as client:
        assert portal_login(client, "cy@partners.test").status_code in (200, 303)
        post_form(client, "/portal/settings", "/portal/settings", action="mail")  # unchecked
    with hub.sessions() as session:
        assert session.get(Partner, partner.id).mail_commissions is False  # type: ignore[union-attr]
    pay(hub, partner.code, 4900, currency="usd", when=utcnow())
    queue_of(hub).join()
    with hub.sessions() as session:
        assert session.scalar(select(Commission.id)) is not None
    assert mails(hub, "commission_earned") == []


def test_amounts_are_written_in_the_programs_locale(make_hub: Any) -> None:
    programs = {"crazycall": {"plugin": "crazycall", "currency": "EUR", "locale": "de"}}
    hub = make_hub("sqlite", programs=programs)
    partner = make_partner(hub, "crazycall")
    pay(hub, partner.code, 4900, currency="eur", when=utcnow())
    queue_of(hub).join()
    sent = wait_for(lambda: [m for m in mails(hub, "commission_earned") if m.status == "sent"],
                    what="the commission mail")
    assert sent[0].subject == "You earned 9,80\u00a0€"  # as the portal writes it


def test_an_old_commission_is_booked_without_a_mail(make_hub: Any) -> None:
    """A replayed export or a backfill is history, not news."""
    hub = make_hub("sqlite")
    partner = make_partner(hub, "crazycall")
    pay(hub, partner.code, 4900, currency="usd", when=utcnow() - notices.COMMISSION_NEWS * 2)
    with hub.sessions() as session:
        assert session.scalar(select(Commission.id)) is not None
    assert mails(hub, "commission_earned") == []


@pytest.mark.redis
def test_through_redis_and_a_worker_a_commission_mail_arrives_within_seconds(
        make_hub: Any, backend: str, smtp: SmtpServer) -> None:
    """`hub serve` only enqueues; a `hub worker` (a Dramatiq worker on the Redis broker) sends."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    namespace = f"hubtest-{secrets.token_hex(5)}"
    hub = make_hub(backend, email={"url": smtp.url},
                   queue={"url": REDIS_URL, "namespace": namespace, "min_backoff_ms": 50,
                          "max_backoff_ms": 200})
    worker = dramatiq.Worker(queue_of(hub).broker, worker_threads=2, worker_timeout=50)
    worker.start()
    try:
        partner = make_partner(hub, "crazycall", email="re@partners.test")
        started = time.monotonic()
        pay(hub, partner.code, 4900, currency="usd", when=utcnow())
        wait_for(lambda: smtp.inbox.to("re@partners.test", "You earned"), timeout=10,
                 what="the mail through Redis")
        assert time.monotonic() - started < 5
    finally:
        worker.stop(timeout=5_000)
        keys = list(client.scan_iter(f"{namespace}*"))
        if keys:
            client.delete(*keys)


# -- an outage delays, never loses -------------------------------------------------------------

def test_smtp_down_the_booking_succeeds_and_the_mail_goes_out_later(
        make_hub: Any, backend: str, caplog: Any) -> None:
    down = SmtpServer()  # its port is chosen, nothing listens yet
    hub = mail_hub(make_hub, backend, down.url)
    partner = make_partner(hub, "crazycall", email="di@partners.test")
    pay(hub, partner.code, 4900, currency="usd", when=utcnow())
    queue_of(hub).join()
    with hub.sessions() as session:
        assert session.scalar(select(Commission.amount)) == 980  # booked all the same
    waiting = mails(hub, "commission_earned")
    assert [m.status for m in waiting] == ["pending"] and waiting[0].attempts >= 1
    assert "ConnectionRefusedError" in (waiting[0].last_error or "")
    down.start()
    try:
        result = run_tick(hub, utcnow() + timedelta(hours=1))
        assert result["mail"]["resent"] == 2  # the welcome and the commission
        wait_for(lambda: down.inbox.to("di@partners.test", "You earned"), what="the late mail")
        assert [m.status for m in mails(hub)] == ["sent", "sent"]
        run_tick(hub, utcnow() + timedelta(hours=2))  # nothing pending: nothing sent again
        time.sleep(0.2)
        assert len(down.inbox.to("di@partners.test", "You earned")) == 1
    finally:
        down.stop()
    assert SMTP_PASSWORD not in caplog.text and QUOTED_PASSWORD not in caplog.text
    assert all(SMTP_PASSWORD not in (m.last_error or "") for m in mails(hub))


# -- TLS: STARTTLS and implicit, with the certificate checked ---------------------------------

@pytest.mark.parametrize("tls", ["starttls", "smtps"])
def test_tls_mail_checks_the_servers_certificate(make_hub: Any, tls: str, tmp_path: Path,
                                                 monkeypatch: Any) -> None:
    server = SmtpServer(tls=tls, tls_files=self_signed(tmp_path)).start()
    try:
        hub = mail_hub(make_hub, "sqlite", server.url)
        make_partner(hub, "crazycall", email="tl@partners.test")
        queue_of(hub).join()
        untrusted = mails(hub)
        assert [m.status for m in untrusted] == ["pending"]  # an unknown certificate: no mail
        assert "SSLCertVerificationError" in (untrusted[0].last_error or "")
        assert server.inbox.messages == [] and server.inbox.logins == []
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "smtp.pem"))  # now it is trusted
        run_tick(hub, utcnow() + timedelta(hours=1))
        wait_for(lambda: server.inbox.to("tl@partners.test", "Welcome"), what="the TLS mail")
        assert server.inbox.logins == [(SMTP_USER, SMTP_PASSWORD)]
    finally:
        server.stop()


# -- without a URL: .eml files -----------------------------------------------------------------

def test_without_a_url_mail_is_written_as_eml_files(make_hub: Any, backend: str,
                                                    tmp_path: Path) -> None:
    folder = tmp_path / "outbox"
    hub = make_hub(backend, email={"dir": str(folder), "from": "Partners <p@shop.test>"})
    partner = make_partner(hub, "crazycall", email="ed@partners.test")
    queue_of(hub).join()
    row = wait_for(lambda: [m for m in mails(hub) if m.status == "sent"], what="sent")[0]
    files = sorted(folder.glob("*.eml"))
    assert [f.name for f in files] == [f"{row.id}.eml"]
    message = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert str(message["To"]) == "ed@partners.test"
    assert str(message["From"]) == "Partners <p@shop.test>"
    assert message["Message-ID"] == f"<{row.id}@shop.test>"
    assert str(message["Subject"]) == "Welcome to the crazycall partner program"
    assert partner.code in body(message)  # type: ignore[arg-type]
    assert "http://hub.test/portal/forgot" in body(message)  # created without a password


# -- "Forgot password?" end to end -------------------------------------------------------------

def test_forgot_password_mails_a_link_that_sets_a_new_password(make_hub: Any, backend: str,
                                                               smtp: SmtpServer) -> None:
    hub = mail_hub(make_hub, backend, smtp.url)
    partner = make_partner(hub, "crazycall", email="Fay@Partners.test")
    give_password(hub, partner.id)
    with TestClient(create_app(hub)) as client:
        assert 'href="/portal/forgot"' in client.get("/portal/login").text
        neutral = post_form(client, "/portal/forgot", "/portal/forgot", email="nobody@x.test")
        known = post_form(client, "/portal/forgot", "/portal/forgot", email="fay@partners.test")
        assert neutral.status_code == known.status_code == 200
        assert "If an account uses that address" in neutral.text
        assert _message_of(neutral.text) == _message_of(known.text)
        again = post_form(client, "/portal/forgot", "/portal/forgot", email="fay@partners.test")
        assert _message_of(again.text) == _message_of(known.text)
        queue_of(hub).join()
        mail = wait_for(lambda: smtp.inbox.to("Fay@Partners.test", "Choose a new password"),
                        what="the reset mail")
        time.sleep(0.2)
        assert len(smtp.inbox.to("Fay@Partners.test", "Choose a new password")) == 1  # throttled
        assert not [m for m in smtp.inbox.messages if "nobody" in str(m["To"])]
        link = re.search(r"http://hub\.test(/portal/reset/\S+)", body(mail[0]))
        assert link, body(mail[0])
        page = client.get(link.group(1))
        assert "Choose a password" in page.text
        done = client.post(link.group(1), data={"csrf": csrf_of(page.text),
                                                "password": "a brand new secret",
                                                "password_again": "a brand new secret"},
                           follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"] == "/portal/login"
        assert "Link expired" in client.get(link.group(1)).text  # single use
        assert "wrong" in portal_login(client, "fay@partners.test", PASSWORD).text
        logged = portal_login(client, "fay@partners.test", "a brand new secret")
        assert logged.status_code == 200 and "Dashboard" in logged.text
    # The link is not kept once the mail is sent.
    assert all(m.context == {} for m in mails(hub, "password_reset"))


def _message_of(html: str) -> str:
    return re.sub(r'name="csrf" value="[^"]+"', "", html)


def test_self_sign_up_mails_a_verification_link(make_hub: Any, smtp: SmtpServer) -> None:
    programs = {"crazycall": {"plugin": "crazycall", "currency": "USD", "self_signup": True}}
    hub = make_hub("sqlite", programs=programs, email={"url": smtp.url})
    with TestClient(create_app(hub)) as client:
        post_form(client, "/portal/signup", "/portal/signup", program="crazycall",
                  email="gus@partners.test", name="Gus", password="long enough pw")
        queue_of(hub).join()
        mail = wait_for(lambda: smtp.inbox.to("gus@partners.test", "Confirm your e-mail"),
                        what="the verification mail")
        link = re.search(r"http://hub\.test(/portal/verify/\S+)", body(mail[0]))
        assert link
        # A verification link is no password link.
        token = link.group(1).rsplit("/", 1)[1]
        assert "Link expired" in client.get(f"/portal/reset/{token}").text
        assert "confirmed" in client.get(link.group(1)).text
        assert "Link expired" in client.get(link.group(1)).text
        welcome = smtp.inbox.to("gus@partners.test", "Welcome")
        assert len(welcome) == 1 and "No password yet" not in body(welcome[0])
    with hub.sessions() as session:
        partner = session.scalars(select(Partner)).one()
        assert partner.email_verified_at is not None


# -- the pieces --------------------------------------------------------------------------------

def test_queue_mail_writes_once_per_key_and_knows_its_templates(hub: Any) -> None:
    with hub.transaction() as session:
        assert queue_mail(session, template="declined", to="a@b.test", key="k1",
                          context={"name": "", "program": "p"})
        assert not queue_mail(session, template="declined", to="a@b.test", key="k1",
                              context={"name": "", "program": "p"})
        assert not queue_mail(session, template="declined", to="", key="k2", context={})
        with pytest.raises(ValueError):
            queue_mail(session, template="no_such_mail", to="a@b.test", key="k3", context={})
    assert len(mails(hub)) == 1


def test_one_send_job_takes_a_batch_and_a_retry_sends_only_what_is_left(
        make_hub: Any, backend: str) -> None:
    """A group commit queues its commission mails with one statement and one job message; an
    outage leaves the whole batch pending for the retry, and a mail sent once is not sent
    again by a later run of the same message."""
    down = SmtpServer()  # nothing listens on its port yet
    hub = mail_hub(make_hub, backend, down.url)
    context = {"name": "", "program": "p"}
    with hub.sessions() as session, session.begin():  # no after-commit send: we are the job
        assert queue_mails(session, [("declined", f"b{i}@b.test", f"batch:{i}", context)
                                     for i in range(3)]
                           + [("declined", "b0@b.test", "batch:0", context),  # repeated key
                              ("declined", "", "batch:none", context)]) == 3  # no address
        assert queue_mails(session, [("declined", "b0@b.test", "batch:0", context)]) == 0
    ids = [m.id for m in mails(hub)]
    assert len(ids) == 3
    with pytest.raises(TransientError):
        send(hub, *ids)
    assert [(m.status, m.attempts) for m in mails(hub)] == [("pending", 1)] * 3
    assert all("ConnectionRefusedError" in (m.last_error or "") for m in mails(hub))
    down.start()
    try:
        send(hub, ids[0])
        send(hub, *ids)  # the first went out already: only the other two are sent
        send(hub, *ids)  # a message delivered twice sends nothing
        assert sorted(str(m["To"]) for m in down.inbox.messages) == [
            "b0@b.test", "b1@b.test", "b2@b.test"]
    finally:
        down.stop()
    rows = mails(hub)
    assert [m.status for m in rows] == ["sent"] * 3 and all(m.context == {} for m in rows)
    assert all(m.sent_at is not None and m.subject and m.last_error is None for m in rows)


def test_of_two_runs_for_one_mail_only_one_takes_it(hub: Any) -> None:
    """A retry and `hub tick`'s re-send may come together: the first takes the mail (`sending`),
    the second finds it taken; a run that died while sending is taken over once it is stale."""
    with hub.sessions() as session, session.begin():  # no after-commit send: we are the runs
        queue_mail(session, template="declined", to="a@b.test", key="race",
                   context={"name": "", "program": "p"})
    [row] = mails(hub)
    stale = hub.config.queue.stale_seconds
    with hub.transaction() as session:
        assert _claim(session, row.id, stale)
    with hub.transaction() as session:
        assert not _claim(session, row.id, stale)
        assert session.get(Mail, row.id).status == "sending"  # type: ignore[union-attr]
    with hub.transaction() as session:
        assert _claim(session, row.id, 0)  # the first run died long ago


def test_every_template_renders_with_the_context_its_cause_gives() -> None:
    partner = {"name": "Ann", "program": "crazycall", "code": "abc", "email": "a@b.test",
               "partner_id": "prt_1", "has_password": False}
    payout = {"payout_id": "po_1", "amount": "$10.00", "method": "paypal", "receiver": "x@y.z",
              "reference": "r", "reason": "", "dead_letter": False}
    extra = {"token": "t", "expires": "2026-01-01 00:00 UTC", "active": True,
             "sentence": "20% of $49.00", "commission_id": "com_1", "amount": "$9.80",
             "new_payee": "n@y.z", "changed_at": "now", "website": "",
             "paypal_email": "p@y.z", "actor": "partner:prt_1", "billing_details": ""}
    for name in sorted(templates()):
        rendered = render(name, {**partner, **payout, **extra, "base_url": "http://h"})
        assert rendered.subject and "{{" not in rendered.text and "<html" in rendered.html
        assert "\n" not in rendered.subject


def test_payout_statuses_map_to_mails() -> None:
    assert notices.payout_template("requested", "queued") == "withdrawal_approved"
    assert notices.payout_template("requested", "approved") == "withdrawal_approved"
    assert notices.payout_template("requested", "rejected") == "withdrawal_rejected"
    assert notices.payout_template("failed", "rejected") == "payout_failed"
    assert notices.payout_template("queued", "sent") == "payout_sent"
    assert notices.payout_template("sent", "paid") == "payout_paid"
    assert notices.payout_template("sent", "returned") == "payout_returned"
    assert notices.payout_template("queued", "dry_run") is None


def test_smtp_urls() -> None:
    plain = smtp_target(f"smtp://u:{QUOTED_PASSWORD}@mail.test:2525?starttls=true")
    assert (plain.host, plain.port, plain.username, plain.password) == (
        "mail.test", 2525, "u", SMTP_PASSWORD)
    assert plain.starttls and not plain.implicit_tls and SMTP_PASSWORD not in repr(plain)
    implicit = smtp_target("smtps://u:p@mail.test")
    assert implicit.implicit_tls and implicit.port == 465 and not implicit.starttls
    assert smtp_target("smtp://mail.test").port == 25
    with pytest.raises(ValueError):
        smtp_target("http://mail.test")


def test_a_bad_email_url_stops_start_up_without_showing_it() -> None:
    with pytest.raises(StartupError) as refused:
        config_from_dict({"email": {"url": "http://user:hunter2-secret@mail.test"}})
    assert "[email]" in str(refused.value) and "hunter2" not in str(refused.value)
    config = config_from_dict({"email": {"url": "smtps://u:hunter2-secret@mail.test",
                                         "from": "P <p@shop.test>"}})
    assert config.email.sender == "P <p@shop.test>"
    assert "hunter2" not in repr(config)
