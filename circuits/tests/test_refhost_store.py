"""The ten ops against a real batpak Store through BatpakView: round trips and §4 rules."""

from __future__ import annotations

from typing import Any

import blake3
import msgpack  # type: ignore[import-untyped]
import pytest

from batpak import Region, Store
from refhost.batpak_view import BatpakView
from refhost.errors import InvalidInput, OpError, OpFailed
from refhost.ops import BY_NAME, evidence_store_resource
from refhost.view import EvidenceReport

PAYLOAD = msgpack.packb({"amount": 7}, use_bin_type=True)


def call(store: Store, op: str, request: dict[str, Any] | list[Any]) -> Any:
    data = msgpack.packb(request, use_bin_type=True)
    return msgpack.unpackb(BY_NAME[op].handler(data, BatpakView(store)))


def fails(store: Store, op: str, request: object, cls: type[OpError] = InvalidInput) -> str:
    data = request if isinstance(request, bytes) else msgpack.packb(request, use_bin_type=True)
    with pytest.raises(cls) as caught:
        BY_NAME[op].handler(data, BatpakView(store))
    assert type(caught.value) is cls
    return caught.value.message


def commit(store: Store, entity: str = "acct:1", key: str | None = None, **kw: Any) -> Any:
    request = {
        "entity": entity,
        "scope": kw.get("scope", "bank"),
        "kind_category": kw.get("category", 0xF),
        "kind_type_id": kw.get("type_id", 0x101),
        "payload_hex": kw.get("payload_hex", PAYLOAD.hex()),
        "idempotency_key_hex": key,
    }
    return call(store, "bank.commit", request)


def test_heartbeat_echoes_nonce_with_store_clock(store: Store) -> None:
    ack = call(store, "system.heartbeat", {"nonce": "n-1"})
    assert list(ack) == ["nonce", "server_ts_ms"]
    assert ack["nonce"] == "n-1"
    assert abs(ack["server_ts_ms"] - store.config.clock() // 1000) < 60_000
    assert fails(store, "system.heartbeat", b"\xc1").startswith("decode request: ")
    assert fails(store, "system.heartbeat", {}).startswith("decode request: ")


def test_commit_then_get_query_walk_verify(store: Store) -> None:
    first = commit(store)
    second = commit(store)
    assert list(first) == [
        "event_id_hex",
        "sequence",
        "content_hash_hex",
        "key_id_hex",
        "signature_hex",
        "extensions",
    ]
    assert first["key_id_hex"] == "0" * 64
    assert first["signature_hex"] is None
    got = call(store, "event.get", {"event_id_hex": second["event_id_hex"]})
    assert got["sequence"] == second["sequence"]
    assert got["payload_hex"] == PAYLOAD.hex()
    assert got["content_hash_hex"] == second["content_hash_hex"]
    assert (got["entity"], got["scope"], got["kind_category"], got["kind_type_id"]) == (
        "acct:1",
        "bank",
        0xF,
        0x101,
    )
    page = call(store, "event.query", {"entity": "acct:1", "limit": 10})
    assert [e["event_id_hex"] for e in page["entries"]] == [
        first["event_id_hex"],
        second["event_id_hex"],
    ]
    assert page["truncated"] is False
    assert page["next_after_global_sequence"] == second["sequence"]
    walked = call(store, "event.walk", {"event_id_hex": second["event_id_hex"], "limit": 5})
    assert [e["event_id_hex"] for e in walked["entries"]] == [
        second["event_id_hex"],
        first["event_id_hex"],
    ]
    verdict = call(store, "receipt.verify", second)
    assert verdict == {"valid": True, "outcome": "unsigned_accepted", "reason_code": None}


def test_receipt_verify_invalid_reasons_and_bad_fields(store: Store) -> None:
    ack = commit(store)
    wrong_seq = dict(ack, sequence=ack["sequence"] + 1)
    assert call(store, "receipt.verify", wrong_seq)["reason_code"] == "sequence_mismatch"
    wrong_hash = dict(ack, content_hash_hex="ab" * 32)
    assert call(store, "receipt.verify", wrong_hash)["reason_code"] == "content_hash_mismatch"
    missing = dict(ack, event_id_hex="ff" * 16)
    assert call(store, "receipt.verify", missing) == {
        "valid": False,
        "outcome": "invalid",
        "reason_code": "missing_committed_event",
    }
    assert fails(store, "receipt.verify", dict(ack, key_id_hex="00")) == (
        "key_id_hex must decode to 32 bytes, got 1"
    )
    assert fails(store, "receipt.verify", dict(ack, signature_hex="00" * 32)) == (
        "signature_hex must decode to 64 bytes, got 32"
    )
    assert fails(store, "receipt.verify", dict(ack, content_hash_hex="zz")).startswith(
        "content_hash_hex: input is not hex"
    )
    assert fails(store, "receipt.verify", dict(ack, extensions={"x.y": "0"})) == (
        "extension value hex: hex input has odd length"
    )
    assert fails(store, "receipt.verify", dict(ack, extensions={"nodot": "00"})).startswith(
        "extension key: "
    )


def test_idempotent_retry_returns_the_original_ack(store: Store) -> None:
    key = "0f" * 16
    first = commit(store, key=key)
    again = commit(store, key=key)
    assert again == first
    assert first["event_id_hex"] == key
    assert len(call(store, "event.query", {"entity": "acct:1", "limit": 10})["entries"]) == 1


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("0f" * 15, "idempotency_key_hex: event_id_hex must decode to 16 bytes, got 15"),
        ("0f0", "idempotency_key_hex: event_id_hex: hex input has odd length"),
        ("zz" * 16, "idempotency_key_hex: event_id_hex: input is not hex"),
    ],
)
def test_bad_idempotency_keys(store: Store, key: str, message: str) -> None:
    request = {
        "entity": "a:1",
        "scope": "s",
        "kind_category": 0xF,
        "kind_type_id": 1,
        "payload_hex": "80",
        "idempotency_key_hex": key,
    }
    assert fails(store, "bank.commit", request) == message


