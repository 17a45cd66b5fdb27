"""Finding 10 of issue 16: a self sign-up gets the kind the program gives self sign-ups.

odoopbx invites its partners (30%, names visible, in the directory) and lets referrals (15% for 12
months) sign up themselves: `/portal/signup` must make a referral, through the `self_signup_kind`
rule hook, not a partner waiting for approval. Programs without the hook keep their first kind."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from hub.app import create_app
from hub.db.models import Partner
from tests.program_rules import call, program
from tests.web_helpers import csrf_of


@pytest.fixture
def web(make_hub, backend):
    return make_hub(backend, programs={"odoopbx": {"plugin": "odoopbx"},
                                       "crazycall": {"plugin": "crazycall"}})


def _sign_up(hub, program_name, email):
    with TestClient(create_app(hub)) as client:
        form = client.get("/portal/signup")
        return client.post("/portal/signup", data={
            "csrf": csrf_of(form.text), "program": program_name, "name": "Rita", "email": email,
            "password": "long enough pw"})


def test_odoopbx_self_signup_is_an_active_referral(web):
    made = _sign_up(web, "odoopbx", "rita@referrals.test")
    assert made.url.path == "/portal/"  # a referral is active at once: no approval to wait for
    with web.sessions() as s:
        rita = s.scalars(select(Partner).where(Partner.email == "rita@referrals.test")).one()
        assert (rita.program, rita.kind, rita.status) == ("odoopbx", "referral", "active")
        assert web.kind_profile(web.programs["odoopbx"], rita.kind).listed_in_directory is False


def test_a_program_without_the_hook_signs_up_its_first_kind(web):
    _sign_up(web, "crazycall", "cleo@partners.test")
    with web.sessions() as s:
        cleo = s.scalars(select(Partner).where(Partner.email == "cleo@partners.test")).one()
        assert (cleo.kind, cleo.status) == ("partner", "active")


@pytest.mark.parametrize(("plugin", "kind"), [("odoopbx", "referral"), ("crazycall", None),
                                              ("callbell", None)])
def test_the_rule_hook(plugin, kind):
    assert call(program(plugin), "self_signup_kind") == kind
