"""Test-local program plugins with each payout policy shape, money-making helpers, a fake PayPal.

The plugins are named after the real programs whose payout rules they copy (PROGRAMS.md), so the
tests can switch to the real plugins once those are merged.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from connectors import stripe_trigger as st
from connectors.stripe import process as stripe_process
from hub import hookimpl
from hub.money import percent_of
from hub.programs import Draft, PayoutPolicy, ProgramKind, ProgramSettings
from hub.registry import load_registry, plugin_manager
from hub.runtime import Hub

SANDBOX = "https://api.sandbox.paypal.com"


@dataclass(frozen=True)
class PolicySettings(ProgramSettings):
    rate: Decimal = Decimal("0.5")


POLICIES: dict[str, Callable[[str], PayoutPolicy]] = {
    # odoopbx: automatic PayPal payout at €200 (partner) / €100 (referral)
    "odoopbx_like": lambda kind: PayoutPolicy(mode="automatic",
                                              minimum=20000 if kind == "partner" else 10000,
                                              every_months=3),
    # callpage: the partner asks from 50; a manager pays by hand
    "callpage_like": lambda kind: PayoutPolicy(mode="request", minimum=5000, methods=("manual",)),
    # callbell: asks from €50, choosing PayPal or a bank transfer
    "callbell_like": lambda kind: PayoutPolicy(mode="request", minimum=5000,
                                               methods=("paypal", "bank_transfer")),
    # calltrackingmetrics: everything earned through month M, paid at the end of M+1
    "ctm_like": lambda kind: PayoutPolicy(mode="monthly"),
    # a manual list every three months
    "quarterly_like": lambda kind: PayoutPolicy(mode="manual", every_months=3, methods=("manual",)),
}


class PolicyPlugin:
    """Pays `rate` of every payment; the payout policy is the program's shape above."""

    @hookimpl
    def register_programs(self, register: Any) -> None:
        for name in POLICIES:
            kinds = ("partner", "referral") if name == "odoopbx_like" else ("partner",)
            register(ProgramKind(name=name, settings=PolicySettings, kinds=kinds))

    @hookimpl
    def commissions_for_payment(self, program: Any, payment: Any, referral: Any,
                                history: Any) -> list[Draft]:
        return [Draft(key=f"pay:{payment.ref}",
                      amount=percent_of(payment.amount, program.settings.rate),
                      currency=payment.currency, earned_at=payment.occurred_at, rule="test_rate",
                      sentence=f"{program.settings.rate} of {payment.amount}")]

    @hookimpl
    def payout_policy(self, program: Any, partner_kind: str) -> PayoutPolicy:
        return POLICIES[program.plugin](partner_kind)


def policy_registry() -> Any:
    pm = plugin_manager()
    pm.register(PolicyPlugin(), name="policytest")
    return load_registry(pm)


