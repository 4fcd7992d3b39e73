"""`create_app(service)`: the Starlette application over a `BatenBase` facade."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from batenbase.errors import BatenBaseError
from batenbase.http import handlers
from batenbase.http._input import MAX_BODY, HttpError
from batenbase.http.metrics import Metrics
from batenbase.http.middleware import ObserveMiddleware
from batenbase.http.openapi import build_openapi
from batenbase.http.ratelimit import RateLimitMiddleware, TokenBuckets
from batenbase.http.routes import routes


def create_app(
    service: Any,
    *,
    max_body: int = MAX_BODY,
    rate_limit: float | None = None,
    rate_burst: float | None = None,
) -> Starlette:
    """Build the app; `service` is an open `BatenBase` (or anything honouring its contract).

    `max_body` caps request bodies in bytes (413 beyond it). `rate_limit` (requests per
    second per bearer token, or per address without one; off when None) answers 429
    `rate_limited` beyond bursts of `rate_burst` (default twice the rate). The caller owns
    the service and closes it after the server stops.
    """
    metrics = Metrics()
    middleware = [Middleware(ObserveMiddleware, routes=routes, metrics=metrics)]
    if rate_limit is not None:
        burst = rate_burst if rate_burst is not None else max(1.0, 2 * rate_limit)
        middleware.append(Middleware(RateLimitMiddleware, buckets=TokenBuckets(rate_limit, burst)))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={
            BatenBaseError: handlers.on_service_error,
            HttpError: handlers.on_service_error,
            HTTPException: handlers.on_http_exception,
        },
    )
    app.state.service = service
    app.state.metrics = metrics
    app.state.max_body = max_body
    app.state.openapi = build_openapi(routes)
    return app
