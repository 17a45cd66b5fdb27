"""PayPal: payouts out, billing events in, payout status back.

Payouts go through `paypalrestsdk` (`Payout.create`, `Payout.find`, `PayoutItem.find`), which is
deprecated: it is kept behind `PaypalGateway`, and its HTTP goes through httpx (`HttpxApi`
overrides the SDK's transport) so every call has a timeout and respx can test it. Webhooks are
verified by PayPal's own `verify-webhook-signature` endpoint (the SDK's `WebhookEvent.verify`
breaks on current pyOpenSSL).

No payout is paid twice: `sender_batch_id` derives from the hub's batch id (or, for a payout
sent alone, its payout id), `sender_item_id` from the payout id, and the PayPal-Request-Id is
the sender_batch_id, so a retry after a crash either gets PayPal's original answer or its
"batch already exists" error, whose link names the original batch. A batch's items are read
back page by page (`ITEMS_PAGE`) and each answer names its payout by sender_item_id.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import paypalrestsdk
from paypalrestsdk import exceptions as sdk_errors
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub import hookimpl
from hub.api.http import apply_verified_event, error_response, hub_of, read_body
from hub.attribution.customers import is_attributed
from hub.clock import parse_instant, utcnow
from hub.config import PaypalConfig
from hub.errors import BadRequest, BadSignature, HTTPError, PermanentError, TransientError
from hub.facts import (
    CustomerSeen,
    PaymentAdjusted,
    PaymentFailed,
    PaymentSucceeded,
    PayoutStatusChanged,
    SubscriptionChanged,
    well_typed,
)
from hub.ingest.events import Incoming, ingest, looked_up
from hub.money import exponent, to_minor
from hub.payouts.gateway import GatewayAnswer, PayoutOrder
from hub.registry import Connector
from hub.runtime import Hub

log = logging.getLogger(__name__)
PROVIDER = "paypal"
# PayPal item transaction_status -> the hub's payout status.
ITEM_STATUS = {"SUCCESS": "paid", "FAILED": "failed", "BLOCKED": "failed", "DENIED": "failed",
               "RETURNED": "returned", "REFUNDED": "returned", "REVERSED": "returned",
               "CANCELED": "returned", "UNCLAIMED": "unclaimed", "PENDING": "sent",
               "ONHOLD": "sent", "NEW": "sent"}
SUBSCRIPTION_STATUS = {"ACTIVE": "active", "SUSPENDED": "past_due", "CANCELLED": "cancelled",
                       "EXPIRED": "cancelled"}
ITEMS_PAGE = 1000  # PayPal's largest page_size for "show payout batch details"
TRANSMISSION_HEADERS = {"auth_algo": "paypal-auth-algo", "cert_url": "paypal-cert-url",
                        "transmission_id": "paypal-transmission-id",
                        "transmission_sig": "paypal-transmission-sig",
                        "transmission_time": "paypal-transmission-time"}


class HttpxApi(paypalrestsdk.Api):  # type: ignore[misc]
    """The SDK's Api with its transport replaced: httpx with a timeout instead of bare requests."""

    def __init__(self, client: httpx.Client, **options: Any):
        super().__init__(**options)
        self.client = client

    def http_call(self, url: str, method: str, **kwargs: Any) -> Any:
        response = self.client.request(method, url, content=kwargs.get("data"),
                                       headers=kwargs.get("headers"))
        return self.handle_response(response, response.text)

    def request(self, url: str, method: str, body: Any = None, headers: Any = None,
                refresh_token: Any = None) -> Any:
        # The SDK retries a 401 by recursing without limit; once is enough.
        try:
            return super().request(url, method, body, headers, refresh_token)
        except RecursionError:
            raise TransientError("PayPal keeps refusing the access token") from None


class SdkPayout(paypalrestsdk.Payout):  # type: ignore[misc]
    """The SDK's Payout with a path its own `join_url` handles: with the trailing slash it ships,
    Python 3.7+'s `re.sub` appends the id twice (`/payouts/ID/ID`), so `find` cannot work."""

    path = "v1/payments/payouts"


class SdkPayoutItem(paypalrestsdk.PayoutItem):  # type: ignore[misc]
    path = "v1/payments/payouts-item"


def minor_to_value(amount: int, currency: str) -> str:
    """10000 EUR -> "100.00": the decimal string PayPal expects."""
    exp = exponent(currency)
    return str(Decimal(amount).scaleb(-exp).quantize(Decimal(1).scaleb(-exp)))


