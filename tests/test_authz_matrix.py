"""Every route of the app against four callers: anonymous, partner A, partner B, the operator.

The routes are enumerated from `create_app(hub).routes`, so a route added without an entry in
MATRIX fails `test_every_route_has_a_rule`. Each rule says what each caller must get; path ids
are filled with partner A's objects (its partner id, payout, commission, referral, material), and
partner A's secrets (name, customer email, code) must never show up in what B, anonymous or a
partner-cookie-on-the-operator-API request gets back.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import respx
from sqlalchemy import select
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from connectors import stripe_trigger as st
from hub.app import create_app
from hub.db.models import Commission, Material, Referral
from hub.payouts.requests import request_withdrawal
from tests.conftest import ADMIN_TOKEN, operator_headers
from tests.stripe_helpers import create_partner, post_event
from tests.web_helpers import admin_login, give_password, portal_login

INSTALLER_TOKEN = "installer-token-abcdefghijklmnop"

# rule names:
#   operator_api   bearer admin token only; everyone else 401
#   admin_page     the admin cookie only; anyone else is sent to the log-in (303) or refused (403)
#   portal_page    a partner's own view: A and B each get their own; anonymous and the operator
#                  are sent to the portal log-in
#   portal_object  an object of A's by id in the path: A 200, B 404, others to the log-in
#   portal_post    a partner's form post: refused without the session's CSRF token (403)
#   public         the same answer to everyone (log-in forms, redirects, downloads, docs)
#   webhook        provider-signed: credentials of any kind are irrelevant, no signature = 400
#   installer      the installer token only (when set); everyone else 401
#   login_post     a log-in/logout/sign-up form post: refused without the form's CSRF token
#   portal_agreement  the agreement page: partners only (shown, or sent on when not required)
MATRIX: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): "public", ("GET", "/metrics"): "public",
    ("GET", "/openapi.json"): "public",
    ("GET", "/r/{link_code:anytext}"): "public", ("GET", "/download/{product}"): "public",
    ("POST", "/webhooks/stripe"): "webhook", ("POST", "/webhooks/paypal"): "webhook",
    ("POST", "/api/v1/installs"): "installer", ("POST", "/api/v1/signups"): "installer",
    ("GET", "/portal"): "public", ("GET", "/portal/login"): "public",
    ("POST", "/portal/login"): "login_post", ("POST", "/portal/logout"): "login_post",
    ("GET", "/portal/signup"): "public", ("POST", "/portal/signup"): "login_post",
    ("GET", "/portal/reset/{token}"): "public", ("POST", "/portal/reset/{token}"): "login_post",
    ("GET", "/portal/forgot"): "public", ("POST", "/portal/forgot"): "login_post",
    ("GET", "/portal/verify/{token}"): "public",
    ("GET", "/portal/paypal/confirm/{token}"): "public",
    ("POST", "/portal/paypal/confirm/{token}"): "login_post",
    ("GET", "/portal/"): "portal_page", ("GET", "/portal/links"): "portal_page",
    ("GET", "/portal/referrals"): "portal_page",
    ("GET", "/portal/referrals/{referral_id}"): "portal_object",
    ("GET", "/portal/transactions"): "portal_page",
    ("GET", "/portal/transactions.csv"): "portal_page",
    ("GET", "/portal/payouts"): "portal_page", ("GET", "/portal/settings"): "portal_page",
    ("POST", "/portal/settings"): "portal_post", ("GET", "/portal/materials"): "portal_page",
    ("GET", "/portal/materials/{material_id}"): "portal_material",
    ("POST", "/portal/links"): "portal_post", ("POST", "/portal/withdrawals"): "portal_post",
    ("GET", "/portal/agreement"): "portal_agreement", ("POST", "/portal/agreement"): "portal_post",
    ("GET", "/portal/help"): "portal_page",
    ("GET", "/partners/{program}"): "public",
    ("GET", "/"): "public", ("GET", "/favicon.ico"): "public", ("GET", "/track.js"): "public",
    # The tracking script's click: only an allowed page's Origin counts (403 for all of these).
    ("POST", "/api/v1/track/clicks"): "public", ("OPTIONS", "/api/v1/track/clicks"): "public",
    ("GET", "/admin"): "public", ("GET", "/admin/login"): "public",
    ("POST", "/admin/login"): "login_post", ("POST", "/admin/logout"): "login_post",
}
for _path in ("/admin/", "/admin/partners", "/admin/partners/{partner_id}", "/admin/applications",
              "/admin/invitations", "/admin/self-referrals", "/admin/payouts", "/admin/audit",
              "/admin/materials", "/admin/exports", "/admin/exports/partners.csv",
              "/admin/exports/commissions.csv", "/admin/exports/payouts.csv", "/admin/attribution",
              "/admin/webhooks", "/admin/whatif", "/admin/commissions/{commission_id}",
              "/admin/tracking"):
    MATRIX[("GET", _path)] = "admin_page"
for _path in ("/admin/partners/{partner_id}/status", "/admin/partners/{partner_id}/reset-link",
              "/admin/partners/{partner_id}/payee",
              "/admin/invitations", "/admin/materials", "/admin/materials/{material_id}/delete",
              "/admin/payouts/{payout_id}/{action}", "/admin/attribution",
              "/admin/webhooks/{delivery_id}/replay", "/admin/whatif"):
    MATRIX[("POST", _path)] = "admin_page"
for _method, _path in (
        ("POST", "/api/v1/partners"), ("GET", "/api/v1/partners"),
        ("GET", "/api/v1/partners/{partner_id}"), ("PATCH", "/api/v1/partners/{partner_id}"),
        ("GET", "/api/v1/partners/{partner_id}/commissions"),
        ("POST", "/api/v1/partners/{partner_id}/approve"),
        ("POST", "/api/v1/partners/{partner_id}/decline"),
        ("POST", "/api/v1/partners/{partner_id}/agreement"),
        ("POST", "/api/v1/partners/{partner_id}/suspend"),
        ("POST", "/api/v1/partners/{partner_id}/reactivate"),
        ("POST", "/api/v1/partners/{partner_id}/links"),
        ("GET", "/api/v1/partners/{partner_id}/links"),
        ("POST", "/api/v1/referrals"), ("GET", "/api/v1/referrals"),
        ("POST", "/api/v1/partners/{partner_id}/coupons"),
        ("GET", "/api/v1/partners/{partner_id}/coupons"),
        ("GET", "/api/v1/payouts"), ("GET", "/api/v1/payouts/{payout_id}"),
        ("POST", "/api/v1/partners/{partner_id}/withdrawals"),
        ("POST", "/api/v1/payouts/{payout_id}/approve"),
        ("POST", "/api/v1/payouts/{payout_id}/reject"),
        ("POST", "/api/v1/payouts/{payout_id}/mark-paid"),
        ("POST", "/api/v1/payouts/{payout_id}/retry"),
        ("POST", "/api/v1/webhooks/endpoints"), ("GET", "/api/v1/webhooks/endpoints"),
        ("POST", "/api/v1/webhooks/endpoints/{endpoint_id}/disable"),
        ("GET", "/api/v1/webhooks/deliveries"),
        ("POST", "/api/v1/webhooks/deliveries/{delivery_id}/replay"),
        ("GET", "/api/v1/commissions/{commission_id}/explain"),
        ("GET", "/api/v1/customers/{provider}/{customer_ref}/support")):
    MATRIX[(_method, _path)] = "operator_api"


def app_routes(app: Any) -> list[tuple[str, str]]:
    out = []
    for route in app.routes:
        if isinstance(route, Mount):
            continue  # /static: files only, no data
        assert isinstance(route, Route)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            out.append((method, route.path))
    return out


@pytest.fixture
def world(make_hub, backend, tmp_path):
    hub = make_hub(backend, server={"installer_token": INSTALLER_TOKEN,
                                    "materials_dir": str(tmp_path / "materials")})
    app = create_app(hub)
    receiver = respx.mock(assert_all_called=False)
    receiver.post("http://receiver.test/h").respond(200)
    with receiver, TestClient(app) as op:
        endpoint = op.post("/api/v1/webhooks/endpoints", json={"url": "http://receiver.test/h"},
                           headers=operator_headers()).json()
        a = create_partner(op, email="alpha-secret@partners.test", name="Alphonse Secretname",
                           paypal_email="alpha-pay@partners.test")
        b = create_partner(op, email="bravo@partners.test", name="Bravo")
        for p in (a, b):
            give_password(hub, p["id"])
        post_event(op, st.event("customer.created", st.customer(
            "cus_alpha", email="alpha-customer@client.test", partner_code=a["code"])))
        post_event(op, st.event("invoice.paid", st.invoice(
            "in_alpha", customer_id="cus_alpha", amount=300_000, subscription_id="sub_a",
            charge_id="ch_alpha", paid_at=1_767_225_600, shape="legacy")))
        from hub.jobs.tick import run_tick
        from tests.payout_helpers import at
        run_tick(hub, at("2026-03-01T00:00:00"))
        with hub.transaction() as s:
            payout = request_withdrawal(hub, s, a["id"], "USD", None, "test")
            commission = s.scalar(select(Commission.id).where(Commission.partner_id == a["id"]))
            referral = s.scalar(select(Referral.id).where(Referral.partner_id == a["id"]))
            s.add(Material(id="mat_alpha", program="crazycall", title="Banner", filename="b.txt",
                           content_type="text/plain", size=2, created_at=payout.created_at))
            payout_id = payout.id
        delivery = op.get("/api/v1/webhooks/deliveries",
                          headers=operator_headers()).json()["items"][0]
    ids = {"partner_id": a["id"], "payout_id": payout_id, "commission_id": commission,
           "referral_id": str(referral), "material_id": "mat_alpha", "token": "not-a-token",
           "link_code:anytext": a["code"], "product": "odoopbx", "endpoint_id": endpoint["id"],
           "delivery_id": delivery["id"], "action": "approve", "program": "crazycall",
           "provider": "stripe", "customer_ref": "cus_alpha"}
    callers = {"anonymous": TestClient(app), "A": TestClient(app), "B": TestClient(app),
               "operator": TestClient(app)}
    portal_login(callers["A"], "alpha-secret@partners.test")
    portal_login(callers["B"], "bravo@partners.test")
    admin_login(callers["operator"])
    yield {"hub": hub, "app": app, "ids": ids, "callers": callers, "a": a, "b": b}
    for c in callers.values():
        c.close()


SECRETS_OF_A = ("Alphonse Secretname", "alpha-customer@client.test", "alpha-pay@partners.test")


def test_every_route_has_a_rule(world):
    missing = [r for r in app_routes(world["app"]) if r not in MATRIX]
    assert not missing, f"routes without an authorization rule: {missing}"
    stale = [r for r in MATRIX if r not in app_routes(world["app"])]
    assert not stale, f"rules for routes that no longer exist: {stale}"


def _fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"{([^}]+)}", lambda m: ids[m.group(1)], path)


def _call(client: TestClient, method: str, url: str, caller: str, world: dict[str, Any],
          **kw: Any) -> Any:
    headers = dict(kw.pop("headers", {}))
    if caller == "operator" and url.startswith("/api/"):
        headers.update(operator_headers())
    elif caller in ("A", "B") and not url.startswith("/portal"):
        # a partner's own portal cookie, sent where it does not belong
        cookie = client.cookies.get("hub_portal")
        if cookie:
            headers["cookie"] = f"hub_portal={cookie}"
            headers["authorization"] = f"Bearer {cookie}"
    return client.request(method, url, headers=headers, follow_redirects=False, **kw)


def test_each_caller_gets_exactly_what_it_should(world):
    ids, callers = world["ids"], world["callers"]
    checked = 0
    for method, path in app_routes(world["app"]):
        rule = MATRIX[(method, path)]
        url = _fill(path, ids)
        answers = {who: _call(c, method, url + _hostile_query(ids), who, world,
                              **_body(method, path))
                   for who, c in callers.items()}
        CHECKS[rule](answers, world, (method, path))
        for who in ("anonymous", "B"):
            text = answers[who].text
            assert not any(s in text for s in SECRETS_OF_A), (method, path, who)
        checked += 1
    assert checked == len(MATRIX)


def _hostile_query(ids: dict[str, str]) -> str:
    """Every request also names A's ids in the query: a partner's view must ignore them."""
    return f"?partner_id={ids['partner_id']}&id={ids['partner_id']}"


def _body(method: str, path: str) -> dict[str, Any]:
    if method not in ("POST", "PATCH"):
        return {}
    if path.startswith(("/portal", "/admin")):
        return {"data": {"name": "Mallory", "action": "suspend", "email": "m@x.test"}}
    return {"json": {}}


def _refused_api(answers: dict[str, Any], world: dict[str, Any], route: Any) -> None:
    for who in ("anonymous", "A", "B"):
        assert answers[who].status_code == 401, (route, who, answers[who].status_code)
    assert answers["operator"].status_code not in (401, 403), route
    assert answers["operator"].status_code < 500, (route, answers["operator"].text)


def _admin(answers: dict[str, Any], world: dict[str, Any], route: Any) -> None:
    for who in ("anonymous", "A", "B"):
        r = answers[who]
        assert r.status_code in (303, 401, 403), (route, who, r.status_code)
        if r.status_code == 303:
            assert r.headers["location"].startswith("/admin/login"), (route, who)
    op = answers["operator"]
    if route[0] == "GET":
        assert op.status_code == 200, (route, op.status_code)
    else:
        assert op.status_code == 403  # the operator too, without the form's CSRF token


def _portal_page(answers: dict[str, Any], world: dict[str, Any], route: Any) -> None:
    for who in ("anonymous", "operator"):
        r = answers[who]
        assert r.status_code == 303 and r.headers["location"].startswith("/portal/login"), \
            (route, who, r.status_code)
    assert answers["A"].status_code == 200 and answers["B"].status_code == 200, route


def _portal_agreement(answers: dict[str, Any], world: dict[str, Any], route: Any) -> None:
    """Only for partners: shown where the program needs it, else sent on to the dashboard."""
    for who in ("anonymous", "operator"):
        assert answers[who].status_code == 303, (route, who)
        assert answers[who].headers["location"].startswith("/portal/login"), (route, who)
    assert answers["A"].status_code == answers["B"].status_code, route
    assert answers["A"].status_code in (200, 303), route


def _portal_object(answers: dict[str, Any], world: dict[str, Any], route: Any) -> None:
    assert answers["A"].status_code == 200, route
    assert answers["B"].status_code == 404, route
    for who in ("anonymous", "operator"):
        assert answers[who].status_code == 303, (route, who)


def _portal_material(answers: dict[str, Any], world: dict[str, Any], route: Any) -> None:
    """A material of A's program: both partners of the program may have it, nobody else."""
    assert answers["A"].status_code == answers["B"].status_code, route
    assert answers["A"].status_code in (200, 404), route
    for who in ("anonymous", "operator"):
        assert answers[who].status_code == 303, (route, who)


