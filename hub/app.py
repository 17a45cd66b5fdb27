"""The composition root: the running hub (`build_hub`) and its HTTP app (`create_app`), declared
as data: routes from the core, the connectors and the plugins."""

from __future__ import annotations

import contextlib
import hmac
import inspect
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from hub.api.http import error_response, hub_of, too_deep
from hub.api.openapi import openapi_document
from hub.api.routes import routes as api_routes
from hub.config import Config
from hub.db.session import make_engine, session_factory, upgrade
from hub.errors import BadRequest, HTTPError, NotFound, Unauthorized
from hub.jobs.actors import build_queue
from hub.jobs.queue import redis_check
from hub.ops.metrics import METRICS
from hub.registry import Registry, load_registry
from hub.runtime import Hub, build_programs
from hub.web.routes import routes as web_routes

log = logging.getLogger(__name__)


def build_hub(config: Config, *, migrate: bool = True, registry: Registry | None = None) -> Hub:
    """The running hub: plugins, enabled programs, the database (migrated unless told not to) and
    the queue with every actor (`hub.jobs.actors`), built on first use."""
    registry = registry or load_registry()
    programs = build_programs(config, registry)
    engine = make_engine(config.database.url, config.database.pool_size)
    if migrate:
        upgrade(engine)
    return Hub(config=config, registry=registry, programs=programs, engine=engine,
               sessions=session_factory(engine), queue_factory=build_queue)


async def healthz(request: Request) -> JSONResponse:
    """Liveness with a database check (and the queue, when one is configured)."""
    hub = hub_of(request)

    def check() -> dict[str, str]:
        checks = {}
        try:
            with hub.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - a health check reports, it does not raise
            checks["database"] = f"error: {type(exc).__name__}"
        queue_check = hub.extras.get("queue_check")
        if queue_check is not None:
            checks["queue"] = queue_check()
        return checks

    checks = await run_in_threadpool(check)
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "degraded", **checks},
                        status_code=200 if ok else 503)


async def metrics(request: Request) -> PlainTextResponse:
    """Prometheus text format; behind `Authorization: Bearer <[server] metrics_token>` when the
    operator set one (route names, volumes and error rates are not for everyone)."""
    configured = hub_of(request).config.server.metrics_token
    token = str(getattr(configured, "value", configured) or "")
    if token:
        scheme, _, sent = request.headers.get("authorization", "").partition(" ")
        if (scheme.lower() != "bearer"
                or not hmac.compare_digest(sent.strip().encode(), token.encode())):
            raise Unauthorized("metrics token required: Authorization: Bearer <[server] "
                               "metrics_token>")
    return PlainTextResponse(METRICS.render(), media_type="text/plain; version=0.0.4")


async def openapi(request: Request) -> JSONResponse:
    """This document."""
    return JSONResponse(openapi_document(request.app.routes))


async def hub_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPError)
    return error_response(exc)


async def nested_too_deeply(request: Request, exc: Exception) -> Response:
    """A JSON body nested thousands deep makes the parser recurse out (the webhooks parse before
    anything else can look): the caller's fault, so a 400, not a 500 with a traceback."""
    return error_response(too_deep())


async def http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse({"error": {"code": code, "message": str(exc.detail)}},
                        status_code=exc.status_code)


async def server_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s: %s", request.method, request.url.path,
              type(exc).__name__, exc_info=exc)
    return JSONResponse({"error": {"code": "internal", "message": "internal error"}},
                        status_code=500)


def collect_routes(hub: Hub) -> list[BaseRoute]:
    # The providers' webhooks first: Starlette tries the routes in order, and every webhook
    # delivery walked past the hundred API and page routes before its own.
    routes: list[BaseRoute] = [route for connector in hub.registry.connectors.values()
                               for route in connector.routes]
    routes += [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        *api_routes(),
        *web_routes(),
    ]
    for extra in hub.registry.pm.hook.routes(hub=hub):
        routes.extend(extra or [])
    return routes