class PaypalGateway:
    """Everything the hub asks of PayPal, in one small class (see
    `hub.payouts.states.PayoutGateway`)."""

    def __init__(self, conf: PaypalConfig, client: httpx.Client | None = None):
        self.conf = conf
        self.dry_run = conf.mode == "dry-run"
        self.api: HttpxApi | None = None
        if not self.dry_run:
            options: dict[str, Any] = dict(mode=conf.mode, client_id=str(conf.client_id),
                                           client_secret=str(conf.client_secret))
            if conf.api_base:
                options["endpoint"] = conf.api_base.rstrip("/")
            self.api = HttpxApi(client or httpx.Client(timeout=conf.timeout_seconds), **options)

    # payouts ---------------------------------------------------------------------------------

    def payout_body(self, order: PayoutOrder) -> dict[str, Any]:
        return self.batch_body(order.sender_batch_id, [order])

    def batch_body(self, sender_batch_id: str, orders: list[PayoutOrder]) -> dict[str, Any]:
        return {"sender_batch_header": {"sender_batch_id": sender_batch_id,
                                        "recipient_type": "EMAIL",
                                        "email_subject": self.conf.email_subject},
                "items": [{"recipient_type": "EMAIL", "receiver": order.receiver,
                           "note": order.note, "sender_item_id": order.sender_item_id,
                           "amount": {"value": minor_to_value(order.amount, order.currency),
                                      "currency": order.currency}} for order in orders]}

    def send(self, order: PayoutOrder) -> GatewayAnswer:
        return self.send_batch(order.sender_batch_id, [order])

    def send_batch(self, sender_batch_id: str, orders: list[PayoutOrder]) -> GatewayAnswer:
        body = self.batch_body(sender_batch_id, orders)
        if self.dry_run or self.api is None:
            return GatewayAnswer(status="dry_run", request=body)
        if not all(order.receiver for order in orders):
            raise PermanentError("the partner has no PayPal address")
        payout = SdkPayout(body, api=self.api)
        payout.request_id = sender_batch_id  # PayPal-Request-Id: PayPal's own idempotency
        if _call(payout.create):
            header = payout.batch_header
            return self._batch_answer(header.payout_batch_id if header else None,
                                      header.batch_status if header else None, body)
        batch_id = duplicate_batch_id(payout.error or {})
        if batch_id is None:
            raise PermanentError(_error_text(payout.error))
        return GatewayAnswer(status="sent", batch_id=batch_id, request=body)

    def _batch_answer(self, batch_id: str | None, status: str | None,
                      body: dict[str, Any]) -> GatewayAnswer:
        if not batch_id:
            raise TransientError("PayPal accepted the payout without a payout_batch_id")
        if status == "DENIED":
            return GatewayAnswer(status="failed", batch_id=batch_id, provider_status=status,
                                 reason="PayPal denied the payout batch", request=body)
        return GatewayAnswer(status="sent", batch_id=batch_id, provider_status=status, request=body)

    def check(self, order: PayoutOrder) -> GatewayAnswer:
        if self.api is None:
            return GatewayAnswer(status="dry_run")
        item_id = order.item_id or self._item_id(order)
        if item_id is None:
            return GatewayAnswer(status="sent", batch_id=order.batch_id)
        item = _call(lambda: SdkPayoutItem.find(item_id, api=self.api)).to_dict()
        return item_answer(item, order.batch_id)

    def _item_id(self, order: PayoutOrder) -> str | None:
        status, items = self.check_batch(str(order.batch_id))
        if status == "DENIED":
            raise PermanentError("PayPal denied the payout batch")
        return next((a.item_id for a in items if a.sender_item_id == order.sender_item_id), None)

    def check_batch(self, batch_id: str) -> tuple[str | None, list[GatewayAnswer]]:
        """The batch's status and every item's answer, `ITEMS_PAGE` items per request."""
        if self.api is None:
            return None, []
        api, status, page = self.api, None, 1
        answers: list[GatewayAnswer] = []
        while True:
            path = (f"{SdkPayout.path}/{batch_id}?page={page}&page_size={ITEMS_PAGE}"
                    "&total_required=true")
            batch = dict(_call(functools.partial(api.get, path)))
            status = (batch.get("batch_header") or {}).get("batch_status") or status
            items = batch.get("items") or []
            answers.extend(item_answer(item, batch_id) for item in items)
            if len(items) < ITEMS_PAGE or page >= int(batch.get("total_pages") or page):
                return status, answers
            page += 1

    # webhooks and lookups -----------------------------------------------------------------------

    def verify_webhook(self, headers: dict[str, str], raw_body: str) -> bool:
        """Ask PayPal whether this transmission is genuine. The event is embedded as received:
        re-serialising it can change bytes and fail the check."""
        if self.api is None or not self.conf.webhook_id:
            raise HTTPError("PayPal webhooks are not configured", code="not_configured", status=503)
        fields = {name: headers.get(header) for name, header in TRANSMISSION_HEADERS.items()}
        if not all(fields.values()):
            raise BadSignature("missing PayPal transmission headers")
        envelope = json.dumps({**fields, "webhook_id": str(self.conf.webhook_id)})
        data = envelope[:-1] + ', "webhook_event": ' + raw_body + "}"
        api = self.api
        url = api.endpoint.rstrip("/") + "/v1/notifications/verify-webhook-signature"
        answer = _call(lambda: api.http_call(url, "POST", data=data, headers=api.headers()))
        return (answer or {}).get("verification_status") == "SUCCESS"

    def subscription(self, subscription_id: str) -> dict[str, Any] | None:
        if self.api is None:
            return None
        api = self.api
        try:
            return dict(_call(lambda: api.get(f"v1/billing/subscriptions/{subscription_id}")))
        except (TransientError, PermanentError) as exc:
            log.warning("paypal subscription lookup failed for %s: %s", subscription_id, exc)
            return None


