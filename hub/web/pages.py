"""The request cycle every HTML page shares: session, CSRF check, a database session in a worker
thread, the handler, a rendered template, security headers, errors as HTML pages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import Message

from hub.api.http import hub_of
from hub.errors import BadRequest, HTTPError, PayloadTooLarge, TooManyRequests
from hub.runtime import Hub
from hub.web import formatting, trends
from hub.web.security import Area, WebSession, check_csrf, load_session, save_session

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
ENV = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                  trim_blocks=True, lstrip_blocks=True)
ENV.filters.update(money=formatting.money, day=formatting.day, when=formatting.when,
                   masked=formatting.mask_email, state=formatting.state_label,
                   month=trends.month_name)
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                               "script-src 'self'; frame-ancestors 'none'; form-action 'self'; "
                               "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
UPLOAD_LIMIT = 20 * 1024 * 1024
MAX_PAGE = 1_000_000  # a page number past this is the last page anyone could mean


def page_number(raw: str) -> int:
    """`?page=` as 1..MAX_PAGE; nonsense is page 1, a huge number the largest page (its offset
    must still fit the database's integer)."""
    if not (raw.isascii() and raw.isdigit()):
        return 1
    return MAX_PAGE if len(raw) > 7 else min(max(int(raw), 1), MAX_PAGE)


class Redirect(Exception):
    """Raised by a handler or an auth check to answer with a 303 to `url`."""

    def __init__(self, url: str):
        super().__init__(url)
        self.url = url


@dataclass
class View:
    """What a page handler gets: the hub, the request, the session, the posted form, a database
    session, and (after authentication) who is asking."""

    hub: Hub
    request: Request
    session: WebSession
    form: FormData | None
    db: Session
    partner: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def value(self, name: str, default: str = "") -> str:
        raw = self.form.get(name) if self.form is not None else None
        return raw.strip() if isinstance(raw, str) else default

    def query(self, name: str, default: str = "") -> str:
        return self.request.query_params.get(name, default).strip()

    def flash(self, message: str, kind: str = "ok") -> None:
        self.session.set(flash={"message": message, "kind": kind})

    def page(self, template: str, **context: Any) -> Response:
        return render(self, template, context)


Handler = Callable[[View], Response]
Guard = Callable[[View], None]


def render(view: View, template: str, context: dict[str, Any], status: int = 200) -> Response:
    area = view.session.area
    base = {"request": view.request, "csrf": view.session.csrf, "area": area.name,
            "path": view.request.url.path, "partner": view.partner,
            "flash": view.session.pop("flash"), **view.extra}
    html = ENV.get_template(template).render(**base, **context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def serve(area: Area, handler: Handler, *, guard: Guard | None,
          write: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint running `handler` behind `guard` (the area's authentication)."""

    async def endpoint(request: Request) -> Response:
        hub = hub_of(request)
        session = load_session(hub, request, area)
        try:
            form = await _checked_form(request, session) if request.method == "POST" else None
            response = await run_in_threadpool(_run, hub, request, session, form, handler,
                                               guard, write)
        except HTTPError as exc:
            response = error_page(hub, request, session, exc)
        save_session(hub, request, response, session)
        return response

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


def _run(hub: Hub, request: Request, session: WebSession, form: FormData | None,
         handler: Handler, guard: Guard | None, write: bool) -> Response:
    context: AbstractContextManager[Session] = hub.transaction() if write else hub.sessions()
    signed_in = False
    try:
        with context as db:
            view = View(hub, request, session, form, db)
            try:
                if guard is not None:
                    guard(view)
                    signed_in = True
                return handler(view)
            except Redirect as jump:  # a redirect after a write is success: commit, then answer
                return RedirectResponse(jump.url, status_code=303)
    except HTTPError as exc:  # raised inside: the transaction is rolled back by now
        return error_page(hub, request, session, exc, signed_in=signed_in)


def _too_large() -> PayloadTooLarge:
    return PayloadTooLarge(f"the upload is larger than {UPLOAD_LIMIT // (1024 * 1024)} MB")


def _bounded(request: Request, limit: int) -> Request:
    """The request with a body that stops being read (413) once more than `limit` bytes have
    arrived: a chunked upload declares no Content-Length, so counting is the only limit."""
    seen = 0

    async def receive() -> Message:
        nonlocal seen
        message = await request.receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _too_large()
        return message

    return Request(request.scope, receive)


async def _checked_form(request: Request, session: WebSession) -> FormData:
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > UPLOAD_LIMIT:
        raise _too_large()
    form = await _bounded(request, UPLOAD_LIMIT).form(max_files=2, max_fields=100)
    if any(isinstance(value, str) and "\x00" in value for _, value in form.multi_items()):
        raise BadRequest("the form holds a NUL character", code="invalid_form")
    check_csrf(session, form.get("csrf"))
    return form


def error_page(hub: Hub, request: Request, session: WebSession, exc: HTTPError, *,
               signed_in: bool = False) -> Response:
    with hub.sessions() as db:
        view = View(hub, request, session, None, db, extra={"signed_in": signed_in})
        response = render(view, "error.html", {"error": exc, "title": "Sorry"}, status=exc.status)
    if isinstance(exc, TooManyRequests):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def login_url(area: Area, request: Request) -> str:
    return f"{area.path}/login?next={quote(request.url.path)}"


def safe_next(target: str, area: Area) -> str:
    """Only same-area paths, so a crafted log-in link cannot send a partner elsewhere."""
    if target.startswith(area.path + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return area.path + "/"
