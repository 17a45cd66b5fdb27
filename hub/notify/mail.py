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

import json
import os
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jinja2
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from hub.clock import utcnow
from hub.config import EmailConfig
from hub.db.models import Mail, new_id
from hub.db.upsert import insert_ignore
from hub.errors import PermanentError, TransientError
from hub.runtime import Hub, send_after_commit

TEMPLATES = Path(__file__).parent / "templates"
_LOADER = jinja2.FileSystemLoader(TEMPLATES)
_TEXT = jinja2.Environment(loader=_LOADER, autoescape=False, undefined=jinja2.StrictUndefined,
                           keep_trailing_newline=True)
_HTML = jinja2.Environment(loader=_LOADER, autoescape=True, undefined=jinja2.StrictUndefined)
SEND_JOB = "mail.send"
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
    if not (TEMPLATES / f"{template}.txt").is_file():
        raise ValueError(f"no mail template {template!r}")  # a programming error, not a user's
    if not to:
        return False
    now, mail_id = utcnow(), new_id("ml")
    plain = json.loads(json.dumps(context, default=str))
    if not insert_ignore(session, Mail, dict(
            id=mail_id, key=key[:200], template=template, to_addr=to.strip()[:320],
            context=plain, status="pending", attempts=0, created_at=now, updated_at=now)):
        return False
    send_after_commit(session, SEND_JOB, mail_id)
    return True


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
    html_name = f"{template}.html" if (TEMPLATES / f"{template}.html").is_file() else "_layout.html"
    html = _HTML.get_template(html_name).render(
        context, subject=first.strip(), paragraphs=[p for p in text.split("\n\n") if p.strip()])
    return Rendered(subject=first.strip(), text=text, html=html)


def build_message(mail_id: str, to: str, rendered: Rendered, sender: str) -> EmailMessage:
    """The MIME message; its Message-ID is derived from the mail's id, so a mail sent twice
    after a crash is recognisable as one by the receiving side."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, rendered.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = f"<{mail_id}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


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


def send_smtp(target: SmtpTarget, message: EmailMessage, timeout: float) -> None:
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


def write_eml(directory: str, mail_id: str, message: EmailMessage) -> Path:
    """`<dir>/<mail id>.eml`, written whole or not at all (a reader never sees half a mail)."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{mail_id}.eml"
    partial = folder / f".{mail_id}.eml.part"
    partial.write_bytes(message.as_bytes())
    os.replace(partial, path)
    return path


def transmit(conf: EmailConfig, mail_id: str, message: EmailMessage) -> None:
    """Hand `message` to the SMTP server of `[email] url`, or write it under `[email] dir`."""
    url = getattr(conf.url, "value", conf.url)
    if url:
        send_smtp(smtp_target(url), message, conf.timeout_seconds)
    else:
        write_eml(conf.dir, mail_id, message)


def send(hub: Hub, mail_id: str) -> None:
    """The `mail.send` job: render and send one pending mail. Network errors and SMTP refusals
    are retried with backoff; an address the server refuses or a broken template is final."""
    with hub.transaction() as session:
        mail = session.get(Mail, mail_id)
        if mail is None or not _claim(session, mail_id, hub.config.queue.stale_seconds):
            return
        template, to, context = mail.template, mail.to_addr, dict(mail.context or {})
    conf = hub.config.email
    try:
        rendered = render(template, {**context, "base_url": hub.config.server.base_url.rstrip("/")})
        transmit(conf, mail_id, build_message(mail_id, to, rendered, conf.sender))
    except smtplib.SMTPRecipientsRefused as exc:
        _record(hub, mail_id, error=_described(exc, conf), final=True)
        raise PermanentError(f"mail {mail_id}: the server refused the address") from None
    except jinja2.TemplateError as exc:
        _record(hub, mail_id, error=f"template {template}: {exc}", final=True)
        raise PermanentError(f"mail {mail_id}: template {template} failed") from None
    except SMTP_ERRORS as exc:
        _record(hub, mail_id, error=_described(exc, conf))
        raise TransientError(f"mail {mail_id}: {type(exc).__name__}") from None
    _record(hub, mail_id, subject=rendered.subject)


def _claim(session: Session, mail_id: str, stale_seconds: int) -> bool:
    """Take a pending mail for this run (`sending`), so a retry and `hub tick`'s re-send never
    both send it. A run that died while sending leaves it `sending`; after `[queue]
    stale_seconds` it may be taken again."""
    now = utcnow()
    taken = session.execute(update(Mail).where(Mail.id == mail_id, or_(
        Mail.status == "pending",
        and_(Mail.status == "sending", Mail.updated_at < now - timedelta(seconds=stale_seconds))))
        .values(status="sending", updated_at=now))
    return taken.rowcount == 1  # type: ignore[attr-defined]


def _described(exc: BaseException, conf: EmailConfig) -> str:
    """The error for the mail's log: its type and message, never the SMTP password."""
    text = f"{type(exc).__name__}: {exc}"
    url = getattr(conf.url, "value", conf.url)
    password = urlsplit(url).password if url else None
    for secret in filter(None, (password, unquote(password or ""))):
        text = text.replace(secret, "***")
    return text[:500]


def _record(hub: Hub, mail_id: str, *, error: str | None = None, subject: str | None = None,
            final: bool = False) -> None:
    with hub.transaction() as session:
        mail = session.get(Mail, mail_id)
        if mail is None or mail.status == "sent":
            return
        now = utcnow()
        mail.attempts += 1
        mail.last_error, mail.updated_at = error, now
        if error is None:
            # Sent: keep who, what and when; drop the context, which may hold a one-time link.
            mail.status, mail.sent_at, mail.subject, mail.context = "sent", now, subject, {}
        else:
            mail.status = "failed" if final else "pending"


def dead_letter(hub: Hub, message: dict[str, Any], retry_info: dict[str, Any]) -> None:
    """Retries ran out (a long SMTP outage): the mail stays `pending` with its last error, and
    every `hub tick` tries it again, so an outage delays mail but never loses it."""
    mail_id = (message.get("args") or [None])[0]
    with hub.transaction() as session:
        mail = session.get(Mail, mail_id) if mail_id else None
        if mail is not None and mail.status == "pending":
            mail.updated_at = utcnow()


def stale_mails(session: Session, before: datetime) -> list[str]:
    """Pending mails untouched since `before` (their message was lost or is waiting out a
    backoff that died with its process), and mails whose sending run died: `hub tick` sends
    them again."""
    return list(session.scalars(select(Mail.id).where(
        Mail.status.in_(("pending", "sending")), Mail.updated_at < before)
        .order_by(Mail.created_at)))
