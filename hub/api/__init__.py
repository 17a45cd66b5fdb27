"""The operator and product JSON API under /api/v1."""

from __future__ import annotations

from starlette.routing import BaseRoute

from . import installs, partners, payouts, webhooks


def routes() -> list[BaseRoute]:
    return [*partners.ROUTES, *installs.ROUTES, *payouts.ROUTES, *webhooks.ROUTES]
