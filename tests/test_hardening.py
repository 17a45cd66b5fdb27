"""Issue 16 (hardening), the findings of part A that have no better home: HSTS, the metrics
token, short secret keys, downloads per program (13), streamed bodies (12), odd input (7) and
provider facts the hub refuses to book (6)."""

from __future__ import annotations

import asyncio
import io
import zipfile

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from connectors import stripe_trigger as st
from hub.app import create_app
from hub.config import config_from_dict, load_config
from hub.db.models import ProviderEvent
from hub.errors import StartupError
from hub.money import CURRENCIES, MAX_MINOR, known_currency, minor_units, to_minor
from hub.web.pages import UPLOAD_LIMIT
from tests.conftest import WEBHOOK_SECRET, installer_headers, operator_headers
from tests.stripe_helpers import balance, commissions, create_partner, post_event
from tests.web_helpers import admin_login, give_password, portal_login, post_form

# --- 13: HSTS, /metrics token, secret key length, downloads per program -----------------------


@pytest.mark.parametrize("base_url, hsts", [("https://hub.example.com", True),
                                            ("http://hub.test", False)])
def test_hsts_on_every_answer_when_the_base_url_is_https(make_hub, base_url, hsts):
    hub = make_hub("sqlite", server={"base_url": base_url})
    with TestClient(create_app(hub)) as c:
        for path in ("/healthz", "/portal/login", "/admin/login", "/api/v1/partners", "/nope"):
            header = c.get(path).headers.get("strict-transport-security")
            assert (header == "max-age=31536000") if hsts else header is None, path


def _requests_counted(client, path, status):
    line = f'hub_http_requests_total{{method="POST",path="{path}",status="{status}"}} '
    found = [row for row in client.get("/metrics").text.splitlines() if row.startswith(line)]
    return int(found[0].split()[-1]) if found else 0


def test_webhook_deliveries_take_the_short_way_with_what_the_layers_gave_them(make_hub,
                                                                              monkeypatch):
    """`HubApp` sends a delivery straight to its endpoint: it is still timed under its route,
    answered with HSTS on an https hub, and an exception still gets the app's JSON answer."""
    import connectors.stripe
    from hub.app import HubApp

    hub = make_hub("sqlite", server={"base_url": "https://hub.example.com"})
    app = create_app(hub)
    assert isinstance(app, HubApp) and "/webhooks/stripe" in app.webhooks
    with TestClient(app) as c:
        # The counters are the process's: what this test adds to them.
        before = {code: _requests_counted(c, "/webhooks/stripe", code) for code in (200, 400, 500)}
        ok = _signed(c, st.event("customer.created", {"id": "cus_short", "object": "customer"}))
        forged = c.post("/webhooks/stripe", content=b"{}", headers={"Stripe-Signature": "t=1,v1=x"})
        assert ok.status_code == 200 and forged.status_code == 400
        for answer in (ok, forged):
            assert answer.headers["strict-transport-security"] == "max-age=31536000"
        assert _requests_counted(c, "/webhooks/stripe", 200) == before[200] + 1
        assert _requests_counted(c, "/webhooks/stripe", 400) == before[400] + 1

        def broken(*args, **kwargs):
            raise RuntimeError("a bug, not the sender's fault")

        monkeypatch.setattr(connectors.stripe, "verify", broken)
        failed = c.post("/webhooks/stripe", content=b"{}", headers={"Stripe-Signature": "t=1"})
        assert failed.status_code == 500
        assert failed.json() == {"error": {"code": "internal", "message": "internal error"}}
        assert "strict-transport-security" in failed.headers
        assert _requests_counted(c, "/webhooks/stripe", 500) == before[500] + 1
        # With a query string (or another method) the delivery takes the usual way.
        monkeypatch.undo()
        assert c.post("/webhooks/stripe?x=1", content=b"{}").status_code == 400
        assert c.get("/webhooks/stripe").status_code == 405
    assert _stored(hub) == 1


