"""Variants that claim the same truth give byte-identical answers; planted divergences are caught.

One workload (several entities, a batch, keyed appends, receipt extensions, rotation across
4 KiB segments) is read back through every variant the Python store offers: the live store;
a read-only open served from the columnar checkpoint (``index.cols``); a read-only open after
the checkpoint is deleted (full rebuild from the segments); writable reopens with and without
the checkpoint; a projection replayed directly and through ``project_if_changed``. Answers are
compared as canonical JSON bytes.

PROVES: INV-SEMANTIC-DIFF-EQUIVALENCE (checkpoint vs rebuild give byte-identical queries,
pages, point reads, walks, chain reports, projections, frontier and sequence; read-only,
writable-reopened and live stores agree on every application region;
a checkpoint with a flipped byte, a truncated or empty one are ignored, and one from an earlier
close is only a base for the newer segments: the answers equal the rebuild in every case;
a payload rewritten inside a sealed frame with a recomputed CRC is
caught by verify_chain in every variant).
CATCHES: a fast-start index that drifts from the segments, a checkpoint trusted past its CRC or
past newer segments, read-only and writable opens that see different histories, a projection
shortcut that disagrees with a replay, silent acceptance of rewritten payload bytes.
SEEDED: deterministic workload; the tampered event is fixed.
"""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path
from typing import Any

import msgspec
import pytest
from refstore import parse_segment, segment_files

from batpak import (
    AppendOptions,
    BatchAppendItem,
    Coordinate,
    Projection,
    Region,
    Store,
    StoreConfig,
    event_payload,
    handles,
)

SCOPE = "scope:eq"
ENTITIES = ("acct:1", "acct:2", "acct:3", "ledger:main")


@event_payload(category=0xE, type_id=0x7A1)
class Deposit(msgspec.Struct):
    amount: int
    memo: str


class Balance(Projection):
    def __init__(self) -> None:
        self.total = 0
        self.memos: list[str] = []

    @handles(Deposit)
    def on_deposit(self, event: Deposit) -> None:
        self.total += event.amount
        self.memos.append(event.memo)


def config(path: Path) -> StoreConfig:
    return StoreConfig(path, segment_max_bytes=4096)


def workload(store: Store, round_no: int) -> None:
    for i in range(24):
        entity = ENTITIES[i % len(ENTITIES)]
        memo = f"r{round_no}-{i:03d}-" + "a" * 12
        options = AppendOptions(extensions={"app.round": bytes([round_no])}) if i % 5 == 0 else None
        store.append_typed(Coordinate(entity, SCOPE), Deposit(i, memo), options or AppendOptions())
        if i % 7 == 0:
            key = AppendOptions(idempotency_key=(round_no << 16) | i | 1)
            store.append(Coordinate(entity, SCOPE), 0xF002, {"keyed": i}, key)
    store.append_batch(
        [BatchAppendItem.typed(Coordinate("acct:9", SCOPE), Deposit(k, "batch")) for k in range(4)]
    )


def view(store: Store, *, whole: bool) -> bytes:
    """Every answer the store gives about the application region (and, with ``whole``, about
    everything including lifecycle events, and the frontier), as JSON bytes."""
    region = Region.all() if whole else Region.scope(SCOPE)
    entries = store.query(region)
    out: dict[str, Any] = {"entries": entries}
    pages, after = [], None
    while page := store.query_entries_after(region, after, 5):
        pages.append(page)
        after = page[-1].global_sequence
    out["pages"] = pages
    out["events"] = store.events(entries)
    out["entities"] = {e: store.by_entity(e) for e in (*ENTITIES, "acct:9")}
    out["generations"] = {e: store.entity_generation(e) for e in (*ENTITIES, "acct:9")}
    out["kinds"] = [store.by_fact(0xE7A1), store.by_fact(0xF002)]
    out["walks"] = [store.walk_ancestors(store.by_entity(e)[-1].event_id, 64) for e in ENTITIES]
    report = store.verify_chain()
    out["chain"] = [report.content_hash_mismatches, report.dangling_links, report.is_intact()]
    if whole:
        out["chain"].append(report.events_checked)
        out["frontier"] = store.frontier().visible
    out["projections"] = [vars(store.project(Balance, e)) for e in (*ENTITIES, "acct:9")]
    return json.dumps(msgspec.to_builtins(out)).encode()  # JSON: ids are u128


def read_only(path: Path, *, whole: bool = True) -> bytes:
    with Store.open_read_only(config(path)) as store:
        return view(store, whole=whole)


