"""Every page route of the portal, the admin and the public directory, and the static files."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from hub.web import admin, admin_explain, admin_whatif, directory, home, portal
from hub.web.pages import STATIC


def routes() -> list[BaseRoute]:
    return [*portal.ROUTES, *admin.ROUTES, *admin_whatif.ROUTES, *admin_explain.ROUTES,
            *directory.ROUTES, *home.ROUTES,
            Mount("/static", app=StaticFiles(directory=STATIC), name="static")]