def test_metrics_can_be_closed_with_a_token(make_hub):
    with TestClient(create_app(make_hub("sqlite"))) as c:
        assert c.get("/metrics").status_code == 200  # no token configured: open, as before
    hub = make_hub("sqlite", server={"metrics_token": "metrics-token-0123456789"})
    with TestClient(create_app(hub)) as c:
        for headers in ({}, {"Authorization": "Bearer wrong"},
                        {"Authorization": "Basic metrics-token-0123456789"}):
            r = c.get("/metrics", headers=headers)
            assert r.status_code == 401 and "hub_" not in r.text, headers
        ok = c.get("/metrics", headers={"Authorization": "Bearer metrics-token-0123456789"})
        assert ok.status_code == 200 and "# TYPE" in ok.text


@pytest.mark.parametrize("key", ["x", "k" * 31])
def test_a_short_secret_key_stops_start_up(key):
    with pytest.raises(StartupError) as err:
        config_from_dict({"server": {"secret_key": key}})
    assert "[server] secret_key" in str(err.value) and "32" in str(err.value)
    assert key not in str(err.value)
    with pytest.raises(StartupError):
        load_config(env={"HUB_SECRET_KEY": key})


def test_long_and_empty_secret_keys_are_accepted():
    assert config_from_dict({"server": {"secret_key": "k" * 32}}).server.secret_key == "k" * 32
    assert config_from_dict({"server": {"secret_key": ""}}).server.secret_key == ""


@pytest.fixture
def module_zip(tmp_path):
    path = tmp_path / "odoopbx.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("odoopbx/__manifest__.py", "{'name': 'OdooPBX'}\n")
    return path


PROGRAMS = {"crazycall": {"plugin": "crazycall", "currency": "USD"},
            "odoopbx": {"plugin": "odoopbx"}}


@pytest.mark.parametrize("table", [{}, {"program": "odoopbx"}])
def test_a_download_refuses_another_programs_partner_code(make_hub, backend, module_zip, table):
    downloads = {"pbx" if table else "odoopbx": {"archive": str(module_zip), **table}}
    product = next(iter(downloads))
    hub = make_hub(backend, programs=PROGRAMS, downloads=downloads)
    with TestClient(create_app(hub)) as c:
        other = create_partner(c, program="crazycall", email="cc@p.test")
        own = create_partner(c, program="odoopbx", kind="referral", email="pbx@p.test")
        assert own["status"] == "active", own
        r = c.get(f"/download/{product}", params={"code": other["code"]})
        assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_code"
        r = c.get(f"/download/{product}", params={"code": own["code"]})
        assert r.status_code == 200
        stamped = zipfile.ZipFile(io.BytesIO(r.content)).read("partner_code.txt").decode()
        assert stamped.strip() == own["code"]


def test_a_download_naming_an_unknown_program_stops_start_up(module_zip):
    with pytest.raises(StartupError, match=r"\[downloads.pbx\] program"):
        config_from_dict({"programs": PROGRAMS,
                          "downloads": {"pbx": {"archive": str(module_zip), "program": "nope"}}})


# --- 12: the body limit counts the streamed body, not only Content-Length ---------------------

MB = 1024 * 1024


def _post_endless(app, path, content_type, first=b""):
    """POST a body that never ends, in 1 MB chunks without Content-Length (as a chunked upload
    arrives), straight to the ASGI app. Returns the status and how many MB the app read; a
    hub that reads everything gets a disconnect after 200 MB."""
    read = {"chunks": 0}
    answer = {}

    async def receive():
        read["chunks"] += 1
        if read["chunks"] > 200:
            return {"type": "http.disconnect"}
        body = first if read["chunks"] == 1 and first else b"a" * MB
        return {"type": "http.request", "body": body, "more_body": True}

    async def send(message):
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "server": ("hub.test", 80), "client": ("127.0.0.1", 5000),
             "headers": [(b"host", b"hub.test"), (b"content-type", content_type.encode()),
                         (b"transfer-encoding", b"chunked")]}
    asyncio.run(app(scope, receive, send))
    return answer.get("status"), read["chunks"]