def rebuilt(path: Path, scratch: Path) -> bytes:
    """The answers with no checkpoint at all, from a copy (the original is left as it is)."""
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(path, scratch)
    (scratch / "index.cols").unlink(missing_ok=True)
    return read_only(scratch)


@pytest.fixture
def journal(tmp_path: Path) -> tuple[Path, bytes]:
    path = tmp_path / "journal"
    with Store.open(config(path)) as store:
        workload(store, 1)
        live = view(store, whole=False)
    assert (path / "index.cols").exists()
    assert len(segment_files(path)) > 2  # rotation happened
    return path, live


@pytest.mark.invariant("INV-SEMANTIC-DIFF-EQUIVALENCE")
def test_checkpoint_rebuild_read_only_reopened_and_live_agree(
    journal: tuple[Path, bytes], tmp_path: Path
) -> None:
    path, live = journal
    from_checkpoint = read_only(path)
    from_segments = rebuilt(path, tmp_path / "rebuilt")
    assert from_checkpoint == from_segments
    assert read_only(path) == from_checkpoint  # repeatable
    assert read_only(path, whole=False) == live  # read-only = what the live store showed
    with Store.open(config(path)) as reopened:  # writable: adds only its OPEN event
        assert view(reopened, whole=False) == live
        balance = reopened.project(Balance, "acct:1")
        generation = reopened.entity_generation("acct:1")
        changed = reopened.project_if_changed(Balance, "acct:1", None)
        assert changed is not None
        assert changed[0] == generation
        assert vars(changed[1]) == vars(balance)
        assert reopened.project_if_changed(Balance, "acct:1", generation) is None
    (path / "index.cols").unlink()
    with Store.open(config(path)) as rebuilt_writable:
        assert view(rebuilt_writable, whole=False) == live


@pytest.mark.invariant("INV-SEMANTIC-DIFF-EQUIVALENCE")
def test_damaged_or_stale_checkpoints_are_ignored(
    journal: tuple[Path, bytes], tmp_path: Path
) -> None:
    path, _ = journal
    cols = path / "index.cols"
    original = cols.read_bytes()
    truth = rebuilt(path, tmp_path / "truth")
    damaged = {
        "last byte (event hashes)": original[:-1] + bytes([original[-1] ^ 0x01]),
        "middle byte": original[: len(original) // 2]
        + bytes([original[len(original) // 2] ^ 0x40])
        + original[len(original) // 2 + 1 :],
        "truncated": original[: len(original) - 17],
        "empty": b"",
    }
    for label, data in damaged.items():
        cols.write_bytes(data)
        assert read_only(path) == truth, label
    cols.write_bytes(original)
    assert read_only(path) == truth

    # A checkpoint from an earlier close, planted after more history was written.
    with Store.open(config(path)) as store:
        workload(store, 2)
    newer = rebuilt(path, tmp_path / "newer")
    assert newer != truth
    cols.write_bytes(original)
    assert read_only(path) == newer


def rewrite_payload(path: Path, old: bytes, new: bytes) -> int:
    """Rewrite bytes inside one sealed frame and recompute its CRC; return the frame offset."""
    for segment in segment_files(path):
        parsed = parse_segment(segment)
        for frame in parsed.frames:
            if old in frame.body:
                body = frame.body.replace(old, new, 1)
                head = struct.pack(">II", len(body), zlib.crc32(body))
                data = bytearray(segment.read_bytes())
                data[frame.offset : frame.offset + frame.length] = head + body
                segment.write_bytes(bytes(data))
                return frame.offset
    raise AssertionError("payload not found")


@pytest.mark.invariant("INV-SEMANTIC-DIFF-EQUIVALENCE")
def test_a_rewritten_payload_is_caught_in_every_variant(
    journal: tuple[Path, bytes], tmp_path: Path
) -> None:
    path, _ = journal
    # The memo's ASCII bytes are stored as positive fixints in the frame's payload array.
    rewrite_payload(path, b"r1-005-" + b"a" * 12, b"r1-005-" + b"b" * 12)
    with Store.open_read_only(config(path)) as store:
        target = next(
            e.event_id
            for e in store.by_fact(0xE7A1)
            if store.get(e.event_id).decode(Deposit).memo.startswith("r1-005-")
        )
        assert store.verify_chain().content_hash_mismatches == (target,)
    scratch = tmp_path / "scratch"
    shutil.copytree(path, scratch)
    (scratch / "index.cols").unlink()
    with Store.open_read_only(config(scratch)) as store:
        assert store.verify_chain().content_hash_mismatches == (target,)
