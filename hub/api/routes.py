"""Every route of the JSON API under /api/v1, collected for the app."""

from __future__ import annotations

from starlette.routing import BaseRoute

from hub.api import (
    commissions,
    downloads,
    installs,
    links,
    partners,
    payouts,
    referrals,
    signups,
    support,
    track,
    webhooks,
)


def routes() -> list[BaseRoute]:
    return [*partners.ROUTES, *installs.ROUTES, *links.ROUTES, *signups.ROUTES,
            *referrals.ROUTES, *downloads.ROUTES, *payouts.ROUTES, *webhooks.ROUTES,
            *commissions.ROUTES, *track.ROUTES, *support.ROUTES]
