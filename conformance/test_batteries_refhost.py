"""The reference host's ten operations over real NETBAT/1 TCP, against a real store directory.

The host runs as a process (``python -m refhost serve``). The first run commits events over the
wire and stops cleanly; then a ``visibility_ranges.fbv`` side file (format.md §7.5: the
reference's record of a cancelled fence) is planted over two committed events, and a second
run serves the same directory. Everything is checked through the wire only.

PROVES: INV-BIDIRECTIONAL-SUBSTRATE-LANE (all ten operations answer; event.query pages in
strictly ascending global_sequence, resumes exclusively after ``after_global_sequence``, its
pages concatenate to the one-shot result, summaries carry exactly the eleven payload-free
fields, hidden events are excluded from queries, walks and point reads; event.walk returns the
anchor and then its chain parents in order; every evidence.* ack carries a report whose BLAKE3
is ``body_hash_hex``; evidence.projection_run refuses an unregistered projection),
INV-RECEIPT-SEALED (over the wire: a commit ack verifies as ``unsigned_accepted``; every
mutated field, an unknown event and a signature under the zero key come back ``invalid`` with
their reason code).
CATCHES: inclusive resume points, duplicated or skipped entries across pages, payload bytes in
summaries, fast-start or query paths that resurrect hidden events, walks that wander to other
entities, evidence hashes that do not cover the report bytes, a verify that trusts the client's
fields.
SEEDED: deterministic workload.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import blake3
import msgpack  # type: ignore[import-untyped]
import pytest
from refhost_process import SUMMARY_FIELDS, TEN_OPS, RefhostClient, served
from refstore import pack, side_file

import netbat

ENTITIES = [("acct:1", 1), ("acct:2", 2), ("acct:1", 1), ("hidden:1", 3), ("hidden:1", 3)]
ENTITIES += [("acct:2", 2), ("acct:1", 1), ("acct:3", 4), ("acct:1", 1), ("acct:2", 2)]


@dataclass
class Lane:
    client: RefhostClient
    acks: list[dict[str, Any]]
    entities: list[str]
    hidden: set[int]  # global sequences hidden by the planted ranges

    @property
    def visible(self) -> list[tuple[int, str]]:
        return [
            (a["sequence"], e)
            for a, e in zip(self.acks, self.entities, strict=True)
            if a["sequence"] not in self.hidden
        ]


@pytest.fixture(scope="module")
def lane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lane]:
    store = tmp_path_factory.mktemp("refhost-lane")
    with served(store) as client:
        acks = [client.commit(e, t, {"n": i, "e": e}) for i, (e, t) in enumerate(ENTITIES)]
    hidden = [a["sequence"] for a, (e, _) in zip(acks, ENTITIES, strict=True) if e == "hidden:1"]
    assert hidden == [hidden[0], hidden[0] + 1]  # one contiguous half-open range
    ranges = {"ranges": [{"start": hidden[0], "end": hidden[-1] + 1}], "lane_ranges": []}
    (store / "visibility_ranges.fbv").write_bytes(side_file(b"FBATVR", 2, pack(ranges)))
    with served(store) as client:
        yield Lane(client, acks, [e for e, _ in ENTITIES], set(hidden))


def query(client: RefhostClient, **fields: Any) -> dict[str, Any]:
    request = {
        "entity": None,
        "scope": None,
        "kind_category": None,
        "kind_type_id": None,
        "after_global_sequence": None,
        "limit": 1024,
    }
    request.update(fields)
    return client.op("event.query", request)


def mine(entries: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return [
        (e["global_sequence"], e["entity"]) for e in entries if e["scope"] == "scope:conformance"
    ]


@pytest.mark.invariant("INV-BIDIRECTIONAL-SUBSTRATE-LANE")
def test_all_ten_operations_answer(lane: Lane) -> None:
    client = lane.client
    ack = client.op("system.heartbeat", {"nonce": "lane-0001"})
    assert ack["nonce"] == "lane-0001"
    assert ack["server_ts_ms"] > 0
    first = lane.acks[0]
    assert (
        client.op("event.get", {"event_id_hex": first["event_id_hex"]})["sequence"]
        == (first["sequence"])
    )
    answered = {"system.heartbeat", "event.get", "bank.commit"}
    assert query(lane.client, limit=1)["entries"]
    answered.add("event.query")
    assert client.op("receipt.verify", first)["valid"] is True
    answered.add("receipt.verify")
    assert client.op("event.walk", {"event_id_hex": first["event_id_hex"], "limit": 1})["entries"]
    answered.add("event.walk")
    for label, request in evidence_requests(lane).items():
        op = label.split("#")[0]
        assert client.op(op, request)["body_hash_hex"]
        answered.add(op)
    with pytest.raises(netbat.HandlerFailed) as info:
        client.op(
            "evidence.projection_run",
            {"projection": "no.such.projection", "entity": "acct:1", "max_stale_ms": None},
        )
    assert "unknown projection: no.such.projection" in str(info.value)
    answered.add("evidence.projection_run")
    assert answered == set(TEN_OPS)
    with pytest.raises(netbat.UnknownOperation):
        client.raw("event.delete", b"\x80")


@pytest.mark.invariant("INV-BIDIRECTIONAL-SUBSTRATE-LANE")
def test_event_query_pages_ascending_exclusive_and_hides_hidden(lane: Lane) -> None:
    whole = query(lane.client)
    assert not whole["truncated"]
    full = whole["entries"]
    sequences = [e["global_sequence"] for e in full]
    assert sequences == sorted(set(sequences))  # strictly ascending
    assert mine(full) == lane.visible
    assert not lane.hidden & set(sequences)
    for entry in full:
        assert list(entry) == SUMMARY_FIELDS  # payload-free, exactly the summary
    for limit in (1, 2, 3, 5):
        pages: list[dict[str, Any]] = []
        after = None
        while True:
            page = query(lane.client, after_global_sequence=after, limit=limit)
            assert len(page["entries"]) <= limit
            assert all(after is None or e["global_sequence"] > after for e in page["entries"])
            pages += page["entries"]
            if not page["truncated"]:
                break
            assert len(page["entries"]) == limit
            after = page["next_after_global_sequence"]
            assert after == page["entries"][-1]["global_sequence"]
        assert pages == full
    # Resume exactly after one entry: the next one comes first, the anchor never again.
    pivot = lane.visible[3][0]
    resumed = query(lane.client, after_global_sequence=pivot)["entries"]
    assert resumed == [e for e in full if e["global_sequence"] > pivot]
    assert query(lane.client, after_global_sequence=sequences[-1])["entries"] == []
    # Filters: entity prefix, exact kind; hidden events stay out under every filter.
    assert mine(query(lane.client, entity="acct:1")["entries"]) == [
        v for v in lane.visible if v[1] == "acct:1"
    ]
    assert query(lane.client, entity="hidden")["entries"] == []
    assert query(lane.client, kind_category=0xF, kind_type_id=3)["entries"] == []
    hidden_ack = next(a for a in lane.acks if a["sequence"] in lane.hidden)
    with pytest.raises(netbat.HandlerFailed):
        lane.client.op("event.get", {"event_id_hex": hidden_ack["event_id_hex"]})
    empty = query(lane.client, entity="nobody")
    assert empty == {"entries": [], "next_after_global_sequence": None, "truncated": False}
    with pytest.raises(netbat.HandlerFailed):
        query(lane.client, limit=0)


@pytest.mark.invariant("INV-BIDIRECTIONAL-SUBSTRATE-LANE")
def test_event_walk_follows_chain_ancestry(lane: Lane) -> None:
    chain = [a for a, e in zip(lane.acks, lane.entities, strict=True) if e == "acct:1"]
    newest = chain[-1]
    walked = lane.client.op("event.walk", {"event_id_hex": newest["event_id_hex"], "limit": 64})
    ids = [e["event_id_hex"] for e in walked["entries"]]
    assert ids == [a["event_id_hex"] for a in reversed(chain)]  # anchor, then its parents
    assert {e["entity"] for e in walked["entries"]} == {"acct:1"}
    for entry, ack in zip(walked["entries"], reversed(chain), strict=True):
        assert entry["global_sequence"] == ack["sequence"]
        assert list(entry) == SUMMARY_FIELDS
    short = lane.client.op("event.walk", {"event_id_hex": newest["event_id_hex"], "limit": 2})
    assert [e["event_id_hex"] for e in short["entries"]] == ids[:2]
    # From a middle event the walk goes back only: the anchor and its ancestors, never later
    # events of the chain.
    middle = lane.client.op("event.walk", {"event_id_hex": chain[2]["event_id_hex"], "limit": 64})
    assert [e["event_id_hex"] for e in middle["entries"]] == [
        a["event_id_hex"] for a in reversed(chain[:3])
    ]
    hidden_ack = next(a for a in lane.acks if a["sequence"] in lane.hidden)
    # A hidden event is no anchor: the walk is empty, as for an unknown id.
    hidden_walk = {"event_id_hex": hidden_ack["event_id_hex"], "limit": 4}
    assert lane.client.op("event.walk", hidden_walk) == {"entries": []}


def evidence_requests(lane: Lane) -> dict[str, dict[str, Any]]:
    first = lane.acks[0]
    return {
        "evidence.chain_walk": {
            "start_event_id_hex": lane.acks[-2]["event_id_hex"],
            "start_expected_hash_hex": None,
            "end_event_id_hex": None,
            "limit": 16,
        },
        "evidence.store_resource": {},
        "evidence.read_walk": {
            "entity": "acct",
            "scope": None,
            "kind_category": None,
            "kind_type_id": None,
            "start_clock": None,
            "end_clock": None,
            "limit": 64,
            "include_proof_refs": True,
            "max_stale_ms": None,
        },
        "evidence.chain_walk#anchored": {
            "start_event_id_hex": first["event_id_hex"],
            "start_expected_hash_hex": first["content_hash_hex"],
            "end_event_id_hex": None,
            "limit": 1,
        },
    }


@pytest.mark.invariant("INV-BIDIRECTIONAL-SUBSTRATE-LANE")
def test_evidence_reports_rehash_to_their_body_hash(lane: Lane) -> None:
    reports = {}
    for label, request in evidence_requests(lane).items():
        op = label.split("#")[0]
        ack = lane.client.op(op, request)
        assert list(ack) == ["report_hex", "body_hash_hex", "truncated"]
        body = bytes.fromhex(ack["report_hex"])
        assert blake3.blake3(body).hexdigest() == ack["body_hash_hex"]
        assert isinstance(msgpack.unpackb(body, strict_map_key=False), dict)
        reports[label] = ack
        again = lane.client.op(op, request)
        if op != "evidence.store_resource":  # resource facts include live counters
            assert again == ack  # deterministic for the same store state
    assert reports["evidence.store_resource"]["truncated"] is False


@pytest.mark.invariant("INV-RECEIPT-SEALED")
def test_receipt_verify_over_the_wire_refuses_every_mutation(lane: Lane) -> None:
    client = lane.client
    for ack in lane.acks:
        if ack["sequence"] in lane.hidden:
            continue
        verdict = client.op("receipt.verify", ack)
        assert verdict == {"valid": True, "outcome": "unsigned_accepted", "reason_code": None}
    good = lane.acks[0]
    other = lane.acks[1]
    flipped = ("0" if good["content_hash_hex"][0] != "0" else "1") + good["content_hash_hex"][1:]
    mutations = {
        "content_hash_mismatch": {"content_hash_hex": flipped},
        "sequence_mismatch": {"sequence": good["sequence"] + 1},
        "extensions_mismatch": {"extensions": {"forged.field": "00"}},
        "event_id_mismatch": {"event_id_hex": other["event_id_hex"]},
        "zero_key_with_signature": {"signature_hex": "ab" * 64},
        "missing_committed_event": {"event_id_hex": "0" * 31 + "1"},
    }
    for reason, change in mutations.items():
        verdict = client.op("receipt.verify", {**good, **change})
        assert verdict["valid"] is False, reason
        assert verdict["outcome"] == "invalid", reason
        if reason == "event_id_mismatch":
            # Another event's id with this event's sequence: which field is blamed first is
            # the verifier's order; either way it is refused.
            assert verdict["reason_code"] in ("sequence_mismatch", "content_hash_mismatch")
        else:
            assert verdict["reason_code"] == reason
