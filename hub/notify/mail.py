"""E-mail: written with its cause, sent by the queue after the commit.

`queue_mail` writes one `mails` row in the caller's transaction, unique on a `key` that names the
cause (``commission:<line id>``, ``payout:<id>:paid``...), so a replayed provider event or a second
click mails once; the `mail.send` job renders and sends it once the transaction has committed,
retrying with backoff like a webhook delivery, and `hub tick` re-sends rows left pending. An
SMTP outage therefore delays mail and never fails or loses the change that caused it.

Transport (`[email]`): ``smtp://user:pass@host:port`` (``?starttls=true`` to upgrade the
connection) or ``smtps://`` for implicit TLS, through the standard library's `smtplib`; without a
URL each mail is written as ``<mail id>.eml`` under `[email] dir`. Templates are Jinja files in
`hub/notify/templates/`: ``<name>.txt`` (first line the subject, then a blank line, then the
text) and, optionally, ``<name>.html`` (the HTML alternative; else the text in the house layout).
"""

from __future__ import annotations

import functools
import json
import os
import smtplib
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import formataddr, formatdate, parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jinja2
from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from hub.clock import utcnow
from hub.config import EmailConfig
from hub.db.models import Mail, new_id
from hub.db.upsert import insert_ignore, insert_ignore_many
from hub.errors import PermanentError, TransientError
from hub.runtime import Hub, send_after_commit

TEMPLATES = Path(__file__).parent / "templates"
_LOADER = jinja2.FileSystemLoader(TEMPLATES)
# The templates ship with the code: no check of their files' times on every mail.
_TEXT = jinja2.Environment(loader=_LOADER, autoescape=False, undefined=jinja2.StrictUndefined,
                           keep_trailing_newline=True, auto_reload=False)
_HTML = jinja2.Environment(loader=_LOADER, autoescape=True, undefined=jinja2.StrictUndefined,
                           auto_reload=False)
SEND_JOB = "mail.send"
# Mails a `mail.send` message carries at most (a batch of commissions, a tick's re-send).
SEND_BATCH = 50
# What an SMTP server or the network may answer; anything else is a bug and is raised.
SMTP_ERRORS = (OSError, smtplib.SMTPException)


def templates() -> set[str]:
    """The names `queue_mail` accepts (one ``<name>.txt`` each)."""
    return {p.stem for p in TEMPLATES.glob("*.txt") if not p.stem.startswith("_")}


def queue_mail(session: Session, *, template: str, to: str, key: str,
               context: dict[str, Any]) -> bool:
    """Write the mail `template` to `to` in this transaction, to be sent after the commit.

    `key` names the cause: a second call with the same key writes nothing and returns False.
    `context` is what the template reads; it is stored as JSON (values it cannot hold become
    strings), so pass plain values, not rows. No address, no mail (False)."""
    row = _mail_row(template, to, key, context, utcnow())
    if row is None or not insert_ignore(session, Mail, row):
        return False
    send_after_commit(session, SEND_JOB, row["id"])
    return True


def queue_mails(session: Session, mails: Iterable[tuple[str, str, str, dict[str, Any]]]) -> int:
    """`queue_mail` for many (template, to, key, context) at once: one statement, and one job
    message per `SEND_BATCH` new mails (a group commit books a commission per webhook, and a
    statement plus a job per mail cost more than the booking). How many were new."""
    rows = mail_rows(mails)
    return send_queued(session, rows, insert_ignore_many(session, Mail, rows, ("key",)))