def _call(func: Callable[[], Any]) -> Any:
    """Run an SDK call; sort its failures into retryable and not."""
    try:
        return func()
    except httpx.HTTPError as exc:
        raise TransientError(f"PayPal unreachable: {type(exc).__name__}") from None
    except ValueError:  # a 2xx whose body is not JSON (a proxy's HTML page): ask again later
        raise TransientError("PayPal answered with a malformed body") from None
    except (sdk_errors.ServerError, sdk_errors.UnauthorizedAccess,
            sdk_errors.ResourceNotFound) as exc:
        raise TransientError(f"PayPal HTTP {_status(exc)}") from None
    except sdk_errors.ConnectionError as exc:
        if _status(exc) == 429:
            raise TransientError("PayPal rate limit") from None
        text = _error_text(_json(exc.content))
        raise PermanentError(f"PayPal HTTP {_status(exc)}: {text}") from None


def _status(exc: Any) -> Any:
    return getattr(exc.response, "status_code", "?")


def _json(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _error_text(error: Any) -> str:
    error = error.to_dict() if hasattr(error, "to_dict") else dict(error or {})
    details = "; ".join(str(d.get("issue", "")) for d in error.get("details") or []
                        if isinstance(d, dict))
    return f"{error.get('name', 'ERROR')}: {error.get('message', '')} {details}".strip()[:500]


def duplicate_batch_id(error: Any) -> str | None:
    """The original batch id when PayPal refused a reused sender_batch_id (its error links to the
    original payout, e.g. ``.../v1/payments/payouts/5UXD2E8A7EBQJ``)."""
    error = error.to_dict() if hasattr(error, "to_dict") else dict(error or {})
    text = json.dumps(error).upper()
    if "SENDER_BATCH_ID" not in text and "DUPLICATE" not in text:
        return None
    for link in error.get("links") or []:
        href = str(link.get("href", "")).rstrip("/")
        if "/v1/payments/payouts/" in href:
            return href.rsplit("/", 1)[1]
    return None


def item_answer(item: dict[str, Any], batch_id: str | None) -> GatewayAnswer:
    status = str(item.get("transaction_status") or "PENDING").upper()
    errors = item.get("errors") or {}
    reason = f"{errors.get('name')}: {errors.get('message', '')}".strip() if errors else None
    return GatewayAnswer(status=ITEM_STATUS.get(status, "sent"), provider_status=status,
                         batch_id=item.get("payout_batch_id") or batch_id,
                         item_id=item.get("payout_item_id"), reason=reason,
                         sender_item_id=(item.get("payout_item") or {}).get("sender_item_id"))


# --- events in -----------------------------------------------------------------------------------

def _when(*values: Any) -> Any:
    for value in values:
        if isinstance(value, str) and value:
            try:
                return parse_instant(value)
            except ValueError:
                continue
    return utcnow()


def _money(amount: dict[str, Any]) -> tuple[int, str]:
    currency = str(amount.get("currency") or amount.get("currency_code") or "USD").upper()
    value = amount.get("total", amount.get("value", "0"))
    return abs(to_minor(str(value), currency)), currency


def _sale_completed(event: dict[str, Any], r: dict[str, Any]) -> list[Any]:
    gross, currency = _money(r.get("amount") or {})
    details = (r.get("amount") or {}).get("details") or {}
    tax = abs(to_minor(str(details["tax"]), currency)) if details.get("tax") else 0
    subscription = r.get("billing_agreement_id")
    return [PaymentSucceeded(
        provider=PROVIDER, payment_ref=r["id"], amount=max(gross - tax, 0), gross_amount=gross,
        customer_ref=subscription or r.get("parent_payment") or r["id"], currency=currency,
        occurred_at=_when(r.get("create_time"), event.get("create_time")),
        subscription_ref=subscription, partner_code=r.get("custom") or r.get("custom_id"))]


def _sale_refunded(event: dict[str, Any], r: dict[str, Any]) -> list[Any]:
    amount, _ = _money(r.get("amount") or {})
    return [PaymentAdjusted(provider=PROVIDER, kind="refund", key=r["id"], amount=amount,
                            occurred_at=_when(r.get("create_time"), event.get("create_time")),
                            payment_ref=r.get("sale_id") or r["id"])]


def _sale_reversed(event: dict[str, Any], r: dict[str, Any]) -> list[Any]:
    amount, _ = _money(r.get("amount") or {})
    return [PaymentAdjusted(provider=PROVIDER, kind="dispute", key=f"reversal:{r['id']}",
                            amount=amount, payment_ref=r.get("sale_id") or r["id"],
                            occurred_at=_when(r.get("update_time"), event.get("create_time")))]


def _capture_completed(event: dict[str, Any], r: dict[str, Any]) -> list[Any]:
    amount, currency = _money(r.get("amount") or {})
    order = ((r.get("supplementary_data") or {}).get("related_ids") or {}).get("order_id")
    return [PaymentSucceeded(provider=PROVIDER, payment_ref=r["id"], customer_ref=order or r["id"],
                             amount=amount, currency=currency, partner_code=r.get("custom_id"),
                             occurred_at=_when(r.get("create_time"), event.get("create_time")))]


def _capture_refunded(event: dict[str, Any], r: dict[str, Any]) -> list[Any]:
    amount, _ = _money(r.get("amount") or {})
    up = next((link.get("href", "") for link in r.get("links") or []
               if link.get("rel") == "up"), "")
    capture = up.rstrip("/").rsplit("/", 1)[-1] if "/captures/" in up else None
    return [PaymentAdjusted(provider=PROVIDER, kind="refund", key=r["id"], amount=amount,
                            payment_ref=capture or r.get("capture_id"),
                            occurred_at=_when(r.get("create_time"), event.get("create_time")))]


def _capture_reversed(event: dict[str, Any], r: dict[str, Any]) -> list[Any]:
    """A capture reversed (a chargeback, or PayPal taking the money back): the whole commission
    is reversed, like a reversed sale. The resource is a refund whose `up` link names the
    capture."""
    amount, _ = _money(r.get("amount") or {})
    up = next((link.get("href", "") for link in r.get("links") or []
               if link.get("rel") == "up"), "")
    capture = up.rstrip("/").rsplit("/", 1)[-1] if "/captures/" in up else r.get("capture_id")
    if not capture:
        return []
    return [PaymentAdjusted(provider=PROVIDER, kind="dispute", key=f"reversal:{r['id']}",
                            amount=amount, payment_ref=capture,
                            occurred_at=_when(r.get("create_time"), event.get("create_time")))]


def _subscription_payment_failed(event: dict[str, Any], r: dict[str, Any]) -> list[Any]:
    """A subscription's payment failed: the customer is past due (as on Stripe)."""
    return [PaymentFailed(provider=PROVIDER, customer_ref=r["id"], subscription_ref=r["id"],
                          occurred_at=_when(r.get("update_time"), event.get("create_time")))]


def _subscription(event: dict[str, Any], r: dict[str, Any]) -> list[Any]:
    status = SUBSCRIPTION_STATUS.get(str(r.get("status", "")).upper())
    if event.get("event_type") == "BILLING.SUBSCRIPTION.CANCELLED":
        status = "cancelled"
    at = _when(r.get("status_update_time"), r.get("update_time"), event.get("create_time"))
    subscriber = r.get("subscriber") or {}
    facts: list[Any] = [CustomerSeen(provider=PROVIDER, customer_ref=r["id"], occurred_at=at,
                                     email=subscriber.get("email_address"),
                                     partner_code=r.get("custom_id"))]
    if status:
        facts.append(SubscriptionChanged(provider=PROVIDER, subscription_ref=r["id"],
                                         customer_ref=r["id"], status=status, occurred_at=at,
                                         plan=r.get("plan_id"), partner_code=r.get("custom_id"),
                                         ends_at=_next_billing(r, status)))
    return facts


def _next_billing(r: dict[str, Any], status: str) -> Any:
    """The end of the period paid for (or of the trial): the next billing time PayPal names."""
    value = (r.get("billing_info") or {}).get("next_billing_time")
    if status == "cancelled" or not isinstance(value, str) or not value:
        return None
    try:
        return parse_instant(value)
    except ValueError:
        return None


def _payout_item(event: dict[str, Any], r: dict[str, Any]) -> list[Any]:
    answer = item_answer(r, r.get("payout_batch_id"))
    return [PayoutStatusChanged(
        provider=PROVIDER, occurred_at=_when(event.get("create_time")), status=answer.status,
        sender_id=(r.get("payout_item") or {}).get("sender_item_id") or r.get("sender_batch_id"),
        batch_id=answer.batch_id, item_id=answer.item_id, provider_status=answer.provider_status,
        reason=answer.reason)]


def _payout_batch(event: dict[str, Any], r: dict[str, Any]) -> list[Any]:
    header = r.get("batch_header") or {}
    status = str(header.get("batch_status", "")).upper()
    denied = status == "DENIED"
    return [PayoutStatusChanged(
        provider=PROVIDER, occurred_at=_when(event.get("create_time")),
        status="failed" if denied else None, provider_status=status or None,
        sender_id=(header.get("sender_batch_header") or {}).get("sender_batch_id"),
        batch_id=header.get("payout_batch_id"), check=not denied,
        reason="PayPal denied the payout batch" if denied else None)]


NORMALISERS: dict[str, Callable[[dict[str, Any], dict[str, Any]], list[Any]]] = {
    "PAYMENT.SALE.COMPLETED": _sale_completed,
    "PAYMENT.SALE.REFUNDED": _sale_refunded,
    "PAYMENT.SALE.REVERSED": _sale_reversed,
    "PAYMENT.CAPTURE.COMPLETED": _capture_completed,
    "PAYMENT.CAPTURE.REFUNDED": _capture_refunded,
    "PAYMENT.CAPTURE.REVERSED": _capture_reversed,
    **{f"BILLING.SUBSCRIPTION.{s}": _subscription
       for s in ("CREATED", "ACTIVATED", "UPDATED", "SUSPENDED", "CANCELLED", "EXPIRED",
                 "RE-ACTIVATED")},
    "BILLING.SUBSCRIPTION.PAYMENT.FAILED": _subscription_payment_failed,
}

# Types of the families the hub reads that it deliberately ignores (stored, answered 200, no
# facts), and why. Every PAYMENT.PAYOUTS-ITEM.* and PAYMENT.PAYOUTSBATCH.* type is read by prefix.
IGNORED: dict[str, str] = {
    "PAYMENT.SALE.PENDING": "no money yet: PAYMENT.SALE.COMPLETED follows",
    "PAYMENT.SALE.DENIED": "no money was taken",
    "PAYMENT.CAPTURE.PENDING": "no money yet: PAYMENT.CAPTURE.COMPLETED follows",
    "PAYMENT.CAPTURE.DENIED": "no money was taken",
    "PAYMENT.CAPTURE.DECLINED": "no money was taken",
    "PAYMENTS.PAYMENT.CREATED": "an approved v1 payment: its sale's PAYMENT.SALE.COMPLETED pays",
}


def normalise(event: dict[str, Any]) -> list[Any]:
    """Facts for a PayPal webhook event; an unknown type gives none (stored and ignored)."""
    kind = str(event.get("event_type", ""))
    resource = event.get("resource")
    if not isinstance(resource, dict):
        return []
    if kind.startswith("PAYMENT.PAYOUTS-ITEM."):
        return _payout_item(event, resource)
    if kind.startswith("PAYMENT.PAYOUTSBATCH."):
        return _payout_batch(event, resource)
    handler = NORMALISERS.get(kind)
    if handler is None or kind in IGNORED or not resource.get("id"):
        return []
    return handler(event, resource)


def gateway_of(hub: Hub) -> PaypalGateway:
    from hub.payouts.gateway import gateway_for

    gateway = gateway_for(hub, PROVIDER)
    assert isinstance(gateway, PaypalGateway)
    return gateway


def enrich(hub: Hub, facts: list[Any]) -> list[Any]:
    """A subscription payment whose subscription the hub has not seen: read its custom_id."""
    gateway = gateway_of(hub)
    out: list[Any] = []
    for fact in facts:
        if isinstance(fact, PaymentSucceeded) and fact.subscription_ref and not fact.partner_code:
            with hub.sessions() as session:
                known = is_attributed(session, PROVIDER, fact.customer_ref)
            sub = None if known else gateway.subscription(fact.subscription_ref)
            if sub and sub.get("custom_id"):
                out.append(CustomerSeen(provider=PROVIDER, customer_ref=fact.customer_ref,
                                        occurred_at=fact.occurred_at, partner_code=sub["custom_id"],
                                        email=(sub.get("subscriber") or {}).get("email_address")))
        out.append(fact)
    return out


def process(hub: Hub, event: dict[str, Any], raw: str | None = None) -> bool:
    """Store and apply one PayPal event (webhook or replay). False for a duplicate."""
    item = looked_up(prepare(hub, event, raw=raw))
    return ingest(hub, item.provider, item.event_id, item.type, item.occurred_at, item.payload,
                  item.facts)


def prepare(hub: Hub, event: dict[str, Any], session: Any = None,
            raw: str | None = None) -> Incoming:
    """A PayPal event read into what the hub stores and the facts it applies. Without a
    `session` (a webhook) a subscription payment is not checked here: the item names its customer
    and leaves the check and the subscription read to `Incoming.lookup` (the group commit checks
    a whole batch at once), so no event opens a session of its own."""
    facts = well_typed(normalise(event))
    item = Incoming(PROVIDER, str(event["id"]), str(event.get("event_type", "")),
                    _when(event.get("create_time")), raw if raw is not None else event, facts)
    wanted = [f.customer_ref for f in facts if isinstance(f, PaymentSucceeded)
              and f.subscription_ref and not f.partner_code]
    if session is None and wanted and all(wanted):
        return dataclasses.replace(item, unless_attributed=tuple((PROVIDER, ref) for ref in wanted),
                                   lookup=functools.partial(_enriched, hub, item))
    return _enriched(hub, item)


def _enriched(hub: Hub, item: Incoming) -> Incoming:
    return dataclasses.replace(item, facts=well_typed(enrich(hub, item.facts)),
                               unless_attributed=(), lookup=None)


def parse_event(body: bytes) -> dict[str, Any]:
    try:
        event = json.loads(body)
    except ValueError:
        raise BadRequest("body is not valid JSON", code="invalid_json") from None
    if (not isinstance(event, dict) or not isinstance(event.get("id"), str)
            or not event.get("event_type")):
        raise BadRequest("not a PayPal webhook event", code="invalid_event")
    return event


async def webhook(request: Request) -> JSONResponse:
    """PayPal webhooks: verified with PayPal, recorded once, applied (billing and payouts)."""
    hub = hub_of(request)
    try:
        body = await read_body(request, hub.config.server.max_body_bytes)
        event = parse_event(body)
        raw = body.decode("utf-8")
        genuine = await run_in_threadpool(gateway_of(hub).verify_webhook, dict(request.headers),
                                          raw)
        if not genuine:
            raise BadSignature("PayPal did not verify this transmission")
    except TransientError:
        log.warning("paypal webhook not verified: PayPal cannot be reached (503, it will retry)")
        return error_response(HTTPError("cannot reach PayPal to verify", code="verify_unavailable",
                                        status=503))
    except HTTPError as exc:
        if isinstance(exc, BadSignature) or exc.status >= 500:
            # At WARNING, so a wrong webhook_id or a forged call shows without turning logging
            # up; the reason and the sender only, never the transmission headers.
            log.warning("paypal webhook refused (%s %s): %s; from %s", exc.status, exc.code,
                        exc.message, request.client.host if request.client else "?")
        return error_response(exc)
    return await apply_verified_event("paypal", prepare, hub, event, raw)


@hookimpl
def register_connectors(register: Callable[[Connector], None]) -> None:
    register(Connector(name=PROVIDER, description="PayPal billing webhooks and payouts",
                       routes=[Route("/webhooks/paypal", webhook, methods=["POST"])],
                       process=process, prepare=prepare,
                       payout_gateway=lambda hub: PaypalGateway(hub.config.connectors.paypal)))

