"""A BatenBase tenant journal is a verifiable batpak hash chain, and tampering shows.

A real `batenbase serve` process writes three revisions of a key. The proof route's events are
checked offline (BLAKE3 of each shown payload equals its content hash; each prev_hash is the
previous revision's content hash, the first is 32 zero bytes). After a clean stop the tenant's
journal directory is copied and opened with the public batpak API; copies are tampered
with frame CRCs recomputed and lengths kept, so only the chain can tell.

PROVES: INV-HASH-CHAIN-INTEGRITY (genesis prev is zero and the chain links in the proof;
`verify_chain` accepts the untouched journal, and rejects a payload changed in place - a
content-hash mismatch - and a wrong prev_hash - a dangling link - naming the tampered event).
CATCHES: a verify_chain that accepts anything or checks only CRCs, a proof whose hashes do not
match its payloads, a chain that does not start at zero.
SEEDED: no randomness.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from bbserver import BBServer
from refstore import b3, frame_bytes, pack, parse_segment

from batpak import Store, StoreConfig, StoreError

MARK = b"TAMPERME"
ZERO = "00" * 32


def _rewrite_frame(directory: Path, old: bytes, new: bytes, within: bytes = b"") -> int:
    """Replace `old` by `new` (same length) inside the frames holding it (and `within`),
    fixing their CRCs; the number of frames changed."""
    assert len(old) == len(new)
    changed = 0
    for path in sorted(directory.glob("*.fbat")):
        data = path.read_bytes()
        for frame in parse_segment(path).frames:
            if old in frame.body and within in frame.body:
                body = frame.body.replace(old, new)
                end = frame.offset + frame.length
                data = data[: frame.offset] + frame_bytes(body) + data[end:]
                changed += 1
        path.write_bytes(data)
    return changed


def _packed(digest: bytes) -> bytes:
    """A hash as the journal's msgpack holds it (an array of byte values)."""
    return pack(list(digest))


def _verify(directory: Path) -> Any:
    with Store.open_read_only(StoreConfig(directory)) as store:
        return store.verify_chain()


@pytest.mark.invariant("INV-HASH-CHAIN-INTEGRITY")
def test_the_tenant_chain_verifies_and_tampering_is_reported(tmp_path: Path) -> None:
    srv = BBServer(tmp_path / "srv").start()
    try:
        tokens = srv.tenant("chained")
        with srv.client(tokens["writer"]) as c:
            c.put_block("doc", {"n": 1})
            c.put_block("doc", {"n": 2, "m": MARK.decode()})
            c.put_block("doc", {"n": 3})
            proof = c.proof("doc")
        assert srv.stop() == 0
    finally:
        srv.close()
    events = proof.events
    assert [e["rev"] for e in events] == [1, 2, 3]
    assert events[0]["prev_hash"] == ZERO
    for before, event in zip([None, *events], events, strict=False):
        assert b3(bytes.fromhex(event["payload_hex"])).hex() == event["content_hash"]
        if before is not None:
            assert event["prev_hash"] == before["content_hash"]

    journal = tmp_path / "srv" / "data" / "tenants" / "chained"
    clean = _verify(journal)
    assert clean.is_intact()
    assert clean.events_checked >= 3

    ids = {e["rev"]: int(e["event_id"], 16) for e in events}
    hashes = {e["rev"]: bytes.fromhex(e["content_hash"]) for e in events}

    content = tmp_path / "content"
    shutil.copytree(journal, content)
    assert _rewrite_frame(content, MARK, b"TAMPERED") == 1
    try:
        report = _verify(content)
    except StoreError:
        pytest.fail("a CRC-valid frame with a changed payload must open and be reported")
    assert ids[2] in report.content_hash_mismatches, report
    assert not report.is_intact()

    link = tmp_path / "link"
    shutil.copytree(journal, link)
    # Revision 3's prev_hash now names no event (one bit flipped; msgpack keeps its length).
    wrong = bytes([hashes[2][0] ^ 0x01]) + hashes[2][1:]
    assert _rewrite_frame(link, _packed(hashes[2]), _packed(wrong), _packed(hashes[3])) == 1
    report = _verify(link)
    assert ids[3] in report.dangling_links, report
    assert not report.is_intact()