MULTIPART_FILE = (b'--xx\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n'
                  b"\r\n")


@pytest.mark.parametrize("path", ["/portal/login", "/admin/login", "/admin/materials",
                                  "/portal/settings"])
def test_a_chunked_form_upload_stops_at_the_limit(make_hub, path):
    """Issue 16 finding 12: 200 MB were spooled to disk before the CSRF refusal."""
    app = create_app(make_hub("sqlite"))
    status, chunks = _post_endless(app, path, "multipart/form-data; boundary=xx", MULTIPART_FILE)
    assert status == 413
    assert chunks <= UPLOAD_LIMIT // MB + 2


def test_a_chunked_urlencoded_form_stops_early(make_hub):
    app = create_app(make_hub("sqlite"))
    status, chunks = _post_endless(app, "/portal/login", "application/x-www-form-urlencoded",
                                   b"email=a%40b.test&password=")
    assert status in (400, 413) and chunks <= UPLOAD_LIMIT // MB + 2


@pytest.mark.parametrize("path", ["/api/v1/signups", "/api/v1/installs", "/webhooks/stripe",
                                  "/webhooks/paypal"])
def test_a_chunked_api_or_webhook_body_stops_at_the_limit(make_hub, path):
    app = create_app(make_hub("sqlite"))
    status, chunks = _post_endless(app, path, "application/json", b'{"a": "')
    assert status in (401, 413)  # refused before (no token) or while reading; never read whole
    assert chunks <= 3


# --- 6: signed provider events with junk amounts or currencies are refused, not booked ----------


def _signed(client, evt):
    body, headers = st.signed_request(evt, WEBHOOK_SECRET)
    return client.post("/webhooks/stripe", content=body, headers=headers)


def _stored(hub):
    with hub.sessions() as session:
        return session.scalar(select(func.count()).select_from(ProviderEvent))


JUNK_INVOICES = [
    ({"tax": -100000}, "legacy"),                   # a negative tax: net above gross
    ({"total_taxes": [{"amount": -100000}]}, "basil"),
    ({"currency": ""}, "basil"), ({"currency": 123}, "basil"),
    ({"currency": 'usd"><script>'}, "basil"), ({"currency": "xyz"}, "basil"),
    ({"amount_paid": "7000"}, "basil"), ({"amount_paid": 49.99}, "basil"),
    ({"amount_paid": True}, "basil"), ({"amount_paid": 2**63 - 1}, "basil"),
    ({"amount_paid": 10**12}, "basil"), ({"total_taxes": [{"amount": "100"}]}, "basil"),
]


@pytest.mark.parametrize("change, shape", JUNK_INVOICES)
def test_a_signed_invoice_with_a_junk_amount_or_currency_is_refused(client, hub, change, shape):
    """Issue 16 finding 6: `tax: -100000` gave $210 on a $50 invoice, junk currencies became
    balances, "7000" was booked, 49.99 truncated and 2^63-1 broke every page and `hub tick`."""
    partner = create_partner(client)
    invoice = st.invoice("in_junk", customer_id="cus_junk", amount=5000, subscription_id="sub_j",
                         partner_code=partner["code"], shape=shape)
    r = _signed(client, st.event("invoice.paid", {**invoice, **change}))
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_event", r.text
    assert _stored(hub) == 0
    assert commissions(client, partner["id"]) == []
    # the same invoice with sane values is booked: the refusal was the values, nothing else
    post_event(client, st.event("invoice.paid", invoice))
    assert balance(client, partner["id"])["pending"] == 1000
    assert client.get("/api/v1/partners/" + partner["id"], headers=operator_headers()).is_success


@pytest.mark.parametrize("field, value", [("amount_refunded", "100"), ("amount_refunded", -5),
                                          ("amount_refunded", 10**15)])
