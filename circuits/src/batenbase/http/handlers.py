"""Request handlers: authenticate, call the facade in a worker thread, shape the JSON answer."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from batenbase.http._input import (
    CompactBody,
    EventBody,
    HttpError,
    PlanBody,
    PutBody,
    SwitchBody,
    TenantBody,
    TokenBody,
    decode_body,
    if_match,
    key_of,
    q_bool,
    q_float,
    q_int,
    q_str,
    read_body,
)
from batenbase.http.metrics import Metrics
from batenbase.http.openapi import render_html
from batenbase.model import Caller

T = TypeVar("T")


def error_response(status: int, code: str, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        {"ok": False, "error": {"code": code, "message": message}},
        status_code=status,
        headers=headers,
    )


async def on_service_error(request: Request, exc: Exception) -> Response:
    status = int(getattr(exc, "status", 400))
    code = str(getattr(exc, "code", "bad_request"))
    message = str(getattr(exc, "message", None) or exc or code)
    return error_response(status, code, message)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 400: "bad_request", 413: "too_large"}
    return error_response(
        exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail)
    )


# -- plumbing ---------------------------------------------------------------


def _to_json(value: Any) -> Any:
    return msgspec.to_builtins(value)


_encoder = msgspec.json.Encoder()


def ok(value: Any, *, status: int = 200, etag: str | None = None) -> Response:
    safe = etag and all(0x21 <= ord(c) <= 0x7E and c != '"' for c in etag)
    headers = {"ETag": f'"{etag}"'} if safe else None
    body = _encoder.encode(value)
    return Response(body, status_code=status, headers=headers, media_type="application/json")


async def call(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    # The facade is blocking (fsync, locks): keep it off the event loop.
    return await anyio.to_thread.run_sync(functools.partial(func, *args, **kwargs))


def _service(request: Request) -> Any:
    return request.app.state.service


def _metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


async def authenticate(request: Request) -> Caller:
    header = request.headers.get("authorization")
    bearer: str | None = None
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            bearer = value.strip()
    # In-memory only (a digest and a dict lookup): run it here rather than pay a thread hop.
    caller: Caller = _service(request).authenticate(bearer)
    request.state.caller = caller
    return caller


def require_operator(caller: Caller) -> None:
    if not caller.operator:
        raise HttpError(403, "forbidden", "this route needs an operator token")


# -- blocks -------------------------------------------------------------------


def _written(block: Any) -> Response:
    body = {"ok": True, "key": block.key, "rev": block.rev, "seq": block.seq, "hash": block.hash}
    body |= {"etag": block.etag, "f": block.f, "l": block.l, "v": block.v, "h": block.h}
    return ok(body, etag=block.etag)


async def put_block(request: Request) -> Response:
    caller = await authenticate(request)
    key = key_of(request)
    body = await decode_body(request, PutBody)
    inm = request.headers.get("if-none-match")
    if inm is not None and inm.strip() != "*":
        raise HttpError(400, "bad_request", "If-None-Match supports only *")
    block = await call(
        _service(request).put_block,
        caller,
        key,
        body.data,
        v=body.v,
        h=body.h,
        if_match=if_match(request),
        if_none_match=inm is not None,
        idempotency_key=request.headers.get("idempotency-key"),
    )
    return _written(block)


async def get_block(request: Request) -> Response:
    caller = await authenticate(request)
    key = key_of(request)
    rev = q_int(request, "rev", None, 1, 2**62)
    at = q_float(request, "at")
    if rev is not None and at is not None:
        raise HttpError(400, "bad_request", "give rev or at, not both")
    redacted = q_bool(request, "include_redacted")
    service = _service(request)
    # Most reads are in memory: answer them here and keep the worker hop for the rest.
    args = {"rev": rev, "at": at, "include_redacted": redacted}
    block = service.get_block_nowait(caller, key, **args)
    if block is None:
        block = await call(service.get_block, caller, key, **args)
    return ok(block, etag=block.etag)


async def delete_block(request: Request) -> Response:
    caller = await authenticate(request)
    key = key_of(request)
    block = await call(
        _service(request).delete_block,
        caller,
        key,
        if_match=if_match(request),
        idempotency_key=request.headers.get("idempotency-key"),
    )
    return _written(block)


async def list_blocks(request: Request) -> Response:
    caller = await authenticate(request)
    service = _service(request)
    extra: dict[str, Any] = {}
    if q_bool(request, "include_redacted"):
        if caller.role != "admin":
            raise HttpError(403, "forbidden", "include_redacted is for tenant admins")
        extra["include_redacted"] = True
    page = await call(
        service.list_blocks,
        caller,
        prefix=q_str(request, "prefix") or "",
        limit=q_int(request, "limit", 100),
        cursor=q_str(request, "cursor"),
        **extra,
    )
    return ok(page)


async def history(request: Request) -> Response:
    caller = await authenticate(request)
    key = key_of(request)
    page = await call(
        _service(request).history,
        caller,
        key,
        limit=q_int(request, "limit", 100),
        cursor=q_str(request, "cursor"),
    )
    return ok(page)


async def proof(request: Request) -> Response:
    caller = await authenticate(request)
    return ok(await call(_service(request).proof, caller, key_of(request)))


async def readers(request: Request) -> Response:
    caller = await authenticate(request)
    key = key_of(request)
    items = await call(_service(request).readers, caller, key, limit=q_int(request, "limit", 100))
    return ok({"items": items})


# -- events and tenant ----------------------------------------------------------


async def append_event(request: Request) -> Response:
    caller = await authenticate(request)
    body = await decode_body(request, EventBody)
    event = await call(
        _service(request).append_event,
        caller,
        body.kind,
        body.details,
        idempotency_key=request.headers.get("idempotency-key"),
    )
    return ok({"ok": True} | _to_json(event))


async def scan_events(request: Request) -> Response:
    caller = await authenticate(request)
    page = await call(
        _service(request).scan_events,
        caller,
        since=q_str(request, "since", 64),
        until=q_float(request, "until"),
        kind=q_str(request, "kind", 128),
        limit=q_int(request, "limit", 50),
        cursor=q_str(request, "cursor"),
    )
    return ok(page)


async def tenant_me(request: Request) -> Response:
    caller = await authenticate(request)
    info = await call(_service(request).tenant_info, caller)
    _metrics(request).set_tenant_blocks(info.name, info.usage)
    return ok(info)


async def set_read_receipts(request: Request) -> Response:
    caller = await authenticate(request)
    body = await decode_body(request, SwitchBody)
    return ok(await call(_service(request).set_read_receipts, caller, body.enabled))


async def health(request: Request) -> Response:
    return JSONResponse({"ok": True, "status": "up"})


# -- operator surface -------------------------------------------------------------


async def _operator(request: Request) -> Caller:
    caller = await authenticate(request)
    require_operator(caller)
    return caller


def _name(request: Request) -> str:
    name = str(request.path_params["name"])
    if not name or len(name) > 128:
        raise HttpError(400, "bad_request", "tenant name must be 1..128 characters")
    return name


async def admin_create_tenant(request: Request) -> Response:
    await _operator(request)
    body = await decode_body(request, TenantBody)
    info = await call(_service(request).create_tenant, body.name, body.plan)
    return ok(info, status=201)


async def admin_set_plan(request: Request) -> Response:
    await _operator(request)
    body = await decode_body(request, PlanBody)
    return ok(await call(_service(request).set_plan, _name(request), body.plan))


async def admin_issue_token(request: Request) -> Response:
    await _operator(request)
    name = _name(request)
    body = await decode_body(request, TokenBody)
    issued = await call(_service(request).issue_token, name, body.observer, body.role, body.scopes)
    return ok(issued, status=201)


async def admin_tenants(request: Request) -> Response:
    await _operator(request)
    return ok({"ok": True, "tenants": await call(_service(request).list_tenants)})


async def admin_host(request: Request) -> Response:
    await _operator(request)
    return ok({"ok": True, **_service(request).host_contract()})


async def admin_issue_operator_token(request: Request) -> Response:
    await _operator(request)
    return ok(await call(_service(request).issue_operator_token), status=201)


async def admin_revoke_token(request: Request) -> Response:
    await _operator(request)
    token_id = str(request.path_params["token_id"])
    await call(_service(request).revoke_token, token_id)
    return ok({"ok": True, "token_id": token_id})


async def admin_compact(request: Request) -> Response:
    await _operator(request)
    raw = await read_body(request, request.app.state.max_body)
    keep = 1
    if raw.strip():
        try:
            keep = msgspec.json.decode(raw, type=CompactBody).keep_revisions
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise HttpError(400, "bad_request", f"invalid body: {exc}") from None
    return ok(await call(_service(request).compact, _name(request), keep_revisions=keep))


def switch_read_receipts(service: Any, tenant: str, enabled: bool) -> Any:
    """Set a tenant's read receipts for an operator, through the tenant surface.

    The facade switches receipts for a tenant admin only, so the operator acts
    through a one-off tenant admin token that is revoked straight after.
    """
    issued = service.issue_token(tenant, "operator", "admin")
    try:
        return service.set_read_receipts(service.authenticate(issued.token), enabled)
    finally:
        service.revoke_token(issued.token_id)


async def admin_read_receipts(request: Request) -> Response:
    await _operator(request)
    name = _name(request)
    body = await decode_body(request, SwitchBody)
    return ok(await call(switch_read_receipts, _service(request), name, body.enabled))


# -- documents ----------------------------------------------------------------------


async def openapi(request: Request) -> Response:
    await authenticate(request)
    return JSONResponse(request.app.state.openapi)


async def docs(request: Request) -> Response:
    await authenticate(request)
    return HTMLResponse(render_html(request.app.state.openapi))


async def metrics(request: Request) -> Response:
    caller = await authenticate(request)
    require_operator(caller)
    lister = getattr(_service(request), "list_tenants", None)
    if callable(lister):
        for info in await call(lister):
            _metrics(request).set_tenant_blocks(info.name, info.usage)
    return PlainTextResponse(
        _metrics(request).render(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )
