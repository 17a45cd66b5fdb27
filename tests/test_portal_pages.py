"""The portal and admin pages through a TestClient: log-in, CSRF, scoping, resets, operator
actions."""

from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from connectors import stripe_trigger as st
from hub.app import create_app
from hub.db.models import AuditLog, Partner, PasswordResetToken, Referral
from tests.stripe_helpers import create_partner, post_event
from tests.web_helpers import PASSWORD, admin_login, csrf_of, give_password, portal_login, post_form

T0 = 1_767_225_600  # 2026-01-01


@pytest.fixture
def web(make_hub, backend, tmp_path):
    return make_hub(backend, server={"materials_dir": str(tmp_path / "materials")},
                    programs={"crazycall": {"plugin": "crazycall"},
                              "closed": {"plugin": "crazycall", "self_signup": False,
                                         "currency": "EUR", "locale": "de"}})


@pytest.fixture
def client(web):
    with TestClient(create_app(web)) as c:
        yield c


def new_client(hub):
    return TestClient(create_app(hub))


def partner_with_sale(client, hub, email="ann@partners.test", cus="cus_1", amount=4900, **kw):
    partner = create_partner(client, email=email, **kw)
    give_password(hub, partner["id"])
    post_event(client, st.event("customer.created", st.customer(
        cus, email=f"{cus}@customer.test", partner_code=partner["code"])))
    paid = st.event("invoice.paid", st.invoice(f"in_{cus}", customer_id=cus, amount=amount,
                                               subscription_id=f"sub_{cus}", charge_id=f"ch_{cus}",
                                               paid_at=T0, shape="legacy"))
    post_event(client, paid)
    return partner, paid


def test_partner_sees_the_commission_a_webhook_booked(client, web):
    partner, paid = partner_with_sale(client, web)
    assert portal_login(client, "ann@partners.test").url.path == "/portal/"
    dashboard = client.get("/portal/").text
    assert 'data-testid="pending">$9.80<' in dashboard and 'data-testid="total">$9.80<' in dashboard
    assert 'data-testid="subscriptions">1<' in dashboard
    assert "Your $9.80 is still on hold" in dashboard and "below the" not in dashboard
    transactions = client.get("/portal/transactions").text
    assert "20% of $49.00" in transactions and "$9.80" in transactions
    clients = client.get("/portal/referrals").text
    assert "cus_1@customer.test" in clients  # crazycall partners see their clients' names
    assert "paying" in clients and "$9.80" in clients

    download = client.get("/portal/transactions.csv")
    assert download.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert [(r["amount"], r["currency"], r["source_event"]) for r in rows] == [
        ("9.80", "USD", paid["id"])]


def test_trials_and_cancellations_show_as_client_status(client, web):
    partner = create_partner(client)
    give_password(web, partner["id"])
    for cus, status in (("cus_t", "trialing"), ("cus_c", "canceled")):
        post_event(client, st.event("customer.subscription.created", st.subscription(
            f"sub_{cus}", customer_id=cus, status=status, partner_code=partner["code"])))
    portal_login(client, "ann@partners.test")
    assert 'data-testid="trials">1<' in client.get("/portal/").text
    clients = client.get("/portal/referrals").text
    assert ">trial<" in clients and ">cancelled<" in clients


