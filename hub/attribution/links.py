"""Referral links: the builder, the redirect target, the embed code and per-link performance.

Every partner has a default link whose code is its partner code (its row is created on first
use); the builder adds custom links (destination, trial length, creative, sub-id), and a partner
may have one `widget` link: the "by <product>" link under its own installed widget, whose clicks
and signups carry source ``widget``. Link and partner codes share one namespace.
"""

from __future__ import annotations

import html
import secrets
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from hub.clock import utcnow
from hub.config import Config
from hub.db.models import Click, Link, Partner, PaymentRecord, Referral
from hub.db.upsert import insert_ignore
from hub.errors import Unprocessable
from hub.programs import Program

CREATIVES = ("plain", "banner", "logo", "screenshot", "text")
# Query parameters the redirect adds for the product; existing ones of the same name are replaced.
PARAM_CODE, PARAM_CLICK, PARAM_TRIAL = "ref", "click_id", "trial_days"


def clean_destination(url: str, domains: tuple[str, ...]) -> str | None:
    """`url` when it is an absolute http(s) URL on an allowed domain (or a subdomain of one);
    None for anything else, including tricks aimed at an open redirect or header injection."""
    if not url or len(url) > 2000 or any(c.isspace() or ord(c) < 32 or c == "\\" for c in url):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return None
    host = parts.hostname.rstrip(".").lower()
    allowed = {d.strip().lower().lstrip(".") for d in domains if d.strip()}
    return url if any(host == d or host.endswith("." + d) for d in allowed) else None


def default_landing(config: Config) -> str:
    """Where unknown codes and empty destinations go: `[server] default_landing`, else the root
    of the first allowed domain, else the hub itself."""
    server = config.server
    if server.default_landing:
        return server.default_landing
    if server.allowed_domains:
        return f"https://{server.allowed_domains[0].lstrip('.')}/"
    return server.base_url.rstrip("/") + "/"


def program_landing(config: Config, program: Program | None) -> str:
    """Where the program's links without a destination land: its `default_landing`, else the
    server's (`default_landing`)."""
    own = getattr(program.settings, "default_landing", "") if program is not None else ""
    return str(own) if own else default_landing(config)


def trial_choices(program: Program) -> tuple[int, ...]:
    """The program's allowed trial lengths (its `trial_days` setting)."""
    return tuple(program.settings.trial_days)


def default_trial(program: Program | None) -> int | None:
    """The trial length the partner's default link passes on: the first of the program's
    `trial_days` (CrazyCall's standard 14 days); None when that is 0 (no trial)."""
    return (trial_choices(program)[0] or None) if program is not None else None


def share_url(config: Config, code: str) -> str:
    return f"{config.server.base_url.rstrip('/')}/r/{code}"


def redirect_target(config: Config, link: Link, partner: Partner, click_id: str | None,
                    program: Program | None = None) -> str:
    """The link's destination (re-checked against today's allowed domains), else the program's
    landing page, with the referral code, click id and trial length added as query
    parameters. A default link has no trial of its own: it passes on the program's default one
    (`default_trial`)."""
    base = link.destination and clean_destination(link.destination, config.server.allowed_domains)
    params = {PARAM_CODE: partner.code}
    if click_id:
        params[PARAM_CLICK] = click_id
    trial = link.trial_days or (default_trial(program) if link.kind == "default" else None)
    if trial:
        params[PARAM_TRIAL] = str(trial)
    return with_params(base or program_landing(config, program), params)


