"""Outermost ASGI middleware: access log, metrics and the last-resort 500."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import msgspec
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from batenbase.http.metrics import Metrics
from batenbase.http.openapi import template

access_log = logging.getLogger("batenbase.http.access")
error_log = logging.getLogger("batenbase.http.error")

_INTERNAL = json.dumps(
    {"ok": False, "error": {"code": "internal_error", "message": "internal server error"}}
).encode()


def route_name(routes: list[BaseRoute], scope: Scope) -> str:
    """Return the route template matching the request, so metrics stay low-cardinality: the
    one the router recorded in the scope (Starlette does), else the first full match."""
    routed = scope.get("route")
    if routed is not None:
        return template(str(getattr(routed, "path", "?")))
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return template(str(getattr(route, "path", "?")))
    return "<unmatched>"


class ObserveMiddleware:
    """Log one JSON line per request, count it, and turn stray exceptions into a JSON 500."""

    def __init__(self, app: ASGIApp, *, routes: list[BaseRoute], metrics: Metrics) -> None:
        self.app = app
        self.routes = routes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state: dict[str, Any] = scope.setdefault("state", {})
        status = 500
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = int(message["status"])
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            # Genuine bugs only: every expected failure is mapped before it gets here.
            self.metrics.internal_error()
            error_log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            status = 500
            if not started:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": _INTERNAL})
        finally:
            elapsed = time.perf_counter() - start
            method = str(scope.get("method", "?"))
            route = route_name(self.routes, scope)
            self.metrics.observe(method, route, status, elapsed)
            if access_log.isEnabledFor(logging.INFO):
                caller = state.get("caller")
                line = {
                    "ts": round(time.time(), 3),
                    "method": method,
                    "path": scope.get("path"),
                    "route": route,
                    "status": status,
                    "ms": round(elapsed * 1000, 3),
                    "tenant": getattr(caller, "tenant", None),
                    "observer": getattr(caller, "observer", None),
                }
                # makeRecord + handle: Logger.info would also walk the stack (findCaller)
                # for a source line that the access log never prints.
                text = msgspec.json.encode(line).decode()
                access_log.handle(
                    access_log.makeRecord(access_log.name, logging.INFO, "", 0, text, (), None)
                )
