"""Helpers for the attribution tests: follow a referral link, sign up, read link stats."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.conftest import installer_headers, operator_headers

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0"


def click(client: Any, code: str, agent: str = BROWSER) -> Any:
    response = client.get(f"/r/{code}", headers={"User-Agent": agent}, follow_redirects=False)
    assert response.status_code == 302, response.text
    return response


def params(response: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}


def signup(client: Any, *, expect: int = 201, **body: Any) -> dict[str, Any]:
    if isinstance(body.get("signed_up_at"), datetime):
        body["signed_up_at"] = body["signed_up_at"].isoformat()
    body.setdefault("provider", "stripe")
    response = client.post("/api/v1/signups", json=body, headers=installer_headers())
    assert response.status_code == expect, response.text
    return dict(response.json())


def build_link(client: Any, partner_id: str, expect: int = 201, **body: Any) -> dict[str, Any]:
    response = client.post(f"/api/v1/partners/{partner_id}/links", json=body,
                           headers=operator_headers())
    assert response.status_code == expect, response.text
    return dict(response.json())


def link_stats(client: Any, partner_id: str, **query: str) -> dict[str, dict[str, Any]]:
    response = client.get(f"/api/v1/partners/{partner_id}/links", params=query,
                          headers=operator_headers())
    assert response.status_code == 200, response.text
    return {item["code"]: item for item in response.json()["items"]}


def referrals(client: Any, **query: str) -> list[dict[str, Any]]:
    response = client.get("/api/v1/referrals", params=query, headers=operator_headers())
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def freeze_clicks(monkeypatch: Any, at: datetime) -> None:
    """Record the next clicks at `at` (the redirect reads the clock once per click)."""
    import hub.api.links

    monkeypatch.setattr(hub.api.links, "utcnow", lambda: at)