@pytest.mark.parametrize(
    ("changes", "prefix"),
    [
        ({"entity": ""}, "coordinate: entity must not be empty"),
        ({"scope": "a/b"}, "coordinate: "),
        ({"kind_category": 0}, "event kind: ReservedCategory"),
        ({"kind_category": 0xD}, "event kind: ReservedCategory"),
        ({"kind_category": 16}, "event kind: CategoryOutOfRange"),
        ({"kind_type_id": 0x1000}, "event kind: TypeIdOutOfRange"),
        ({"kind_category": 256}, "decode request: "),
        ({"payload_hex": "abc"}, "payload_hex: hex input has odd length"),
        ({"payload_hex": "xy"}, "payload_hex: input is not hex"),
    ],
)
def test_commit_rejections(store: Store, changes: dict[str, Any], prefix: str) -> None:
    request = {
        "entity": "a:1",
        "scope": "s",
        "kind_category": 0xF,
        "kind_type_id": 1,
        "payload_hex": "80",
    }
    assert fails(store, "bank.commit", {**request, **changes}).startswith(prefix)


def test_commit_append_failure_is_failed(store: Store) -> None:
    request = {
        "entity": "a:1",
        "scope": "s",
        "kind_category": 0xF,
        "kind_type_id": 1,
        "payload_hex": "c1",  # not one MessagePack value
    }
    assert fails(store, "bank.commit", request, OpFailed).startswith("append: ")


def test_commit_accepts_positional_array_and_uppercase_hex(store: Store) -> None:
    ack = call(store, "bank.commit", ["a:1", "s", 0xF, 2, PAYLOAD.hex().upper()])
    assert (
        call(store, "event.get", {"event_id_hex": ack["event_id_hex"].upper()})["payload_hex"]
        == PAYLOAD.hex()
    )


def test_event_get_errors(store: Store) -> None:
    assert fails(store, "event.get", {"event_id_hex": "00"}) == (
        "event_id_hex must decode to 16 bytes, got 1"
    )
    assert fails(store, "event.get", {"event_id_hex": "0"}) == (
        "event_id_hex: hex input has odd length"
    )
    assert fails(store, "event.get", {"event_id_hex": "ab" * 16}, OpFailed).startswith(
        "read event: "
    )


