"""Issue 16 (hardening), the findings of part A that have no better home: HSTS, the metrics
token, short secret keys, downloads per program (13), streamed bodies (12), odd input (7) and
provider facts the hub refuses to book (6)."""

from __future__ import annotations

import asyncio
import io
import zipfile

import pytest
from starlette.testclient import TestClient

from hub.app import create_app
from hub.config import config_from_dict, load_config
from hub.errors import StartupError
from hub.web.pages import UPLOAD_LIMIT
from tests.stripe_helpers import create_partner

# --- 13: HSTS, /metrics token, secret key length, downloads per program -----------------------


@pytest.mark.parametrize("base_url, hsts", [("https://hub.example.com", True),
                                            ("http://hub.test", False)])
def test_hsts_on_every_answer_when_the_base_url_is_https(make_hub, base_url, hsts):
    hub = make_hub("sqlite", server={"base_url": base_url})
    with TestClient(create_app(hub)) as c:
        for path in ("/healthz", "/portal/login", "/admin/login", "/api/v1/partners", "/nope"):
            header = c.get(path).headers.get("strict-transport-security")
            assert (header == "max-age=31536000") if hsts else header is None, path


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
