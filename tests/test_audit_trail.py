"""Every operator action leaves an audit row (who, what, on what, when) that the admin shows.

The operator's mutating routes are found from the app (POST routes of the operator API and the
admin), so a new operator action without an audit row, or without a case here, fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import respx
from sqlalchemy import select
from starlette.testclient import TestClient

from connectors import stripe_trigger as st
from hub.app import build_hub, create_app
from hub.config import load_config
from hub.db.audit import SETTINGS_CHANGED, record_settings_changes
from hub.db.models import AuditLog, Payout
from hub.jobs.queue import queue_of
from tests.conftest import ADMIN_TOKEN, operator_headers
from tests.stripe_helpers import create_partner, post_event
from tests.test_authz_matrix import MATRIX
from tests.web_helpers import admin_login, csrf_of

ROOT = Path(__file__).resolve().parents[1]
OP = operator_headers()


def _rows(hub: Any) -> list[AuditLog]:
    with hub.sessions() as s:
        return list(s.scalars(select(AuditLog).order_by(AuditLog.id)))


@pytest.fixture
def setup(make_hub, backend, tmp_path):
    hub = make_hub(backend, server={"materials_dir": str(tmp_path / "m")},
                   programs={"crazycall": {"plugin": "crazycall"},
                             "calltrackingmetrics": {"plugin": "calltrackingmetrics"}})
    mock = respx.mock(assert_all_called=False)
    mock.post("http://receiver.test/h").respond(200)
    with mock, TestClient(create_app(hub)) as c:
        yield hub, c


def _api_actions(c: TestClient, hub: Any) -> dict[tuple[str, str], Any]:
    """One valid call per operator mutation; returns route -> response."""
    out: dict[tuple[str, str], Any] = {}

    def call(path: str, template: str, body: Any = None) -> Any:
        r = c.post(path, json=body or {}, headers=OP)
        out[("POST", template)] = r
        assert r.status_code < 300, (path, r.text)
        return r.json()

    ep = call("/api/v1/webhooks/endpoints", "/api/v1/webhooks/endpoints",
              {"url": "http://receiver.test/h"})
    ann = call("/api/v1/partners", "/api/v1/partners", {"program": "crazycall",
                                                        "email": "ann@p.test",
                                                        "paypal_email": "ann@pay.test"})
    ctm = create_partner(c, "calltrackingmetrics", email="ctm@p.test")
    ctm2 = create_partner(c, "calltrackingmetrics", email="ctm2@p.test")
    pid = f"/api/v1/partners/{ctm['id']}"
    call(f"{pid}/approve", "/api/v1/partners/{partner_id}/approve")
    call(f"{pid}/agreement", "/api/v1/partners/{partner_id}/agreement")
    call(f"{pid}/suspend", "/api/v1/partners/{partner_id}/suspend")
    call(f"{pid}/reactivate", "/api/v1/partners/{partner_id}/reactivate")
    call(f"/api/v1/partners/{ctm2['id']}/decline", "/api/v1/partners/{partner_id}/decline")
    a = f"/api/v1/partners/{ann['id']}"
    call(f"{a}/links", "/api/v1/partners/{partner_id}/links", {"destination": "https://example.com/x"})
    call(f"{a}/coupons", "/api/v1/partners/{partner_id}/coupons", {"code": "SPRING"})
    call("/api/v1/referrals", "/api/v1/referrals",
         {"partner_id": ann["id"], "customer_ref": "cus_m"})
    post_event(c, st.event("invoice.paid", st.invoice(
        "in_1", customer_id="cus_m", amount=100_000, subscription_id="sub_1", charge_id="ch_1",
        paid_at=1_767_225_600, shape="legacy")))
    from hub.jobs.tick import run_tick
    from tests.payout_helpers import at
    run_tick(hub, at("2026-03-01T00:00:00"))
    p1 = call(f"{a}/withdrawals", "/api/v1/partners/{partner_id}/withdrawals", {"currency": "USD"})
    call(f"/api/v1/payouts/{p1['id']}/reject", "/api/v1/payouts/{payout_id}/reject",
         {"reason": "check the address"})
    p2 = call(f"{a}/withdrawals", "/api/v1/partners/{partner_id}/withdrawals", {"currency": "USD"})
    call(f"/api/v1/payouts/{p2['id']}/approve", "/api/v1/payouts/{payout_id}/approve")
    queue_of(hub).join()  # the embedded queue sends it (PayPal dry-run) first
    with hub.transaction() as s:  # a dead-lettered payout is what an operator retries
        payout = s.get(Payout, p2["id"])
        payout.status, payout.dead_letter = "failed", True
    call(f"/api/v1/payouts/{p2['id']}/retry", "/api/v1/payouts/{payout_id}/retry")
    queue_of(hub).join()
    with hub.transaction() as s:
        s.get(Payout, p2["id"]).status = "approved"
    call(f"/api/v1/payouts/{p2['id']}/mark-paid", "/api/v1/payouts/{payout_id}/mark-paid",
         {"reference": "bank-42"})
    delivery = c.get("/api/v1/webhooks/deliveries", headers=OP).json()["items"][0]
    call(f"/api/v1/webhooks/deliveries/{delivery['id']}/replay",
         "/api/v1/webhooks/deliveries/{delivery_id}/replay")
    call(f"/api/v1/webhooks/endpoints/{ep['id']}/disable",
         "/api/v1/webhooks/endpoints/{endpoint_id}/disable")
    return out


def test_every_operator_action_is_audited_with_who_and_when(setup):
    hub, c = setup
    mutations = [r for r, rule in MATRIX.items() if rule == "operator_api" and r[0] == "POST"]
    before = len(_rows(hub))
    done = {}
    for route, response in _api_actions(c, hub).items():
        done[route] = response
    missing = [r for r in mutations if r not in done]
    assert not missing, f"operator actions this test does not exercise: {missing}"
    rows = _rows(hub)[before:]
    actions = {r.action for r in rows}
    for expected in ("partner.create", "partner.approve", "partner.agreement", "partner.suspend",
                     "partner.reactivate", "partner.decline", "link.create", "coupon.map",
                     "referral.assign", "payout.request", "payout.reject", "payout.approve",
                     "payout.retry", "payout.mark-paid", "webhook_endpoint.create",
                     "webhook_endpoint.disable", "webhook_delivery.replay"):
        assert expected in actions, (expected, sorted(actions))
    assert all(r.actor == "operator" and r.at is not None and r.subject for r in rows)
    paid = next(r for r in rows if r.action == "payout.mark-paid")
    assert paid.details.get("reference") == "bank-42"


def test_admin_actions_are_audited_and_the_admin_shows_the_trail(setup):
    hub, c = setup
    ann = create_partner(c, email="ann@p.test", name="Ann")
    admin = TestClient(create_app(hub))
    admin_login(admin)
    page = admin.get(f"/admin/partners/{ann['id']}").text
    r = admin.post(f"/admin/partners/{ann['id']}/status", data={"csrf": csrf_of(page),
                                                                "action": "suspend"})
    assert r.status_code in (200, 303)
    r = admin.post(f"/admin/partners/{ann['id']}/reset-link", data={"csrf": csrf_of(page)})
    assert r.status_code in (200, 303)
    inv = admin.get("/admin/invitations").text
    r = admin.post("/admin/invitations", data={"csrf": csrf_of(inv), "program": "crazycall",
                                                "email": "new@p.test", "name": "New"})
    assert r.status_code in (200, 303), r.text
    mats = admin.get("/admin/materials").text
    r = admin.post("/admin/materials", data={"csrf": csrf_of(mats), "title": "Banner",
                                              "program": "crazycall"},
                   files={"file": ("b.png", b"\x89PNG....", "image/png")})
    assert r.status_code in (200, 303), r.text
    rows = _rows(hub)
    actions = [r.action for r in rows]
    for expected in ("partner.suspend", "partner.password_reset_link", "partner.invite",
                     "material.upload"):
        assert expected in actions, actions
    material = next(r for r in rows if r.action == "material.upload").subject
    mats = admin.get("/admin/materials").text
    admin.post(f"/admin/materials/{material}/delete", data={"csrf": csrf_of(mats)})
    assert "material.delete" in [r.action for r in _rows(hub)]
    audit = admin.get("/admin/audit").text
    for action in ("partner.suspend", "partner.invite", "material.delete"):
        assert action in audit, action
    assert "operator" in audit
    # every admin POST route was exercised above (log-in and log-out are not actions)
    # (and in the test below); the what-if form only reads: a simulation changes nothing
    admin_posts = {r for r, rule in MATRIX.items() if rule == "admin_page" and r[0] == "POST"}
    assert admin_posts - {("POST", "/admin/whatif")} == {
        ("POST", "/admin/partners/{partner_id}/status"),
        ("POST", "/admin/partners/{partner_id}/reset-link"),
        ("POST", "/admin/invitations"), ("POST", "/admin/materials"),
        ("POST", "/admin/materials/{material_id}/delete"), *ADMIN_MONEY_ACTIONS}


ADMIN_MONEY_ACTIONS = {("POST", "/admin/attribution"),
                       ("POST", "/admin/partners/{partner_id}/payee"),
                       ("POST", "/admin/payouts/{payout_id}/{action}"),
                       ("POST", "/admin/webhooks/{delivery_id}/replay")}


def test_admin_attribution_payout_and_replay_actions_are_audited(setup):
    from hub.jobs.tick import run_tick
    from tests.payout_helpers import at

    hub, c = setup
    c.post("/api/v1/webhooks/endpoints", json={"url": "http://receiver.test/h"}, headers=OP)
    ann = create_partner(c, email="ann2@p.test", paypal_email="ann2@pay.test")
    admin = TestClient(create_app(hub))
    admin_login(admin)
    page = admin.get("/admin/attribution").text
    r = admin.post("/admin/attribution", data={"csrf": csrf_of(page), "partner_id": ann["id"],
                                               "customer_ref": "cus_adm", "provider": "stripe"})
    assert r.status_code in (200, 303), r.text
    post_event(c, st.event("invoice.paid", st.invoice(
        "in_adm", customer_id="cus_adm", amount=100_000, subscription_id="sub_adm",
        charge_id="ch_adm", paid_at=1_767_225_600, shape="legacy")))
    run_tick(hub, at("2026-03-01T00:00:00"))
    payout = c.post(f"/api/v1/partners/{ann['id']}/withdrawals", json={"currency": "USD"},
                    headers=OP)
    assert payout.status_code == 201, payout.text
    page = admin.get("/admin/payouts").text
    r = admin.post(f"/admin/payouts/{payout.json()['id']}/reject",
                   data={"csrf": csrf_of(page), "reason": "wrong address"})
    assert r.status_code in (200, 303), r.text
    queue_of(hub).join()
    delivery = c.get("/api/v1/webhooks/deliveries", headers=OP).json()["items"][0]
    page = admin.get("/admin/webhooks").text
    r = admin.post(f"/admin/webhooks/{delivery['id']}/replay", data={"csrf": csrf_of(page)})
    assert r.status_code in (200, 303), r.text
    page = admin.get(f"/admin/partners/{ann['id']}").text
    r = admin.post(f"/admin/partners/{ann['id']}/payee",
                   data={"csrf": csrf_of(page), "payout_method": "manual", "note": "by SEPA"})
    assert r.status_code in (200, 303), r.text
    rows = _rows(hub)
    actions = [row.action for row in rows]
    for expected in ("referral.assign", "payout.reject", "webhook.replay",
                     "partner.payout_method"):
        assert expected in actions, (expected, actions)
    assert all(row.actor and row.at is not None for row in rows)


def _config(path: Path, db: str, rate: str) -> Path:
    path.write_text(f'[database]\nurl = "{db}"\n[server]\nadmin_token = "{ADMIN_TOKEN}"\n'
                    f'secret_key = "{"k" * 32}"\n[programs.crazycall]\nplugin = "crazycall"\n'
                    f'rate = "{rate}"\n[programs.callpage]\nplugin = "callpage"\n')
    return path


def test_a_rate_change_in_the_config_is_audited_at_start_up(tmp_path):
    db = f"sqlite:///{tmp_path / 'hub.db'}"
    cfg = _config(tmp_path / "hub.toml", db, "0.20")
    hub = build_hub(load_config(str(cfg)))
    assert record_settings_changes(hub) == ["callpage", "crazycall"]  # first seen
    assert record_settings_changes(hub) == []  # nothing changed
    hub.engine.dispose()
    _config(cfg, db, "0.25")
    env = {"HUB_LOAD_PLUGINS": "", "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-m", "hub.cli", "migrate", "--config", str(cfg)],
                   check=True, cwd=ROOT, env=env, capture_output=True)
    hub = build_hub(load_config(str(cfg)))
    with hub.sessions() as s:
        rows = list(s.scalars(select(AuditLog).where(AuditLog.action == SETTINGS_CHANGED)
                              .order_by(AuditLog.id)))
    assert [r.subject for r in rows] == ["callpage", "crazycall", "crazycall"]
    first, changed = rows[1], rows[2]
    assert changed.details["old_hash"] == first.details["new_hash"] != changed.details["new_hash"]
    assert changed.details["settings"]["rate"] == "0.25" and changed.actor == "config"
    assert changed.at is not None
    admin = TestClient(create_app(hub))
    admin_login(admin)
    assert SETTINGS_CHANGED in admin.get("/admin/audit").text
    hub.engine.dispose()