def test_a_signed_refund_with_a_junk_amount_is_refused(client, hub, field, value):
    charge = {"id": "ch_x", "object": "charge", "invoice": "in_x", "payment_intent": None,
              field: value}
    r = _signed(client, st.event("charge.refunded", charge))
    assert r.status_code == 400 and _stored(hub) == 0


def test_the_money_table_knows_iso_4217_with_exponents():
    assert (CURRENCIES["USD"], CURRENCIES["JPY"], CURRENCIES["KWD"], CURRENCIES["CLF"]) == (
        2, 0, 3, 4)
    assert len(CURRENCIES) > 150 and all(len(c) == 3 and c.isupper() for c in CURRENCIES)
    assert not known_currency("usd") and not known_currency("XXX") and not known_currency(123)
    with pytest.raises(TypeError):
        minor_units("7000")
    with pytest.raises(TypeError):
        minor_units(49.99)
    with pytest.raises(TypeError):
        minor_units(True)
    with pytest.raises(ValueError):
        minor_units(MAX_MINOR)
    with pytest.raises(ValueError):
        minor_units(-1)
    assert minor_units(None) == 0 and minor_units(MAX_MINOR - 1) == MAX_MINOR - 1
    for text in ("abc", "NaN", "Infinity", "1e30", "-1e13"):
        with pytest.raises(ValueError):
            to_minor(text, "USD")


# --- 7: odd input is a 4xx or a page, never a 500 ---------------------------------------------

DEEP_LIST = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 50_000 + b"1" + b"}" * 50_000


@pytest.mark.parametrize("path", ["/api/v1/signups", "/api/v1/installs", "/webhooks/paypal",
                                  "/api/v1/partners"])
@pytest.mark.parametrize("body", [DEEP_LIST, DEEP_OBJECT], ids=["list", "object"])
def test_deeply_nested_json_is_a_400(make_hub, path, body):
    hub = make_hub("sqlite", connectors={"paypal": {"mode": "sandbox", "webhook_id": "WH"}})
    headers = {**installer_headers(), "content-type": "application/json"}
    if path == "/api/v1/partners":
        headers.update(operator_headers())
    with TestClient(create_app(hub), raise_server_exceptions=False) as c:
        r = c.post(path, content=body, headers=headers)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json", r.text


HUGE = "99999999999999999999"


def test_extreme_dates_pages_and_ids_are_not_500(make_hub, backend):
    """Issue 16 finding 7: each of these answered a generic 500 with a traceback in the log."""
    hub = make_hub(backend)
    with TestClient(create_app(hub), raise_server_exceptions=False) as c:
        partner = create_partner(c)
        pid = partner["id"]
        api = {f"/api/v1/partners/{pid}/links?from=0001-01-01&to=9999-12-31": 200,
               f"/api/v1/partners/{pid}/links?to=0001-01-01": 200,
               f"/api/v1/partners/{pid}/links?from=9999-12-31&to=9999-12-31": 200,
               f"/api/v1/partners?limit={HUGE}&offset={HUGE}": 200,
               "/api/v1/partners?limit=%C2%B2": 422}
        for url, status in api.items():
            assert c.get(url, headers=operator_headers()).status_code == status, url
        wide = c.get(f"/api/v1/partners/{pid}/links?from=0001-01-01&to=9999-12-31",
                     headers=operator_headers()).json()
        assert (wide["from"], wide["to"]) == ("1970-01-01", "9000-12-31")
        give_password(hub, pid)
        assert portal_login(c, "ann@partners.test").status_code in (200, 303)
        portal = {"/portal/links?to=0001-01-01": 200,
                  "/portal/links?from=0001-01-01&to=9999-12-31": 200,
                  f"/portal/referrals?page={HUGE}": 200, f"/portal/transactions?page={HUGE}": 200,
                  "/portal/transactions?page=%C2%B2": 200, f"/portal/payouts?page={HUGE}": 200,
                  f"/portal/referrals/{HUGE}": 404, "/portal/referrals/%C2%B2": 404,
                  f"/portal/referrals/{2**63 - 1}": 404, f"/portal/referrals/{2**31}": 404,
                  "/portal/?period=9999": 200}
        for url, status in portal.items():
            assert c.get(url).status_code == status, url
        assert admin_login(c).status_code in (200, 303)
        admin = {f"/admin/partners?page={HUGE}": 200, f"/admin/audit?page={HUGE}": 200,
                 f"/admin/applications?page={HUGE}": 200, f"/admin/partners/{HUGE}": 404}
        for url, status in admin.items():
            assert c.get(url).status_code == status, url


