"""The route table: every path of the service, in match order."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from batenbase.http import handlers as h

routes: list[BaseRoute] = [
    Route("/health", h.health, methods=["GET"]),
    Route("/blocks", h.list_blocks, methods=["GET"]),
    Route("/blocks/{key:path}/history", h.history, methods=["GET"]),
    Route("/blocks/{key:path}/proof", h.proof, methods=["GET"]),
    Route("/blocks/{key:path}/readers", h.readers, methods=["GET"]),
    Route("/blocks/{key:path}", h.get_block, methods=["GET"]),
    Route("/blocks/{key:path}", h.put_block, methods=["PUT"]),
    Route("/blocks/{key:path}", h.delete_block, methods=["DELETE"]),
    Route("/events", h.append_event, methods=["POST"]),
    Route("/events", h.scan_events, methods=["GET"]),
    Route("/tenants/me", h.tenant_me, methods=["GET"]),
    Route("/tenants/me/read_receipts", h.set_read_receipts, methods=["PUT"]),
    Route("/admin/host", h.admin_host, methods=["GET"]),
    Route("/admin/tenants", h.admin_tenants, methods=["GET"]),
    Route("/admin/tenants", h.admin_create_tenant, methods=["POST"]),
    Route("/admin/tenants/{name}/plan", h.admin_set_plan, methods=["PUT"]),
    Route("/admin/tenants/{name}/tokens", h.admin_issue_token, methods=["POST"]),
    Route("/admin/tenants/{name}/compact", h.admin_compact, methods=["POST"]),
    Route("/admin/tenants/{name}/read_receipts", h.admin_read_receipts, methods=["PUT"]),
    Route("/admin/operator_tokens", h.admin_issue_operator_token, methods=["POST"]),
    Route("/admin/tokens/{token_id}", h.admin_revoke_token, methods=["DELETE"]),
    Route("/openapi.json", h.openapi, methods=["GET"]),
    Route("/docs", h.docs, methods=["GET"]),
    Route("/metrics", h.metrics, methods=["GET"]),
]