class TimingMiddleware:
    """Counts requests and their server time per route template for /metrics."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            METRICS.observe_request(scope.get("method", ""), path, status["code"],
                                    time.perf_counter() - start)


class NulMiddleware:
    """A path holding a NUL character names nothing (404), a query string holding one is a 400:
    no id, code or search contains one, and PostgreSQL refuses NUL in text, which would surface
    as a 500."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and "\x00" in scope.get("path", ""):
            await error_response(NotFound("not found"))(scope, receive, send)
        elif scope["type"] == "http" and b"%00" in scope.get("query_string", b""):
            await error_response(BadRequest("NUL characters are not allowed in a query",
                                            code="invalid_query"))(scope, receive, send)
        else:
            await self.app(scope, receive, send)


HSTS = (b"strict-transport-security", b"max-age=31536000")


class HSTSMiddleware:
    """Tells browsers to come back over https only, on every answer of a hub whose `base_url` is
    https (behind a TLS-terminating proxy the request itself may arrive as plain http)."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), HSTS]}
            await send(message)

        await self.app(scope, receive, send_wrapper)


class HubApp(Starlette):
    """The hub's Starlette app, with a short way in for the providers' webhook deliveries.

    A delivery is the hub's hottest request and the one a provider times: it goes to its
    connector's endpoint through the app's own middleware (`user_middleware`: timing for
    /metrics, NUL checks, HSTS) but not through Starlette's error and exception layers and the
    router, whose wrapping of the request and both response messages cost about as much CPU as
    storing the event. An exception is answered by the app's handler for it, as those layers
    would. Anything else (another method, a query string) takes the usual way."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.webhooks: dict[str, tuple[Route, Any]] = {}

    def take_short_way(self, routes: list[BaseRoute]) -> None:
        """Give `routes` that POST to a fixed path and are answered by a coroutine (the
        connectors' webhooks) the short way in."""
        self.webhooks = {}
        for route in routes:
            if (isinstance(route, Route) and "POST" in (route.methods or ())
                    and not route.param_convertors
                    and inspect.iscoroutinefunction(route.endpoint)):
                app = self._answering(route.endpoint)
                for cls, args, kwargs in reversed(self.user_middleware):
                    app = cls(app, *args, **kwargs)
                self.webhooks[route.path] = (route, app)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        found = (self.webhooks.get(scope["path"])
                 if scope["type"] == "http" and scope["method"] == "POST"
                 and not scope.get("query_string") else None)
        if found is None:
            await super().__call__(scope, receive, send)
            return
        route, app = found
        scope.update(app=self, route=route, endpoint=route.endpoint, path_params={})
        await app(scope, receive, send)

    def _answering(self, endpoint: Any) -> Any:
        async def answer(scope: Any, receive: Any, send: Any) -> None:
            request = Request(scope, receive)
            try:
                response = await endpoint(request)
            except Exception as exc:
                handler = next((self.exception_handlers[cls] for cls in type(exc).__mro__
                                if cls in self.exception_handlers), None)
                if handler is None:
                    raise
                response = await handler(request, exc)
            await response(scope, receive, send)

        return answer


def create_app(hub: Hub) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        committer = hub.extras.get("group_commit")
        if committer is not None:  # answer the webhooks still waiting for their commit
            await run_in_threadpool(committer.close)

    app = HubApp(
        lifespan=lifespan,
        routes=collect_routes(hub),
        middleware=[Middleware(TimingMiddleware), Middleware(NulMiddleware),
                    *([Middleware(HSTSMiddleware)]
                      if hub.config.server.base_url.startswith("https://") else [])],
        exception_handlers={HTTPError: hub_error, HTTPException: http_exception,
                            RecursionError: nested_too_deeply, Exception: server_error},
    )
    app.state.hub = hub
    app.take_short_way([route for connector in hub.registry.connectors.values()
                        for route in connector.routes])
    if hub.config.queue.url:
        hub.extras.setdefault("queue_check", lambda: redis_check(hub))
    return app
