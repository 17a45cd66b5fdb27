"""Finding 5 of issue 16: both log-ins are throttled per account and per client address.

Failed log-ins are counted (`hub/web/throttle.py`, the `limits` library); once an account or an
address has used up its attempts, the log-in answers 429 with ``Retry-After`` and checks nothing,
not even a right password. Successful log-ins are not counted. Each test runs with the counts in
memory and in Redis (a key prefix of its own)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from hub.app import create_app
from hub.config import config_from_dict
from hub.errors import StartupError
from tests.conftest import ADMIN_TOKEN
from tests.stripe_helpers import create_partner
from tests.web_helpers import PASSWORD, admin_login, give_password, portal_login

REDIS_URL = os.environ.get("HUB_TEST_REDIS_URL", "")
LIMITS = {"login_limit_account": "3 per minute", "login_limit_address": "5 per minute"}


@pytest.fixture(params=["memory", "redis"])
def storage(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """The extra config for each storage: none (memory), or a Redis queue with its own prefix."""
    if request.param == "memory":
        yield {}
        return
    if not REDIS_URL:
        pytest.skip("HUB_TEST_REDIS_URL not set")
    client = redis.Redis.from_url(REDIS_URL)
    namespace = f"hubtest-{secrets.token_hex(5)}"
    yield {"queue": {"url": REDIS_URL, "namespace": namespace}}
    keys = list(client.scan_iter(f"{namespace}*"))
    if keys:
        client.delete(*keys)


@pytest.fixture
def hub(make_hub: Any, storage: dict[str, Any]) -> Any:
    return make_hub("sqlite", server=dict(LIMITS), **storage)


def browser(hub: Any, address: str = "203.0.113.7") -> TestClient:
    return TestClient(create_app(hub), client=(address, 50000))


def _throttled(response: Any) -> int:
    assert response.status_code == 429, response.text
    assert "too many failed log-ins" in response.text
    return int(response.headers["Retry-After"])


def _redis_keys(hub: Any) -> list[bytes]:
    conf = hub.config.queue
    return list(redis.Redis.from_url(conf.url).scan_iter(f"{conf.namespace}:limits*"))


def test_portal_log_in_is_throttled_per_account(hub):
    if hub.config.queue.url:
        assert _redis_keys(hub) == []
    with browser(hub) as client:
        give_password(hub, create_partner(client, email="ann@partners.test")["id"])
        for _ in range(3):
            assert portal_login(client, "ann@partners.test", "wrong password!").status_code == 200
        wait = _throttled(portal_login(client, "ann@partners.test"))  # even the right password
        assert 1 <= wait <= 60
        # the limit is the account's, from anywhere; an unknown address is counted the same
        with browser(hub, "198.51.100.9") as elsewhere:
            _throttled(portal_login(elsewhere, "Ann@Partners.test"))
            for _ in range(3):
                portal_login(elsewhere, "nobody@partners.test", "wrong password!")
            _throttled(portal_login(elsewhere, "nobody@partners.test"))
    if hub.config.queue.url:  # the counts live in Redis, under the queue's namespace
        keys = b" ".join(_redis_keys(hub))
        assert b"ann@" not in keys and len(_redis_keys(hub)) >= 3


def test_portal_log_in_is_throttled_per_address(hub):
    with browser(hub) as client:
        give_password(hub, create_partner(client, email="ann@partners.test")["id"])
        for n in range(5):  # five accounts, one wrong password each: the address is used up
            assert portal_login(client, f"guess{n}@partners.test", "wrong").status_code == 200
        _throttled(portal_login(client, "ann@partners.test"))
        with browser(hub, "198.51.100.9") as elsewhere:
            assert portal_login(elsewhere, "ann@partners.test").url.path == "/portal/"


def test_successful_log_ins_are_not_counted(hub):
    with browser(hub) as client:
        give_password(hub, create_partner(client, email="ann@partners.test")["id"])
        for _ in range(8):
            assert portal_login(client, "ann@partners.test", PASSWORD).url.path == "/portal/"


def test_admin_log_in_is_throttled(hub):
    with browser(hub) as client:
        for n in range(3):
            assert "not the admin token" in admin_login(client, f"guess-{n}").text
        wait = _throttled(admin_login(client, ADMIN_TOKEN))
        assert 1 <= wait <= 60
        assert client.get("/admin/", follow_redirects=False).status_code == 303


def test_the_limits_are_checked_at_start_up():
    with pytest.raises(StartupError, match="login_limit_account"):
        config_from_dict({"server": {"login_limit_account": "lots"}})
    with pytest.raises(StartupError, match="login_limit_address"):
        config_from_dict({"server": {"login_limit_address": "0 per minute"}})
