"""The ten ops as the hostbat module ``batpak.reference`` v1 on a hostbat Host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest

import netbat
import syncbat
from batpak import Store
from hostbat import SchemaRole
from refhost.batpak_view import BatpakView
from refhost.dispatch import ReferenceDispatcher
from refhost.fixture import FixtureView
from refhost.host import (
    COMMIT_PAYLOAD_SCHEMA,
    DEFAULT_COMMITTABLE_KINDS,
    MODULE_ID,
    build_host,
    op_manifest,
    parse_kind,
    reference_module,
)
from refhost.ops import OPERATIONS

VECTORS = Path(__file__).resolve().parents[2] / "conformance" / "vectors"

# Python-computed (hostbat's canonical views, batpak.canonical + BLAKE3) for the default
# committable set; not cross-checked against the Rust reference, which pins none.
H_MODULE = "3b74c8d1a1eb2cf2c2a55775cefd97e375cedf8f0f76200f15ebc2ab1817ceab"
H_HOST = "cf33e60ca943128f274c4f82a1f769d75ff2f42f1597ea1d52893b19ab32a271"
H_INTERFACE = "c60a7a6c154c8b9a609957d1dbabb47d1e364e4705cdbfcaf97d9ff8c5bb516b"


def fixture_host() -> Any:
    return build_host(FixtureView.from_manifest(op_manifest()))


def test_pinned_digests() -> None:
    host = fixture_host()
    (manifest,) = host.contract.manifests
    assert manifest.digest.hex() == H_MODULE
    assert manifest.verify_hash()
    assert host.fingerprint().hex() == H_HOST
    assert host.interface_fingerprint().hex() == H_INTERFACE


def test_digests_do_not_depend_on_the_view(store: Store) -> None:
    host = build_host(BatpakView(store))
    assert host.interface_fingerprint().hex() == H_INTERFACE
    assert host.fingerprint().hex() == H_HOST


def test_the_kind_set_is_part_of_the_contract() -> None:
    view = FixtureView.from_manifest(op_manifest())
    other = build_host(view, [0xF101])
    assert other.contract.manifests[0].digest.hex() != H_MODULE
    assert other.interface_fingerprint().hex() != H_INTERFACE


def test_packaged_manifest_is_the_conformance_copy() -> None:
    packaged = Path(__file__).resolve().parents[1] / "src" / "refhost" / "batpak.manifest.json"
    assert packaged.read_bytes() == (VECTORS / "netbat-ops" / "batpak.manifest.json").read_bytes()


def test_module_shape() -> None:
    module = reference_module(FixtureView.from_manifest(op_manifest()))
    manifest = module.manifest
    assert (manifest.id, manifest.version) == (MODULE_ID, 1)
    ops = {d.name: d for d in manifest.operations}
    assert sorted(ops) == sorted(op.name for op in OPERATIONS)
    for op in OPERATIONS:
        d = ops[op.name]
        assert (d.input_schema_ref, d.output_schema_ref) == (f"{op.name}.request", f"{op.name}.ack")
        assert d.receipt_kind == f"receipt.{op.name}.v1"
        if op.name == "bank.commit":
            assert d.effect is syncbat.EffectClass.PERSIST
            assert d.effect_row.appends_events == tuple(
                f"evt.{k:04x}" for k in DEFAULT_COMMITTABLE_KINDS
            )
            assert d.effect_row.requires_capabilities == ("event.append",)
        else:
            assert d.effect is syncbat.EffectClass.INSPECT
            assert d.effect_row.is_empty()
    bindings = {b.kind: b.payload_schema_ref for b in manifest.event_payload_bindings}
    assert bindings == dict.fromkeys(DEFAULT_COMMITTABLE_KINDS, COMMIT_PAYLOAD_SCHEMA)
    assert len(DEFAULT_COMMITTABLE_KINDS) == 37
    assert 0xFA01 in DEFAULT_COMMITTABLE_KINDS  # the manifest's bank.commit golden kind
    schemas = {(s.id, s.role): s for s in manifest.schemas}
    assert len(schemas) == 31
    for golden in op_manifest()["operations"]:
        request = schemas[(golden["inputSchemaRef"], SchemaRole.OPERATION_INPUT)]
        ack = schemas[(golden["outputSchemaRef"], SchemaRole.OPERATION_OUTPUT)]
        assert [g.bytes.hex() for g in request.golden] == [golden["goldenInputHex"]]
        assert [g.bytes.hex() for g in ack.golden] == [golden["goldenOutputHex"]]
        assert (golden["receiptKind"], SchemaRole.RECEIPT_PAYLOAD) in schemas


def test_kind_set_rules() -> None:
    view = FixtureView.from_manifest(op_manifest())
    with pytest.raises(ValueError, match="at least one"):
        reference_module(view, [])
    with pytest.raises(ValueError, match="reserved"):
        reference_module(view, [0xD001])
    assert parse_kind("0xF101") == parse_kind("f101") == parse_kind("F:101") == 0xF101
    for bad in ("0:1", "xyz", "1:1000", "10000", "d:1"):
        with pytest.raises(ValueError, match="event kind"):
            parse_kind(bad)


def commit_request(kind: int, payload: bytes, key: str | None = None) -> bytes:
    request = {
        "entity": "acct:1",
        "scope": "bank",
        "kind_category": kind >> 12,
        "kind_type_id": kind & 0xFFF,
        "payload_hex": payload.hex(),
        "idempotency_key_hex": key,
    }
    packed: bytes = msgpack.packb(request)
    return packed


def event_count(store: Store) -> int:
    """Events the ops committed (batpak's own ``batpak:store`` bookkeeping excluded)."""
    return len(store.by_entity("acct:1"))


def test_hosted_commit_round_trip(store: Store) -> None:
    dispatcher = ReferenceDispatcher(build_host(BatpakView(store)))
    payload = msgpack.packb({"amount": 7})
    ack = msgpack.unpackb(
        dispatcher.call("bank.commit", commit_request(0xF001, payload, "0e" * 16))
    )
    assert ack["event_id_hex"] == "0e" * 16
    again = msgpack.unpackb(
        dispatcher.call("bank.commit", commit_request(0xF001, payload, "0e" * 16))
    )
    assert again == ack
    got = msgpack.unpackb(dispatcher.call("event.get", msgpack.packb({"event_id_hex": "0e" * 16})))
    assert (got["payload_hex"], got["kind_category"], got["kind_type_id"]) == (payload.hex(), 15, 1)
    verdict = msgpack.unpackb(dispatcher.call("receipt.verify", msgpack.packb(ack)))
    assert verdict == {"valid": True, "outcome": "unsigned_accepted", "reason_code": None}
    assert event_count(store) == 1


def test_undeclared_kind_is_invalid_input_before_any_append(store: Store) -> None:
    dispatcher = ReferenceDispatcher(build_host(BatpakView(store)))
    with pytest.raises(netbat.HandlerFailed) as caught:
        dispatcher.call("bank.commit", commit_request(0xF101, msgpack.packb(1)))
    assert caught.value.error_class == "invalid_input"
    assert caught.value.handler_message == (
        "event kind: 0xf101 is not a committable kind of this host"
    )
    assert event_count(store) == 0
    narrow = ReferenceDispatcher(build_host(BatpakView(store), [0xF101]))
    narrow.call("bank.commit", commit_request(0xF101, msgpack.packb(1)))
    assert event_count(store) == 1
    with pytest.raises(netbat.HandlerFailed, match="not a committable kind"):
        narrow.call("bank.commit", commit_request(0xF001, msgpack.packb(1)))


def test_reserved_kind_keeps_the_reference_message(store: Store) -> None:
    dispatcher = ReferenceDispatcher(build_host(BatpakView(store)))
    with pytest.raises(netbat.HandlerFailed, match="event kind: ReservedCategory"):
        dispatcher.call("bank.commit", commit_request(0xD001, msgpack.packb(1)))


def test_commit_payload_goes_through_the_validating_backend(store: Store) -> None:
    dispatcher = ReferenceDispatcher(build_host(BatpakView(store)))
    with pytest.raises(netbat.HandlerFailed) as caught:
        dispatcher.call("bank.commit", commit_request(0xF001, b"\xc1"))
    assert caught.value.error_class == "failed"
    assert caught.value.handler_message.startswith(
        "append: event kind 0xf001 payload schema validation failed: "
    )
    assert event_count(store) == 0


def test_host_errors_become_netbat_errors(store: Store) -> None:
    dispatcher = ReferenceDispatcher(build_host(BatpakView(store)))
    with pytest.raises(netbat.UnknownOperation) as unknown:
        dispatcher.call("no.such", b"\x80")
    assert str(unknown.value) == "runtime error: unknown operation `no.such`"
    with pytest.raises(netbat.HandlerFailed) as bad:
        dispatcher.call("system.heartbeat", b"\xc1")
    assert bad.value.error_class == "invalid_input"
    assert bad.value.handler_message.startswith(
        "operation system.heartbeat input schema validation failed"
    )
    with pytest.raises(netbat.HandlerFailed) as decode:
        dispatcher.call("system.heartbeat", msgpack.packb({}))
    assert decode.value.handler_message.startswith("decode request: ")
    with pytest.raises(netbat.HandlerFailed) as missing:
        dispatcher.call("event.get", msgpack.packb({"event_id_hex": "ab" * 16}))
    assert missing.value.error_class == "failed"
    assert missing.value.handler_message.startswith("read event: ")
