"""API keys, webhook secrets and tokens never appear in logs, error bodies, /openapi.json,
/metrics or /healthz. Every secret setting gets a recognisable value; flows that log (bad
signatures, PayPal failures, Stripe look-up failures, payouts retried, a start-up error) run with
every logger at DEBUG; then all captured text is searched for each secret."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import respx
from starlette.testclient import TestClient

from connectors import stripe_trigger as st
from hub.app import build_hub, create_app
from hub.config import config_from_dict
from hub.jobs.tick import run_tick
from tests.payout_helpers import SANDBOX, at, make_partner, pay
from tests.test_paypal_connector import paypal_event, transmission

ROOT = Path(__file__).resolve().parents[1]
SECRETS = {
    "admin_token": "ADMINTOKEN-s3cr3t-9f8e7d6c5b4a",
    "secret_key": "SESSIONKEY-s3cr3t-0a1b2c3d4e5f6a7b8c9d",
    "installer_token": "INSTALLERTOKEN-s3cr3t-1234",
    "signups_token": "SIGNUPSTOKEN-s3cr3t-5678",
    "metrics_token": "METRICSTOKEN-s3cr3t-9012",
    "stripe_api_key": "sk_test_STRIPEKEYs3cr3t51HxYz",
    "webhook_secret": "whsec_WEBHOOKs3cr3tAbCdEf012345",
    "paypal_client_id": "PAYPALCLIENTIDs3cr3t-AbC",
    "paypal_client_secret": "PAYPALCLIENTSECRETs3cr3t-XyZ",
    "paypal_webhook_id": "PAYPALWEBHOOKIDs3cr3t",
    "paypal_access_token": "A21AAPAYPALACCESSTOKENs3cr3t",
    "smtp_password": "SMTPPASSWORDs3cr3t-QwE",
}


def raw_config(tmp_path: Path) -> dict[str, Any]:
    return {
        "database": {"url": f"sqlite:///{tmp_path / 'hub.db'}"},
        "server": {"admin_token": SECRETS["admin_token"], "secret_key": SECRETS["secret_key"],
                   "installer_token": SECRETS["installer_token"], "base_url": "http://hub.test",
                   "signups_token": SECRETS["signups_token"],
                   "metrics_token": SECRETS["metrics_token"],
                   "allowed_domains": ["example.com"]},
        "connectors": {"stripe": {"api_key": SECRETS["stripe_api_key"],
                                  "webhook_secret": SECRETS["webhook_secret"]},
                       "paypal": {"mode": "sandbox", "client_id": SECRETS["paypal_client_id"],
                                  "client_secret": SECRETS["paypal_client_secret"],
                                  "webhook_id": SECRETS["paypal_webhook_id"]}},
        "queue": {"min_backoff_ms": 10, "max_backoff_ms": 20, "max_retries": 2},
        # Nothing listens on port 9: every mail fails and is retried (and logged).
        "email": {"url": f"smtp://mailer:{SECRETS['smtp_password']}@127.0.0.1:9",
                  "dir": str(tmp_path / "mail")},
        "programs": {"crazycall": {"plugin": "crazycall"}},
    }


def test_no_secret_in_logs_errors_or_documents(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    hub = build_hub(config_from_dict(raw_config(tmp_path)))
    seen: list[str] = []
    op = {"Authorization": f"Bearer {SECRETS['admin_token']}"}
    with respx.mock(assert_all_called=False) as net, TestClient(create_app(hub)) as c:
        net.post(f"{SANDBOX}/v1/oauth2/token").respond(200, json={
            "access_token": SECRETS["paypal_access_token"], "token_type": "Bearer",
            "expires_in": 32400})
        net.post(f"{SANDBOX}/v1/notifications/verify-webhook-signature").respond(
            500, json={"name": "INTERNAL_SERVICE_ERROR"})
        net.post(f"{SANDBOX}/v1/payments/payouts").mock(side_effect=[
            httpx.Response(500, json={"name": "INTERNAL_SERVICE_ERROR"}),
            httpx.ReadTimeout("slow"), httpx.Response(200, content=b"<html>bad gateway")] * 3)
        net.route(host="api.stripe.com").mock(side_effect=httpx.ConnectTimeout("stripe slow"))
        for response in _flows(c, hub, op):
            seen.append(f"{response.status_code} {dict(response.headers)} {response.text}")
        for path in ("/openapi.json", "/metrics", "/healthz"):
            seen.append(c.get(path).text)
        metrics = c.get("/metrics", headers={"Authorization": f"Bearer {SECRETS['metrics_token']}"})
        assert metrics.status_code == 200
        seen.append(metrics.text)
    seen.append(_startup_error(tmp_path))
    seen.extend(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    seen.append(caplog.text)
    text = "\n".join(seen)
    assert "payout" in text and "signature" in text.lower()  # the flows did log and answer
    assert "stripe customer lookup failed" in text and "PayPal HTTP 500" in text
    assert "ConnectionRefusedError" in text  # a mail failed on the SMTP URL and was retried
    leaked = [name for name, value in SECRETS.items() if value in text]
    assert not leaked, f"secrets found in logs/answers: {leaked}"


def _flows(c: TestClient, hub: Any, op: dict[str, str]) -> list[Any]:
    out = []
    evt = st.event("invoice.paid", st.invoice("in_s", customer_id="cus_s", amount=4900))
    body = json.dumps(evt)
    out.append(c.post("/webhooks/stripe", content=body,
                      headers={"Stripe-Signature": st.sign(body, "whsec_wrong")}))
    # a genuine event without attribution: the Stripe look-up times out
    out.append(c.post("/webhooks/stripe", content=body,
                      headers={"Stripe-Signature": st.sign(body, SECRETS["webhook_secret"])}))
    out.append(c.post("/webhooks/paypal", content=json.dumps(paypal_event(
        "PAYMENT.SALE.COMPLETED", {"id": "S1"})), headers=transmission()))
    out.append(c.get("/api/v1/partners", headers={"Authorization": "Bearer wrong"}))
    out.append(c.get("/api/v1/partners", headers=op))
    out.append(c.post("/api/v1/installs", json={"install_id": "i", "partner_code": "x",
                                                "product": "p"}))
    out.append(c.post("/api/v1/signups", json={"code": "x", "email": "a@b.test",
                                               "customer_ref": "c"},
                      headers={"Authorization": "Bearer wrong"}))
    out.append(c.get("/admin/login"))
    out.append(c.post("/admin/login", data={"token": SECRETS["admin_token"]}))
    partner = make_partner(hub, "crazycall", paypal_email="ann@pay.test")
    pay(hub, partner.code, 60_000, currency="usd")
    run_tick(hub, at("2026-02-10T00:00:00"))
    out.append(c.post(f"/api/v1/partners/{partner.id}/withdrawals", json={"currency": "USD"},
                      headers=op))
    payout_id = out[-1].json()["id"]
    out.append(c.post(f"/api/v1/payouts/{payout_id}/approve", headers=op))  # PayPal fails
    from hub.jobs.queue import queue_of
    queue_of(hub).join()
    out.append(c.get(f"/api/v1/payouts/{payout_id}", headers=op))
    assert out[-1].json()["status"] in ("queued", "failed", "sent"), out[-1].text
    return out


def _startup_error(tmp_path: Path) -> str:
    """`hub migrate` with every secret set and a bad program key: the message names the key."""
    cfg = tmp_path / "bad.toml"
    raw = raw_config(tmp_path)
    raw["programs"]["crazycall"]["rate"] = "twenty percent"
    cfg.write_text(_toml(raw))
    env = {"HUB_LOAD_PLUGINS": "", "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "hub.cli", "migrate", "--config", str(cfg)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "rate" in done.stderr, done.stderr
    return done.stdout + done.stderr


def _toml(raw: dict[str, Any], prefix: str = "") -> str:
    lines, tables = [], []
    for key, value in raw.items():
        if isinstance(value, dict):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {json.dumps(value)}")
    out = (f"[{prefix}]\n" if prefix and lines else "") + "\n".join(lines) + "\n"
    for key, value in tables:
        out += _toml(value, f"{prefix}.{key}" if prefix else key)
    return out