def test_pages_ask_for_a_log_in(client):
    for path in ("/portal/", "/portal/referrals", "/portal/transactions.csv", "/portal/settings"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == f"/portal/login?next={path}"
    response = client.get("/admin/partners", follow_redirects=False)
    assert response.headers["location"] == "/admin/login?next=/admin/partners"


def test_every_post_without_the_csrf_token_is_refused(client, web):
    partner = create_partner(client)
    give_password(web, partner["id"])
    assert client.post("/portal/login", data={"email": "ann@partners.test",
                                              "password": PASSWORD}).status_code == 403
    portal_login(client, "ann@partners.test")
    forged = {"action": "profile", "name": "Mallory", "website": "", "billing_details": ""}
    assert client.post("/portal/settings", data=forged).status_code == 403
    assert client.post("/portal/settings", data={**forged, "csrf": "guess"}).status_code == 403
    with web.sessions() as s:
        assert s.get(Partner, partner["id"]).name == "Ann"

    admin = new_client(web)
    admin_login(admin)
    response = admin.post(f"/admin/partners/{partner['id']}/status", data={"action": "suspend"})
    assert response.status_code == 403
    with web.sessions() as s:
        assert s.get(Partner, partner["id"]).status == "active"


def test_a_partner_cannot_open_another_partners_pages(client, web):
    ann, _ = partner_with_sale(client, web)
    bob = create_partner(client, email="bob@partners.test", name="Bob")
    give_password(web, bob["id"])
    with web.sessions() as s:
        ann_referral = s.scalar(select(Referral.id).where(Referral.partner_id == ann["id"]))

    portal_login(client, "ann@partners.test")
    assert client.get(f"/portal/referrals/{ann_referral}").status_code == 200
    other = new_client(web)
    portal_login(other, "bob@partners.test")
    assert other.get(f"/portal/referrals/{ann_referral}").status_code == 404
    assert other.get("/portal/referrals/abc").status_code == 404
    assert "No clients yet" in other.get("/portal/referrals").text
    assert 'data-testid="total">$0.00<' in other.get("/portal/").text
    assert len(other.get("/portal/transactions.csv").text.strip().splitlines()) == 1  # header
    # Bob's cookie never opens the admin, and Ann's session stays Ann's
    assert other.get("/admin/", follow_redirects=False).status_code == 303
    assert "Hello Ann" in client.get("/portal/").text


def test_wrong_password_and_inactive_partners_cannot_log_in(client, web):
    partner = create_partner(client)
    give_password(web, partner["id"])
    assert "E-mail or password is wrong" in portal_login(client, "ann@partners.test",
                                                         "nope nope nope").text
    assert "E-mail or password is wrong" in portal_login(client, "who@partners.test").text
    with web.transaction() as s:
        s.get(Partner, partner["id"]).status = "applied"
    response = portal_login(client, "ann@partners.test")
    assert "being reviewed" in response.text and response.url.path == "/portal/login"
    assert client.get("/portal/", follow_redirects=False).status_code == 303


def test_suspending_a_partner_ends_its_session(client, web):
    partner = create_partner(client)
    give_password(web, partner["id"])
    portal_login(client, "ann@partners.test")
    assert client.get("/portal/").status_code == 200
    admin = new_client(web)
    admin_login(admin)
    post_form(admin, f"/admin/partners/{partner['id']}", f"/admin/partners/{partner['id']}/status",
              action="suspend")
    assert client.get("/portal/", follow_redirects=False).status_code == 303


def test_operator_reset_link_sets_a_password_once(client, web):
    partner = create_partner(client)
    admin = new_client(web)
    admin_login(admin)
    page = post_form(admin, f"/admin/partners/{partner['id']}",
                     f"/admin/partners/{partner['id']}/reset-link").text
    url = re.search(r'value="http://hub.test(/portal/reset/[^"]+)"', page).group(1)
    token = url.rsplit("/", 1)[1]
    with web.sessions() as s:
        stored = s.scalars(select(PasswordResetToken)).one()
        assert stored.token_hash != token and token not in stored.token_hash
        assert s.scalar(select(func.count()).select_from(AuditLog).where(
            AuditLog.action == "partner.password_reset_link")) == 1

    form = client.get(url)
    assert "Choose a password" in form.text
    short = client.post(url, data={"csrf": csrf_of(form.text), "password": "short",
                                   "password_again": "short"})
    assert "at least 10 characters" in short.text
    done = client.post(url, data={"csrf": csrf_of(form.text), "password": "a new password!",
                                  "password_again": "a new password!"})
    assert done.url.path == "/portal/login"
    assert portal_login(client, "ann@partners.test", "a new password!").url.path == "/portal/"
    assert "used already or has expired" in client.get(url).text


def test_paypal_email_change_asks_for_the_password(client, web):
    partner = create_partner(client)
    give_password(web, partner["id"])
    portal_login(client, "ann@partners.test")
    wrong = post_form(client, "/portal/settings", "/portal/settings", action="paypal",
                      paypal_email="thief@evil.test", current_password="not mine at all")
    assert "current password is wrong" in wrong.text
    post_form(client, "/portal/settings", "/portal/settings", action="paypal",
              paypal_email="ann@paypal.test", current_password=PASSWORD)
    with web.sessions() as s:
        assert s.get(Partner, partner["id"]).paypal_email == "ann@paypal.test"


def test_changing_the_password_ends_other_sessions(client, web):
    partner = create_partner(client)
    give_password(web, partner["id"])
    portal_login(client, "ann@partners.test")
    elsewhere = new_client(web)
    portal_login(elsewhere, "ann@partners.test")
    post_form(client, "/portal/settings", "/portal/settings", action="password",
              current_password=PASSWORD, password="brand new secret",
              password_again="brand new secret")
    assert client.get("/portal/settings").status_code == 200
    assert elsewhere.get("/portal/settings", follow_redirects=False).status_code == 303


def test_self_signup_only_where_the_program_allows_it(client, web):
    form = client.get("/portal/signup")
    assert "<option>closed</option>" not in form.text
    made = client.post("/portal/signup", data={
        "csrf": csrf_of(form.text), "program": "crazycall", "name": "Cleo",
        "email": "cleo@partners.test", "password": "long enough pw"})
    assert made.url.path == "/portal/" and "Hello Cleo" in made.text
    refused = post_form(new_client(web), "/portal/signup", "/portal/signup", program="closed",
                        name="X", email="x@partners.test", password="long enough pw")
    assert refused.status_code == 422
    with web.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Partner)) == 1