def _portal_post(answers: dict[str, Any], world: dict[str, Any], route: Any) -> None:
    for who in ("A", "B"):
        assert answers[who].status_code == 403, (route, who)  # no CSRF token
    for who in ("anonymous", "operator"):
        assert answers[who].status_code in (303, 403), (route, who)
    with world["hub"].sessions() as s:
        from hub.db.models import Partner
        assert s.get(Partner, world["a"]["id"]).name == "Alphonse Secretname"


def _login_post(answers: dict[str, Any], world: dict[str, Any], route: Any) -> None:
    for who, r in answers.items():
        assert r.status_code == 403, (route, who, r.status_code)  # no CSRF token: refused


def _public(answers: dict[str, Any], world: dict[str, Any], route: Any) -> None:
    codes = {who: r.status_code for who, r in answers.items()}
    assert codes["anonymous"] < 500, (route, codes)
    # credentials change nothing, except a log-in form that sends a signed-in caller onwards
    assert codes["anonymous"] == codes["B"] or route[1] in ("/portal", "/admin"), (route, codes)
    assert "alpha-customer@client.test" not in answers["A"].text


def _webhook(answers: dict[str, Any], world: dict[str, Any], route: Any) -> None:
    for who, r in answers.items():
        assert r.status_code == 400, (route, who, r.status_code)


