"""Finding 9 of issue 16: no CSV the hub serves carries a live spreadsheet formula.

Text a partner (or a rule, or an operator) wrote that starts with = + - @ tab or CR is written with
a leading single quote, in every export: the admin's partners, commissions and payouts, and the
partner's own transactions."""

from __future__ import annotations

import csv
import io

import pytest
from starlette.testclient import TestClient

from hub.app import create_app
from hub.clock import utcnow
from hub.db.models import Commission, Partner, Payout
from hub.web.csv_cells import csv_lines, safe_cell
from tests.stripe_helpers import create_partner
from tests.web_helpers import admin_login, give_password, portal_login

FORMULA = '=HYPERLINK("http://evil.test","click")'


@pytest.mark.parametrize(("raw", "written"), [
    (FORMULA, "'" + FORMULA), ("+1+1", "'+1+1"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tcmd", "'\tcmd"), ("\rcmd", "'\rcmd"), ("Ann =1", "Ann =1"), ("", ""),
    ("-12.50", "-12.50"), ("-7", "-7"), (-1250, -1250), (None, None)])
def test_a_cell_that_starts_a_formula_is_quoted(raw, written):
    assert safe_cell(raw) == written


def test_csv_lines_quote_every_row_also_past_a_chunk():
    text = "".join(csv_lines(["a"], ([f"={n}"] for n in range(2500))))
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 2501 and all(r[0].startswith("'=") for r in rows[1:])


@pytest.fixture
def client(hub):
    with TestClient(create_app(hub)) as c:
        yield c


def _rows(response):
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.text)))


def _poisoned(client, hub):
    """A partner whose name, website text, commission explanation and payout reference are
    formulas."""
    partner = create_partner(client, email="eve@partners.test", name=FORMULA)
    give_password(hub, partner["id"])
    now = utcnow()
    with hub.transaction() as s:
        row = s.get(Partner, partner["id"])
        row.paypal_email = "@eve@partners.test"
        s.add(Commission(id="com_x", program="crazycall", partner_id=partner["id"], key="+key",
                         amount=-500, currency="USD", earned_at=now, available_at=now,
                         rule={"sentence": "-1+cmd|' /C calc'!A0"}, created_at=now))
        s.add(Payout(id="po_x", partner_id=partner["id"], program="crazycall", amount=700,
                     currency="USD", status="paid", method="manual", receiver="=rcv",
                     reference="@ref", failure_reason="\tfail", period=None, attempts=0,
                     payee_details="=IBAN",
                     dead_letter=False, created_at=now, updated_at=now))
    return partner


def test_every_admin_export_neutralises_formulas(client, hub):
    partner = _poisoned(client, hub)
    admin_login(client)
    [who] = _rows(client.get("/admin/exports/partners.csv"))
    assert who["name"] == "'" + FORMULA and who["paypal_email"] == "'@eve@partners.test"
    [line] = _rows(client.get("/admin/exports/commissions.csv"))
    assert line["key"] == "'+key" and line["explanation"].startswith("'-1+cmd")
    assert line["amount_minor"] == "-500"  # a number stays a number
    [paid] = _rows(client.get("/admin/exports/payouts.csv"))
    assert (paid["receiver"], paid["reference"], paid["failure_reason"]) == (
        "'=rcv", "'@ref", "'\tfail")
    assert paid["partner_id"] == partner["id"] and paid["payee_details"] == "'=IBAN"


def test_the_partners_transactions_export_neutralises_formulas(client, hub):
    _poisoned(client, hub)
    portal_login(client, "eve@partners.test")
    rows = _rows(client.get("/portal/transactions.csv"))
    withdrawal = next(r for r in rows if r["type"] == "withdrawal")
    assert withdrawal["explanation"] == "'@ref" and withdrawal["amount"] == "-7.00"
