"""The OpenAPI document declares each route's real success status and media type.

Found by conformance/test_schemathesis_batenbase.py: the create routes answer 201 and /docs,
/metrics are not JSON, so a client validating against the document rejected good answers.
"""

from __future__ import annotations

from batenbase.http.openapi import build_openapi
from batenbase.http.routes import routes


def test_created_routes_declare_201_and_documents_their_media_type() -> None:
    paths = build_openapi(routes)["paths"]
    created = [
        ("post", "/admin/tenants"),
        ("post", "/admin/tenants/{name}/tokens"),
        ("post", "/admin/operator_tokens"),
    ]
    for method, path in created:
        assert set(paths[path][method]["responses"]) == {"201", "default"}
    assert set(paths["/docs"]["get"]["responses"]["200"]["content"]) == {"text/html"}
    assert set(paths["/metrics"]["get"]["responses"]["200"]["content"]) == {"text/plain"}
    plain = paths["/blocks/{key}"]["get"]["responses"]
    assert set(plain) == {"200", "default"}
    assert set(plain["200"]["content"]) == {"application/json"}