def _installer(answers: dict[str, Any], world: dict[str, Any], route: Any) -> None:
    for who, r in answers.items():
        assert r.status_code == 401, (route, who, r.status_code)


CHECKS = {"operator_api": _refused_api, "admin_page": _admin, "portal_page": _portal_page,
          "portal_object": _portal_object, "portal_post": _portal_post, "public": _public,
          "webhook": _webhook, "installer": _installer, "login_post": _login_post,
          "portal_material": _portal_material, "portal_agreement": _portal_agreement}


def test_the_installer_token_opens_installs_and_signups_and_nothing_else(world):
    c = world["callers"]["anonymous"]
    bearer = {"Authorization": f"Bearer {INSTALLER_TOKEN}"}
    r = c.post("/api/v1/installs", json={"install_id": "i-1", "partner_code": world["a"]["code"],
                                         "product": "widget"}, headers=bearer)
    assert r.status_code == 201, r.text
    assert c.get("/api/v1/partners", headers=bearer).status_code == 401
    assert c.get("/admin/", headers=bearer, follow_redirects=False).status_code == 303
    assert c.post("/api/v1/installs", json={"install_id": "i-2", "partner_code": "x",
                                            "product": "widget"},
                  headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).status_code == 401


def test_partner_views_show_only_their_own_data(world):
    a, b = world["callers"]["A"], world["callers"]["B"]
    for page in ("/portal/", "/portal/referrals", "/portal/transactions",
                 "/portal/transactions.csv", "/portal/payouts", "/portal/settings"):
        mine = a.get(page).text
        theirs = b.get(page + f"?partner_id={world['a']['id']}").text
        assert world["a"]["code"] not in theirs and "Alphonse" not in theirs, page
        assert "Bravo" not in mine, page
    assert "3,000.00" not in b.get("/portal/").text and "600.00" in a.get("/portal/").text


