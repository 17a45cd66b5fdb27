"""Shared fixtures: a hub on SQLite and, when HUB_TEST_DATABASE_URL is set, on PostgreSQL.

Tests that need a service this machine lacks (PostgreSQL, Redis, Chromium, the server binaries)
are skipped with the reason in the summary (`addopts = "-rs"`); with `HUB_TEST_REQUIRE_ALL=1`
(set by `.ci/run`) every skip is a failure instead, so CI cannot go green by skipping.

Each PostgreSQL test run gets its own schema (so parallel runs never meet) and every test starts
from empty tables.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from starlette.testclient import TestClient

os.environ["HUB_LOAD_PLUGINS"] = ""  # keep installed third-party plugins out of the tests

from hub.app import (
    build_hub,  # noqa: E402
    create_app,  # noqa: E402
)
from hub.config import config_from_dict  # noqa: E402
from hub.runtime import Hub  # noqa: E402

PG_URL = os.environ.get("HUB_TEST_DATABASE_URL", "")
REQUIRE_ALL = os.environ.get("HUB_TEST_REQUIRE_ALL", "") not in ("", "0")
WEBHOOK_SECRET = "whsec_test_" + "x" * 24
ADMIN_TOKEN = "admin-test-token-0123456789"
INSTALLER_TOKEN = "installer-test-token-0123456789"  # installs and signups require one
CRAZYCALL = {"plugin": "crazycall", "currency": "USD"}


def need(reason: str) -> None:
    """A service the test needs is missing: skip with the reason, or fail under
    HUB_TEST_REQUIRE_ALL=1."""
    if REQUIRE_ALL:
        pytest.fail(f"{reason} (HUB_TEST_REQUIRE_ALL=1: nothing may be skipped)", pytrace=False)
    pytest.skip(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Under HUB_TEST_REQUIRE_ALL=1 a skip from anywhere (a mark, a fixture) is a failure."""
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_ALL and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under HUB_TEST_REQUIRE_ALL=1: {reason}"


def backends() -> list[Any]:
    params: list[Any] = ["sqlite"]
    params.append(pytest.param("postgres", marks=pytest.mark.postgres) if PG_URL or REQUIRE_ALL
                  else pytest.param("postgres", marks=pytest.mark.skip(
                      reason="PostgreSQL variant: set HUB_TEST_DATABASE_URL to run it")))
    return params


@pytest.fixture(scope="session")
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a schema private to this test run."""
    if not PG_URL:
        need("needs PostgreSQL: set HUB_TEST_DATABASE_URL")
    schema = f"t_{secrets.token_hex(5)}"
    admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        problem = ""
    except OperationalError as exc:
        admin.dispose()
        problem = type(exc).__name__
    if problem:
        need(f"no PostgreSQL at HUB_TEST_DATABASE_URL ({problem})")
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def _truncate_all(hub: Hub) -> None:
    with hub.engine.begin() as conn:
        tables = [r[0] for r in conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename <> 'alembic_version'"))]
        if tables:
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=backends())
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_hub(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Callable[..., Hub]]:
    """Build a hub for a backend with the given programs and extra config tables."""
    hubs: list[Hub] = []

    def factory(backend: str = "sqlite", programs: dict[str, dict[str, Any]] | None = None,
                registry: Any = None, **tables: Any) -> Hub:
        if backend == "postgres":
            url = request.getfixturevalue("pg_schema_url")
        else:
            url = f"sqlite:///{tmp_path / f'hub{len(hubs)}.db'}"
        raw: dict[str, Any] = {
            "database": {"url": url},
            "server": {"admin_token": ADMIN_TOKEN, "installer_token": INSTALLER_TOKEN,
                       "secret_key": "s" * 32,
                       "allowed_domains": ["example.com"], "base_url": "http://hub.test"},
            "connectors": {"stripe": {"webhook_secret": WEBHOOK_SECRET}},
            "email": {"dir": str(tmp_path / "mail")},  # no SMTP: .eml files, never in the cwd
            "programs": {"crazycall": dict(CRAZYCALL)} if programs is None else programs,
        }
        _deep_merge(raw, tables)
        hub = build_hub(config_from_dict(raw), registry=registry)
        if backend == "postgres":
            _truncate_all(hub)
        hubs.append(hub)
        return hub

    yield factory
    from hub.jobs.queue import close_queue

    for hub in hubs:
        close_queue(hub)  # stops an in-process worker a test started
        hub.engine.dispose()


@pytest.fixture
def hub(make_hub: Callable[..., Hub], backend: str) -> Hub:
    return make_hub(backend)


@pytest.fixture
def client(hub: Hub) -> Iterator[TestClient]:
    with TestClient(create_app(hub)) as c:
        yield c


def _deep_merge(target: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        else:
            target[key] = value


def operator_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def installer_headers() -> dict[str, str]:
    """What the product's servers send with installs and signups (`[server] installer_token`)."""
    return {"Authorization": f"Bearer {INSTALLER_TOKEN}"}


class LiveServer:
    """`hub serve`'s app on a real port in a thread, for tests that need real concurrency."""

    def __init__(self, hub: Hub):
        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        config = uvicorn.Config(create_app(hub), host="127.0.0.1", port=self.port,
                                log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