def programs(**extra: dict[str, Any]) -> dict[str, dict[str, Any]]:
    tables = {name: {"plugin": name, "currency": "EUR"} for name in POLICIES}
    tables["crazycall"] = {"plugin": "crazycall", "currency": "USD"}
    for name, values in extra.items():
        tables[name].update(values)
    return tables


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def pay(hub: Hub, partner_code: str, amount: int, *, currency: str = "eur",
        when: datetime | None = None, customer: str | None = None) -> str:
    """A referred customer pays `amount` (a signed-path Stripe invoice.paid). Returns invoice id."""
    invoice_id = f"in_{secrets.token_hex(6)}"
    paid_at = int((when or at("2026-01-05T12:00:00")).timestamp())
    stripe_process(hub, st.event("invoice.paid", st.invoice(
        invoice_id, customer_id=customer or f"cus_{secrets.token_hex(5)}", amount=amount,
        currency=currency, subscription_id=f"sub_{secrets.token_hex(4)}", paid_at=paid_at,
        partner_code=partner_code, charge_id=f"ch_{invoice_id}", shape="legacy")))
    return invoice_id


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class FakePaypal:
    """PayPal's Payouts API as far as the hub uses it, with PayPal's own rules: a reused
    sender_batch_id is refused with USER_BUSINESS_ERROR and a link to the original batch."""

    def __init__(self, base: str = SANDBOX):
        self.base = base
        self.lock = threading.Lock()
        self.batches: dict[str, dict[str, Any]] = {}  # by sender_batch_id
        self.calls: list[tuple[str, str, dict[str, str], Any]] = []
        self.fail_creates = 0  # answer the next N creates with a 500 (nothing created)
        self.item_status = "SUCCESS"
        self.item_errors: dict[str, Any] | None = None
        # per receiver: (transaction_status, errors) overriding the two above
        self.item_outcomes: dict[str, tuple[str, dict[str, Any] | None]] = {}
        self.hang_after_accept: threading.Event | None = None  # accept, then never answer
        self.accepted = threading.Event()

    def creates(self) -> list[dict[str, Any]]:
        return [body for method, path, _, body in self.calls
                if method == "POST" and path.rstrip("/") == "/v1/payments/payouts"]

    def handle(self, method: str, path: str, headers: dict[str, str],
               body: bytes) -> tuple[int, Any]:
        parsed: Any = None
        if body and path != "/v1/oauth2/token":
            parsed = json.loads(body)
        with self.lock:
            self.calls.append((method, path, {k.lower(): v for k, v in headers.items()}, parsed))
        if path == "/v1/oauth2/token":
            return 200, {"scope": "https://uri.paypal.com/services/payments/payouts",
                         "access_token": "A21AAFakeToken", "token_type": "Bearer",
                         "app_id": "APP-80W284485P519543T", "expires_in": 32400, "nonce": "n"}
        path, _, query_text = path.partition("?")
        query = dict(pair.partition("=")[::2] for pair in query_text.split("&") if pair)
        parts = path.strip("/").split("/")
        if method == "POST" and parts == ["v1", "payments", "payouts"]:
            return self._create(parsed)
        if method == "GET" and len(parts) == 4 and parts[:3] == ["v1", "payments", "payouts-item"]:
            return self._item(parts[3])
        if method == "GET" and len(parts) == 4 and parts[:3] == ["v1", "payments", "payouts"]:
            return self._batch(parts[3], query)
        return 404, {"name": "RESOURCE_NOT_FOUND", "message": path}

    def _create(self, body: dict[str, Any]) -> tuple[int, Any]:
        with self.lock:
            if self.fail_creates > 0:
                self.fail_creates -= 1
                return 500, {"name": "INTERNAL_SERVICE_ERROR",
                             "message": "An internal service error occurred."}
            sender_batch_id = body["sender_batch_header"]["sender_batch_id"]
            existing = self.batches.get(sender_batch_id)
            if existing is not None:
                return 400, {
                    "name": "USER_BUSINESS_ERROR", "message": "User business error.",
                    "debug_id": secrets.token_hex(6),
                    "information_link": "https://developer.paypal.com/docs/api/payments.payouts-batch/#errors",
                    "details": [{"field": "SENDER_BATCH_ID", "location": "body",
                                 "issue": "Batch with given sender_batch_id already exists"}],
                    "links": [{"href": f"{self.base}/v1/payments/payouts/{existing['id']}",
                               "rel": "self", "method": "GET", "encType": "application/json"}]}
            items = [{"item_id": secrets.token_hex(6).upper(), "item": item}
                     for item in body["items"]]
            # "item" and "item_id": the first (for a one-item batch, the only) item
            batch = {"id": secrets.token_hex(6).upper(), "header": body["sender_batch_header"],
                     "items": items, "item_id": items[0]["item_id"], "item": items[0]["item"]}
            self.batches[sender_batch_id] = batch
        self.accepted.set()
        if self.hang_after_accept is not None:
            self.hang_after_accept.wait(60)  # PayPal has the batch; the caller never hears so
        return 201, {"batch_header": {"payout_batch_id": batch["id"], "batch_status": "PENDING",
                                      "sender_batch_header": batch["header"]},
                     "links": [{"href": f"{self.base}/v1/payments/payouts/{batch['id']}",
                                "rel": "self", "method": "GET", "encType": "application/json"}]}

    def _item_json(self, batch: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
        status, errors = self.item_outcomes.get(entry["item"]["receiver"],
                                                (self.item_status, self.item_errors))
        item = {"payout_item_id": entry["item_id"], "transaction_id": "TX" + entry["item_id"],
                "transaction_status": status, "payout_batch_id": batch["id"],
                "payout_item": entry["item"], "time_processed": "2026-02-01T10:00:00Z"}
        if errors:
            item["errors"] = errors
        return item

    def _batch(self, batch_id: str, query: dict[str, str]) -> tuple[int, Any]:
        """PayPal pages a batch's items: `page` (from 1) of `page_size` (default and at most
        1,000), with `total_pages` when `total_required`."""
        batch = next((b for b in self.batches.values() if b["id"] == batch_id), None)
        if batch is None:
            return 404, {"name": "INVALID_RESOURCE_ID",
                         "message": "Requested resource ID was not found."}
        page, size = int(query.get("page", 1)), min(int(query.get("page_size", 1000)), 1000)
        entries = batch["items"][(page - 1) * size:page * size]
        answer = {"batch_header": {"payout_batch_id": batch_id, "batch_status": "SUCCESS",
                                   "sender_batch_header": batch["header"]},
                  "items": [self._item_json(batch, e) for e in entries]}
        if query.get("total_required") == "true":
            answer["total_items"] = len(batch["items"])
            answer["total_pages"] = max(-(-len(batch["items"]) // size), 1)
        return 200, answer

    def _item(self, item_id: str) -> tuple[int, Any]:
        for batch in list(self.batches.values()):
            for entry in batch["items"]:
                if entry["item_id"] == item_id:
                    return 200, self._item_json(batch, entry)
        return 404, {"name": "INVALID_RESOURCE_ID",
                     "message": "Requested resource ID was not found."}

    def respx_side_effect(self, request: httpx.Request) -> httpx.Response:
        status, payload = self.handle(request.method, request.url.raw_path.decode(),
                                      dict(request.headers), request.content)
        return httpx.Response(status, json=payload)


class FakePaypalServer:
    """The fake on a real port, for a `hub worker` subprocess (which respx cannot reach)."""

    def __init__(self, fake: FakePaypal):
        self.fake = fake
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                status, payload = outer.fake.handle(self.command, self.path, dict(self.headers),
                                                    body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        fake.base = self.url
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakePaypalServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.fake.hang_after_accept is not None:
            self.fake.hang_after_accept.set()
        self.server.shutdown()
        self.server.server_close()


def make_partner(hub: Hub, program: str, **fields: Any) -> Any:
    from hub.attribution.partners import create_partner

    with hub.transaction() as session:
        return create_partner(hub, session, program=program,
                              email=fields.pop("email", f"{secrets.token_hex(4)}@partners.test"),
                              **fields)


def payouts_of(hub: Hub, partner_id: str) -> list[Any]:
    from sqlalchemy import select

    from hub.db.models import Payout

    with hub.sessions() as session:
        return list(session.scalars(select(Payout).where(Payout.partner_id == partner_id)
                                    .order_by(Payout.created_at)))


def balance_of(hub: Hub, partner_id: str, currency: str = "EUR") -> dict[str, int]:
    from hub.ledger import entries as ledger

    with hub.sessions() as session:
        for entry in ledger.balances(session, partner_id):
            if entry["currency"] == currency:
                return dict(entry)
    return {"currency": currency, "pending": 0, "payable": 0, "in_payout": 0, "paid": 0,
            "voided": 0}


@contextlib.contextmanager
def sandbox_paypal() -> Iterator[FakePaypal]:
    """A FakePaypal answering PayPal's sandbox API through respx while the block runs."""
    import respx

    paypal = FakePaypal()
    with respx.mock(assert_all_called=False) as router:
        router.route(host="api.sandbox.paypal.com").mock(side_effect=paypal.respx_side_effect)
        yield paypal
