"""Log-in throttling: failed log-ins are counted per account and per client address, and once
either count is full the log-in answers 429 with ``Retry-After`` before checking anything.

Counting uses the `limits` library with a moving window: in Redis when the hub has one (``[queue]
url``, under the queue's ``namespace``), so that every process of the hub shares the counts, and
in this process's memory otherwise. Only failures count, so a partner who logs in every day, or
a test suite that logs in a hundred times, is never throttled. The account is keyed by a digest
of the case-folded e-mail (the admin has one account, the operator), so Redis never holds
addresses, and an unknown e-mail counts exactly like a known one.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter
from starlette.requests import Request

from hub.errors import TooManyRequests
from hub.runtime import Hub

EXTRAS_KEY = "login_throttle"


@dataclass(frozen=True)
class LoginThrottle:
    limiter: MovingWindowRateLimiter
    per_account: RateLimitItem
    per_address: RateLimitItem
    prefix: str  # separates hubs sharing one Redis, and areas (portal, admin)

    def _keys(self, area: str, account: str, address: str) -> list[tuple[RateLimitItem, str]]:
        digest = hashlib.sha256(account.strip().casefold().encode()).hexdigest()[:32]
        return [(self.per_account, f"{self.prefix}:{area}:account:{digest}"),
                (self.per_address, f"{self.prefix}:{area}:address:{address}")]

    def check(self, area: str, account: str, address: str) -> None:
        """Raise 429 (with how long to wait) when the account or the address has used up its
        failed attempts."""
        for item, key in self._keys(area, account, address):
            if not self.limiter.test(item, key):
                reset_at = self.limiter.get_window_stats(item, key).reset_time
                wait = max(1, math.ceil(reset_at - time.time()))
                raise TooManyRequests(
                    f"too many failed log-ins; try again in {_duration(wait)}",
                    retry_after=wait)

    def failed(self, area: str, account: str, address: str) -> None:
        for item, key in self._keys(area, account, address):
            self.limiter.hit(item, key)


def _duration(seconds: int) -> str:
    return f"{seconds} seconds" if seconds < 120 else f"{math.ceil(seconds / 60)} minutes"


def storage_for(hub: Hub) -> Storage:
    """Redis when the hub's queue runs on it, memory otherwise."""
    url = hub.config.queue.url
    if url:
        return RedisStorage(url, key_prefix=f"{hub.config.queue.namespace}:limits")
    return MemoryStorage()


def throttle_of(hub: Hub) -> LoginThrottle:
    """The hub's log-in throttle, built on first use."""
    throttle = hub.extras.get(EXTRAS_KEY)
    if throttle is None:
        server = hub.config.server
        throttle = hub.extras[EXTRAS_KEY] = LoginThrottle(
            limiter=MovingWindowRateLimiter(storage_for(hub)),
            per_account=parse(server.login_limit_account),
            per_address=parse(server.login_limit_address), prefix="login")
    assert isinstance(throttle, LoginThrottle)
    return throttle


def client_address(request: Request) -> str:
    """The client's address as the server sees it (behind a reverse proxy, run uvicorn with
    ``--proxy-headers`` and ``--forwarded-allow-ips`` so this is the real client)."""
    return request.client.host if request.client else "unknown"
