"""The portal's and the admin's pages fuzzed with hypothesis, signed in (issue 16 finding 7):
every page with random query strings and path parameters, every form with random fields sent
with a valid CSRF token (so the handler runs, not only the CSRF check). No answer may be a 5xx.

Field and query names come from the templates' forms plus the query names the pages read, so a
new form field is fuzzed without touching this file. `FUZZ_EXAMPLES` (env) sets the examples
per route (default 12)."""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import quote

import pytest
import respx
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from starlette.routing import Route
from starlette.testclient import TestClient

from connectors import stripe_trigger as sst
from hub.app import create_app
from hub.db.models import Commission
from hub.web.pages import TEMPLATES
from tests.stripe_helpers import create_partner, post_event
from tests.web_helpers import admin_login, csrf_of, give_password, portal_login

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
QUERY_NAMES = ("page", "from", "to", "period", "program", "status", "subject", "q", "next",
               "inline", "currency", "kind", "flagged", "partner_id", "viewport")
FORM_NAMES = tuple(sorted({n for page in TEMPLATES.glob("*.html")
                           for n in re.findall(r'name="([a-z_]+)"', page.read_text())} - {"csrf"}))
ODD = ("", "0", "-1", "²", "٣", "1e9", "NaN", "Infinity", "0001-01-01", "9999-12-31",
       "99999999999999999999", str(2**63), "../../etc/passwd", "//evil.test", "%00", "\x00",
       "<script>x</script>", "a" * 5000, "USD", "EUR", "usd", "stripe", "crazycall", "odoopbx",
       "active", "paid", "requested", "approve", "monthly", "30", "14", "partner", "referral")
VALUES = st.one_of(st.sampled_from(ODD), st.text(max_size=30),
                   st.integers(-(2**70), 2**70).map(str), st.dates().map(str))
SKIP = {("POST", "/portal/logout"), ("POST", "/admin/logout")}  # they end the fuzzing session


def _routes(app: Any, prefix: str) -> list[tuple[str, str]]:
    out = []
    for route in app.routes:
        if isinstance(route, Route) and route.path.startswith(prefix):
            for method in sorted((route.methods or set()) - {"HEAD"}):
                if (method, route.path) not in SKIP:
                    out.append((method, route.path))
    return out


def _fill(path: str, ids: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    names = re.findall(r"{(\w+)(?::\w+)?}", path)
    if not names:
        return st.just(path)

    def filled(values: tuple[str, ...]) -> str:
        it = iter(values)
        return re.sub(r"{\w+(?::\w+)?}", lambda _m: quote(next(it), safe=""), path)

    return st.tuples(*[ids for _ in names]).map(filled)


@pytest.fixture
def world(make_hub, backend, tmp_path):
    hub = make_hub(backend, server={"materials_dir": str(tmp_path / "m")},
                   programs={"crazycall": {"plugin": "crazycall"},
                             "odoopbx": {"plugin": "odoopbx"}})
    with respx.mock(assert_all_called=False) as net:
        net.route().respond(200, json={})  # outgoing webhooks and look-ups never leave
        with TestClient(create_app(hub), raise_server_exceptions=False) as c:
            partner = create_partner(c, email="ann@partners.test")
            other = create_partner(c, program="odoopbx", kind="referral", email="bob@p.test")
            post_event(c, sst.event("invoice.paid", sst.invoice(
                "in_f", customer_id="cus_f", amount=90000, subscription_id="sub_f",
                partner_code=partner["code"])))
            give_password(hub, partner["id"])
            yield hub, c, partner, other


def _fuzz_area(c: TestClient, area: str, login: Any, ids: list[str]) -> list[Any]:
    failures: list[Any] = []
    sent = [0]
    id_values = st.one_of(st.sampled_from(ids), VALUES.filter(lambda v: "/" not in v and v))
    for method, path in _routes(c.app, area):
        _fuzz_route(c, area, login, method, path, id_values, failures, sent)
    print(f"\nfuzz {area}: {sent[0]} requests")
    assert sent[0] >= EXAMPLES
    return failures


def _fuzz_route(c: TestClient, area: str, login: Any, method: str, path: str,
                id_values: Any, failures: list[Any], sent: list[int]) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(url=_fill(path, id_values),
           query=st.dictionaries(st.sampled_from(QUERY_NAMES), VALUES, max_size=4),
           form=st.dictionaries(st.sampled_from(FORM_NAMES), VALUES, max_size=6))
    def run(url: str, query: dict[str, str], form: dict[str, str]) -> None:
        home = c.get(area + "/", follow_redirects=False)
        if home.status_code == 303:  # a fuzzed form ended the session: sign in again
            login()
            home = c.get(area + "/", follow_redirects=False)
        if method == "GET":
            r = c.get(url, params=query, follow_redirects=False)
        else:
            token = csrf_of(home.text) if home.status_code == 200 else ""
            r = c.post(url, params=query, data={"csrf": token, **form}, follow_redirects=False)
        sent[0] += 1
        if r.status_code >= 500:
            failures.append((method, url, query, {k: v[:60] for k, v in form.items()},
                             r.status_code, r.text[:200]))

    run()


def test_portal_pages_and_forms_never_answer_5xx(world):
    hub, c, partner, other = world

    def login() -> None:
        give_password(hub, partner["id"])  # a fuzzed settings form may have changed it
        assert portal_login(c, partner["email"]).status_code in (200, 303)

    login()
    failures = _fuzz_area(c, "/portal", login, ["1", "2", partner["id"], other["id"]])
    assert not failures, failures[:5]


def test_admin_pages_and_forms_never_answer_5xx(world):
    hub, c, partner, other = world

    def login() -> None:
        assert admin_login(c).status_code in (200, 303)

    login()
    with hub.sessions() as session:
        commission_ids = [str(i) for i in session.scalars(select(Commission.id).limit(3))]
    failures = _fuzz_area(c, "/admin", login,
                          [partner["id"], other["id"], *commission_ids, "1"])
    assert not failures, failures[:5]