def test_event_query_limits_paging_and_filters(store: Store) -> None:
    acks = [commit(store, entity=f"acct:{i % 2}", type_id=0x100 + i % 3) for i in range(6)]
    assert fails(store, "event.query", {"limit": 0}) == "limit must be greater than 0"
    assert fails(store, "event.query", {"kind_type_id": 1, "limit": 1}) == (
        "kind_type_id: kind_type_id requires kind_category"
    )
    assert fails(store, "event.query", {"kind_category": 16, "limit": 1}) == (
        "kind_category: kind_category must fit in 4 bits, got 16"
    )
    assert fails(store, "event.query", {"entity": "a/b", "limit": 1}).startswith("entity: ")
    assert fails(store, "event.query", {"scope": "", "limit": 1}).startswith("scope: ")
    assert fails(store, "event.query", {"entity": "acct"}).startswith("decode request: ")
    page = call(store, "event.query", {"scope": "bank", "limit": 2})
    assert page["truncated"] is True
    assert len(page["entries"]) == 2
    rest = call(
        store,
        "event.query",
        {"scope": "bank", "limit": 10, "after_global_sequence": page["next_after_global_sequence"]},
    )
    assert rest["truncated"] is False
    ids = [e["event_id_hex"] for e in page["entries"] + rest["entries"]]
    assert ids == [a["event_id_hex"] for a in acks]
    exact = call(store, "event.query", {"kind_category": 0xF, "kind_type_id": 0x100, "limit": 10})
    assert [e["kind_type_id"] for e in exact["entries"]] == [0x100, 0x100]
    capped = call(store, "event.query", {"limit": 10**12})
    assert capped["truncated"] is False
    empty = call(store, "event.query", {"entity": "nobody", "limit": 5})
    assert empty == {"entries": [], "next_after_global_sequence": None, "truncated": False}


def test_event_query_caps_limit_at_1024(store: Store) -> None:
    class Spy(BatpakView):
        seen: int = 0

        def query_page(self, region: Any, after: int | None, limit: int) -> Any:
            Spy.seen = limit
            return super().query_page(region, after, limit)

    data = msgpack.packb({"limit": 5000})
    BY_NAME["event.query"].handler(data, Spy(store))
    assert Spy.seen == 1025  # limit + 1, the limit capped at 1024


def test_event_walk_rules(store: Store) -> None:
    acks = [commit(store) for _ in range(4)]
    assert fails(store, "event.walk", {"event_id_hex": acks[0]["event_id_hex"], "limit": 0}) == (
        "limit must be greater than 0"
    )
    walked = call(store, "event.walk", {"event_id_hex": acks[-1]["event_id_hex"], "limit": 2})
    assert [e["event_id_hex"] for e in walked["entries"]] == [
        acks[3]["event_id_hex"],
        acks[2]["event_id_hex"],
    ]
    assert call(store, "event.walk", {"event_id_hex": "ab" * 16, "limit": 2}) == {"entries": []}


def report_of(ack: dict[str, Any]) -> Any:
    body = bytes.fromhex(ack["report_hex"])
    assert blake3.blake3(body).hexdigest() == ack["body_hash_hex"]
    return msgpack.unpackb(body, strict_map_key=False)


def test_chain_walk_evidence(store: Store) -> None:
    # Distinct payloads: equal payloads share a content hash, which the walk reports as
    # ParentHashAmbiguous (see test_chain_walk_reports_ambiguous_parents).
    acks = [commit(store, payload_hex=msgpack.packb(i).hex()) for i in range(3)]
    start = acks[-1]["event_id_hex"]
    full = call(store, "evidence.chain_walk", {"start_event_id_hex": start, "limit": 16})
    body = report_of(full)
    assert full["truncated"] is False
    assert body["checked_count"] == 3
    assert body["findings"] == []
    assert body["first_ref"] == bytes.fromhex(start)
    assert body["last_ref"] == bytes.fromhex(acks[0]["event_id_hex"])
    cut = call(store, "evidence.chain_walk", {"start_event_id_hex": start, "limit": 2})
    assert cut["truncated"] is True
    assert list(report_of(cut)["findings"][0]) == ["TruncatedByLimit"]
    anchored = call(
        store,
        "evidence.chain_walk",
        {"start_event_id_hex": start, "start_expected_hash_hex": "00" * 32, "limit": 4},
    )
    assert list(report_of(anchored)["findings"][0]) == ["StartHashMismatch"]
    missing = call(store, "evidence.chain_walk", {"start_event_id_hex": "ab" * 16, "limit": 4})
    assert list(report_of(missing)["findings"][0]) == ["MissingStart"]
    end = call(
        store,
        "evidence.chain_walk",
        {"start_event_id_hex": start, "end_event_id_hex": acks[1]["event_id_hex"], "limit": 9},
    )
    assert report_of(end)["checked_count"] == 2
    assert fails(store, "evidence.chain_walk", {"start_event_id_hex": start, "limit": 0}) == (
        "limit must be greater than 0"
    )
    assert fails(store, "evidence.chain_walk", {"start_event_id_hex": "00", "limit": 1}) == (
        "start_event_id_hex: expected 16 bytes, got 1"
    )
    bad_hash = {"start_event_id_hex": start, "start_expected_hash_hex": "00", "limit": 1}
    assert fails(store, "evidence.chain_walk", bad_hash) == (
        "start_expected_hash_hex: expected 32 bytes, got 1"
    )


