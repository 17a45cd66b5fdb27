"""Racing clicks over real HTTP on PostgreSQL: one unique click per visitor, one widget link."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from hub.db.models import Click, Link
from tests.attribution_helpers import BROWSER
from tests.conftest import LiveServer, operator_headers

pytestmark = pytest.mark.postgres


def test_concurrent_clicks_of_one_visitor_count_once(make_hub):
    hub = make_hub("postgres")
    with LiveServer(hub) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        partner = http.post("/api/v1/partners", json={"program": "crazycall", "email": "p@x.test"},
                            headers=operator_headers()).json()

        def follow(_: int) -> int:
            with httpx.Client(base_url=server.url, timeout=30) as own:  # no shared cookie jar
                return own.get(f"/r/{partner['code']}", headers={"User-Agent": BROWSER}).status_code

        def widget(_: int) -> str:
            with httpx.Client(base_url=server.url, timeout=30) as own:
                response = own.post(f"/api/v1/partners/{partner['id']}/links",
                                    json={"kind": "widget"}, headers=operator_headers())
                return str(response.json()["code"])

        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(follow, range(16)))
            codes = set(pool.map(widget, range(8)))
    assert statuses == [302] * 16
    assert len(codes) == 1
    with hub.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Click)) == 16
        assert s.scalar(select(func.count()).select_from(Click).where(Click.is_unique)) == 1
        assert s.scalar(select(func.count()).select_from(Link).where(Link.kind == "default")) == 1