def test_operator_token_is_compared_in_constant_time(monkeypatch, world):
    """`require_operator` must use hmac.compare_digest (no early-exit string compare)."""
    import hmac

    import hub.api.http as http

    seen = []
    real = hmac.compare_digest

    def spy(x: Any, y: Any) -> bool:
        seen.append((x, y))
        return real(x, y)

    monkeypatch.setattr(http.hmac, "compare_digest", spy)
    c = world["callers"]["anonymous"]
    assert c.get("/api/v1/partners", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert c.get("/api/v1/partners", headers=operator_headers()).status_code == 200
    assert (b"wrong", ADMIN_TOKEN.encode()) in seen


def test_help_pages_show_only_the_partners_own_program_and_the_support_api_is_the_operators(
        make_hub, backend):
    hub = make_hub(backend, programs={
        "crazycall": {"plugin": "crazycall", "contact_email": "margo@crazycall.test"},
        "odoopbx": {"plugin": "odoopbx", "support_email": "help@odoopbx.test"}})
    with TestClient(create_app(hub)) as op:
        cc = create_partner(op, email="cc@partners.test", name="Cee")
        odoo = create_partner(op, "odoopbx", email="oo@partners.test", name="Oh", kind="partner",
                              invited=True)
        op.post("/api/v1/referrals", headers=operator_headers(),
                json={"partner_id": odoo["id"], "customer_ref": "cus_oo"})
    for partner in (cc, odoo):
        give_password(hub, partner["id"])
    with TestClient(create_app(hub)) as a, TestClient(create_app(hub)) as b:
        portal_login(a, "cc@partners.test")
        portal_login(b, "oo@partners.test")
        mine, theirs = a.get("/portal/help").text, b.get("/portal/help").text
        assert "margo@crazycall.test" in mine and "help@odoopbx.test" not in mine
        assert "help@odoopbx.test" in theirs and "margo@crazycall.test" not in theirs
        # a partner's cookie (or the cookie as a bearer) opens no operator route
        cookie = b.cookies.get("hub_portal")
        url = "/api/v1/customers/stripe/cus_oo/support"
        assert b.get(url).status_code == 401
        assert b.get(url, headers={"Authorization": f"Bearer {cookie}"}).status_code == 401
        assert b.get(url, headers=operator_headers()).json()["partner_id"] == odoo["id"]
