"""A real `python -m batenbase serve` process over the real core, driven over HTTP."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.routing import Route
from test_batenbase_http_app import _BODY, _HEADERS, _METHODS, _PATHS, _QUERY, parse_prometheus

from batenbase.client import ApiError, Client
from batenbase.http.openapi import template
from batenbase.http.routes import routes
from batpak import Store, StoreConfig
from syncbat import ReceiptEnvelope

ROOT = Path(__file__).resolve().parents[2]
PYTHONPATH = os.pathsep.join(
    str(ROOT / p)
    for p in (
        "circuits/src",
        "packages/batpak/src",
        "packages/syncbat/src",
        "packages/netbat/src",
        "packages/hostbat/src",
    )
)
ENV = {**os.environ, "PYTHONPATH": PYTHONPATH}


class Server:
    """One server process on a data directory; restartable, killable."""

    def __init__(self, root: Path, *extra: str) -> None:
        self.root = root
        self.data = root / "data"
        self.extra = extra
        self.op = ""
        self.url = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def start(self) -> Server:
        self.runs += 1
        out = self.root / f"stdout.{self.runs}"
        self.out = out
        cmd = [sys.executable, "-m", "batenbase", "serve", "--data", str(self.data), "--port", "0"]
        with out.open("wb") as stdout, (self.root / f"stderr.{self.runs}").open("wb") as stderr:
            self.proc = subprocess.Popen([*cmd, *self.extra], stdout=stdout, stderr=stderr, env=ENV)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = out.read_text()
            found = re.search(r"listening on (http://\S+)", text)
            if found:
                self.url = found.group(1)
                token = re.search(r"First operator token \(.*\): (\S+)", text)
                if token:
                    self.op = token.group(1)
                try:
                    if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"server did not start: {text}\n{self.stderr()}")

    def stderr(self) -> str:
        return (self.root / f"stderr.{self.runs}").read_text()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(30)

    def client(self, token: str | None = None) -> Client:
        return Client(self.url, token if token is not None else self.op)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path, "--free-quota", "3", "--max-body", "65536").start()
    yield srv
    if srv.proc is not None and srv.proc.poll() is None:
        srv.stop()


def tenant(srv: Server, name: str) -> dict[str, str]:
    with srv.client() as op:
        op.admin_create_tenant(name)
        return {
            role: op.admin_issue_token(name, f"{name}-{role}", role).token
            for role in ("admin", "writer", "reader")
        }


def raw(srv: Server, method: str, path: str, token: str | None, **kw: Any) -> httpx.Response:
    headers = dict(kw.pop("headers", {}))
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.request(method, srv.url + path, headers=headers, timeout=10, **kw)


def test_first_start_prints_url_token_and_commands(server: Server) -> None:
    text = server.out.read_text()
    assert server.op.startswith("bbt_")
    assert "batenbase admin --url" in text
    assert "create-tenant" in text
    assert "issue-token" in text


def test_small_answers_are_not_held_by_delayed_acks(server: Server) -> None:
    tok = tenant(server, "fast")["writer"]
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {tok}"}) as c:
        c.put("/blocks/k", json={"data": 1})
        times = []
        for _ in range(21):
            start = time.perf_counter()
            assert c.get("/blocks/k").status_code == 200
            times.append(time.perf_counter() - start)
    assert sorted(times)[10] < 0.02  # Nagle + delayed ACK would put every one near 40 ms


def test_seed_example_verbatim(server: Server) -> None:
    tok = tenant(server, "corp")["writer"]
    put = raw(
        server,
        "PUT",
        "/blocks/user:alice@corp.com",
        tok,
        content=b'{"data": {"name": "Alice", "role": "admin"}}',
    )
    assert put.status_code == 200
    body = put.json()
    assert body["ok"] is True
    assert body["key"] == "user:alice@corp.com"
    got = raw(server, "GET", "/blocks/user:alice@corp.com", tok)
    assert got.status_code == 200
    block = got.json()
    assert list(block)[:6] == ["key", "f", "l", "v", "h", "data"]
    assert block["key"] == "user:alice@corp.com"
    assert block["data"] == {"name": "Alice", "role": "admin"}
    assert type(block["f"]) is int
    assert type(block["l"]) is int
    assert abs(block["f"] - time.time()) < 60
    assert (block["v"], block["h"]) == (1, 0)


def assert_error(resp: httpx.Response, status: int) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["ok"] is False
    assert set(body["error"]) == {"code", "message"}
    assert re.fullmatch(r"[a-z_]+", body["error"]["code"])


def test_every_error_status(server: Server) -> None:
    t = tenant(server, "errs")
    w, r = t["writer"], t["reader"]
    assert_error(raw(server, "PUT", "/blocks/a", w, content=b"{not json"), 400)
    assert_error(raw(server, "PUT", "/blocks/a", w, json={"data": 1, "h": 7}), 400)
    assert_error(raw(server, "GET", "/events?limit=5000", w), 400)
    assert_error(raw(server, "GET", "/blocks", None), 401)
    assert_error(raw(server, "GET", "/blocks", "bbt_forged_token"), 401)
    assert_error(raw(server, "PUT", "/blocks/a", r, json={"data": 1}), 403)
    assert_error(raw(server, "POST", "/admin/tenants", t["admin"], json={"name": "x"}), 403)
    assert_error(raw(server, "GET", "/blocks/missing", w), 404)
    assert_error(raw(server, "GET", "/blocks?include_redacted=true", w), 403)
    assert raw(server, "PUT", "/blocks/a", w, json={"data": 1}).status_code == 200
    assert_error(
        raw(server, "PUT", "/blocks/a", w, json={"data": 2}, headers={"If-Match": "9"}), 409
    )
    inm = {"If-None-Match": "*"}
    assert_error(raw(server, "PUT", "/blocks/a", w, json={"data": 2}, headers=inm), 409)
    assert_error(raw(server, "PUT", "/blocks/b", w, json={"data": "x" * 70_000}), 413)
    assert raw(server, "PUT", "/blocks/b", w, json={"data": 2}).status_code == 200
    assert raw(server, "PUT", "/blocks/c", w, json={"data": 3}).status_code == 200
    assert_error(raw(server, "PUT", "/blocks/d", w, json={"data": 4}), 429)
    assert raw(server, "PUT", "/blocks/a", w, json={"data": 5}).status_code == 200
    metrics = parse_prometheus(raw(server, "GET", "/metrics", server.op).text)
    assert metrics[("batenbase_http_internal_errors_total", "")] == 0


def test_cross_tenant_probes_never_see_a_foreign_byte(server: Server) -> None:
    acme, evil = tenant(server, "acme"), tenant(server, "evil")
    secret = "acme-secret-8c1f"
    with server.client(acme["writer"]) as c:
        c.put_block("doc:1", {"s": secret})
        c.put_block("doc:1", {"s": secret + "-v2"})
        c.append_event("note.added", {"s": secret})
    for token in (evil["admin"], evil["writer"], evil["reader"]):
        for path in (
            "/blocks/doc:1",
            "/blocks/doc:1?rev=1",
            "/blocks/doc:1?include_redacted=true",
            "/blocks/doc:1/history",
            "/blocks/doc:1/proof",
            "/blocks/doc:1/readers",
            "/blocks",
            "/blocks?prefix=doc",
            "/events",
            "/events?since=7d",
            "/tenants/me",
        ):
            resp = raw(server, "GET", path, token)
            assert secret not in resp.text, path
            assert "acme" not in resp.text, path
        assert raw(server, "GET", "/blocks/doc:1", token).status_code == 404
        conditional = raw(
            server, "PUT", "/blocks/doc:1", token, json={"data": 0}, headers={"If-Match": "1"}
        )
        assert conditional.status_code in (403, 404, 409)
        assert secret not in conditional.text


def test_client_covers_every_route(server: Server) -> None:
    with server.client() as op:
        assert op.health()["ok"] is True
        op.admin_create_tenant("full", "unlimited")
        assert op.admin_set_plan("full", "free").plan == "free"
        admin = op.admin_issue_token("full", "boss", "admin")
        reader = op.admin_issue_token("full", "peek", "reader", [2])
        extra = op.admin_issue_operator_token()
        assert extra.token.startswith("bbt_")
        assert op.admin_set_read_receipts("full", True).read_receipts is True
        doc = op.openapi()
        for route in routes:
            assert isinstance(route, Route)
            for method in (route.methods or set()) - {"HEAD"}:
                assert method.lower() in doc["paths"][template(route.path)]
        assert "/blocks/{key}/readers" in op.docs()
    with server.client(admin.token) as c:
        w1 = c.put_block("k", {"n": 1}, v=2)
        assert w1["rev"] == 1
        c.put_block("k", {"n": 2}, v=2, if_match=w1["etag"])
        c.put_block("new", 1, if_none_match=True)
        assert c.get_block("k").data == {"n": 2}
        assert c.get_block("k", rev=1).data == {"n": 1}
        assert c.get_block("k", at=time.time() + 5).data == {"n": 2}
        assert [b.rev for b in c.history("k").items] == [2, 1]
        page = c.list_blocks(prefix="", limit=1)
        assert page.next_cursor is not None
        assert len(c.list_blocks(limit=1, cursor=page.next_cursor).items) == 1
        assert c.proof("k").key == "k"
        assert c.append_event("demo.ok", {"x": 1}).kind == "demo.ok"
        assert any(e.kind == "demo.ok" for e in c.scan_events(since="1h", kind="demo.ok").items)
        assert c.tenant_info().name == "full"
        assert c.set_read_receipts(True).read_receipts is True
    with server.client(reader.token) as rc:
        assert rc.get_block("k").rev == 2
        with pytest.raises(ApiError) as err:
            rc.put_block("k", 3)
        assert err.value.status == 403
    with server.client(admin.token) as c:
        deadline = time.monotonic() + 5
        while not c.readers("k") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "peek" in [x.observer for x in c.readers("k")]
        assert c.delete_block("new")["ok"] is True
        assert c.get_block("new", include_redacted=True).h == 1
    with server.client() as op:
        assert isinstance(op.admin_compact("full"), dict)
        op.admin_revoke_token(reader.token_id)
        samples = parse_prometheus(op.metrics())
        assert samples[("batenbase_http_internal_errors_total", "")] == 0
        assert any(name == "batenbase_http_request_duration_seconds_bucket" for name, _ in samples)
        assert samples[("batenbase_tenant_blocks", '{tenant="full"}')] == 1
    with server.client(reader.token) as rc, pytest.raises(ApiError) as err:
        rc.tenant_info()
    assert (err.value.status, err.value.code) == (401, "unauthorized")


def test_sigterm_closes_the_service_and_restart_keeps_data(server: Server) -> None:
    tok = tenant(server, "keep")["writer"]
    with server.client(tok) as c:
        c.put_block("k", "v")
    assert server.stop(signal.SIGTERM) == 0
    assert "BatenBase stopped" in server.out.read_text()
    server.start()
    assert "First operator token" not in server.out.read_text()
    with server.client(tok) as c:
        assert c.get_block("k").data == "v"
    assert server.stop(signal.SIGINT) == 0


def test_kill_9_loses_no_acknowledged_write(server: Server) -> None:
    with server.client() as op:
        op.admin_create_tenant("crash", "unlimited")
        tok = op.admin_issue_token("crash", "w", "writer").token
    acked: dict[str, int] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def writer(n: int) -> None:
        with Client(server.url, tok, timeout=5) as c:
            i = 0
            while not stop.is_set():
                key = f"w{n}:{i}"
                try:
                    c.put_block(key, {"n": n, "i": i})
                except (ApiError, httpx.HTTPError):
                    return
                with lock:
                    acked[key] = i
                i += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(acked) < 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.stop(signal.SIGKILL) == -signal.SIGKILL
    stop.set()
    for t in threads:
        t.join(10)
    assert len(acked) >= 50
    server.start()
    with Client(server.url, tok) as c:
        for key, i in sorted(acked.items()):
            assert c.get_block(key).data == {"n": int(key[1 : key.index(":")]), "i": i}


def test_admin_cli_local_and_remote(server: Server) -> None:
    cli = [sys.executable, "-m", "batenbase", "admin"]
    remote = [*cli, "--url", server.url, "--token", server.op]
    out = subprocess.run(
        [*remote, "create-tenant", "clico"], env=ENV, capture_output=True, check=True
    )
    assert json.loads(out.stdout)["name"] == "clico"
    out = subprocess.run(
        [*remote, "issue-token", "clico", "ann", "--role", "writer"],
        env=ENV,
        capture_output=True,
        check=True,
    )
    token = json.loads(out.stdout)["token"]
    with server.client(token) as c:
        assert c.tenant_info().name == "clico"
    bad = subprocess.run(
        [*remote, "create-tenant", "clico"], env=ENV, capture_output=True, check=False
    )
    assert bad.returncode == 1
    assert b"Traceback" not in bad.stderr
    locked = subprocess.run(
        [*cli, "--data", str(server.data), "create-tenant", "other"],
        env=ENV,
        capture_output=True,
        check=False,
    )
    assert locked.returncode == 2
    assert b"in use by another process" in locked.stderr
    assert b"Traceback" not in locked.stderr
    server.stop()
    local = [*cli, "--data", str(server.data)]
    out = subprocess.run(
        [*local, "set-plan", "clico", "unlimited"], env=ENV, capture_output=True, check=True
    )
    assert json.loads(out.stdout)["plan"] == "unlimited"
    host = subprocess.run([*local, "host"], env=ENV, capture_output=True, check=True)
    assert json.loads(host.stdout)["module"]["id"] == "batenbase.kv"
    out = subprocess.run(
        [*local, "read-receipts", "clico", "on"], env=ENV, capture_output=True, check=True
    )
    assert json.loads(out.stdout)["read_receipts"] is True


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    srv = Server(tmp_path_factory.mktemp("fuzz"), "--max-body", "4096").start()
    tokens = tenant(srv, "fuzz")
    tokens["op"] = srv.op
    tokens["none"] = ""
    with srv.client(tokens["writer"]) as c:
        c.put_block("a", 1)
    yield srv, tokens
    srv.stop()


@settings(max_examples=250, deadline=None)
@given(
    method=_METHODS,
    path=_PATHS,
    query=_QUERY,
    body=_BODY,
    headers=_HEADERS,
    who=st.sampled_from(["admin", "writer", "reader", "op", "none"]),
)
def test_fuzzed_requests_never_500_on_the_real_core(
    shared: tuple[Server, dict[str, str]],
    method: str,
    path: str,
    query: dict[str, str],
    body: bytes,
    headers: dict[str, str],
    who: str,
) -> None:
    srv, tokens = shared
    resp = raw(srv, method, path, tokens[who], params=query, content=body, headers=headers)
    assert resp.status_code < 500, (resp.status_code, resp.text)
    if method != "HEAD" and resp.status_code >= 400:
        assert resp.json()["ok"] is False
    assert "Traceback" not in resp.text
    metrics = parse_prometheus(raw(srv, "GET", "/metrics", srv.op).text)
    assert metrics[("batenbase_http_internal_errors_total", "")] == 0


def test_writes_are_dispatched_through_the_host_and_leave_receipts(server: Server) -> None:
    tokens = tenant(server, "hosted")
    with server.client() as op:
        contract = op.admin_host()
        assert [t.name for t in op.admin_list_tenants()] == ["hosted"]
    assert contract["module"]["id"] == "batenbase.kv"
    with server.client(tokens["writer"]) as w:
        w.put_block("a", {"n": 1})
        w.delete_block("a")
        w.append_event("deploy", {"v": 2})
        with pytest.raises(ApiError):
            w.delete_block("a")
    assert server.stop() == 0
    config = StoreConfig(server.data / "tenants" / "hosted")
    with Store.open_read_only(config) as store:
        entity = contract["receipts"]["entity"]
        envelopes = [
            ReceiptEnvelope.decode(store.get(e.event_id).event.payload)
            for e in store.by_entity(entity)
        ]
    assert [(e.descriptor_name, e.outcome.outcome_class) for e in envelopes] == [
        ("batenbase.block.put", "completed"),
        ("batenbase.block.delete", "completed"),
        ("batenbase.event.append", "completed"),
        ("batenbase.block.delete", "failed"),
    ]


def test_an_idempotency_key_makes_a_retried_put_safe(server: Server) -> None:
    tokens = tenant(server, "retry")
    with server.client(tokens["writer"]) as w:
        first = w.put_block("k", {"n": 1}, idempotency_key="req-7")
        assert w.put_block("k", {"n": 1}, idempotency_key="req-7") == first
        with pytest.raises(ApiError) as err:
            w.put_block("k", {"n": 2}, idempotency_key="req-7")
        assert (err.value.status, err.value.code) == (409, "idempotency_key_reused")
        bad = raw(
            server,
            "PUT",
            "/blocks/k",
            tokens["writer"],
            json={"data": 1},
            headers={"Idempotency-Key": "has space"},
        )
        assert bad.status_code == 400
        assert [b.rev for b in w.history("k").items] == [1]


def test_keys_may_contain_slashes(server: Server) -> None:
    tokens = tenant(server, "paths")
    with server.client(tokens["writer"]) as w:
        w.put_block("users/alice/profile", {"n": 1})
        w.put_block("users/alice/profile", {"n": 2})
        assert w.get_block("users/alice/profile").data == {"n": 2}
        assert [b.rev for b in w.history("users/alice/profile").items] == [2, 1]
        assert w.proof("users/alice/profile").key == "users/alice/profile"
        assert [b.key for b in w.list_blocks(prefix="users/").items] == ["users/alice/profile"]
        encoded = raw(server, "GET", "/blocks/users%2Falice%2Fprofile", tokens["writer"])
        assert encoded.json()["data"] == {"n": 2}
        with pytest.raises(ApiError) as err:
            w.put_block("users/alice/history", 1)
        assert (err.value.status, err.value.code) == (400, "bad_key")
        w.delete_block("users/alice/profile")
        with pytest.raises(ApiError) as gone:
            w.get_block("users/alice/profile")
        assert gone.value.status == 404


def test_rate_limited_server_answers_429(tmp_path: Path) -> None:
    srv = Server(tmp_path, "--rate-limit", "1", "--rate-burst", "3").start()
    try:
        codes = [raw(srv, "GET", "/tenants/me", srv.op).status_code for _ in range(6)]
        assert codes[:3] == [403, 403, 403]  # an operator token on a tenant route
        assert set(codes[3:]) == {429}
        refused = raw(srv, "GET", "/tenants/me", srv.op)
        assert refused.json()["error"]["code"] == "rate_limited"
        assert int(refused.headers["retry-after"]) >= 1
        assert raw(srv, "GET", "/health", None).status_code == 200
    finally:
        srv.stop()
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "batenbase",
            "serve",
            "--data",
            str(tmp_path / "x"),
            "--rate-limit",
            "0",
        ],
        env=ENV,
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert bad.returncode == 2
    assert b"--rate-limit must be > 0" in bad.stderr
