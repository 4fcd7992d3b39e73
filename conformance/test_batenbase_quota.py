"""Writers racing a Free plan's live-block quota on a real `batenbase serve` process.

The server runs with ``--free-quota 24`` (the CLI's test knob for the Free plan's 10,000, so
the race stays small). Threads race fresh keys, restores of deleted keys and deletes.

PROVES: INV-QUOTA-EXACT (of N concurrent creates past the free room exactly the room's worth
get a 2xx; every other one gets 429 ``quota_exceeded`` in the spec's error shape and stores
nothing - the key reads 404 to the tenant admin, even with include_redacted, and has no
history; /tenants/me usage and the listing both equal the accepted writes; updates of live
blocks still pass at a full quota; deletes free exactly their room under a second race; the
count survives a restart).
CATCHES: a check-then-act race (two writers taking the last slot), a refused write that
leaves a block or a revision behind, a usage counter that drifts from the live set, counting
updates or deleted blocks as new live blocks.
SEEDED: no randomness; thread scheduling varies, the counts may not.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import httpx
import pytest
from bbserver import BBServer

QUOTA = 24


@pytest.fixture
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BBServer]:
    server = BBServer(tmp_path_factory.mktemp("quota"), "--free-quota", str(QUOTA)).start()
    try:
        yield server
    finally:
        server.close()


def _race(jobs: list[Callable[[httpx.Client], httpx.Response]], threads: int = 8) -> list[int]:
    """Run the jobs from `threads` threads released together; the status of each job."""
    statuses: list[int] = [0] * len(jobs)
    errors: list[str] = []
    gate = threading.Barrier(threads)

    def worker(first: int) -> None:
        with httpx.Client(timeout=30) as http:
            gate.wait()
            for i in range(first, len(jobs), threads):
                resp = jobs[i](http)
                statuses[i] = resp.status_code
                if resp.status_code == 429:
                    body = resp.json()
                    error = body.get("error", {})
                    shape = body.get("ok") is False and set(error) == {"code", "message"}
                    if not shape or error["code"] != "quota_exceeded":
                        errors.append(resp.text)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors, errors
    return statuses


def _put(srv: BBServer, token: str, key: str) -> Callable[[httpx.Client], httpx.Response]:
    def job(http: httpx.Client) -> httpx.Response:
        auth = {"Authorization": f"Bearer {token}"}
        return http.put(f"{srv.url}/blocks/{key}", json={"data": {"k": key}}, headers=auth)

    return job


def _delete(srv: BBServer, token: str, key: str) -> Callable[[httpx.Client], httpx.Response]:
    def job(http: httpx.Client) -> httpx.Response:
        auth = {"Authorization": f"Bearer {token}"}
        return http.delete(f"{srv.url}/blocks/{key}", headers=auth)

    return job


def _live(srv: BBServer, admin: str) -> set[str]:
    items = srv.request("GET", "/blocks?limit=1000", admin).json()["items"]
    return {item["key"] for item in items}


def _usage(srv: BBServer, token: str) -> int:
    info = srv.request("GET", "/tenants/me", token).json()
    assert info["quota"] == QUOTA
    return int(info["usage"])


def _stored_nothing(srv: BBServer, admin: str, keys: list[str]) -> list[str]:
    bad = []
    for key in keys:
        for path in (f"/blocks/{key}?include_redacted=true", f"/blocks/{key}/history"):
            resp = srv.request("GET", path, admin)
            if resp.status_code != 404:
                bad.append(f"{path}: {resp.status_code} {resp.text}")
    return bad


@pytest.mark.invariant("INV-QUOTA-EXACT")
def test_racing_writers_get_exactly_the_quota(srv: BBServer) -> None:
    tokens = srv.tenant("racers")
    admin, writer = tokens["admin"], tokens["writer"]
    for i in range(5):  # some room already used
        assert srv.request("PUT", f"/blocks/pre{i}", writer, json={"data": i}).status_code == 200
    keys = [f"race{i:03d}" for i in range(3 * QUOTA)]
    statuses = _race([_put(srv, writer, key) for key in keys])
    accepted = [k for k, s in zip(keys, statuses, strict=True) if s == 200]
    refused = [k for k, s in zip(keys, statuses, strict=True) if s == 429]
    assert len(accepted) == QUOTA - 5, statuses
    assert len(accepted) + len(refused) == len(keys), statuses
    assert _usage(srv, writer) == QUOTA
    assert _live(srv, admin) == {f"pre{i}" for i in range(5)} | set(accepted)
    assert not _stored_nothing(srv, admin, refused)

    # Updates of live blocks are not new live blocks: they pass at a full quota.
    statuses = _race([_put(srv, writer, key) for key in accepted])
    assert set(statuses) == {200}
    assert _usage(srv, writer) == QUOTA

    # Deletes free room while creates and restores race for it.
    freed = accepted[:6]
    jobs = [_delete(srv, writer, key) for key in freed]
    jobs += [_put(srv, writer, f"late{i:03d}") for i in range(18)]
    jobs += [_put(srv, writer, key) for key in freed[:3]]  # restores of deleted keys
    statuses = _race(jobs)
    assert statuses[: len(freed)] == [200] * len(freed)
    creates = statuses[len(freed) :]
    assert set(creates) <= {200, 429}, creates
    live = _live(srv, admin)
    assert len(live) == _usage(srv, writer) == QUOTA - len(freed) + creates.count(200)
    assert len(live) <= QUOTA
    late_refused = [f"late{i:03d}" for i, s in enumerate(creates[:18]) if s == 429]
    assert not _stored_nothing(srv, admin, late_refused)

    # Fill to the brim again, then one more is refused; the count survives a restart.
    for i in range(QUOTA - len(live)):
        resp = srv.request("PUT", f"/blocks/fill{i}", writer, json={"data": i})
        assert resp.status_code == 200, resp.text
    over = srv.request("PUT", "/blocks/one-too-many", writer, json={"data": 0})
    assert over.status_code == 429
    assert over.json()["error"]["code"] == "quota_exceeded"
    assert srv.stop() == 0
    srv.start()
    assert _usage(srv, writer) == QUOTA
    assert len(_live(srv, admin)) == QUOTA
    assert srv.request("PUT", "/blocks/after", writer, json={"data": 0}).status_code == 429
