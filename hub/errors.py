"""The hub's error hierarchy.

`HubError` is the base. `HTTPError` subclasses carry a status and a machine-readable code and are
rendered as ``{"error": {"code", "message"}}`` by the app. `StartupError` stops the process before
it serves anything (bad config, a missing or conflicting plugin).
"""

from __future__ import annotations


class HubError(Exception):
    """Base of every error the hub raises on purpose."""


class StartupError(HubError):
    """Configuration or plugin set-up that must stop the process, naming what to fix."""


class PermanentError(HubError):
    """A background job's failure that retrying cannot fix (every actor `throws` it)."""


class TransientError(HubError):
    """A background job's failure worth retrying with backoff (network errors, 5xx, rate
    limits)."""


class HTTPError(HubError):
    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class BadRequest(HTTPError):
    status, code = 400, "bad_request"


class Unauthorized(HTTPError):
    status, code = 401, "unauthorized"


class Forbidden(HTTPError):
    status, code = 403, "forbidden"


class NotFound(HTTPError):
    status, code = 404, "not_found"


class Conflict(HTTPError):
    status, code = 409, "conflict"


class PayloadTooLarge(HTTPError):
    status, code = 413, "payload_too_large"


class Unprocessable(HTTPError):
    status, code = 422, "unprocessable"


class TooManyRequests(HTTPError):
    """429: wait `retry_after` seconds (sent as the ``Retry-After`` header)."""

    status, code = 429, "too_many_requests"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None):
        super().__init__(message, code=code)
        self.retry_after = retry_after


class BadSignature(BadRequest):
    code = "bad_signature"


# What reading a genuine (signed, verified) provider event whose fields have unexpected types
# raises: the webhook answers 400 `invalid_event` and stores nothing (the provider retries, so a
# shape the hub cannot read yet is not lost), never a 500.
MALFORMED_EVENT_ERRORS: tuple[type[Exception], ...] = (
    TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError)
