"""Clicks: recorded server-side by `GET /r/{code}`, counted once per visitor per link per 30
days, remembered in a signed first-party cookie, and matched to signups within the program's
cookie window.

A visitor is the id in the hub's cookie when it carries a valid one, else a keyed hash of IP and
user agent (HMAC with `[server] secret_key`); the raw IP is never stored. The first click of a
visitor gets the hash as its id and the cookie keeps it, so later clicks match even when the
IP changes. Bots, by user agent, are neither recorded nor given a cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub.attribution.links import find_link
from hub.db.models import Click, Link, LinkVisitor, Partner
from hub.db.upsert import insert_ignore
from hub.runtime import Hub

UNIQUE_WINDOW = timedelta(days=30)
BOT_RE = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|preview|facebookexternalhit|embedly|curl/|wget/|python-|"
    r"httpclient|headless|lighthouse|pingdom|uptime|monitor|java/|go-http|okhttp|libwww|"
    r"axios/|node-fetch|scrapy|feedfetcher|mediapartners", re.IGNORECASE)


def is_bot(user_agent: str) -> bool:
    """Crawlers, link previewers, monitors and HTTP libraries; an empty agent counts as one."""
    return not user_agent.strip() or BOT_RE.search(user_agent) is not None


def _key(hub: Hub) -> bytes:
    """The server secret; without one, a per-process key (cookies then last one process)."""
    secret = str(hub.config.server.secret_key)
    if secret:
        return secret.encode()
    return hub.extras.setdefault("click_key", secrets.token_bytes(32))  # type: ignore[no-any-return]


def visitor_hash(hub: Hub, ip: str, user_agent: str) -> str:
    mac = hmac.new(_key(hub), f"visitor\n{ip}\n{user_agent}".encode(), hashlib.sha256)
    return "h" + mac.hexdigest()[:40]


def sign_cookie(hub: Hub, click_id: str, visitor: str) -> str:
    """``<click id>.<visitor>.<mac>``: the product may read the click id from the first part."""
    mac = hmac.new(_key(hub), f"cookie\n{click_id}\n{visitor}".encode(), hashlib.sha256)
    return f"{click_id}.{visitor}.{mac.hexdigest()[:32]}"


def read_cookie(hub: Hub, value: str | None) -> tuple[str, str] | None:
    """(click id, visitor) from a cookie the hub signed; None for anything else."""
    parts = (value or "").split(".")
    if len(parts) != 3:
        return None
    expected = sign_cookie(hub, parts[0], parts[1])
    return (parts[0], parts[1]) if hmac.compare_digest(expected, value or "") else None


def new_click_id() -> str:
    return f"clk_{secrets.token_hex(12)}"


def _first_in_window(session: Session, link_code: str, visitor: str, at: datetime) -> bool:
    """True when this is the visitor's first click on the link in the last 30 days; it then
    starts a new window. The row lock makes two racing clicks count once."""
    if insert_ignore(session, LinkVisitor, dict(link_code=link_code, visitor=visitor,
                                                window_start=at)):
        return True
    stmt = select(LinkVisitor).where(LinkVisitor.link_code == link_code,
                                     LinkVisitor.visitor == visitor)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = session.scalars(stmt).one()
    if at - row.window_start < UNIQUE_WINDOW:
        return False
    session.execute(update(LinkVisitor).where(LinkVisitor.id == row.id).values(window_start=at))
    return True


def record_click(session: Session, link: Link, visitor: str, at: datetime) -> Click:
    source = "widget" if link.kind == "widget" else "link"
    click = Click(id=new_click_id(), link_code=link.code, partner_id=link.partner_id,
                  program=link.program, source=source, visitor=visitor,
                  is_unique=_first_in_window(session, link.code, visitor, at), clicked_at=at,
                  day=at.date().isoformat())
    session.add(click)
    session.flush()
    return click


def within_window(clicked_at: datetime, signed_up_at: datetime, cookie_days: int) -> bool:
    """A signup is credited to a click up to `cookie_days` days after it (day 90 of a 90-day
    window credits, day 91 does not)."""
    return signed_up_at - clicked_at <= timedelta(days=cookie_days)


@dataclass(frozen=True)
class SignupClaim:
    partner: Partner
    source: str
    click_id: str | None
    link_code: str | None


def claim_for_signup(hub: Hub, session: Session, *, click_id: str | None, code: str | None,
                     at: datetime) -> SignupClaim | None:
    """Which partner a signup belongs to. A known click decides alone (outside its window: no
    one); an unknown click id falls back to the code, a partner or link code."""
    click = session.get(Click, click_id) if click_id else None
    if click is not None:
        program = hub.program(click.program)
        if program is None or not within_window(click.clicked_at, at, program.settings.cookie_days):
            return None
        partner = session.get(Partner, click.partner_id)
        return SignupClaim(partner, click.source, click.id, click.link_code) if partner else None
    found = find_link(session, code.strip()) if code else None
    if found is None:
        return None
    link, partner = found
    source = "widget" if link is not None and link.kind == "widget" else "code"
    return SignupClaim(partner, source, None, link.code if link is not None else partner.code)
