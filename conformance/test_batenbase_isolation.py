"""Cross-tenant probes against a real `batenbase serve` process, over HTTP only.

A victim tenant fills its journal with marked data (blocks with several revisions, private and
scoped blocks, a deleted block, caller events, read receipts). An attacker tenant holding
its own blocks, some under the very same keys, then probes every tenant route with each of
its tokens (admin, writer, reader), reads and conditional writes alike.

PROVES: INV-TENANT-ISOLATION (no body, error, header, listing, event, history, proof or
readers answer given to the attacker carries a victim byte: data, key, tenant or observer
name, event hash, etag; the victim's keys answer exactly like never-written keys; the
attacker's own revisions, usage and sequences ignore the victim's writes; the attacker's
writes never touch the victim's blocks).
CATCHES: a tenant lookup by key instead of by token, a shared journal or sequence, a
listing or event scan across tenants, foreign data in error messages or ETag headers.
SEEDED: no randomness; marker strings are fixed and unique.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest
from bbserver import BBServer

from batenbase.client import Client

VICTIM = "tnvictim7f3a"
ATTACKER = "tnattacker"
SECRET = "SECRETc0ffee51"
VICTIM_KEYS = ("vk:doc", "vk:private", "vk:scoped", "vk:gone", "shared:doc")
NEVER = ("nk:doc", "nk:private", "nk:scoped", "nk:gone", "shared:xyz")


class Victim:
    """What the victim wrote and every string that must never reach the attacker."""

    def __init__(self) -> None:
        self.foreign: set[str] = {SECRET, VICTIM, f"{VICTIM}-admin", f"{VICTIM}-writer"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BBServer, dict[str, str]]]:
    srv = BBServer(tmp_path_factory.mktemp("isolation")).start()
    try:
        yield srv, srv.tenant(ATTACKER)
    finally:
        srv.close()


def _victim_writes(srv: BBServer) -> Victim:
    victim = Victim()
    tokens = srv.tenant(VICTIM, observers={f"{VICTIM}-scoped": ("reader", [2])})
    victim.foreign.add(f"{VICTIM}-scoped")
    with srv.client(tokens["admin"]) as admin, srv.client(tokens["writer"]) as writer:
        admin.set_read_receipts(True)
        answers = [
            writer.put_block("vk:doc", {"s": SECRET, "n": 1}),
            writer.put_block("vk:doc", {"s": SECRET, "n": 2}),
            writer.put_block("vk:doc", {"s": SECRET, "n": 3}),
            writer.put_block("vk:private", {"s": SECRET}, v=0),
            admin.put_block("vk:scoped", {"s": SECRET}, v=2),
            writer.put_block("vk:gone", {"s": SECRET}),
            writer.delete_block("vk:gone"),
            writer.put_block("shared:doc", {"s": SECRET, "n": 1}),
            writer.put_block("shared:doc", {"s": SECRET, "n": 2}),
        ]
        for answer in answers:
            victim.foreign.update({answer["hash"], answer["etag"]})
        event = writer.append_event("victim.note", {"s": SECRET})
        victim.foreign.add(event.hash)
        writer.get_block("vk:doc")
        writer.get_block("shared:doc")
        for block in admin.list_blocks(limit=1000).items:
            victim.foreign.update({block.hash, block.etag})
        for ev in admin.scan_events(since="1h", limit=1000).items:
            victim.foreign.add(ev.hash)
    return victim


def _leaks(victim: Victim, response: httpx.Response) -> list[str]:
    text = response.text + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    return sorted(s for s in victim.foreign if s in text)


def _normalised(response: httpx.Response, key: str) -> tuple[int, str, list[tuple[str, str]]]:
    body = response.text.replace(key, "<key>")
    headers = sorted(
        (k, v.replace(key, "<key>"))
        for k, v in response.headers.items()
        if k not in ("date", "server", "content-length")
    )
    return response.status_code, body, headers


def _read_probes(key: str) -> list[tuple[str, str]]:
    path = "/blocks/" + key
    at = str(int(time.time()) + 60)
    return [
        ("GET", path),
        ("GET", path + "?rev=1"),
        ("GET", path + "?rev=2"),
        ("GET", path + "?at=" + at),
        ("GET", path + "?include_redacted=true"),
        ("GET", path + "/history"),
        ("GET", path + "/proof"),
        ("GET", path + "/readers"),
        ("DELETE", path),
    ]


@pytest.mark.invariant("INV-TENANT-ISOLATION")
def test_the_attackers_sequences_and_revisions_ignore_the_victim(
    world: tuple[BBServer, dict[str, str]],
) -> None:
    srv, attacker = world
    with srv.client(attacker["writer"]) as w:
        first = w.put_block("seqprobe:1", 1)["seq"]
        second = w.put_block("seqprobe:2", 2)["seq"]
        with srv.client() as op:
            op.admin_create_tenant("tnnoise")
            noisy = op.admin_issue_token("tnnoise", "noise", "writer").token
        with srv.client(noisy) as noise:
            for i in range(20):
                noise.put_block(f"seqprobe:{i}", {"i": i})
                noise.append_event("noise.event", {"i": i})
        third = w.put_block("seqprobe:3", 3)["seq"]
        assert third - second == second - first, (first, second, third)
        rewritten = w.put_block("seqprobe:1", 10)
        assert rewritten["rev"] == 2
        assert w.tenant_info().usage == 3


@pytest.mark.invariant("INV-TENANT-ISOLATION")
def test_cross_tenant_probes_never_see_a_foreign_byte(
    world: tuple[BBServer, dict[str, str]],
) -> None:
    srv, attacker = world
    with srv.client(attacker["admin"]) as own:
        own.set_read_receipts(True)
        own.put_block("shared:doc", {"mine": True})
        own.put_block("mine:1", {"mine": 1})
        own.get_block("shared:doc")
    victim = _victim_writes(srv)
    problems: list[str] = []
    for role in ("admin", "writer", "reader"):
        token = attacker[role]
        # Victim keys answer byte-for-byte like keys nobody ever wrote (same length).
        for key, never in zip(VICTIM_KEYS[:4], NEVER[:4], strict=True):
            for (method, path), (_, control) in zip(
                _read_probes(key), _read_probes(never), strict=True
            ):
                got = srv.request(method, path, token)
                if _leaks(victim, got):
                    problems.append(f"{role} {method} {path}: leaks {_leaks(victim, got)}")
                if _normalised(got, key) != _normalised(srv.request(method, control, token), never):
                    problems.append(f"{role} {method} {path}: differs from a never-written key")
        for path in (
            "/blocks",
            "/blocks?prefix=vk",
            "/blocks?prefix=shared",
            "/blocks?limit=1000&include_redacted=true",
            "/blocks/shared:doc",
            "/blocks/shared:doc/history",
            "/blocks/shared:doc/proof",
            "/blocks/shared:doc/readers",
            "/events?since=7d&limit=1000",
            "/events?kind=victim.note",
            "/tenants/me",
            f"/admin/tenants/{VICTIM}/tokens",
            "/metrics",
        ):
            got = srv.request("GET", path, token)
            if got.status_code >= 500 or _leaks(victim, got):
                problems.append(f"{role} GET {path}: {got.status_code} leaks {_leaks(victim, got)}")
        listing = srv.request("GET", "/blocks?prefix=vk", token).json()
        if listing != {"items": [], "next_cursor": None}:
            problems.append(f"{role}: listing of the victim's prefix is {listing}")
        for body, headers in (
            ({"data": 0}, {"If-Match": "1"}),
            ({"data": 0}, {"If-Match": "*"}),
            ({"data": 0, "v": 0}, {"If-Match": "3"}),
        ):
            for key, never in zip(VICTIM_KEYS[:4], NEVER[:4], strict=True):
                got = srv.request("PUT", "/blocks/" + key, token, json=body, headers=headers)
                ctl = srv.request("PUT", "/blocks/" + never, token, json=body, headers=headers)
                if _leaks(victim, got) or _normalised(got, key) != _normalised(ctl, never):
                    problems.append(f"{role} conditional PUT {key} {headers}: {got.text}")
        scan = srv.request("GET", "/events?since=7d&limit=1000", token).json()
        kinds = {item["kind"] for item in scan["items"]}
        if "victim.note" in kinds:
            problems.append(f"{role}: the victim's event kind is in the scan")
    assert not problems, "\n".join(problems)
    # The attacker's own view is its own: its data under the shared key, its own readers.
    with srv.client(attacker["admin"]) as own:
        shared = own.get_block("shared:doc")
        assert (shared.data, shared.rev) == ({"mine": True}, 1)
        ours = {f"{ATTACKER}-{role}" for role in ("admin", "writer", "reader")}
        assert {r.observer for r in own.readers("shared:doc")} <= ours
        assert own.tenant_info().name == ATTACKER
        keys = [b.key for b in own.list_blocks(limit=1000).items]
        assert not [k for k in keys if k.startswith("vk:")]
        observers = {e.observer for e in own.scan_events(since="7d", limit=1000).items}
        assert not observers & victim.foreign, observers


@pytest.mark.invariant("INV-TENANT-ISOLATION")
def test_the_attackers_writes_never_touch_the_victim(
    world: tuple[BBServer, dict[str, str]],
) -> None:
    srv, _ = world
    victim_tokens = srv.tenant("tnvictim2")
    attacker = srv.tenant("tnattacker2")
    with srv.client(victim_tokens["writer"]) as v:
        v.put_block("target", {"owner": "victim"})
        before = v.get_block("target")
        before_events = len(v.scan_events(since="1h", limit=1000).items)
    with Client(srv.url, attacker["admin"]) as a:
        # The key is free in the attacker's namespace: a create-only put makes rev 1 there.
        created = a.put_block("target", {"owner": "attacker"}, if_none_match=True)
        assert created["rev"] == 1
        a.put_block("target", {"owner": "attacker", "n": 2}, v=0)
        a.delete_block("target")
        a.append_event("attacker.note", {"x": 1})
    with srv.client(victim_tokens["writer"]) as v:
        after = v.get_block("target")
        assert after == before
        assert [b.rev for b in v.history("target").items] == [1]
        scan = v.scan_events(since="1h", limit=1000).items
        assert len(scan) == before_events
        assert not [e for e in scan if re.search("attacker", f"{e.kind}{e.observer}{e.details}")]
