"""Every op golden of the manifest, the frames around them, and the store report bodies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import blake3
import pytest

from batpak import canonical
from netbat.frames import decode_request, encode_ok, encode_request
from netbat.limits import Limits
from refhost.dispatch import ReferenceDispatcher
from refhost.fixture import FixtureView
from refhost.host import build_host
from refhost.ops import BY_NAME, OPERATIONS
from refhost.reports import (
    LINUX_PLATFORM_EVIDENCE,
    ResourceFacts,
    chain_walk_body,
    finding,
    read_walk_body,
    store_resource_body,
    walk_digest,
)
from refhost.reports import ProofRef as Proof
from refhost.server import respond

VECTORS = Path(__file__).resolve().parents[2] / "conformance" / "vectors"
MANIFEST: dict[str, Any] = json.loads((VECTORS / "netbat-ops" / "batpak.manifest.json").read_text())
OP_NAMES = [op["name"] for op in MANIFEST["operations"]]


def golden_op(name: str) -> dict[str, Any]:
    op: dict[str, Any] = next(o for o in MANIFEST["operations"] if o["name"] == name)
    return op


def test_manifest_lists_exactly_the_ten_ops() -> None:
    assert sorted(OP_NAMES) == sorted(op.name for op in OPERATIONS)
    assert len(OPERATIONS) == 10


@pytest.mark.parametrize("name", OP_NAMES)
def test_golden_input_gives_golden_output(name: str) -> None:
    op = golden_op(name)
    view = FixtureView.from_manifest(MANIFEST)
    output = BY_NAME[name].handler(bytes.fromhex(op["goldenInputHex"]), view)
    assert output.hex() == op["goldenOutputHex"]


@pytest.mark.parametrize("name", OP_NAMES)
def test_descriptor_facts_match_manifest(name: str) -> None:
    op, ours = golden_op(name), BY_NAME[name]
    assert ours.input_schema_ref == op["inputSchemaRef"]
    assert ours.output_schema_ref == op["outputSchemaRef"]
    assert ours.receipt_kind == op["receiptKind"]
    events = {e["name"]: e for e in MANIFEST["events"]}
    request = events[op["inputEvent"]]
    assert ours.request_kind == (request["category"] << 12) | request["typeId"]


@pytest.mark.parametrize("name", OP_NAMES)
def test_request_and_ok_frames(name: str) -> None:
    op = golden_op(name)
    frame = encode_request(name, bytes.fromhex(op["goldenInputHex"]))
    assert frame.hex() == op["goldenRequestFrameHex"]
    assert encode_ok(bytes.fromhex(op["goldenOutputHex"])).hex() == op["goldenOkFrameHex"]


def fixture_dispatcher() -> ReferenceDispatcher:
    return ReferenceDispatcher(build_host(FixtureView.from_manifest(MANIFEST)))


@pytest.mark.parametrize("name", OP_NAMES)
def test_golden_request_bytes_through_host_invoke_give_the_ok_frame(name: str) -> None:
    """Request frame bytes in -> hostbat ``Host.invoke`` -> the exact golden OK frame out."""
    op = golden_op(name)
    view = FixtureView.from_manifest(MANIFEST)
    host = build_host(view)
    request = decode_request(bytes.fromhex(op["goldenRequestFrameHex"]), Limits())
    assert request.operation == name
    result = host.invoke(request.operation, request.input)
    assert result.descriptor.name == name
    assert encode_ok(result.output).hex() == op["goldenOkFrameHex"]
    commits = [args for call, args in view.calls if call == "commit"]
    assert len(commits) == (1 if name == "bank.commit" else 0)


@pytest.mark.parametrize("name", OP_NAMES)
def test_whole_frame_round_trip_through_the_dispatcher(name: str) -> None:
    op = golden_op(name)
    line = bytes.fromhex(op["goldenRequestFrameHex"])
    assert respond(fixture_dispatcher(), line, Limits()).hex() == op["goldenOkFrameHex"]


@pytest.mark.parametrize("name", OP_NAMES)
def test_error_fixture_is_unknown_operation(name: str) -> None:
    fixture = golden_op(name)["errorFixture"]
    dispatcher = fixture_dispatcher()
    response = respond(dispatcher, bytes.fromhex(fixture["requestFrameHex"]), Limits())
    assert response.hex() == fixture["errFrameHex"]
    code, message = response.rstrip(b"\n").split(b" ")[1:]
    assert code.decode() == fixture["code"] == "unknown_operation"
    assert bytes.fromhex(message.decode()).decode() == fixture["messageUtf8"]


def test_every_event_fixture_re_encodes() -> None:
    for event in MANIFEST["events"]:
        assert canonical.encode(event["fixtureValue"]).hex() == event["goldenPayloadHex"]


# --- report bodies (format.md §8) ---------------------------------------------------------


def core_golden(name: str) -> bytes:
    return bytes.fromhex((VECTORS / "core" / "golden" / name).read_text().strip())


def uid(value: int) -> int:
    """`…NN` in format.md §8: a u128 id whose bin16 ends in NN."""
    return value


def test_chain_walk_body_matches_core_golden() -> None:
    body = chain_walk_body(
        2,
        uid(0x65),
        uid(0x63),
        bytes([0x92]) * 32,
        [
            finding(
                "EndNotReached",
                ("expected_end_event_id", uid(0x4D)),
                ids=("expected_end_event_id",),
            ),
            finding("TruncatedByLimit", ("limit", 2), ("next_parent_hash", bytes([0x91]) * 32)),
        ],
    )
    encoded = canonical.encode(body)
    assert len(encoded) == 354
    assert encoded == core_golden("chain_walk_report_body_v1.hex")


def test_read_walk_body_matches_core_golden() -> None:
    body = read_walk_body(
        source_refs=[
            finding("FactExact", ("category", 14), ("type_id", 129)),
            finding("Scope", ("scope", "scope:canonical-golden")),
        ],
        max_stale_ms=None,
        frontier=(43, 10),
        requested_limit=1,
        matched_count=4,
        returned_count=1,
        dropped=3,
        proof_refs=[Proof(uid(0x37), 10, bytes([0x94]) * 32)],
        findings=[
            finding("MissingBackingEntry", ("event_id", uid(0x37)), ids=("event_id",)),
            finding("LimitedResults", ("dropped_count", 3)),
        ],
    )
    encoded = canonical.encode(body)
    assert len(encoded) == 513
    assert encoded == core_golden("read_walk_report_body_v1.hex")


def test_store_resource_body_matches_core_golden() -> None:
    stages = {
        "accepted": (40, 8),
        "written": (41, 9),
        "durable": (41, 9),
        "visible": (42, 10),
        "applied": (42, 10),
        "emitted": (43, 10),
    }
    platform = json.loads(json.dumps(LINUX_PLATFORM_EVIDENCE))
    platform["host"]["process_clock_epoch_marker_ns"] = 123
    facts = ResourceFacts(
        data_dir_identity_hash=bytes([0x95]) * 32,
        event_count=4,
        global_sequence=10,
        visible_sequence=11,
        segment_max_bytes=4096,
        fd_budget=64,
        restart_policy={"Bounded": {"max_restarts": 1, "within_ms": 1000}},
        queue_len=1,
        capacity=128,
        frontier=stages,
        visible_minus_durable_seq=1,
        oldest_pending_write_age_ms=5,
        index_topology="aos",
        tile_count=0,
        open_report=None,
        platform_evidence=platform,
    )
    encoded = canonical.encode(store_resource_body(facts))
    assert len(encoded) == 1052
    assert encoded == core_golden("store_resource_report_body_v1.hex")


def test_walk_digest_is_blake3_of_the_checked_pairs() -> None:
    checked = [(uid(1), bytes([0xAA]) * 32)]
    expected = canonical.encode([[bytes(15) + b"\x01", [0xAA] * 32]])
    assert walk_digest(checked) == blake3.blake3(expected).digest()