def with_params(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    return urlunsplit(parts._replace(query=urlencode(kept + list(params.items()))))


def embed_html(config: Config, link: Link, url: str) -> str:
    """The HTML a partner pastes: a text link, an image link, or a ready-made paragraph."""
    texts = config.links
    href = html.escape(url, quote=True)
    if link.creative == "text":
        return f'<p>{html.escape(texts.ready_text)} <a href="{href}">{href}</a></p>'
    if link.creative == "plain":
        return f'<a href="{href}">{html.escape(texts.link_text)}</a>'
    image = html.escape(getattr(texts, f"{link.creative}_url"), quote=True)
    alt = html.escape(texts.link_text, quote=True)
    return f'<a href="{href}"><img src="{image}" alt="{alt}"></a>'


def new_link_code(session: Session) -> str:
    """A fresh code that is neither a link's nor a partner's (they share /r/{code})."""
    alphabet = "bcdfghjkmnpqrstvwxz23456789"
    while True:
        code = "".join(secrets.choice(alphabet) for _ in range(10))
        taken = session.scalar(select(Link.id).where(Link.code == code)) or \
            session.scalar(select(Partner.id).where(Partner.code == code))
        if not taken:
            return code


def build_link(config: Config, program: Program, session: Session, partner: Partner, *,
               destination: str | None, trial_days: int | None, creative: str,
               description: str) -> Link:
    """A custom link from the builder; 422 for a destination outside the allowed domains, a
    trial length the program does not offer, an unknown creative or one with no image."""
    domains = config.server.allowed_domains
    if destination and not domains:
        raise Unprocessable("no destination is allowed yet: the operator sets the site's domain "
                            "in [server] allowed_domains (e.g. [\"example.com\"])",
                            code="destination_not_allowed")
    if destination and clean_destination(destination, domains) is None:
        raise Unprocessable("destination must be an http(s) URL on one of the allowed domains ("
                            f"{', '.join(domains)}; [server] allowed_domains)",
                            code="destination_not_allowed")
    choices = trial_choices(program)
    trial = choices[0] if trial_days is None else trial_days
    if trial not in choices:
        raise Unprocessable(f"trial_days must be one of {', '.join(map(str, choices))}",
                            code="invalid_trial")
    _check_creative(config, creative)
    if len(description) > 200:
        raise Unprocessable("description is at most 200 characters", code="invalid_field")
    link = Link(code=new_link_code(session), partner_id=partner.id, program=partner.program,
                kind="custom", destination=destination or None, trial_days=trial,
                creative=creative, description=description, created_at=utcnow())
    session.add(link)
    session.flush()
    return link


def _check_creative(config: Config, creative: str) -> None:
    if creative not in CREATIVES:
        raise Unprocessable(f"creative must be one of {', '.join(CREATIVES)}",
                            code="invalid_creative")
    image_needed = creative in ("banner", "logo", "screenshot")
    if image_needed and not getattr(config.links, f"{creative}_url"):
        raise Unprocessable(f"no image configured for the {creative} creative "
                            f"([links] {creative}_url)", code="invalid_creative")


def default_link(session: Session, partner: Partner) -> Link:
    """The partner's default link (code = partner code), created on first use."""
    insert_ignore(session, Link, dict(id=f"lnk_{secrets.token_hex(8)}", code=partner.code,
                                      partner_id=partner.id, program=partner.program,
                                      kind="default", creative="plain", description="",
                                      created_at=utcnow()))
    return session.scalars(select(Link).where(Link.code == partner.code)).one()


def widget_link(session: Session, partner: Partner) -> tuple[Link, bool]:
    """The partner's one widget link and whether this call created it (a race keeps one)."""
    created = insert_ignore(session, Link, dict(
        id=f"lnk_{secrets.token_hex(8)}", code=new_link_code(session), partner_id=partner.id,
        program=partner.program, kind="widget", creative="plain", description="widget",
        created_at=utcnow()))
    return session.scalars(select(Link).where(Link.partner_id == partner.id,
                                              Link.kind == "widget")).one(), created


def find_link(session: Session, code: str) -> tuple[Link | None, Partner] | None:
    """The link and partner behind a code: a partner code (its default link, which may not
    exist yet) or a link code. None when nobody has it."""
    if not code or len(code) > 64:
        return None
    partner = session.scalars(select(Partner).where(Partner.code == code)).first()
    if partner is not None:
        link = session.scalars(select(Link).where(Link.code == code)).first()
        return link, partner
    link = session.scalars(select(Link).where(Link.code == code)).first()
    if link is None:
        return None
    return link, session.get(Partner, link.partner_id)  # type: ignore[return-value]


def links_of(session: Session, partner_id: str) -> list[Link]:
    return list(session.scalars(select(Link).where(Link.partner_id == partner_id)
                                .order_by(Link.created_at, Link.code)))


def link_json(config: Config, link: Link, **extra: Any) -> dict[str, Any]:
    url = share_url(config, link.code)
    return {"id": link.id, "code": link.code, "url": url, "html": embed_html(config, link, url),
            "kind": link.kind, "partner_id": link.partner_id, "destination": link.destination,
            "trial_days": link.trial_days, "creative": link.creative,
            "description": link.description, "created_at": link.created_at.isoformat(), **extra}


def _day_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    return (datetime.combine(start, time(), UTC),
            datetime.combine(end + timedelta(days=1), time(), UTC))


def performance(session: Session, partner_id: str, start: date,
                end: date) -> dict[str, dict[str, int]]:
    """Per link code, over [start, end] (UTC days): clicks, unique clicks, signups (trials) and
    subscriptions (referred customers whose first payment fell in the range)."""
    codes = list(session.scalars(select(Link.code).where(Link.partner_id == partner_id)))
    stats = {c: {"clicks": 0, "unique_clicks": 0, "signups": 0, "subscriptions": 0} for c in codes}
    if not codes:
        return stats
    for code, total, unique in session.execute(
            select(Click.link_code, func.count(), func.sum(case((Click.is_unique, 1), else_=0)))
            .where(Click.link_code.in_(codes), Click.day >= start.isoformat(),
                   Click.day <= end.isoformat()).group_by(Click.link_code)):
        stats[code].update(clicks=int(total), unique_clicks=int(unique or 0))
    lo, hi = _day_bounds(start, end)
    for code, count in session.execute(
            select(Referral.link_code, func.count()).where(
                Referral.link_code.in_(codes), Referral.attributed_at >= lo,
                Referral.attributed_at < hi).group_by(Referral.link_code)):
        stats[str(code)]["signups"] = int(count)
    for code, count in session.execute(_subscriptions_query(codes, lo, hi)):
        stats[str(code)]["subscriptions"] = int(count)
    return stats


def _subscriptions_query(codes: list[str], lo: datetime, hi: datetime) -> Any:
    referred = select(Referral.customer_id).where(Referral.link_code.in_(codes))
    first = (select(PaymentRecord.customer_id, func.min(PaymentRecord.occurred_at).label("first"))
             .where(PaymentRecord.customer_id.in_(referred))
             .group_by(PaymentRecord.customer_id).subquery())
    return (select(Referral.link_code, func.count())
            .join(first, first.c.customer_id == Referral.customer_id)
            .where(Referral.link_code.in_(codes), first.c.first >= lo, first.c.first < hi)
            .group_by(Referral.link_code))


def daily_clicks(session: Session, partner_id: str, start: date, end: date) -> list[dict[str, Any]]:
    """A partner's clicks per UTC day (total and unique), days without clicks left out."""
    rows = session.execute(
        select(Click.day, func.count(), func.sum(case((Click.is_unique, 1), else_=0)))
        .where(Click.partner_id == partner_id, Click.day >= start.isoformat(),
               Click.day <= end.isoformat()).group_by(Click.day).order_by(Click.day))
    return [{"day": d, "clicks": int(t), "unique_clicks": int(u or 0)} for d, t, u in rows]
