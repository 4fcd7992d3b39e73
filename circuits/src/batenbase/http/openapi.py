"""The OpenAPI 3.1 document of the HTTP face, and a dependency-free HTML rendering of it."""

from __future__ import annotations

import functools
import html
import re
from typing import Any

from starlette.routing import BaseRoute, Route

_OBJ: dict[str, Any] = {"type": "object"}
_ERROR = {
    "type": "object",
    "required": ["ok", "error"],
    "properties": {
        "ok": {"const": False},
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        },
    },
}
_BLOCK = {
    "type": "object",
    "required": ["key", "f", "l", "v", "h", "data"],
    "properties": {
        "key": {"type": "string"},
        "f": {"type": "integer", "description": "Unix seconds of the first write"},
        "l": {"type": "integer", "description": "Unix seconds of the latest write"},
        "v": {"type": "integer", "description": "access scope"},
        "h": {"enum": [0, 1], "description": "redacted"},
        "data": {},
        "rev": {"type": "integer"},
        "seq": {"type": "integer"},
        "hash": {"type": "string"},
        "etag": {"type": "string"},
    },
}
_PAGE = {
    "type": "object",
    "properties": {"items": {"type": "array"}, "next_cursor": {"type": ["string", "null"]}},
}


def _q(name: str, kind: str, text: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": {"type": kind},
        "description": text,
    }


_LIMIT = _q("limit", "integer", "page size, 1..1000")
_CURSOR = _q("cursor", "string", "next_cursor of the previous page")
_BODY_PUT = {
    "type": "object",
    "required": ["data"],
    "properties": {"data": {}, "v": {"type": "integer", "minimum": 0}, "h": {"enum": [0, 1]}},
}

# (method, path) -> (summary, query parameters, request body schema, response schema)
_OPS: dict[
    tuple[str, str], tuple[str, list[dict[str, Any]], dict[str, Any] | None, dict[str, Any]]
] = {
    ("GET", "/health"): ("Liveness; the only route without auth.", [], None, _OBJ),
    ("GET", "/blocks"): (
        "List visible blocks of the caller's tenant.",
        [
            _q("prefix", "string", "key prefix"),
            _LIMIT,
            _CURSOR,
            _q("include_redacted", "boolean", "admins only, where the core supports it"),
        ],
        None,
        _PAGE,
    ),
    ("GET", "/blocks/{key}/history"): (
        "Revisions of a block, newest first.",
        [_LIMIT, _CURSOR],
        None,
        _PAGE,
    ),
    ("GET", "/blocks/{key}/proof"): (
        "Hash-chain proof of a block's latest revision.",
        [],
        None,
        _OBJ,
    ),
    ("GET", "/blocks/{key}/readers"): (
        "Read receipts of a block (who saw what and when).",
        [_LIMIT],
        None,
        _OBJ,
    ),
    ("GET", "/blocks/{key}"): (
        "Read a block, optionally as of a revision or a time.",
        [
            _q("rev", "integer", "as-of revision"),
            _q("at", "number", "as-of Unix time"),
            _q("include_redacted", "boolean", "admins only: show h=1 blocks"),
        ],
        None,
        _BLOCK,
    ),
    ("PUT", "/blocks/{key}"): (
        "Upsert a block. Honours If-Match (rev or etag), If-None-Match: * and"
        " Idempotency-Key (a retry answers the original write).",
        [],
        _BODY_PUT,
        _OBJ,
    ),
    ("DELETE", "/blocks/{key}"): (
        "Soft-delete a block (h=1, history kept). Honours If-Match and Idempotency-Key.",
        [],
        None,
        _OBJ,
    ),
    ("POST", "/events"): (
        "Append an audit event. Honours Idempotency-Key.",
        [],
        {
            "type": "object",
            "required": ["kind"],
            "properties": {"kind": {"type": "string"}, "details": {}},
        },
        _OBJ,
    ),
    ("GET", "/events"): (
        "Scan audit events, newest first.",
        [
            _q("since", "string", "duration (15m, 24h, 7d) or Unix time"),
            _q("until", "number", "Unix time"),
            _q("kind", "string", "event kind"),
            _LIMIT,
            _CURSOR,
        ],
        None,
        _PAGE,
    ),
    ("GET", "/tenants/me"): ("The caller's tenant, plan, quota and usage.", [], None, _OBJ),
    ("PUT", "/tenants/me/read_receipts"): (
        "Turn read receipts on or off (tenant admin).",
        [],
        {"type": "object", "required": ["enabled"], "properties": {"enabled": {"type": "boolean"}}},
        _OBJ,
    ),
    ("GET", "/admin/host"): (
        "The host contract (operator): the hostbat module every write is dispatched through,"
        " its digest and fingerprints, operations and where runtime receipts are kept.",
        [],
        None,
        _OBJ,
    ),
    ("GET", "/admin/tenants"): ("Every tenant with plan and usage (operator).", [], None, _OBJ),
    ("POST", "/admin/tenants"): (
        "Create a tenant (operator).",
        [],
        {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "plan": {"enum": ["free", "unlimited"]}},
        },
        _OBJ,
    ),
    ("PUT", "/admin/tenants/{name}/plan"): (
        "Set a tenant's plan (operator).",
        [],
        {
            "type": "object",
            "required": ["plan"],
            "properties": {"plan": {"enum": ["free", "unlimited"]}},
        },
        _OBJ,
    ),
    ("POST", "/admin/tenants/{name}/tokens"): (
        "Issue a tenant token; shown once (operator).",
        [],
        {
            "type": "object",
            "required": ["observer", "role"],
            "properties": {
                "observer": {"type": "string"},
                "role": {"enum": ["admin", "writer", "reader"]},
                "scopes": {"type": "array", "items": {"type": "integer"}},
            },
        },
        _OBJ,
    ),
    ("POST", "/admin/tenants/{name}/compact"): (
        "Compact a tenant journal (operator).",
        [],
        {"type": "object", "properties": {"keep_revisions": {"type": "integer", "minimum": 1}}},
        _OBJ,
    ),
    ("PUT", "/admin/tenants/{name}/read_receipts"): (
        "Turn a tenant's read receipts on or off (operator).",
        [],
        {"type": "object", "required": ["enabled"], "properties": {"enabled": {"type": "boolean"}}},
        _OBJ,
    ),
    ("POST", "/admin/operator_tokens"): (
        "Issue another operator token (operator).",
        [],
        None,
        _OBJ,
    ),
    ("DELETE", "/admin/tokens/{token_id}"): ("Revoke a token (operator).", [], None, _OBJ),
    ("GET", "/openapi.json"): ("This document.", [], None, _OBJ),
    ("GET", "/docs"): ("This document as HTML.", [], None, {"type": "string"}),
    ("GET", "/metrics"): ("Prometheus metrics (operator).", [], None, {"type": "string"}),
}


