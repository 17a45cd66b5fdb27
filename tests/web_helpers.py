"""Driving the portal and admin pages with a TestClient: CSRF tokens, log-ins, partners."""

from __future__ import annotations

import re
from typing import Any

from hub.attribution.passwords import hash_password
from hub.db.models import Partner
from hub.runtime import Hub
from tests.conftest import ADMIN_TOKEN

PASSWORD = "correct horse battery"


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


def give_password(hub: Hub, partner_id: str, password: str = PASSWORD) -> None:
    with hub.transaction() as session:
        partner = session.get(Partner, partner_id)
        assert partner is not None
        partner.password_hash = hash_password(password)


def portal_login(client: Any, email: str, password: str = PASSWORD) -> Any:
    form = client.get("/portal/login")
    return client.post("/portal/login", data={"csrf": csrf_of(form.text), "email": email,
                                              "password": password})


def admin_login(client: Any, token: str = ADMIN_TOKEN) -> Any:
    form = client.get("/admin/login")
    return client.post("/admin/login", data={"csrf": csrf_of(form.text), "token": token})


def post_form(client: Any, page: str, target: str, **fields: Any) -> Any:
    """Load `page` for its CSRF token, then post `fields` to `target`."""
    token = csrf_of(client.get(page).text)
    return client.post(target, data={"csrf": token, **fields})
