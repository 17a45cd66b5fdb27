"""The public partner directory: `/partners/{program}` lists the active partners whose kind the
program lists (the kind profile's `listed_in_directory`, e.g. odoopbx partners). Name and website
only, never an e-mail; no log-in."""

from __future__ import annotations

from sqlalchemy import select
from starlette.responses import Response
from starlette.routing import Route

from hub.db.models import Partner
from hub.errors import NotFound
from hub.web.pages import View, serve
from hub.web.security import PORTAL

LIMIT = 1000


def directory(view: View) -> Response:
    """The listed partners of one program, by name."""
    name = view.request.path_params["program"]
    program = view.hub.program(name)
    kinds = [kind for kind in program.kinds
             if view.hub.kind_profile(program, kind).listed_in_directory] if program else []
    if program is None or not kinds:
        raise NotFound("this program has no public partner directory")
    rows = view.db.execute(select(Partner.name, Partner.website).where(
        Partner.program == name, Partner.status == "active", Partner.kind.in_(kinds))
        .order_by(Partner.name, Partner.id).limit(LIMIT)).all()
    return view.page("directory.html", title=f"{name} partners", program=name, rows=rows)


ROUTES = [Route("/partners/{program}", serve(PORTAL, directory, guard=None), methods=["GET"])]
