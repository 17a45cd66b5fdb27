"""HTTP plumbing shared by every route: JSON errors, bounded bodies, operator auth."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from hub.errors import (
    MALFORMED_EVENT_ERRORS,
    BadRequest,
    HTTPError,
    PayloadTooLarge,
    Unauthorized,
    Unprocessable,
)
from hub.facts import DEFAULT_PROVIDER
from hub.ingest.group_commit import group_commit_of
from hub.runtime import Hub

log = logging.getLogger(__name__)


# The largest id an integer id column holds (INTEGER, 32-bit, in PostgreSQL): a bigger number in
# a path names nothing, and must not reach the database as an out-of-range parameter.
MAX_ID = 2**31 - 1


def whole_number(raw: str | None, limit: int = MAX_ID) -> int | None:
    """`raw` as an integer when it is plain ASCII digits (``"²".isdigit()`` is true, yet int()
    refuses it) no larger than `limit`; else None."""
    if not raw or not raw.isascii() or not raw.isdigit() or len(raw) > 30:
        return None
    value = int(raw)
    return value if value <= limit else None


def hub_of(request: Request) -> Hub:
    return request.app.state.hub  # type: ignore[no-any-return]


def error_response(exc: HTTPError) -> JSONResponse:
    return JSONResponse({"error": {"code": exc.code, "message": exc.message}},
                        status_code=exc.status)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) anything larger than `limit` before reading it all."""
    declared = request.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request) -> dict[str, Any]:
    body = await read_body(request, hub_of(request).config.server.max_body_bytes)
    try:
        data = json.loads(body or b"null")
    except ValueError:
        raise BadRequest("body is not valid JSON", code="invalid_json") from None
    except RecursionError:
        raise too_deep() from None
    if b"\\u0000" in body:  # PostgreSQL refuses NUL in text: say so rather than fail later
        raise BadRequest("text must not contain NUL characters", code="invalid_json")
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object", code="invalid_json")
    return data


def too_deep() -> BadRequest:
    return BadRequest("body is nested too deeply", code="invalid_json")


def require_operator(request: Request) -> str:
    """The operator's bearer token, compared in constant time. Returns the actor name."""
    token = hub_of(request).config.server.admin_token
    sent = request.headers.get("authorization", "")
    scheme, _, value = sent.partition(" ")
    if (not token or scheme.lower() != "bearer"
            or not hmac.compare_digest(value.encode(), str(token).encode())):
        raise Unauthorized("operator bearer token required")
    return "operator"


def provider_field(hub: Hub, data: dict[str, Any]) -> str:
    """The body's `provider`: a registered connector's name (the contract's default when absent),
    or a 422 naming the ones there are."""
    provider = field(data, "provider", required=False, default=DEFAULT_PROVIDER)
    known = sorted(hub.registry.connectors)
    if provider not in known:
        raise Unprocessable(f"provider must be one of {', '.join(known)}", code="invalid_field")
    return str(provider)


PROVIDER_SCHEMA = {"type": "string", "default": DEFAULT_PROVIDER,
                   "description": "the name of a registered payment connector"}


def field(data: dict[str, Any], name: str, kind: type | tuple[type, ...] = str, *,
          required: bool = True, default: Any = None) -> Any:
    """A typed field of a JSON body, or a 422 naming it."""
    if name not in data or data[name] is None:
        if required:
            raise Unprocessable(f"{name} is required", code="missing_field")
        return default
    value = data[name]
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        raise Unprocessable(f"{name} has the wrong type", code="invalid_field")
    return value


async def apply_verified_event(provider: str, prepare: Callable[..., Any], hub: Hub,
                               event: dict[str, Any], raw: str, *,
                               blocking: bool = True) -> JSONResponse:
    """Store and apply a provider event whose signature was verified, answering once it is
    committed (`hub.ingest.group_commit` batches it with the deliveries arriving alongside). An
    event whose fields the hub cannot read is refused (400) and not stored, so the provider retries
    it once the hub can; storing it would make every later delivery a duplicate and lose it for
    good. `blocking`: `prepare` may wait for the network (it runs in a worker thread); a
    connector whose `prepare` only reads the event (deferring look-ups to `Incoming.lookup`) says
    False and saves each request the trip through the thread pool."""
    try:
        if "\\u0000" in raw:  # PostgreSQL cannot store NUL in text: a 500 on every retry
            raise ValueError("NUL character in the event")
        item = (await run_in_threadpool(prepare, hub, event, None, raw) if blocking
                else prepare(hub, event, None, raw))
        new = await group_commit_of(hub).apply(item)
    except MALFORMED_EVENT_ERRORS as exc:
        log.warning("%s event %s has fields the hub cannot read (%s): refused, not stored",
                    provider, str(event.get("id"))[:80], type(exc).__name__)
        return error_response(BadRequest("the event's fields have unexpected types",
                                         code="invalid_event"))
    return JSONResponse({"received": True, "duplicate": not new})
