"""Finding 11 of issue 16: neither the log-in nor the sign-up tells whether an address has an
account.

The log-in verifies one argon2 hash whatever the e-mail (the partner's, or a dummy when there is
none), so a wrong password costs the same as an unknown address; the sign-up answers an address
that has an account with a neutral page, changes nothing, and leaves the account as it was."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from hub.app import create_app
from hub.attribution import passwords
from hub.db.models import Partner
from tests.stripe_helpers import create_partner
from tests.web_helpers import PASSWORD, csrf_of, give_password, portal_login


class CountingHasher:
    """The real argon2 hasher, counting verifications."""

    def __init__(self, real):
        self.real, self.verified = real, 0

    def verify(self, stored, password):
        self.verified += 1
        return self.real.verify(stored, password)

    def hash(self, password):
        return self.real.hash(password)


@pytest.fixture
def client(hub):
    with TestClient(create_app(hub)) as c:
        yield c


@pytest.fixture
def hasher(monkeypatch):
    counting = CountingHasher(passwords.HASHER)
    monkeypatch.setattr(passwords, "HASHER", counting)
    return counting


@pytest.mark.parametrize(("email", "password"), [
    ("ann@partners.test", "wrong password!"),   # a known address, wrong password
    ("nobody@partners.test", "wrong password!"),  # no such address
    ("ann@partners.test", PASSWORD),              # the right one
])
def test_one_argon2_verification_per_log_in(client, hub, hasher, email, password):
    give_password(hub, create_partner(client, email="ann@partners.test")["id"])
    passwords.verify_password(None, "warm up the dummy hash")
    hasher.verified = 0
    answer = portal_login(client, email, password)
    assert hasher.verified == 1
    assert (answer.url.path == "/portal/") == (password == PASSWORD)
    if password != PASSWORD:
        assert "E-mail or password is wrong." in answer.text


def _sign_up(client, email, password="another long pw"):
    form = client.get("/portal/signup")
    return client.post("/portal/signup", data={"csrf": csrf_of(form.text), "program": "crazycall",
                                               "name": "Mallory", "email": email,
                                               "password": password})


def test_sign_up_with_a_taken_address_says_nothing_and_changes_nothing(client, hub):
    ann = create_partner(client, email="ann@partners.test", name="Ann")
    give_password(hub, ann["id"])
    with hub.sessions() as s:
        before = s.get(Partner, ann["id"]).password_hash
    answer = _sign_up(client, "Ann@Partners.test")
    assert answer.status_code == 200 and answer.url.path == "/portal/signup"
    text = answer.text.lower()
    assert "already" not in text and "has an account" not in text and "reset" not in text
    assert "thank you" in text
    assert client.get("/portal/", follow_redirects=False).status_code == 303  # not logged in
    with hub.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Partner)) == 1
        ann_now = s.get(Partner, ann["id"])
        assert ann_now.password_hash == before and ann_now.name == "Ann"
    assert portal_login(TestClient(create_app(hub)), "ann@partners.test").url.path == "/portal/"


def test_a_new_address_still_signs_up_and_logs_in(client, hub):
    answer = _sign_up(client, "new@partners.test")
    assert answer.url.path == "/portal/"
    with hub.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Partner)) == 1