def mail_rows(mails: Iterable[tuple[str, str, str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The `mails` rows `queue_mails` inserts, in key order (for a caller that writes them with
    other statements: `ignore_many(session, Mail, rows, ("key",))`, then `send_queued`)."""
    now = utcnow()
    rows: dict[str, dict[str, Any]] = {}
    for template, to, key, context in mails:
        row = _mail_row(template, to, key, context, now)
        if row is not None:
            rows.setdefault(row["key"], row)
    return [rows[k] for k in sorted(rows)]


def send_queued(session: Session, rows: list[dict[str, Any]], inserted: dict[Any, Any]) -> int:
    """Queue the sending of the `rows` their insert stored (`inserted`: what `ignored_many`
    read of it): one job message per `SEND_BATCH` once the transaction commits."""
    ids = [inserted[(row["key"],)] for row in rows if (row["key"],) in inserted]
    for start in range(0, len(ids), SEND_BATCH):
        send_after_commit(session, SEND_JOB, *ids[start:start + SEND_BATCH])
    return len(ids)


def _mail_row(template: str, to: str, key: str, context: dict[str, Any],
              now: datetime) -> dict[str, Any] | None:
    if template not in _template_names():
        raise ValueError(f"no mail template {template!r}")  # a programming error, not a user's
    if not to:
        return None
    return dict(id=new_id("ml"), key=key[:200], template=template, to_addr=to.strip()[:320],
                context=json.loads(json.dumps(context, default=str)), status="pending",
                attempts=0, created_at=now, updated_at=now)


@functools.cache
def _html_template(template: str) -> str:
    """The template's own HTML, else the house layout."""
    return f"{template}.html" if (TEMPLATES / f"{template}.html").is_file() else "_layout.html"


@functools.cache
def _template_names() -> frozenset[str]:
    """The templates, read once (they ship with the code): no file check per mail."""
    return frozenset(templates())


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def render(template: str, context: dict[str, Any]) -> Rendered:
    """Subject, text and HTML of `template` for `context` (StrictUndefined: a missing value is
    an error here, not an empty gap in a partner's mail)."""
    first, _, body = _TEXT.get_template(f"{template}.txt").render(context).partition("\n")
    text = body.lstrip("\n")
    html_name = _html_template(template)
    html = _HTML.get_template(html_name).render(
        context, subject=first.strip(), paragraphs=[p for p in text.split("\n\n") if p.strip()])
    return Rendered(subject=first.strip(), text=text, html=html)


def build_message(mail_id: str, to: str, rendered: Rendered, sender: str) -> Message:
    """The MIME message (text and HTML alternatives, UTF-8 quoted-printable); its Message-ID is
    derived from the mail's id, so a mail sent twice after a crash is recognisable as one by the
    receiving side. Built with the `email.mime` classes: `EmailMessage` parses every header it
    is given and weighs two transfer encodings per part, a millisecond of CPU per mail, more
    than a webhook's whole ingest."""
    if any("\r" in value or "\n" in value for value in (to, sender, rendered.subject)):
        # As `EmailMessage` refused them: a line break in a header would start another header.
        raise ValueError("a mail header must be one line")
    name, address = parseaddr(sender)
    domain = address.rpartition("@")[2] or "localhost"
    message = MIMEMultipart("alternative", policy=_LONG_LINES)
    message["From"] = formataddr((name, address), charset="utf-8") if address else sender
    message["To"] = to
    message["Subject"] = (rendered.subject if rendered.subject.isascii()
                          else Header(rendered.subject, "utf-8", header_name="Subject"))  # type: ignore[assignment]
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = f"<{mail_id}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"
    message.attach(MIMEText(rendered.text, "plain", _UTF8))  # type: ignore[arg-type]
    message.attach(MIMEText(rendered.html, "html", _UTF8))  # type: ignore[arg-type]
    return message


# Headers fold only where SMTP needs it (a 78-character fold put a line break before a long
# unbroken subject, which a reader shows as a leading space).
_LONG_LINES = compat32.clone(max_line_length=998)
_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP  # readable in a .eml file; base64 is the module's default for UTF-8


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    username: str
    password: str
    implicit_tls: bool
    starttls: bool

    def __repr__(self) -> str:  # never the password, in a log line or a traceback
        return f"SmtpTarget({self.host}:{self.port}, tls={self.implicit_tls or self.starttls})"


def smtp_target(url: str) -> SmtpTarget:
    """``smtp://user:pass@host:port?starttls=true`` or ``smtps://...`` (user and password
    percent-encoded if they hold ``@`` or ``:``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("[email] url must look like smtp://user:pass@host:port or smtps://...")
    implicit = parts.scheme == "smtps"
    flag = parse_qs(parts.query).get("starttls", ["false"])[0].lower()
    return SmtpTarget(host=parts.hostname, port=parts.port or (465 if implicit else 25),
                      username=unquote(parts.username or ""),
                      password=unquote(parts.password or ""), implicit_tls=implicit,
                      starttls=not implicit and flag in ("1", "true", "yes"))


def send_smtp(target: SmtpTarget, message: Message, timeout: float) -> None:
    context = ssl.create_default_context()
    smtp: smtplib.SMTP = (
        smtplib.SMTP_SSL(target.host, target.port, timeout=timeout, context=context)
        if target.implicit_tls else smtplib.SMTP(target.host, target.port, timeout=timeout))
    with smtp:
        if target.starttls:
            smtp.starttls(context=context)
        if target.username:
            smtp.login(target.username, target.password)
        smtp.send_message(message)


def write_eml(directory: str, mail_id: str, message: Message) -> Path:
    """`<dir>/<mail id>.eml`, written whole or not at all (a reader never sees half a mail)."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{mail_id}.eml"
    partial = folder / f".{mail_id}.eml.part"
    partial.write_bytes(message.as_bytes())
    os.replace(partial, path)
    return path


def transmit(conf: EmailConfig, mail_id: str, message: Message) -> None:
    """Hand `message` to the SMTP server of `[email] url`, or write it under `[email] dir`."""
    url = getattr(conf.url, "value", conf.url)
    if url:
        send_smtp(smtp_target(url), message, conf.timeout_seconds)
    else:
        write_eml(conf.dir, mail_id, message)


def send(hub: Hub, *mail_ids: str) -> None:
    """The `mail.send` job: render and send pending mails (one, or a batch's). Network errors
    and SMTP refusals are retried with backoff; an address the server refuses or a broken
    template is final. A retry takes only what is still pending, so a mail of a batch that went
    out is not sent again."""
    with hub.transaction() as session:
        claimed = _claim_many(session, list(mail_ids), hub.config.queue.stale_seconds)
    conf = hub.config.email
    base_url = hub.config.server.base_url.rstrip("/")
    sent: list[tuple[str, str]] = []
    failed: list[tuple[str, str, bool]] = []
    problem: Exception | None = None
    for index, (mail_id, template, to, context) in enumerate(claimed):
        try:
            rendered = render(template, {**context, "base_url": base_url})
            transmit(conf, mail_id, build_message(mail_id, to, rendered, conf.sender))
        except smtplib.SMTPRecipientsRefused as exc:
            failed.append((mail_id, _described(exc, conf), True))
            problem = problem or PermanentError(
                f"mail {mail_id}: the server refused the address")
        except jinja2.TemplateError as exc:
            failed.append((mail_id, f"template {template}: {exc}", True))
            problem = problem or PermanentError(f"mail {mail_id}: template {template} failed")
        except SMTP_ERRORS as exc:
            # The server is unreachable or refusing: the rest of the batch waits for the retry.
            error = _described(exc, conf)
            failed.extend((left[0], error, False) for left in claimed[index:])
            problem = TransientError(f"mail {mail_id}: {type(exc).__name__}")
            break
        else:
            sent.append((mail_id, rendered.subject))
    _record_many(hub, sent, failed)
    if problem is not None:
        raise problem from None


def _claim(session: Session, mail_id: str, stale_seconds: int) -> bool:
    """Take a pending mail for this run (`sending`), so a retry and `hub tick`'s re-send never
    both send it. A run that died while sending leaves it `sending`; after `[queue]
    stale_seconds` it may be taken again."""
    return bool(_claim_many(session, [mail_id], stale_seconds))


def _claim_many(session: Session, mail_ids: list[str], stale_seconds: int
                ) -> list[tuple[str, str, str, dict[str, Any]]]:
    """`_claim` for many mails with one statement: (id, template, to, context) of those taken,
    in the order of `mail_ids`."""
    if not mail_ids:
        return []
    now = utcnow()
    rows = session.execute(update(Mail).where(Mail.id.in_(mail_ids), or_(
        Mail.status == "pending",
        and_(Mail.status == "sending", Mail.updated_at < now - timedelta(seconds=stale_seconds))))
        .values(status="sending", updated_at=now)
        .returning(Mail.id, Mail.template, Mail.to_addr, Mail.context),
        execution_options={"synchronize_session": False}).all()
    taken = {row[0]: (row[0], row[1], row[2], dict(row[3] or {})) for row in rows}
    return [taken[i] for i in dict.fromkeys(mail_ids) if i in taken]


def _described(exc: BaseException, conf: EmailConfig) -> str:
    """The error for the mail's log: its type and message, never the SMTP password."""
    text = f"{type(exc).__name__}: {exc}"
    url = getattr(conf.url, "value", conf.url)
    password = urlsplit(url).password if url else None
    for secret in filter(None, (password, unquote(password or ""))):
        text = text.replace(secret, "***")
    return text[:500]


def _record_many(hub: Hub, sent: list[tuple[str, str]],
                 failed: list[tuple[str, str, bool]]) -> None:
    """After a sending run, in one transaction: (id, subject) of the mails sent, (id, error,
    final) of those that failed."""
    if not sent and not failed:
        return
    table: Any = Mail.__table__
    with hub.transaction() as session:
        now = utcnow()
        if sent:
            # Sent: keep who, what and when; drop the context, which may hold a one-time link.
            session.execute(update(table).where(table.c.id == bindparam("mail_id"),
                                                table.c.status != "sent")
                            .values(status="sent", sent_at=now, updated_at=now,
                                    subject=bindparam("sent_subject"), context={},
                                    last_error=None, attempts=table.c.attempts + 1),
                            [{"mail_id": i, "sent_subject": subject} for i, subject in sent])
        if failed:
            session.execute(update(table).where(table.c.id == bindparam("mail_id"),
                                                table.c.status != "sent")
                            .values(status=bindparam("new_status"), updated_at=now,
                                    last_error=bindparam("error"), attempts=table.c.attempts + 1),
                            [{"mail_id": i, "error": error,
                              "new_status": "failed" if final else "pending"}
                             for i, error, final in failed])


def dead_letter(hub: Hub, message: dict[str, Any], retry_info: dict[str, Any]) -> None:
    """Retries ran out (a long SMTP outage): the mail stays `pending` with its last error, and
    every `hub tick` tries it again, so an outage delays mail but never loses it."""
    mail_ids = [i for i in message.get("args") or [] if i]
    if not mail_ids:
        return
    with hub.transaction() as session:
        session.execute(update(Mail).where(Mail.id.in_(mail_ids), Mail.status == "pending")
                        .values(updated_at=utcnow()),
                        execution_options={"synchronize_session": False})


def stale_mails(session: Session, before: datetime) -> list[str]:
    """Pending mails untouched since `before` (their message was lost or is waiting out a
    backoff that died with its process), and mails whose sending run died: `hub tick` sends
    them again."""
    return list(session.scalars(select(Mail.id).where(
        Mail.status.in_(("pending", "sending")), Mail.updated_at < before)
        .order_by(Mail.created_at)))
