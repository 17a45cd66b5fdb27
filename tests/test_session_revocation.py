"""Finding 4 of issue 16: log-out ends the session on the server.

A copy of the `hub_portal` or `hub_admin` cookie saved before log-out is refused afterwards,
although its signature is still good for days; changing or resetting a password ends the
partner's other sessions too."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from hub.app import create_app
from hub.attribution import passwords
from hub.db.models import LoginSession
from tests.stripe_helpers import create_partner
from tests.web_helpers import PASSWORD, admin_login, give_password, portal_login, post_form


@pytest.fixture
def client(hub):
    with TestClient(create_app(hub)) as c:
        yield c


def _replay(hub, name, cookie, path):
    """A fresh browser that sends only the saved cookie."""
    with TestClient(create_app(hub)) as other:
        return other.get(path, headers={"cookie": f"{name}={cookie}"}, follow_redirects=False)


def _sessions(hub):
    with hub.sessions() as s:
        return s.scalar(select(func.count()).select_from(LoginSession))


def test_a_portal_cookie_saved_before_log_out_is_refused_after_it(client, hub):
    give_password(hub, create_partner(client, email="ann@partners.test")["id"])
    assert portal_login(client, "ann@partners.test").url.path == "/portal/"
    saved = client.cookies.get("hub_portal")
    assert _replay(hub, "hub_portal", saved, "/portal/settings").status_code == 200
    assert _sessions(hub) == 1
    post_form(client, "/portal/", "/portal/logout")
    assert _sessions(hub) == 0
    replayed = _replay(hub, "hub_portal", saved, "/portal/settings")
    assert replayed.status_code == 303 and replayed.headers["location"].startswith("/portal/login")


def test_an_admin_cookie_saved_before_log_out_is_refused_after_it(client, hub):
    admin_login(client)
    saved = client.cookies.get("hub_admin")
    assert _replay(hub, "hub_admin", saved, "/admin/payouts").status_code == 200
    post_form(client, "/admin/", "/admin/logout")
    replayed = _replay(hub, "hub_admin", saved, "/admin/payouts")
    assert replayed.status_code == 303 and replayed.headers["location"].startswith("/admin/login")
    assert _sessions(hub) == 0


def test_logging_out_one_browser_leaves_the_others_signed_in(client, hub):
    give_password(hub, create_partner(client, email="ann@partners.test")["id"])
    portal_login(client, "ann@partners.test")
    with TestClient(create_app(hub)) as phone:
        portal_login(phone, "ann@partners.test")
        post_form(client, "/portal/", "/portal/logout")
        assert phone.get("/portal/settings", follow_redirects=False).status_code == 200


def test_a_password_change_ends_the_other_sessions_on_the_server(client, hub):
    give_password(hub, create_partner(client, email="ann@partners.test")["id"])
    portal_login(client, "ann@partners.test")
    with TestClient(create_app(hub)) as phone:
        portal_login(phone, "ann@partners.test")
        assert _sessions(hub) == 2
        post_form(client, "/portal/settings", "/portal/settings", action="password",
                  current_password=PASSWORD, password="brand new secret",
                  password_again="brand new secret")
        assert _sessions(hub) == 1
        assert client.get("/portal/settings", follow_redirects=False).status_code == 200
        assert phone.get("/portal/settings", follow_redirects=False).status_code == 303


def test_a_password_reset_ends_every_session(client, hub):
    partner = create_partner(client, email="ann@partners.test")
    give_password(hub, partner["id"])
    portal_login(client, "ann@partners.test")
    with hub.transaction() as s:
        token, _ = passwords.create_reset_token(s, partner["id"])
    with TestClient(create_app(hub)) as other:
        post_form(other, f"/portal/reset/{token}", f"/portal/reset/{token}",
                  password="a fresh password", password_again="a fresh password")
    assert _sessions(hub) == 0
    assert client.get("/portal/settings", follow_redirects=False).status_code == 303


def test_an_expired_session_row_signs_out(client, hub):
    give_password(hub, create_partner(client, email="ann@partners.test")["id"])
    portal_login(client, "ann@partners.test")
    with hub.transaction() as s:
        row = s.scalars(select(LoginSession)).one()
        row.expires_at = row.created_at
    assert client.get("/portal/settings", follow_redirects=False).status_code == 303