@functools.cache
def template(path: str) -> str:
    """A route's public template: ``/blocks/{key:path}`` is ``/blocks/{key}``."""
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)


# Answers that are not a plain 200 JSON document.
_CREATED = {
    ("POST", "/admin/tenants"),
    ("POST", "/admin/tenants/{name}/tokens"),
    ("POST", "/admin/operator_tokens"),
}
_MEDIA = {("GET", "/docs"): "text/html", ("GET", "/metrics"): "text/plain"}


def build_openapi(routes: list[BaseRoute]) -> dict[str, Any]:
    """Describe every route; a route missing from the table is a bug caught by the tests."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not isinstance(route, Route):
            continue
        path = template(route.path)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            summary, query, body, schema = _OPS[(method, path)]
            params = [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                for p in route.param_convertors
            ] + query
            op: dict[str, Any] = {
                "summary": summary,
                "operationId": f"{method.lower()}_{route.name}",
                "parameters": params,
                "responses": {
                    "201" if (method, path) in _CREATED else "200": {
                        "description": "success",
                        "content": {
                            _MEDIA.get((method, path), "application/json"): {"schema": schema}
                        },
                    },
                    "default": {
                        "description": "error",
                        "content": {"application/json": {"schema": _ERROR}},
                    },
                },
            }
            if path != "/health":
                op["security"] = [{"bearer": []}]
            if body is not None:
                op["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": body}},
                }
            paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "BatenBase", "version": "0.1.0"},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }


def render_html(doc: dict[str, Any]) -> str:
    """A plain HTML listing of the document: no scripts, no CDN."""
    rows = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            params = ", ".join(p["name"] for p in op["parameters"]) or "-"
            rows.append(
                f"<tr><td>{method.upper()}</td><td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(op['summary'])}</td><td>{html.escape(params)}</td></tr>"
            )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>BatenBase API</title></head><body>"
        "<h1>BatenBase API</h1><p>Machine-readable: <a href='/openapi.json'>/openapi.json</a>. "
        'Errors: <code>{"ok": false, "error": {"code", "message"}}</code>.</p>'
        "<table border='1'><tr><th>Method</th><th>Path</th><th>Summary</th><th>Parameters</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )
