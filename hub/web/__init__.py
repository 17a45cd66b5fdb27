"""Server-rendered pages: the partner portal (/portal) and the operator admin (/admin).

Starlette + Jinja2, one stylesheet and a few lines of vanilla JS, charts as inline SVG. See
`security` for sessions and CSRF, `pages` for the request cycle every page shares.
"""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def routes() -> list[BaseRoute]:
    from hub.web import admin, admin_explain, admin_whatif, directory, portal

    return [*portal.ROUTES, *admin.ROUTES, *admin_whatif.ROUTES, *admin_explain.ROUTES,
            *directory.ROUTES,
            Mount("/static", app=StaticFiles(directory=STATIC), name="static")]
