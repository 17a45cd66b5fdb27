"""Browser sessions in signed cookies, CSRF tokens, and the secret key that signs them.

A session is a small JSON dict signed with ``[server] secret_key`` (itsdangerous, timestamped so
old cookies expire). The portal and the admin keep separate cookies scoped to their paths, so
being an operator in one tab never makes portal requests privileged and vice versa.

Every session carries a random CSRF token; every form posts it back in a hidden ``csrf`` field and
every POST is refused (403) unless it matches the session's token in constant time. Log-in forms
are covered too: showing the form starts an anonymous session holding the token.

A signed-in session is also a row (`login_sessions`): the cookie carries a random token (``sid``)
whose SHA-256 names the row. Log-out deletes the row, so a copy of the cookie saved before it is
refused afterwards; changing a password deletes the partner's other rows.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from hub.clock import utcnow
from hub.db.models import LoginSession
from hub.errors import Forbidden
from hub.runtime import Hub

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Area:
    """One signed-in area of the site: the portal (partners) or the admin (the operator)."""

    name: str
    cookie: str
    path: str
    max_age: int


PORTAL = Area("portal", "hub_portal", "/portal", 14 * 24 * 3600)
ADMIN = Area("admin", "hub_admin", "/admin", 12 * 3600)


def secret_key(hub: Hub) -> str:
    """``[server] secret_key``; without one, a random key for this process only (with a warning):
    sessions then end when the process does and are not shared between processes."""
    configured = str(getattr(hub.config.server.secret_key, "value", hub.config.server.secret_key))
    if configured:
        return configured
    key = hub.extras.get("web_secret_key")
    if key is None:
        log.warning("[server] secret_key is not set: portal and admin sessions use a per-process "
                    "key and end on restart; set HUB_SECRET_KEY when running several processes")
        key = hub.extras["web_secret_key"] = secrets.token_urlsafe(32)
    return str(key)


def _serializer(hub: Hub, area: Area) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key(hub), salt=f"hub.web.{area.name}")


@dataclass
class WebSession:
    """The decoded cookie; `changed` tells the response to write it back."""

    area: Area
    data: dict[str, Any] = field(default_factory=dict)
    changed: bool = False

    @property
    def csrf(self) -> str:
        token = self.data.get("csrf")
        if not token:
            token = self.data["csrf"] = secrets.token_urlsafe(24)
            self.changed = True
        return str(token)

    def set(self, **values: Any) -> None:
        self.data.update(values)
        self.changed = True

    def pop(self, key: str) -> Any:
        if key in self.data:
            self.changed = True
        return self.data.pop(key, None)

    def restart(self, **values: Any) -> None:
        """A fresh session (new CSRF token) at log-in and log-out, against session fixation."""
        self.data = {"csrf": secrets.token_urlsafe(24), **values}
        self.changed = True


def load_session(hub: Hub, request: Request, area: Area) -> WebSession:
    raw = request.cookies.get(area.cookie)
    if not raw:
        return WebSession(area)
    try:
        data = _serializer(hub, area).loads(raw, max_age=area.max_age)
    except BadSignature:
        return WebSession(area, changed=True)
    return WebSession(area, data if isinstance(data, dict) else {})


def save_session(hub: Hub, request: Request, response: Response, session: WebSession) -> None:
    if not session.changed:
        return
    secure = hub.config.server.base_url.startswith("https://") or request.url.scheme == "https"
    response.set_cookie(session.area.cookie, _serializer(hub, session.area).dumps(session.data),
                        max_age=session.area.max_age, path=session.area.path, httponly=True,
                        samesite="lax", secure=secure)


def check_csrf(session: WebSession, sent: Any) -> None:
    expected = session.data.get("csrf")
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(sent, str(expected)):
        raise Forbidden("the form expired or did not come from this site; reload and try again",
                        code="csrf")


def fingerprint(secret: str | None) -> str:
    """A short digest stored in the session, so that changing a password (or the admin token)
    ends every session opened with the old one."""
    return hashlib.sha256((secret or "").encode()).hexdigest()[:16]


# -- server-side sessions --------------------------------------------------------------------

def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_login(db: Session, session: WebSession, subject: str, **values: Any) -> None:
    """Sign `subject` in: a fresh cookie (against fixation) naming a new session row. The
    subject's expired rows are dropped on the way, so they do not pile up."""
    now = utcnow()
    db.execute(delete(LoginSession).where(LoginSession.subject == subject,
                                          LoginSession.expires_at <= now))
    token = secrets.token_urlsafe(32)
    db.add(LoginSession(token_hash=_token_hash(token), area=session.area.name, subject=subject,
                        created_at=now,
                        expires_at=now + timedelta(seconds=session.area.max_age)))
    session.restart(sid=token, **values)


def login_alive(db: Session, session: WebSession, subject: str) -> bool:
    """Whether the cookie's session row still exists, for this area and subject, unexpired."""
    token = session.data.get("sid")
    if not isinstance(token, str) or not token:
        return False
    row = db.get(LoginSession, _token_hash(token))
    return (row is not None and row.area == session.area.name and row.subject == subject
            and row.expires_at > utcnow())


def close_login(db: Session, session: WebSession) -> None:
    """Log-out: delete the cookie's session row and start an anonymous session."""
    token = session.data.get("sid")
    if isinstance(token, str) and token:
        db.execute(delete(LoginSession).where(LoginSession.token_hash == _token_hash(token)))
    session.restart()


def end_other_logins(db: Session, session: WebSession, subject: str) -> int:
    """End every session of `subject` in this area but the cookie's own (a password change).
    Returns how many ended."""
    token = session.data.get("sid")
    keep = _token_hash(token) if isinstance(token, str) and token else ""
    result = db.execute(delete(LoginSession).where(
        LoginSession.subject == subject, LoginSession.area == session.area.name,
        LoginSession.token_hash != keep))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
