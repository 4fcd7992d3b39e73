"""The HTTP layer over the in-memory fake, served by uvicorn in a thread: shapes, errors, fuzz."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Route
from test_batenbase_http_fake import FakeBatenBase, ThreadServer

from batenbase.http.app import create_app
from batenbase.http.openapi import template
from batenbase.http.routes import routes


class World:
    def __init__(self, quotas: dict[str, int | None] | None = None) -> None:
        self.service = FakeBatenBase(quotas)
        self.app = create_app(self.service, max_body=4096)
        self.server = ThreadServer(self.app)
        self.http = httpx.Client(base_url=self.server.url, timeout=10)
        op = self.service.bootstrap_operator_token()
        assert op is not None
        self.op = op.token
        self.service.create_tenant("acme")
        self.service.create_tenant("evil")
        self.admin = self.token("acme", "root", "admin")
        self.alice = self.token("acme", "alice", "writer")
        self.bob = self.token("acme", "bob", "reader")
        self.mallory = self.token("evil", "mallory", "admin")

    def token(self, tenant: str, observer: str, role: Any, scopes: tuple[int, ...] = ()) -> str:
        return str(self.service.issue_token(tenant, observer, role, scopes).token)

    def req(self, method: str, path: str, token: str | None, **kw: Any) -> Any:
        headers = dict(kw.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, path, headers=headers, **kw)

    def internal_errors(self) -> int:
        return int(self.app.state.metrics.internal_errors)


@pytest.fixture
def w() -> Iterator[World]:
    world = World()
    with world.server, world.http:
        yield world


def assert_error(resp: Any, status: int, code: str | None = None) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["ok"] is False
    assert set(body["error"]) == {"code", "message"}
    if code is not None:
        assert body["error"]["code"] == code


def test_seed_example(w: World) -> None:
    key = "user:alice@corp.com"
    r = w.req("PUT", f"/blocks/{key}", w.alice, json={"data": {"name": "Alice", "role": "admin"}})
    assert r.status_code == 200
    assert r.json()["ok"] is True
    assert r.json()["key"] == key
    r = w.req("GET", f"/blocks/{key}", w.alice)
    body = r.json()
    assert list(body)[:6] == ["key", "f", "l", "v", "h", "data"]
    assert body["data"] == {"name": "Alice", "role": "admin"}
    assert isinstance(body["f"], int)
    assert isinstance(body["l"], int)
    assert (body["v"], body["h"], body["rev"]) == (1, 0, 1)
    assert r.headers["etag"] == f'"{body["etag"]}"'


def test_health_needs_no_auth_and_everything_else_does(w: World) -> None:
    assert w.req("GET", "/health", None).json()["ok"] is True
    for method, path in [("GET", "/blocks"), ("GET", "/tenants/me"), ("GET", "/openapi.json")]:
        r = w.req(method, path, None)
        assert_error(r, 401, "unauthorized")
        assert r.headers["www-authenticate"] == "Bearer"
    assert_error(w.req("GET", "/blocks", "bbt_nope"), 401)
    assert_error(w.req("GET", "/blocks", None, headers={"Authorization": "Basic eDp5"}), 401)


def test_error_statuses(w: World) -> None:
    put = "/blocks/k1"
    assert_error(w.req("PUT", put, w.alice, content=b"{nope"), 400, "bad_json")
    assert_error(w.req("PUT", put, w.alice, content=b""), 400)
    assert_error(w.req("PUT", put, w.alice, json={"data": 1, "v": "x"}), 400)
    assert_error(w.req("PUT", put, w.alice, json={"data": 1, "h": 2}), 400)
    assert_error(w.req("PUT", put, w.alice, json={"data": 1, "v": True}), 400)
    assert_error(w.req("PUT", put, w.alice, json=[1, 2]), 400)
    assert_error(w.req("GET", "/blocks?limit=0", w.alice), 400)
    assert_error(w.req("GET", "/blocks?limit=abc", w.alice), 400)
    assert_error(w.req("GET", "/blocks/k1?rev=-1", w.alice), 400)
    assert_error(w.req("GET", "/blocks/k1?at=nan", w.alice), 400)
    assert_error(w.req("GET", "/blocks/k1?include_redacted=maybe", w.alice), 400)
    assert_error(w.req("POST", "/events", w.alice, json={"kind": "BAD KIND"}), 400, "bad_kind")
    assert_error(w.req("PUT", put, w.bob, json={"data": 1}), 403, "forbidden")
    assert_error(w.req("POST", "/admin/tenants", w.admin, json={"name": "x"}), 403)
    assert_error(w.req("GET", "/metrics", w.admin), 403)
    assert_error(w.req("GET", "/blocks/missing", w.alice), 404, "not_found")
    assert_error(w.req("GET", "/no/such/route", w.alice), 404)
    assert_error(w.req("PATCH", "/blocks/k1", w.alice), 405)
    assert w.req("PUT", put, w.alice, json={"data": 1}).status_code == 200
    hdr = {"If-None-Match": "*"}
    assert_error(w.req("PUT", put, w.alice, json={"data": 2}, headers=hdr), 409)
    assert_error(w.req("PUT", put, w.alice, json={"data": 2}, headers={"If-Match": "7"}), 409)
    assert (
        w.req("PUT", put, w.alice, json={"data": 2}, headers={"If-Match": "1"}).status_code == 200
    )
    etag = w.req("GET", put, w.alice).headers["etag"]
    assert w.req("DELETE", put, w.alice, headers={"If-Match": etag}).status_code == 200
    big = {"data": "x" * 5000}
    assert_error(w.req("PUT", put, w.alice, json=big), 413, "too_large")
    chunks = (b"x" * 1000 for _ in range(10))  # no Content-Length: streamed cap
    assert_error(w.req("PUT", put, w.alice, content=chunks), 413)
    assert w.internal_errors() == 0


def test_quota_is_429() -> None:
    world = World({"free": 2, "unlimited": None})
    with world.server, world.http:
        for i in range(2):
            assert (
                world.req("PUT", f"/blocks/q{i}", world.alice, json={"data": i}).status_code == 200
            )
        assert_error(world.req("PUT", "/blocks/q9", world.alice, json={"data": 9}), 429)
        assert world.req("PUT", "/blocks/q0", world.alice, json={"data": 5}).status_code == 200
        info = world.req("GET", "/tenants/me", world.alice).json()
        assert (info["quota"], info["usage"]) == (2, 2)


def test_visibility_history_asof_and_listing(w: World) -> None:
    w.req("PUT", "/blocks/p:1", w.alice, json={"data": "a", "v": 0})
    w.req("PUT", "/blocks/p:1", w.alice, json={"data": "b", "v": 0})
    w.req("PUT", "/blocks/p:2", w.alice, json={"data": "c"})
    w.req("PUT", "/blocks/q:1", w.alice, json={"data": "d"})
    assert_error(w.req("GET", "/blocks/p:1", w.bob), 404)
    assert w.req("GET", "/blocks/p:1?rev=1", w.alice).json()["data"] == "a"
    assert w.req("GET", "/blocks/p:1?at=99999999999", w.alice).json()["data"] == "b"
    assert_error(w.req("GET", "/blocks/p:1?rev=1&at=5", w.alice), 400)
    hist = w.req("GET", "/blocks/p:1/history", w.alice).json()
    assert [b["data"] for b in hist["items"]] == ["b", "a"]
    listed = w.req("GET", "/blocks?prefix=p:&limit=1", w.bob).json()
    assert [b["key"] for b in listed["items"]] == ["p:2"]
    page1 = w.req("GET", "/blocks?prefix=p:&limit=1", w.alice).json()
    page2 = w.req("GET", f"/blocks?prefix=p:&limit=1&cursor={page1['next_cursor']}", w.alice)
    assert [page1["items"][0]["key"], page2.json()["items"][0]["key"]] == ["p:1", "p:2"]
    w.req("DELETE", "/blocks/p:2", w.alice)
    assert_error(w.req("GET", "/blocks/p:2", w.admin), 404)
    assert w.req("GET", "/blocks/p:2?include_redacted=true", w.admin).json()["h"] == 1
    assert w.req("GET", "/blocks/q:1/proof", w.alice).json()["key"] == "q:1"


def test_cross_tenant_sees_nothing(w: World) -> None:
    secret = "s3cr3t-acme-payload"
    w.req("PUT", "/blocks/shared-name", w.alice, json={"data": secret})
    w.req("POST", "/events", w.alice, json={"kind": "note", "details": secret})
    probes = [
        ("GET", "/blocks/shared-name"),
        ("GET", "/blocks"),
        ("GET", "/blocks/shared-name/history"),
        ("GET", "/blocks/shared-name/proof"),
        ("GET", "/blocks/shared-name?rev=1"),
        ("GET", "/events"),
        ("GET", "/tenants/me"),
    ]
    for method, path in probes:
        r = w.req(method, path, w.mallory)
        assert secret not in r.text, path
        assert "acme" not in r.text, path
    assert_error(w.req("DELETE", "/blocks/shared-name", w.mallory), 404)


def test_events_and_read_receipts(w: World) -> None:
    r = w.req("POST", "/events", w.alice, json={"kind": "login.ok", "details": {"ip": "x"}})
    assert r.json()["ok"] is True
    assert r.json()["kind"] == "login.ok"
    events = w.req("GET", "/events?since=24h&kind=login.ok&limit=5", w.alice).json()
    assert [e["kind"] for e in events["items"]] == ["login.ok"]
    assert_error(w.req("GET", "/events?since=forever", w.alice), 400)
    assert_error(w.req("PUT", "/tenants/me/read_receipts", w.alice, json={"enabled": True}), 403)
    r = w.req("PUT", "/admin/tenants/acme/read_receipts", w.op, json={"enabled": True})
    assert r.json()["read_receipts"] is True
    w.req("PUT", "/blocks/r", w.alice, json={"data": 1})
    w.req("GET", "/blocks/r", w.bob)
    readers = w.req("GET", "/blocks/r/readers", w.admin).json()["items"]
    assert [(x["observer"], x["rev"]) for x in readers] == [("bob", 1)]


def test_admin_routes(w: World) -> None:
    r = w.req("POST", "/admin/tenants", w.op, json={"name": "newco", "plan": "unlimited"})
    assert r.status_code == 201
    assert r.json()["quota"] is None
    assert w.req("PUT", "/admin/tenants/newco/plan", w.op, json={"plan": "free"}).json()["quota"]
    body = {"observer": "n", "role": "writer", "scopes": [2]}
    tok = w.req("POST", "/admin/tenants/newco/tokens", w.op, json=body).json()
    assert w.req("GET", "/tenants/me", tok["token"]).json()["name"] == "newco"
    r = w.req("DELETE", f"/admin/tokens/{tok['token_id']}", w.op)
    assert r.json()["ok"] is True
    assert_error(w.req("GET", "/tenants/me", tok["token"]), 401)
    assert w.req("POST", "/admin/operator_tokens", w.op).json()["token"]
    assert w.req("POST", "/admin/tenants/newco/compact", w.op).status_code == 200
    assert_error(w.req("POST", "/admin/tenants", w.op, json={"name": "x", "plan": "gold"}), 400)


def test_openapi_docs_and_metrics(w: World) -> None:
    doc = w.req("GET", "/openapi.json", w.alice).json()
    assert doc["openapi"].startswith("3.1")
    for route in routes:
        assert isinstance(route, Route)
        for method in (route.methods or set()) - {"HEAD"}:
            assert method.lower() in doc["paths"][template(route.path)]
    page = w.req("GET", "/docs", w.alice)
    assert "text/html" in page.headers["content-type"]
    assert "/blocks/{key}/proof" in page.text
    assert "<script" not in page.text
    w.req("PUT", "/blocks/m", w.alice, json={"data": 1})
    w.req("GET", "/tenants/me", w.alice)
    text = w.req("GET", "/metrics", w.op).text
    samples = parse_prometheus(text)
    key = ("batenbase_http_requests_total", '{method="PUT",route="/blocks/{key}",status="200"}')
    assert samples[key] == 1
    assert samples[("batenbase_tenant_blocks", '{tenant="acme"}')] == 1
    assert samples[("batenbase_http_internal_errors_total", "")] == 0


def parse_prometheus(text: str) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, value = line.rsplit(" ", 1)
        name, _, labels = name_labels.partition("{")
        out[(name, "{" + labels if labels else "")] = float(value)
    return out


def test_access_log_is_one_json_line(w: World, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="batenbase.http.access"):
        w.req("GET", "/blocks/nothing", w.alice)
        # The server thread logs after the last body byte is sent, so the client can be first.
        deadline = time.monotonic() + 5
        lines: list[str] = []
        while time.monotonic() < deadline:
            lines = [r.getMessage() for r in caplog.records if r.name == "batenbase.http.access"]
            if lines:
                break
            time.sleep(0.01)
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["status"] == 404
    assert entry["route"] == "/blocks/{key}"
    assert entry["tenant"] == "acme"
    assert entry["observer"] == "alice"


def test_catch_all_hides_bugs(w: World, caplog: pytest.LogCaptureFixture) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    w.service.tenant_info = boom  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="batenbase.http.error"):
        r = w.req("GET", "/tenants/me", w.alice)
    assert_error(r, 500, "internal_error")
    assert "secret internals" not in r.text
    assert "Traceback" not in r.text
    assert w.internal_errors() == 1
    assert any("secret internals" in (rec.exc_text or "") for rec in caplog.records)


_METHODS = st.sampled_from(["GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"])
_SEGMENT = st.text(min_size=0, max_size=12).map(lambda s: quote(s, safe=":@"))
_PATHS = st.one_of(
    st.sampled_from(["/blocks", "/events", "/tenants/me", "/admin/tenants", "/health"]),
    st.builds(lambda k: f"/blocks/{k}", _SEGMENT),
    st.builds(
        lambda k, s: f"/blocks/{k}/{s}", _SEGMENT, st.sampled_from(["history", "proof", "readers"])
    ),
    st.builds(
        lambda n, s: f"/admin/tenants/{n}/{s}",
        _SEGMENT,
        st.sampled_from(["plan", "tokens", "compact"]),
    ),
)
_QUERY = st.dictionaries(
    st.sampled_from(
        ["limit", "rev", "at", "since", "until", "kind", "cursor", "prefix", "include_redacted"]
    ),
    st.text(max_size=10),
    max_size=3,
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_BODY = st.one_of(
    st.binary(max_size=64),
    _JSON.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"data": _JSON}, optional={"v": _JSON, "h": _JSON, "kind": _JSON}).map(
        lambda v: json.dumps(v).encode()
    ),
)
_HEADERS = st.dictionaries(
    st.sampled_from(["If-Match", "If-None-Match", "Content-Type"]),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=10).map(
        str.strip
    ),
    max_size=2,
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=_METHODS,
    path=_PATHS,
    query=_QUERY,
    body=_BODY,
    headers=_HEADERS,
    who=st.sampled_from(["alice", "bob", "admin", "op", "none"]),
)
def test_fuzzed_requests_never_500(
    w: World,
    method: str,
    path: str,
    query: dict[str, str],
    body: bytes,
    headers: dict[str, str],
    who: str,
) -> None:
    token = None if who == "none" else str(getattr(w, who))
    r = w.req(method, path, token, params=query, content=body, headers=headers)
    assert r.status_code < 500, (r.status_code, r.text)
    if method != "HEAD" and r.status_code >= 400:
        assert r.json()["ok"] is False
    assert w.internal_errors() == 0