def test_store_resource_evidence(store: Store) -> None:
    commit(store)
    ack = call(store, "evidence.store_resource", {})
    body = report_of(ack)
    assert ack["truncated"] is False
    assert body["schema_version"] == 1
    assert body["event_count"] == len(store.query(Region.all()))
    assert list(body)[-1] == "platform_evidence"
    assert fails(store, "evidence.store_resource", b"\xc1").startswith("decode request: ")


def test_read_walk_evidence(store: Store) -> None:
    for _ in range(5):
        commit(store)
    base = {"entity": "acct:1", "kind_category": 0xF, "include_proof_refs": False}
    ack = call(store, "evidence.read_walk", {**base, "limit": 2})
    body = report_of(ack)
    assert ack["truncated"] is True
    assert body["matched_count"] == 5
    assert body["returned_count"] == 2
    assert body["dropped_limited_count"] == {"Known": 3}
    proofs = call(store, "evidence.read_walk", {**base, "include_proof_refs": True})
    refs = report_of(proofs)["proof_refs"]["Known"]
    assert len(refs) == 5
    assert report_of(proofs)["requested_limit"] == 64
    assert report_of(call(store, "evidence.read_walk", base))["requested_limit"] == 1024
    clocked = call(store, "evidence.read_walk", {**base, "start_clock": 1, "end_clock": 2})
    assert report_of(clocked)["matched_count"] == 2
    stale = report_of(call(store, "evidence.read_walk", {**base, "max_stale_ms": 5}))
    assert stale["freshness_intent"] == {"MaybeStale": {"max_stale_ms": 5}}
    assert fails(store, "evidence.read_walk", {**base, "limit": 0}) == (
        "limit must be greater than 0"
    )
    assert fails(store, "evidence.read_walk", {**base, "start_clock": 1}) == (
        "start_clock and end_clock must both be set or both omitted"
    )
    assert fails(store, "evidence.read_walk", {**base, "start_clock": 3, "end_clock": 1}) == (
        "start_clock must be <= end_clock, got 3 > 1"
    )
    assert fails(store, "evidence.read_walk", {"limit": 1}).startswith("decode request: ")


def test_projection_run_registers_none(store: Store) -> None:
    request = {"projection": "fixture.projection", "entity": "acct:1", "max_stale_ms": None}
    assert fails(store, "evidence.projection_run", request) == (
        "unknown projection: fixture.projection"
    )
    assert fails(store, "evidence.projection_run", {**request, "entity": ""}).startswith("entity: ")


def test_oversized_evidence_ack_is_invalid_input(store: Store) -> None:
    class Huge(BatpakView):
        def store_resource(self) -> EvidenceReport:
            return EvidenceReport(bytes(20_000), bytes(32), False)

    with pytest.raises(InvalidInput, match="over the 32768-byte transport limit"):
        evidence_store_resource(b"\x80", Huge(store))


def test_chain_walk_reports_ambiguous_parents(store: Store) -> None:
    acks = [commit(store) for _ in range(3)]
    ack = call(
        store, "evidence.chain_walk", {"start_event_id_hex": acks[-1]["event_id_hex"], "limit": 8}
    )
    body = report_of(ack)
    # Only the newest event has two earlier events with its parent hash.
    assert [next(iter(f)) for f in body["findings"]] == ["ParentHashAmbiguous"]
    assert body["checked_count"] == 3