def test_a_refused_manual_attribution_shows_the_form_again_not_a_500(make_hub, backend):
    """Found by the page fuzzer: the refusal rolled back the page's transaction and then read
    through the closed session."""
    hub = make_hub(backend)
    with TestClient(create_app(hub), raise_server_exceptions=False) as c:
        admin_login(c)
        for fields in ({"partner_id": "prt_nobody", "customer_ref": "cus_1"}, {}):
            r = post_form(c, "/admin/attribution", "/admin/attribution", **fields)
            assert r.status_code == 200 and "Manual attribution" in r.text, r.text[:300]


def test_the_new_tokens_come_from_the_environment_and_stay_secret():
    config = load_config(env={"HUB_INSTALLER_TOKEN": "inst-0123456789", "HUB_SIGNUPS_TOKEN":
                              "sign-0123456789", "HUB_METRICS_TOKEN": "metr-0123456789"})
    server = config.server
    assert (server.installer_token, server.signups_token, server.metrics_token) == (
        "inst-0123456789", "sign-0123456789", "metr-0123456789")
    assert "0123456789" not in repr(server)


def test_nul_characters_are_a_400_not_a_database_error(make_hub, backend):
    """Found while fuzzing: PostgreSQL refuses NUL in text, so a NUL in a form, a search, a path
    or a JSON string answered 500 there (SQLite took it)."""
    hub = make_hub(backend)
    with TestClient(create_app(hub), raise_server_exceptions=False) as c:
        partner = create_partner(c)
        signup = post_form(c, "/portal/signup", "/portal/signup", email="x\x00@y.test",
                           name="a\x00", password="long password 123",
                           password_again="long password 123", program="crazycall")
        assert signup.status_code == 400
        assert post_form(c, "/portal/login", "/portal/login", email="x\x00@y.test",
                         password="a\x00").status_code == 400
        admin_login(c)
        assert post_form(c, "/admin/attribution", "/admin/attribution",
                         partner_id=partner["id"], customer_ref="c\x00").status_code == 400
        for url in ("/admin/partners?q=a%00", "/admin/audit?subject=a%00",
                    "/api/v1/partners?q=%00"):
            assert c.get(url, headers=operator_headers()).status_code == 400, url
        for url in ("/admin/partners/prt%00x", "/r/%00", "/api/v1/partners/prt%00x"):
            assert c.get(url, headers=operator_headers()).status_code == 404, url
        r = c.post("/api/v1/partners", json={"program": "crazycall", "email": "n@p.test",
                                             "name": "a\x00b"}, headers=operator_headers())
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
        r = c.post("/api/v1/signups", json={"code": partner["code"], "email": "a@b.test",
                                            "customer_ref": "c\x00"}, headers=installer_headers())
        assert r.status_code == 400
    with hub.sessions() as session:
        assert session.scalar(select(func.count()).select_from(ProviderEvent)) == 0


def test_a_signed_event_with_a_nul_character_is_refused_not_a_500(client, hub):
    for evt in (st.event("customer.created", st.customer("cus_n", email="a\x00b@x.test")),
                st.event("customer.created", st.customer("cus_m\x00", email="ab@x.test"))):
        r = _signed(client, evt)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_event", r.text
    assert _stored(hub) == 0
