"""The golden canonical encodings, rebuilt through the public API and pinned byte for byte.

PROVES: INV-CANONICAL-PATCH-STABILITY (every core golden, report body and event payload in
conformance/vectors decodes with ``batpak.canonical`` and re-encodes to the identical bytes;
the ones whose values the spec lists are rebuilt from those values (a ``Coordinate``, the event
header, tagged enums, u128 as bin16 vs ``Vec<u128>`` as int arrays, three report bodies) and
the typed payloads are written by a real ``Store`` and read back as the golden bytes; no
single-byte change of a golden decodes to a value that encodes back to the golden).
CATCHES: sorted instead of declaration-order keys, bytes as bin instead of int arrays, a u128
as an int, non-minimal integers, an encoder that normalises what it cannot reproduce.
SEEDED: the byte-change sweep is exhaustive over a bounded set of positions per golden.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from batpak import (
    Coordinate,
    Region,
    Store,
    StoreConfig,
    canonical,
    event_payload,
)

GOLDEN = Path(__file__).with_name("vectors") / "core" / "golden"
FILES = sorted(GOLDEN.rglob("*.hex"))
ID = 0x0123456789ABCDEF0123456789ABCDEF


def golden(name: str) -> bytes:
    return bytes.fromhex((GOLDEN / f"{name}.hex").read_text().strip())


@pytest.mark.invariant("INV-CANONICAL-PATCH-STABILITY")
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_golden_reencodes_byte_identically(path: Path) -> None:
    data = bytes.fromhex(path.read_text().strip())
    value = canonical.decode(data)
    assert canonical.encode(value) == data
    for at in range(0, len(data), max(1, len(data) // 48)):
        changed = bytearray(data)
        changed[at] ^= 0x01
        try:
            again = canonical.encode(canonical.decode(bytes(changed)))
        except canonical.CanonicalDecodeError:
            continue
        assert again != data, f"byte {at} of {path.name} is not pinned"


def _b(x: int, n: int = 32) -> list[int]:
    return canonical.byte_array(bytes([x]) * n)


@pytest.mark.invariant("INV-CANONICAL-PATCH-STABILITY")
def test_goldens_rebuilt_from_the_spec_values() -> None:
    u = canonical.u128_to_bytes
    assert canonical.encode(Coordinate("entity:test", "scope:test")) == golden("coordinate_v1")
    position = {"wall_ms": 0, "counter": 0, "depth": 0, "lane": 0, "sequence": 0}
    header = {
        "event_id": u(ID),
        "correlation_id": u(ID),
        "causation_id": None,
        "timestamp_us": 1_700_000_000_000_000,
        "position": position,
        "payload_size": 42,
        "event_kind": 0xF001,
        "flags": 0,
        "content_hash": _b(0),
        "payload_version": 0,
    }
    assert canonical.encode(header) == golden("event_header_v1")
    wait = {"Event": {"event_id": u(0xDEADBEEFCAFEBABE1234567890ABCDEF)}}
    assert canonical.encode(wait) == golden("wait_condition_v1")
    ids = [0x11111111111111112222222222222222, 0x33333333333333334444444444444444]
    rollback = {"Rollback": {"event_ids": canonical.u128_int_arrays(ids)}}
    assert canonical.encode(rollback) == golden("compensation_action_v1")
    committed = {"payload": "test_payload", "event_id": u(ID), "sequence": 42, "hash": _b(0xAB)}
    assert canonical.encode(committed) == golden("committed_v1")
    frontier = {
        "schema_version": 1,
        "source": "LossyPush",
        "consumed_frontier_sequence": 1,
        "available_frontier_sequence": 9,
        "lag_events": 8,
        "delivery_state": "Active",
        "loss_precision": "ExactRange",
        "findings": [
            {"LossObserved": {"precision": "ExactRange"}},
            {"ExactDroppedRange": {"start_sequence": 2, "end_sequence": 4}},
        ],
    }
    assert canonical.encode(frontier) == golden("subscriber_frontier_report_body_v1")
    backup = {
        "schema_version": 1,
        "backup_id": _b(0x55),
        "layout_revision": 3,
        "tooling_revision": 9,
        "segments": [
            {"segment_id": 1, "bytes_digest": _b(0x61)},
            {"segment_id": 2, "bytes_digest": _b(0x62)},
        ],
    }
    assert canonical.encode(backup) == golden("backup_manifest_body_v1")
    reconciliation = {
        "schema_version": 1,
        "reserved_open_ids": [],
        "expired_ids": [],
        "orphaned_ids": [],
        "committed_ids": [],
        "refunded_ids": [_b(0x82)],
    }
    assert canonical.encode(reconciliation) == golden("reservation_reconciliation_report_body_v1")


# Bound to a kind of its own (0xEF01) so no other test's 0xEC01 type collides; the golden is
# the payload bytes, which do not include the kind.
@event_payload(category=0xE, type_id=0xF01, version=1)
class FrozenSample(msgspec.Struct):
    amount: int
    note: str


@pytest.mark.invariant("INV-CANONICAL-PATCH-STABILITY")
def test_typed_payload_written_by_a_store_is_the_golden(tmp_path: Path) -> None:
    with Store.open(StoreConfig(tmp_path / "s")) as store:
        receipt = store.append_typed(Coordinate("golden:c01", "g"), FrozenSample(100, "hello"))
        assert store.read_raw(receipt.event_id) == golden("payloads/e_c01__v1")
        assert receipt.content_hash == canonical.digest(golden("payloads/e_c01__v1"))
    with Store.open_read_only(StoreConfig(tmp_path / "s")) as store:
        (entry,) = store.query(Region.entity("golden:c01"))
        stored = store.get(entry.event_id)
        assert stored.event.payload == golden("payloads/e_c01__v1")
        assert stored.event.header.event_kind == 0xEF01
        assert stored.event.header.payload_version == 1
        assert stored.decode(FrozenSample) == FrozenSample(100, "hello")