def test_operator_approves_an_application_and_it_is_audited(client, web):
    partner = create_partner(client)
    with web.transaction() as s:
        s.get(Partner, partner["id"]).status = "applied"
    admin = new_client(web)
    assert "not the admin token" in admin_login(admin, "wrong").text
    admin_login(admin)
    page = admin.get("/admin/applications").text
    assert "ann@partners.test" in page
    post_form(admin, "/admin/applications", f"/admin/partners/{partner['id']}/status",
              action="approve", next="/admin/applications")
    with web.sessions() as s:
        assert s.get(Partner, partner["id"]).status == "active"
        assert s.scalars(select(AuditLog.action).where(AuditLog.subject == partner["id"])).all() \
            == ["partner.create", "partner.approve"]
    assert "ann@partners.test" not in admin.get("/admin/applications").text
    assert "partner.approve" in admin.get("/admin/audit").text


def test_admin_pages_show_partners_and_explanations(client, web):
    partner, paid = partner_with_sale(client, web)
    admin = new_client(web)
    admin_login(admin)
    assert "crazycall" in admin.get("/admin/").text
    assert "ann@partners.test" in admin.get("/admin/partners?q=ann").text
    assert "ann@partners.test" not in admin.get("/admin/partners?program=closed").text
    detail = admin.get(f"/admin/partners/{partner['id']}").text
    assert "20% of $49.00 paid on 2026-01-01" in detail and paid["id"] in detail
    exported = admin.get("/admin/exports/commissions.csv").text
    assert "980" in exported and partner["id"] in exported
    invited = post_form(admin, "/admin/invitations", "/admin/invitations", program="closed",
                        email="ivy@partners.test", name="Ivy")
    assert "ivy@partners.test" in invited.text
    with web.sessions() as s:
        assert s.scalar(select(AuditLog.action).where(AuditLog.action == "partner.invite"))


def test_materials_are_uploaded_by_the_operator_and_scoped_by_program(client, web):
    ann = create_partner(client)
    give_password(web, ann["id"])
    admin = new_client(web)
    admin_login(admin)
    for title, program in (("Banner", "crazycall"), ("Secret deck", "closed")):
        token = csrf_of(admin.get("/admin/materials").text)
        admin.post("/admin/materials", data={"csrf": token, "title": title, "program": program},
                   files={"file": (f"{title}.png", b"\x89PNG fake", "image/png")})
    portal_login(client, "ann@partners.test")
    page = client.get("/portal/materials").text
    assert "Banner" in page and "Secret deck" not in page
    ids = dict(re.findall(r'href="/portal/materials/(mat_[0-9a-f]+)" download>Download'
                          r'<span class="visually-hidden"> ([^<]+)<', page))
    banner = next(i for i, t in ids.items() if t == "Banner")
    download = client.get(f"/portal/materials/{banner}")
    assert (download.content == b"\x89PNG fake"
            and "attachment" in download.headers["content-disposition"])
    admin_page = admin.get("/admin/materials").text
    secret = re.search(r'/admin/materials/(mat_[0-9a-f]+)/delete[^>]*>.*?Secret deck', admin_page,
                       re.S)
    secret_id = re.findall(r'/admin/materials/(mat_[0-9a-f]+)/delete', admin_page)
    assert all(client.get(f"/portal/materials/{m}").status_code in (200, 404) for m in secret_id)
    assert sum(client.get(f"/portal/materials/{m}").status_code == 404 for m in secret_id) == 1
    assert secret is not None


def test_amounts_use_the_programs_currency_and_locale(client, web):
    partner = create_partner(client, program="closed")
    give_password(web, partner["id"])
    post_event(client, st.event("invoice.paid", st.invoice(
        "in_eur", customer_id="cus_eur", amount=1234500, currency="eur", subscription_id="sub_eur",
        partner_code=partner["code"], paid_at=T0, shape="legacy")))
    portal_login(client, "ann@partners.test")
    assert "2.469,00\u00a0€" in client.get("/portal/").text
