"""Coupons, installs, stamped downloads, manual assignment and the click-to-commission scenario."""

from __future__ import annotations

import io
import zipfile

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from connectors import stripe_trigger as st
from hub.app import create_app
from hub.config import config_from_dict
from hub.db.models import AuditLog
from hub.errors import StartupError
from tests.attribution_helpers import click, params, referrals, signup
from tests.conftest import installer_headers, operator_headers
from tests.stripe_helpers import balance, commissions, create_partner, post_event


def map_coupon(client, partner_id, code, expect=201):
    response = client.post(f"/api/v1/partners/{partner_id}/coupons", json={"code": code},
                           headers=operator_headers())
    assert response.status_code == expect, response.text
    return response.json()


def test_checkout_coupon_attributes_and_the_invoice_earns(client):
    partner = create_partner(client)
    map_coupon(client, partner["id"], "SPRING24")
    map_coupon(client, partner["id"], "SPRING24", expect=200)
    other = create_partner(client, email="bo@partners.test")
    assert map_coupon(client, other["id"], "SPRING24", expect=409)["error"]["code"] == "code_taken"
    session = st.checkout_completed("cs_1", customer_id="cus_k", client_reference_id=None,
                                    email="k@customer.test")
    session["discounts"] = [{"coupon": "SPRING24", "promotion_code": None}]
    post_event(client, st.event("checkout.session.completed", session))
    post_event(client, st.event("invoice.paid", st.invoice("in_k", customer_id="cus_k",
                                                           amount=5000, subscription_id="s")))
    assert balance(client, partner["id"])["pending"] == 1000
    assert referrals(client, partner_id=partner["id"])[0]["source"] == "code"


@pytest.mark.parametrize("discounts", [
    # newer API: expanded Discount with source.coupon and an expanded promotion code
    {"discounts": [{"id": "di_1", "object": "discount", "promotion_code": {
        "id": "promo_1", "object": "promotion_code", "code": "ANN10"},
        "source": {"type": "coupon", "coupon": {"id": "cpn_x", "object": "coupon"}}}]},
    # legacy single discount with an expanded coupon and a promotion code id
    {"discount": {"object": "discount", "coupon": {"id": "cpn_y"}, "promotion_code": "ANN10"}},
])
def test_invoice_discount_shapes_attribute(client, discounts):
    partner = create_partner(client)
    map_coupon(client, partner["id"], "ANN10")
    invoice = st.invoice("in_d", customer_id="cus_d", amount=10000, subscription_id="s_d")
    invoice.update(discounts)
    post_event(client, st.event("invoice.paid", invoice))
    assert balance(client, partner["id"])["pending"] == 2000


def test_customer_discount_and_click_id_as_client_reference(client):
    partner = create_partner(client)
    map_coupon(client, partner["id"], "promo_9")
    customer = st.customer("cus_p", email="p@customer.test")
    customer["discount"] = {"coupon": {"id": "cpn_z"}, "promotion_code": "promo_9"}
    post_event(client, st.event("customer.created", customer))
    assert referrals(client, partner_id=partner["id"])[0]["customer_ref"] == "cus_p"
    clicked = create_partner(client, email="cl@partners.test")
    click_id = params(click(client, clicked["code"]))["click_id"]
    post_event(client, st.event("checkout.session.completed", st.checkout_completed(
        "cs_c", customer_id="cus_q", client_reference_id=click_id)))
    [row] = referrals(client, partner_id=clicked["id"])
    assert (row["source"], row["click_id"]) == ("link", click_id)


def test_the_partners_own_install_is_flagged_and_earns_nothing(client):
    partner = create_partner(client, customer_ref="cus_own", website="https://www.ann-shop.test")
    for install_id, customer_ref, site in (("i-own", "cus_own", None),
                                           ("i-site", "cus_other", "ann-shop.test")):
        client.post("/api/v1/installs", json={"install_id": install_id, "product": "widget",
                                              "partner_code": partner["code"], "site": site,
                                              "customer_ref": customer_ref},
                    headers=installer_headers())
        post_event(client, st.event("invoice.paid", st.invoice(
            f"in_{install_id}", customer_id=customer_ref, amount=9000, subscription_id="s")))
    assert balance(client, partner["id"])["pending"] == 0
    flagged = {r["customer_ref"]: r["flag_reason"] for r in referrals(client, flagged="true")}
    assert flagged == {"cus_own": "the partner's own customer account",
                       "cus_other": "an installation on the partner's own website"}


@pytest.fixture
def module_zip(tmp_path):
    path = tmp_path / "odoopbx.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("odoopbx/__manifest__.py", "{'name': 'OdooPBX'}\n")
    return path


def test_download_carries_the_code_that_a_later_install_reports(make_hub, backend, module_zip):
    hub = make_hub(backend, downloads={"odoopbx": {"archive": str(module_zip),
                                                   "stamp_path": "odoopbx/partner_code.txt"}})
    with TestClient(create_app(hub)) as c:
        partner = create_partner(c)
        response = c.get("/download/odoopbx", params={"code": partner["code"]})
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/zip"
        archive = zipfile.ZipFile(io.BytesIO(response.content))
        assert "odoopbx/__manifest__.py" in archive.namelist()
        stamped = archive.read("odoopbx/partner_code.txt").decode().strip()
        assert stamped == partner["code"]
        # what the installer does with it
        c.post("/api/v1/installs", json={"install_id": "pbx-1", "product": "odoopbx",
                                         "partner_code": stamped}, headers=installer_headers())
        post_event(c, st.event("customer.created", st.customer("cus_pbx", email="x@pbx.test",
                                                               install_id="pbx-1")))
        post_event(c, st.event("invoice.paid", st.invoice("in_pbx", customer_id="cus_pbx",
                                                          amount=20000, subscription_id="s")))
        assert balance(c, partner["id"])["pending"] == 4000
        assert referrals(c, partner_id=partner["id"])[0]["source"] == "install"
        plain = zipfile.ZipFile(io.BytesIO(c.get("/download/odoopbx").content))
        assert plain.namelist() == ["odoopbx/__manifest__.py"]
        assert zipfile.ZipFile(module_zip).namelist() == ["odoopbx/__manifest__.py"]
        for url, code in (("/download/odoopbx?code=nobody", "unknown_code"),
                          ("/download/odoopbx?code=%22%3E%3Cx", "unknown_code"),
                          ("/download/nothing?code=x", "unknown_product")):
            bad = c.get(url)
            assert (bad.status_code, bad.json()["error"]["code"]) == (404, code)


def test_download_config_is_validated_at_start_up(module_zip, tmp_path):
    not_zip = tmp_path / "a.txt"
    not_zip.write_text("hello")
    cases = [({"archive": str(tmp_path / "missing.zip")}, "[downloads.pbx] archive"),
             ({"archive": str(not_zip)}, "not a readable zip"),
             ({"archive": str(module_zip), "stamp_path": "../x.txt"}, "stamp_path"),
             ({"archive": str(module_zip), "stamp_path": "odoopbx/__manifest__.py"}, "stamp_path"),
             ({"stamp_path": "x"}, "missing required key 'archive'"),
             ({"archive": str(module_zip), "colour": 1}, "unknown key 'colour'")]
    for table, message in cases:
        with pytest.raises(StartupError, match=message.replace("[", r"\[").replace("]", r"\]")):
            config_from_dict({"downloads": {"pbx": table}})


def test_manual_assignment_then_reassignment_moves_only_future_commissions(client, hub):
    ann = create_partner(client)
    bob = create_partner(client, email="bob@partners.test")
    post_event(client, st.event("invoice.paid", st.invoice(
        "in_m1", customer_id="cus_m", amount=10000, subscription_id="s", paid_at=1_767_225_600)))
    body = {"partner_id": ann["id"], "customer_ref": "cus_m",
            "effective_from": "2026-01-05T00:00:00Z"}
    first = client.post("/api/v1/referrals", json=body, headers=operator_headers())
    assert (first.status_code, first.json()["source"]) == (201, "manual")
    assert balance(client, ann["id"])["pending"] == 2000  # a first assignment settles the past
    same = client.post("/api/v1/referrals", json=body, headers=operator_headers())
    assert same.json()["outcome"] == "unchanged"
    move = client.post("/api/v1/referrals", headers=operator_headers(), json={
        "partner_id": bob["id"], "customer_ref": "cus_m", "effective_from": "2026-02-01T00:00:00Z"})
    assert (move.status_code, move.json()["outcome"], move.json()["partner_id"]) == \
        (200, "reassigned", bob["id"])
    post_event(client, st.event("invoice.paid", st.invoice(
        "in_m0", customer_id="cus_m", amount=5000, subscription_id="s", paid_at=1_768_435_200)))
    post_event(client, st.event("invoice.paid", st.invoice(
        "in_m2", customer_id="cus_m", amount=10000, subscription_id="s", paid_at=1_770_000_000)))
    # a January invoice that arrives after the reassignment still earns for Ann
    assert balance(client, ann["id"])["pending"] == 3000
    assert balance(client, bob["id"])["pending"] == 2000
    assert [c["key"] for c in commissions(client, bob["id"])] == ["pay:stripe:in_m2"]
    back = client.post("/api/v1/referrals", headers=operator_headers(), json={
        "partner_id": ann["id"], "customer_ref": "cus_m", "effective_from": "2026-01-20T00:00:00Z"})
    assert back.status_code == 422
    with hub.sessions() as s:
        actions = [a.action for a in s.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert actions[-2:] == ["referral.assign", "referral.reassign"]
    assert client.post("/api/v1/referrals", json=body).status_code == 401
    assert client.post("/api/v1/referrals", json={**body, "partner_id": "prt_x"},
                       headers=operator_headers()).status_code == 404


def test_scenario_click_signup_checkout_paid_and_no_stealing(client):
    ann = create_partner(client)
    bob = create_partner(client, email="bob@partners.test")
    click_id = params(click(client, ann["code"]))["click_id"]
    assert signup(client, click_id=click_id, email="carol@customer.test",
                  customer_ref="cus_carol")["partner_id"] == ann["id"]
    post_event(client, st.event("checkout.session.completed", st.checkout_completed(
        "cs_carol", customer_id="cus_carol", client_reference_id=click_id,
        email="carol@customer.test", subscription_id="sub_carol")))
    post_event(client, st.event("invoice.paid", st.invoice(
        "in_carol_1", customer_id="cus_carol", amount=4900, subscription_id="sub_carol")))
    assert balance(client, ann["id"])["pending"] == 980
    client.cookies.clear()
    bob_click = params(click(client, bob["code"], agent="Mozilla/5.0 Safari"))["click_id"]
    again = signup(client, click_id=bob_click, email="carol@customer.test",
                   customer_ref="cus_carol")
    assert again["partner_id"] == ann["id"]
    post_event(client, st.event("checkout.session.completed", st.checkout_completed(
        "cs_carol_2", customer_id="cus_carol", client_reference_id=bob["code"])))
    post_event(client, st.event("invoice.paid", st.invoice(
        "in_carol_2", customer_id="cus_carol", amount=4900, subscription_id="sub_carol")))
    assert balance(client, ann["id"])["pending"] == 1960
    assert balance(client, bob["id"])["pending"] == 0
    [row] = referrals(client, partner_id=ann["id"])
    assert (row["source"], row["click_id"], row["link_code"]) == ("link", click_id, ann["code"])
    stats = client.get(f"/api/v1/partners/{ann['id']}/links", headers=operator_headers()).json()
    [default] = stats["items"]
    assert (default["clicks"], default["signups"], default["subscriptions"]) == (1, 1, 1)
