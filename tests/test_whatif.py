"""`hub whatif`: a program's stored history through its rules with changed settings, compared
with the real ledger, which stays byte-for-byte the same."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import SQLAlchemyError
from starlette.testclient import TestClient

from connectors import stripe_trigger as st
from hub.app import create_app
from hub.cli import main
from hub.db.models import AuditLog, Base
from hub.db.session import read_only
from hub.errors import StartupError
from hub.ingest.whatif import run_whatif
from tests.conftest import ADMIN_TOKEN, WEBHOOK_SECRET, installer_headers
from tests.stripe_helpers import create_partner, post_event

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
DAY = 86400


def pay(client: TestClient, invoice: str, customer: str, amount: int, at: int,
        currency: str = "usd", code: str | None = None) -> None:
    post_event(client, st.event("invoice.paid", st.invoice(
        invoice, customer_id=customer, amount=amount, currency=currency, paid_at=at,
        subscription_id=f"sub_{customer}", charge_id=f"ch_{invoice}", partner_code=code,
        shape="legacy")))


def crazycall_history(client: TestClient) -> dict[str, str]:
    """Ann: two payments, the first refunded 20%. Bob: a EUR payment and a disputed one.
    Cy: a self-referral. Plus a customer nobody referred."""
    ann = create_partner(client, email="ann@partners.test")
    bob = create_partner(client, email="bob@partners.test")
    cy = create_partner(client, email="cy@partners.test")
    pay(client, "in_a1", "cus_a", 4900, T0, code=ann["code"])
    pay(client, "in_a2", "cus_a", 9900, T0 + 31 * DAY)
    post_event(client, st.event("charge.refunded", st.charge_refunded(
        "ch_in_a1", amount=4900, amount_refunded=980, invoice_id="in_a1")))
    pay(client, "in_b1", "cus_b", 10000, T0 + 40 * DAY, currency="eur", code=bob["code"])
    pay(client, "in_b2", "cus_b", 5000, T0 + 45 * DAY, currency="eur")
    post_event(client, st.event("charge.dispute.created", st.dispute(
        "dp_b2", charge_id="ch_in_b2", amount=5000)))
    post_event(client, st.event("customer.created", st.customer(
        "cus_c", email="cy@partners.test", partner_code=cy["code"])))
    pay(client, "in_c1", "cus_c", 7700, T0)
    pay(client, "in_n1", "cus_n", 3000, T0)
    return {"ann": ann["id"], "bob": bob["id"], "cy": cy["id"]}


def dump(hub: Any) -> list[Any]:
    """Every row of every table, in primary-key order."""
    out = []
    with hub.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            out.append((table.name, [tuple(r) for r in rows]))
    return out


def sqlite_bytes(hub: Any) -> str | None:
    if hub.engine.dialect.name != "sqlite":
        return None
    files = [Path(hub.engine.url.database + suffix) for suffix in ("", "-wal")]
    return hashlib.sha256(b"".join(f.read_bytes() for f in files if f.exists())).hexdigest()


def by_partner(result: Any) -> dict[tuple[str, str], tuple[int, int, int]]:
    return {(p["partner_id"], p["currency"]): (p["current"], p["simulated"], p["difference"])
            for p in result["partners"]}


def test_crazycall_rate_20_to_25_percent(client, hub):
    ids = crazycall_history(client)
    before, before_bytes = dump(hub), sqlite_bytes(hub)

    result = run_whatif(hub, "crazycall", {"rate": "0.25"}).to_json()

    assert dump(hub) == before
    assert sqlite_bytes(hub) == before_bytes
    # Ann: 20%: 980 - 196 (a 20% refund) + 1980; 25%: 1225 - 245 + 2475
    # Bob: EUR 2000 (the disputed payment nets 0); 25%: 2500
    assert by_partner(result) == {(ids["ann"], "USD"): (2764, 3455, 691),
                                  (ids["bob"], "EUR"): (2000, 2500, 500)}
    assert result["totals"] == [
        {"currency": "EUR", "current": 2000, "simulated": 2500, "difference": 500},
        {"currency": "USD", "current": 2764, "simulated": 3455, "difference": 691}]
    assert [(m["month"], m["currency"], m["current"], m["simulated"])
            for m in result["months"]] == [
        ("2026-01", "USD", 784, 980), ("2026-02", "EUR", 2000, 2500),
        ("2026-02", "USD", 1980, 2475)]
    assert result["changes"] == {"rate": "0.25"}
    assert result["simulated_settings_hash"] != result["settings_hash"]


def test_unchanged_settings_reproduce_the_real_ledger(client, hub):
    crazycall_history(client)
    result = run_whatif(hub, "crazycall", {}).to_json()
    assert result["partners"] and all(p["difference"] == 0 for p in result["partners"])
    assert result["simulated_settings_hash"] == result["settings_hash"]


def test_window_keeps_commissions_earned_in_it_with_their_reversals(client, hub):
    ids = crazycall_history(client)
    jan = run_whatif(hub, "crazycall", {"rate": "0.25"},
                     until=datetime(2026, 2, 1, tzinfo=UTC)).to_json()
    assert by_partner(jan) == {(ids["ann"], "USD"): (784, 980, 196)}
    feb = run_whatif(hub, "crazycall", {"rate": "0.25"},
                     since=datetime(2026, 2, 1, tzinfo=UTC)).to_json()
    assert by_partner(feb) == {(ids["ann"], "USD"): (1980, 2475, 495),
                               (ids["bob"], "EUR"): (2000, 2500, 500)}


def test_callpage_window_shortened_to_one_month(make_hub, backend):
    hub = make_hub(backend, programs={"callpage": {"plugin": "callpage"}})
    with TestClient(create_app(hub)) as c:
        partner = create_partner(c, program="callpage")
        for i, day in enumerate((0, 20, 40, 400)):
            pay(c, f"in_w{i}", "cus_w", 4000, T0 + day * DAY, code=partner["code"])
    result = run_whatif(hub, "callpage", {"months": "1"}).to_json()
    # 25% of 4000 for the 3 payments in 12 months; only the 2 in the first month with months=1
    assert by_partner(result) == {(partner["id"], "USD"): (3000, 2000, -1000)}


def write_config(hub: Any, tmp_path: Path) -> str:
    url = hub.engine.url.render_as_string(hide_password=False)
    path = tmp_path / "hub.toml"
    path.write_text(f'[database]\nurl = {json.dumps(url)}\n'
                    f'[server]\nadmin_token = "{ADMIN_TOKEN}"\n'
                    f'[connectors.stripe]\nwebhook_secret = "{WEBHOOK_SECRET}"\n'
                    '[programs.crazycall]\nplugin = "crazycall"\n')
    return str(path)


def test_cli_json_and_table(client, hub, tmp_path, capsys):
    ids = crazycall_history(client)
    config = write_config(hub, tmp_path)
    assert main(["whatif", "--config", config, "--program", "crazycall", "--set", "rate=0.25",
                 "--json"]) == 0
    out = capsys.readouterr()
    body = json.loads(out.out)
    assert {"partner_id": ids["bob"], "currency": "EUR", "current": 2000, "simulated": 2500,
            "difference": 500} in body["partners"]
    assert "whatif [" in out.err  # the progress bar
    assert main(["whatif", "--config", config, "--program", "crazycall", "--set", "rate=0.25",
                 "--quiet", "--until", "2026-02-01"]) == 0
    table = capsys.readouterr().out
    assert f"{ids['ann']:<24} USD" in table and "$7.84" in table and "$9.80" in table
    assert "+$1.96" in table and "total" in table


@pytest.mark.parametrize("args, named", [
    (["--set", "rat=0.3"], "rat"),
    (["--set", "rate=abc"], "rate must be a number"),
    (["--set", "rate=2"], "rate must be between 0 and 1"),
    (["--set", "rate"], "expected key=value"),
    (["--set", "plugin=x"], "plugin"),
    (["--since", "yesterday"], "--since"),
])
def test_cli_bad_settings_exit_2_naming_the_key(make_hub, tmp_path, capsys, args, named):
    config = write_config(make_hub(), tmp_path)
    assert main(["whatif", "--config", config, "--program", "crazycall", *args]) == 2
    assert named in capsys.readouterr().err


def test_unknown_program_is_refused(hub):
    with pytest.raises(StartupError, match="no enabled program 'nope'"):
        run_whatif(hub, "nope", {})


def test_the_simulation_connection_cannot_write(hub):
    row = dict(actor="x", action="y", subject="z", details={},
               at=datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(SQLAlchemyError):
        with read_only(hub.engine) as conn:
            conn.execute(insert(AuditLog).values(**row))
    with hub.transaction() as session:  # and the pooled connection is writable again after
        session.execute(insert(AuditLog).values(**row))


def test_callbell_install_bounty_once_per_account_and_site(make_hub, backend):
    hub = make_hub(backend, programs={"callbell": {"plugin": "callbell"}})
    with TestClient(create_app(hub)) as c:
        partner = create_partner(c, program="callbell")
        for install_id, site in (("i1", "a.example"), ("i2", "a.example"), ("i3", "b.example")):
            assert c.post("/api/v1/installs", json={
                "install_id": install_id, "product": "widget", "site": site,
                "partner_code": partner["code"], "customer_ref": "cus_i"},
                headers=installer_headers()).status_code == 201
    result = run_whatif(hub, "callbell", {"install_bounty": "1500"}).to_json()
    assert by_partner(result) == {(partner["id"], "EUR"): (2000, 3000, 1000)}
    assert result["stats"]["rows"] == 3 and result["stats"]["lines"] == 2
