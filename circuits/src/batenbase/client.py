"""`Client`: a typed, synchronous httpx client for the BatenBase HTTP face.

Reads return the facade's msgspec Structs (`Block`, `Page[Block]`, `TenantInfo`,
`AuditEvent`, `IssuedToken`, `ReadReceipt`, `Proof`); writes return the JSON
dict of the response (`{"ok": true, "key", "rev", "seq", "hash", "etag", ...}`).
Every non-2xx answer raises `ApiError(status, code, message)`.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from batenbase.model import (
    AuditEvent,
    Block,
    IssuedToken,
    Page,
    Plan,
    Proof,
    ReadReceipt,
    Role,
    TenantInfo,
)

T = TypeVar("T")


class _Tenants(msgspec.Struct):
    tenants: list[TenantInfo]


class ApiError(Exception):
    """Raised when the server answers with an error; carries its status, code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class Client:
    """A connection to one server with one bearer token."""

    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- plumbing --

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        response = self._http.request(method, path, json=json, params=query, headers=headers)
        if response.status_code >= 400:
            try:
                err = response.json()["error"]
                code, message = str(err["code"]), str(err["message"])
            except (ValueError, KeyError, TypeError):
                code, message = "http_error", response.text[:200]
            raise ApiError(response.status_code, code, message)
        return response

    def _json(self, method: str, path: str, kind: type[T], **kw: Any) -> T:
        return msgspec.convert(self._send(method, path, **kw).json(), kind)

    @staticmethod
    def _key(key: str) -> str:
        return "/blocks/" + quote(key, safe="/:@!$&'()*+,;=-._~")

    # -- blocks --

    def put_block(
        self,
        key: str,
        data: Any,
        *,
        v: int | None = None,
        h: int | None = None,
        if_match: str | int | None = None,
        if_none_match: bool = False,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Create or update a block; a retry with the same ``idempotency_key`` answers the
        original write again instead of writing twice."""
        body: dict[str, Any] = {"data": data}
        if v is not None:
            body["v"] = v
        if h is not None:
            body["h"] = h
        headers = {}
        if if_match is not None:
            headers["If-Match"] = str(if_match)
        if if_none_match:
            headers["If-None-Match"] = "*"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return self._json("PUT", self._key(key), dict[str, Any], json=body, headers=headers)

    def get_block(
        self,
        key: str,
        *,
        rev: int | None = None,
        at: float | None = None,
        include_redacted: bool = False,
    ) -> Block:
        params = {"rev": rev, "at": at, "include_redacted": "true" if include_redacted else None}
        return self._json("GET", self._key(key), Block, params=params)

    def delete_block(
        self, key: str, *, if_match: str | int | None = None, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        headers = {"If-Match": str(if_match)} if if_match is not None else {}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return self._json("DELETE", self._key(key), dict[str, Any], headers=headers)

    def list_blocks(
        self, *, prefix: str = "", limit: int = 100, cursor: str | None = None
    ) -> Page[Block]:
        params = {"prefix": prefix or None, "limit": limit, "cursor": cursor}
        return self._json("GET", "/blocks", Page[Block], params=params)

    def history(self, key: str, *, limit: int = 100, cursor: str | None = None) -> Page[Block]:
        params = {"limit": limit, "cursor": cursor}
        return self._json("GET", self._key(key) + "/history", Page[Block], params=params)

    def proof(self, key: str) -> Proof:
        return self._json("GET", self._key(key) + "/proof", Proof)

    def readers(self, key: str, *, limit: int = 100) -> list[ReadReceipt]:
        body = self._json(
            "GET",
            self._key(key) + "/readers",
            dict[str, list[ReadReceipt]],
            params={"limit": limit},
        )
        return body["items"]

    # -- events and tenant --

    def append_event(
        self, kind: str, details: Any = None, *, idempotency_key: str | None = None
    ) -> AuditEvent:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else None
        body = {"kind": kind, "details": details}
        return self._json("POST", "/events", AuditEvent, json=body, headers=headers)

    def scan_events(
        self,
        *,
        since: str | None = None,
        until: float | None = None,
        kind: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[AuditEvent]:
        params = {"since": since, "until": until, "kind": kind, "limit": limit, "cursor": cursor}
        return self._json("GET", "/events", Page[AuditEvent], params=params)

    def tenant_info(self) -> TenantInfo:
        return self._json("GET", "/tenants/me", TenantInfo)

    def set_read_receipts(self, enabled: bool) -> TenantInfo:
        return self._json("PUT", "/tenants/me/read_receipts", TenantInfo, json={"enabled": enabled})

    def health(self) -> dict[str, Any]:
        return self._json("GET", "/health", dict[str, Any])

    def openapi(self) -> dict[str, Any]:
        return self._json("GET", "/openapi.json", dict[str, Any])

    def docs(self) -> str:
        return self._send("GET", "/docs").text

    def metrics(self) -> str:
        return self._send("GET", "/metrics").text

    # -- operator surface --

    def admin_host(self) -> dict[str, Any]:
        """The host contract: module digest, fingerprints, operations, receipt location."""
        return self._json("GET", "/admin/host", dict[str, Any])

    def admin_list_tenants(self) -> list[TenantInfo]:
        return self._json("GET", "/admin/tenants", _Tenants).tenants

    def admin_create_tenant(self, name: str, plan: Plan = "free") -> TenantInfo:
        return self._json("POST", "/admin/tenants", TenantInfo, json={"name": name, "plan": plan})

    def admin_set_plan(self, name: str, plan: Plan) -> TenantInfo:
        return self._json(
            "PUT", f"/admin/tenants/{quote(name, safe='')}/plan", TenantInfo, json={"plan": plan}
        )

    def admin_issue_token(
        self, tenant: str, observer: str, role: Role, scopes: Iterable[int] = ()
    ) -> IssuedToken:
        body = {"observer": observer, "role": role, "scopes": list(scopes)}
        return self._json(
            "POST", f"/admin/tenants/{quote(tenant, safe='')}/tokens", IssuedToken, json=body
        )

    def admin_issue_operator_token(self) -> IssuedToken:
        return self._json("POST", "/admin/operator_tokens", IssuedToken)

    def admin_revoke_token(self, token_id: str) -> dict[str, Any]:
        return self._json("DELETE", f"/admin/tokens/{quote(token_id, safe='')}", dict[str, Any])

    def admin_compact(self, tenant: str, *, keep_revisions: int = 1) -> dict[str, Any]:
        path = f"/admin/tenants/{quote(tenant, safe='')}/compact"
        return self._json("POST", path, dict[str, Any], json={"keep_revisions": keep_revisions})

    def admin_set_read_receipts(self, tenant: str, enabled: bool) -> TenantInfo:
        path = f"/admin/tenants/{quote(tenant, safe='')}/read_receipts"
        return self._json("PUT", path, TenantInfo, json={"enabled": enabled})
