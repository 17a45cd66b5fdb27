"""The hub's front door: `GET /` (where to log in or sign up, and the public directories) and
`GET /favicon.ico` (drawn here, so there is no binary file to keep)."""

from __future__ import annotations

import struct
from functools import cache

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.web.pages import View, serve
from hub.web.security import PORTAL

SIZE = 16
ACCENT = (0x0B, 0x5C, 0xAD)  # the stylesheet's --accent


def home(view: View) -> Response:
    """Links to the partner portal's log-in and sign-up, and to every public directory."""
    hub = view.hub
    signup = [name for name, p in hub.programs.items() if getattr(p.settings, "self_signup", False)]
    directories = sorted(name for name, program in hub.programs.items()
                         if any(hub.kind_profile(program, kind).listed_in_directory
                                for kind in program.kinds))
    return view.page("home.html", title="Partner program", signup=signup,
                     directories=directories)


@cache
def favicon_bytes() -> bytes:
    """A 16x16, 32-bit ICO: an accent-coloured disc with a white dot (the hub as a hub)."""
    rows = []
    for y in range(SIZE - 1, -1, -1):  # BMP rows run bottom-up
        row = b""
        for x in range(SIZE):
            d2 = (x - 7.5) ** 2 + (y - 7.5) ** 2
            if d2 <= 2.5 ** 2:
                pixel = (255, 255, 255, 255)
            elif d2 <= 7.5 ** 2:
                pixel = (*ACCENT, 255)
            else:
                pixel = (0, 0, 0, 0)
            r, g, b, a = pixel
            row += bytes((b, g, r, a))
        rows.append(row)
    pixels = b"".join(rows)
    mask = bytes(SIZE * 4)  # the AND mask, unused with an alpha channel (rows padded to 32 bits)
    header = struct.pack("<IiiHHIIiiII", 40, SIZE, SIZE * 2, 1, 32, 0, len(pixels), 0, 0, 0, 0)
    image = header + pixels + mask
    return (struct.pack("<HHH", 0, 1, 1)
            + struct.pack("<BBBBHHII", SIZE, SIZE, 0, 0, 1, 32, len(image), 22) + image)


async def favicon(request: Request) -> Response:
    """The browser tab's icon."""
    return Response(favicon_bytes(), media_type="image/x-icon",
                    headers={"Cache-Control": "public, max-age=604800"})


ROUTES = [
    Route("/", serve(PORTAL, home, guard=None), methods=["GET"]),
    Route("/favicon.ico", favicon, methods=["GET"]),
]
