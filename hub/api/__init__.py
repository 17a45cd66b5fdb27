"""The operator and product JSON API under /api/v1."""

from __future__ import annotations

from starlette.routing import BaseRoute

from . import commissions, installs, partners


def routes() -> list[BaseRoute]:
    return [*partners.ROUTES, *installs.ROUTES, *commissions.ROUTES]
