"""Observers inside one tenant, against a real `batenbase serve` process, over HTTP only.

Observers: the tenant admin, two writers, a reader with no scope and a reader carrying scope 2.
Blocks: private (v=0) with two revisions, scoped (v=2), public then made private, deleted,
written with h=1, for every v in 0..3.

PROVES: INV-INVISIBLE-EQUALS-MISSING (for each observer and each block it may not see, every
read route - get, get ?rev / ?at / ?include_redacted, history, proof, readers - and every
If-Match write and DELETE answers byte-for-byte like a key nobody wrote, key name aside; a
listing of its prefix equals an empty one; the event scan names no such key; the block is
unchanged afterwards),
INV-REDACTION-PRECEDENCE (with h=1, set by DELETE or by a put, every observer loses the
block whatever its v, and so does an admin who does not ask; an admin asking with
include_redacted gets it, in reads and listings; a non-admin asking gets nothing).
CATCHES: a 403 (or different message, header or ETag) where a missing key says 404, an
invisible block in a listing or its revision in history, v checked before h, include_redacted
honoured for non-admins, a probe that changes the hidden block.
SEEDED: no randomness.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from bbserver import BBServer

T = "vis"
ADMIN, W1, W2, READER, S2 = "admin", "writer", "w2", "reader", "s2"
NON_ADMINS = (W1, W2, READER, S2)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BBServer, dict[str, str]]]:
    srv = BBServer(tmp_path_factory.mktemp("visibility")).start()
    try:
        tokens = srv.tenant(T, "unlimited", {"vis-w2": ("writer", []), "vis-s2": ("reader", [2])})
        tokens[W2], tokens[S2] = tokens.pop("vis-w2"), tokens.pop("vis-s2")
        yield srv, tokens
    finally:
        srv.close()


def _norm(response: httpx.Response, key: str) -> tuple[int, str, list[tuple[str, str]]]:
    headers = sorted(
        (k, v.replace(key, "<key>"))
        for k, v in response.headers.items()
        if k not in ("date", "server", "content-length")
    )
    return response.status_code, response.text.replace(key, "<key>"), headers


def _probes(key: str) -> list[tuple[str, str, dict[str, object]]]:
    path = "/blocks/" + key
    at = str(int(time.time()) + 3600)
    reads = ["", "?rev=1", "?rev=2", "?at=" + at, "?include_redacted=true"]
    probes: list[tuple[str, str, dict[str, object]]] = [("GET", path + q, {}) for q in reads]
    probes += [("GET", path + tail, {}) for tail in ("/history", "/proof", "/readers")]
    probes += [
        ("DELETE", path, {}),
        ("DELETE", path, {"headers": {"If-Match": "1"}}),
        ("PUT", path, {"json": {"data": "x"}, "headers": {"If-Match": "1"}}),
        ("PUT", path, {"json": {"data": "x"}, "headers": {"If-Match": "2"}}),
        ("PUT", path, {"json": {"data": "x", "v": 1}, "headers": {"If-Match": "*"}}),
    ]
    return probes


def _same_as_missing(
    srv: BBServer, token: str, key: str, missing: str, who: str, problems: list[str]
) -> None:
    assert len(key) == len(missing)
    for (method, path, kw), (_, control, ckw) in zip(_probes(key), _probes(missing), strict=True):
        got = _norm(srv.request(method, path, token, **kw), key)
        want = _norm(srv.request(method, control, token, **ckw), missing)
        if got != want:
            problems.append(f"{who} {method} {path} {kw}: {got} != missing {want}")
    prefix = key[:-1]
    listing = srv.request("GET", f"/blocks?prefix={prefix}", token)
    if listing.json() != {"items": [], "next_cursor": None}:
        problems.append(f"{who}: listing prefix {prefix!r} gives {listing.text}")
    every = srv.request("GET", "/blocks?limit=1000", token).json()["items"]
    if key in {item["key"] for item in every}:
        problems.append(f"{who}: {key} is in the full listing")


def _admin_view(srv: BBServer, tokens: dict[str, str], key: str) -> object:
    return srv.request("GET", f"/blocks/{key}/history", tokens[ADMIN]).json()


@pytest.mark.invariant("INV-INVISIBLE-EQUALS-MISSING")
def test_invisible_blocks_answer_like_missing_ones_per_observer(
    world: tuple[BBServer, dict[str, str]],
) -> None:
    srv, tokens = world

    def put(who: str, key: str, body: dict[str, object]) -> None:
        resp = srv.request("PUT", "/blocks/" + key, tokens[who], json=body)
        assert resp.status_code == 200, resp.text

    put(W1, "iv:privt", {"data": {"secret": 1}, "v": 0})
    put(W1, "iv:privt", {"data": {"secret": 2}, "v": 0})
    put(ADMIN, "iv:scope", {"data": {"secret": 3}, "v": 2})
    put(ADMIN, "iv:scope", {"data": {"secret": 4}, "v": 2})
    put(W1, "iv:waspu", {"data": {"public": 1}, "v": 1})
    put(W1, "iv:waspu", {"data": {"secret": 5}, "v": 0})
    put(ADMIN, "iv:admpr", {"data": {"secret": 6}, "v": 0})
    cases = {  # key -> observers that may not see it
        "iv:privt": (W2, READER, S2),
        "iv:scope": (W1, W2, READER),
        "iv:waspu": (W2, READER, S2),
        "iv:admpr": (W1, W2, READER, S2),
    }
    # Controls: those the v rule admits do see the block (so "missing" is not the default).
    for key, hidden in cases.items():
        for who in (ADMIN, *NON_ADMINS):
            status = srv.request("GET", "/blocks/" + key, tokens[who]).status_code
            assert status == (404 if who in hidden else 200), (who, key, status)
    before = {key: _admin_view(srv, tokens, key) for key in cases}
    problems: list[str] = []
    for key, hidden in cases.items():
        missing = "mx" + key[2:]
        for who in hidden:
            _same_as_missing(srv, tokens[who], key, missing, who, problems)
            scan = srv.request("GET", "/events?since=1h&limit=1000", tokens[who]).json()
            # Only revisions it could see (v=1) may be named in its scan.
            named = [
                e for e in scan["items"] if key in str(e["details"]) and e["details"].get("v") != 1
            ]
            if named:
                problems.append(f"{who}: the event scan names {key}: {named}")
    assert not problems, "\n".join(problems)
    assert {key: _admin_view(srv, tokens, key) for key in cases} == before


@pytest.mark.invariant("INV-REDACTION-PRECEDENCE")
def test_h1_hides_from_every_observer_whatever_v(world: tuple[BBServer, dict[str, str]]) -> None:
    srv, tokens = world
    problems: list[str] = []
    redacted: list[str] = []
    for v in (0, 1, 2, 3):
        for how in ("del", "put"):
            key = f"rd:{how}{v}"
            owner = W1 if v < 2 else ADMIN
            body = {"data": {"secret": f"{how}{v}"}, "v": v}
            assert srv.request("PUT", "/blocks/" + key, tokens[owner], json=body).status_code == 200
            seen_before = {
                who: srv.request("GET", "/blocks/" + key, tokens[who]).status_code
                for who in NON_ADMINS
            }
            if v == 1:  # the control: v=1 shows the block to every observer
                assert set(seen_before.values()) == {200}, seen_before
            if how == "del":
                resp = srv.request("DELETE", "/blocks/" + key, tokens[owner])
            else:
                body = {"data": {"secret": f"{how}{v}"}, "v": v, "h": 1}
                resp = srv.request("PUT", "/blocks/" + key, tokens[owner], json=body)
            assert resp.status_code == 200, resp.text
            assert resp.json()["h"] == 1
            redacted.append(key)
    for key in redacted:
        missing = "rz" + key[2:]
        for who in NON_ADMINS:
            _same_as_missing(srv, tokens[who], key, missing, who, problems)
            listing = srv.request("GET", "/blocks?include_redacted=true", tokens[who])
            if listing.status_code == 200 and key in listing.text:
                problems.append(f"{who}: include_redacted listing shows {key}")
        # An admin who does not ask sees nothing either.
        for path in ("/blocks/" + key, f"/blocks?prefix={key}"):
            got = srv.request("GET", path, tokens[ADMIN])
            ctl = srv.request("GET", path.replace(key, missing), tokens[ADMIN])
            if _norm(got, key) != _norm(ctl, missing):
                problems.append(f"admin without include_redacted: {path} {got.text}")
        # An admin asking explicitly gets the block, with its data, in reads and listings.
        asked = srv.request("GET", f"/blocks/{key}?include_redacted=true", tokens[ADMIN])
        if asked.status_code != 200 or asked.json()["h"] != 1 or asked.json()["data"] is None:
            problems.append(f"admin include_redacted {key}: {asked.status_code} {asked.text}")
        listed = srv.request("GET", f"/blocks?prefix={key}&include_redacted=true", tokens[ADMIN])
        if [item["key"] for item in listed.json().get("items", [])] != [key]:
            problems.append(f"admin include_redacted listing of {key}: {listed.text}")
    assert not problems, "\n".join(problems)
