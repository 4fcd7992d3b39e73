"""Torn tails and bit rot: every truncation point inside the last frame of a segment, garbage
after it, and every single-byte flip of a sealed segment.

PROVES: INV-BATCH-CRASH-RECOVERY (a committed frame with a bad CRC or bad bytes fails closed:
every flip is refused at open, refused at read, reported by verify_chain or `batpak verify`,
or changes no answer; a torn tail is never an untyped crash),
INV-COLD-START-ARTIFACTS (mid-frame truncation never crashes reopen: it shows the whole-frame
prefix; the fast-start checkpoint never hides damage from reads),
INV-DST-RECOVERY-LEGAL (a typed refusal or a legal prefix, never an untyped error).
CATCHES: a reader that trusts a damaged frame, a torn tail that loses earlier frames or
crashes the open, a checkpoint that serves stale or damaged bytes, silent wrong answers.
SEEDED: the garbage tails come from a fixed seed.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from crashrun import ROOT, Driver, sim_config
from simfs import SimFs

from batpak import Region, Store, StoreError
from batpak.cli import main as batpak_cli

SEGMENT = ROOT / "000001.fbat"
Answer = tuple[int, str, str, int, int, bytes, bytes, bytes]


def _answers(store: Store) -> list[Answer]:
    entries = store.query(Region.all())
    return [
        (e.event_id, e.entity, e.scope, e.event_kind, e.global_sequence, s.event.payload,
         e.event_hash, e.prev_hash)
        for e, s in zip(entries, store.events(entries), strict=True)
    ]  # fmt: skip


def _abandoned() -> tuple[SimFs, list[int], int, int]:
    """A store whose writer died after four synced appends: (fs, ids, last offset, length)."""
    fs = SimFs()
    driver = Driver(fs, Store.open(sim_config(fs)))
    ids = [driver.append(f"acct:{i % 2}", size=40) for i in range(4)]
    driver.sync()
    entry = driver.store.query(Region.all())[-1]
    driver.store._abandon()  # the documented crash seam
    fs.crash()
    return fs, ids, entry.offset, entry.length


def _with(fs: SimFs, path: Path, data: bytes) -> SimFs:
    image = fs.crash_image()
    image.put(path, data)
    return image


def _user_ids(store: Store) -> list[int]:
    return [e.event_id for e in store.query(Region.all()) if e.entity != "batpak:store"]


@pytest.mark.invariant("INV-COLD-START-ARTIFACTS")
@pytest.mark.invariant("INV-DST-RECOVERY-LEGAL")
def test_every_cut_inside_the_last_frame_recovers_the_whole_frames() -> None:
    fs, ids, offset, length = _abandoned()
    data = fs.files(ROOT)[SEGMENT.name]
    assert offset + length == len(data)
    for cut in range(offset, offset + length):
        with Store.open(sim_config(_with(fs, SEGMENT, data[:cut]))) as store:
            assert _user_ids(store) == ids[:3], f"cut at {cut}"
            assert store.verify_chain().is_intact()
    rng = random.Random(0x6A5B)
    for size in (1, 7, 8, 9, 31, 32, 200):
        garbage = bytes(rng.randrange(256) for _ in range(size))
        try:
            store = Store.open(sim_config(_with(fs, SEGMENT, data + garbage)))
        except StoreError:
            continue  # a typed refusal is legal
        with store:
            assert _user_ids(store) == ids, f"{size} garbage bytes changed the answer"


def _sealed() -> tuple[SimFs, bytes, list[Answer]]:
    fs = SimFs()
    driver = Driver(fs, Store.open(sim_config(fs)))
    driver.append("acct:0", size=8)
    driver.batch(["acct:1", "acct:0"], size=8)
    driver.append("acct:1", size=8)
    driver.close()
    with Store.open_read_only(sim_config(fs)) as store:
        truth = _answers(store)
    return fs, fs.files(ROOT)[SEGMENT.name], truth


def _flip_verdict(image: SimFs, truth: list[Answer]) -> str:
    try:
        store = Store.open_read_only(sim_config(image))
    except StoreError:
        return "refused at open"
    with store:
        try:
            answers = _answers(store)
        except StoreError:
            return "refused at read"
        if not store.verify_chain().is_intact():
            return "verify_chain"
    assert answers == truth, "a flipped byte changed an answer without being detected"
    return "no answer changed"


@pytest.mark.invariant("INV-BATCH-CRASH-RECOVERY")
@pytest.mark.invariant("INV-COLD-START-ARTIFACTS")
@pytest.mark.parametrize("checkpoint", [False, True], ids=["rebuild", "checkpoint"])
def test_every_byte_flip_of_a_sealed_segment_is_detected_or_harmless(checkpoint: bool) -> None:
    fs, data, truth = _sealed()
    if not checkpoint:
        fs.remove(ROOT / "index.cols")
        fs.sync_dir(ROOT)
    seen: dict[str, int] = {}
    for at in range(len(data)):
        flipped = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]
        verdict = _flip_verdict(_with(fs, SEGMENT, flipped), truth)
        seen[verdict] = seen.get(verdict, 0) + 1
    detected = len(data) - seen.get("no answer changed", 0)
    assert detected > len(data) // 2, f"most flips land in frames and must be caught: {seen}"


@pytest.mark.invariant("INV-BATCH-CRASH-RECOVERY")
def test_batpak_verify_reports_a_flipped_frame(tmp_path: Path) -> None:
    fs, data, _ = _sealed()
    with Store.open_read_only(sim_config(fs)) as store:
        last = store.query(Region.all())[-2]  # the last user event, before CLOSE
    at = last.offset + last.length // 2
    clean, damaged = tmp_path / "clean", tmp_path / "damaged"
    fs.materialize(ROOT, clean)
    _with(fs, SEGMENT, data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]).materialize(
        ROOT, damaged
    )
    assert batpak_cli(["verify", str(clean)]) == 0
    assert batpak_cli(["verify", str(damaged)]) != 0
