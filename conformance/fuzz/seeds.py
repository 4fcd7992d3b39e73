"""Seed inputs: golden vectors, and a small store directory written through the public API.

Structure-aware fuzzing starts from valid bytes: the reference's golden frames and canonical
bodies (``conformance/vectors``), and every file of a two-session store (segments, footers,
``store.meta``, ``index.idemp``, ``index.cols``, a cursor checkpoint).
"""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import tempfile
import zlib
from pathlib import Path

from batpak import (
    AppendOptions,
    BatchAppendItem,
    Coordinate,
    IdempotencyKey,
    Region,
    Store,
    StoreConfig,
    canonical,
)

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
CURSOR_ID = "fz"
START_US = 1_700_000_000_000_000


def _hex_files(folder: Path) -> list[bytes]:
    return [bytes.fromhex(p.read_text().strip()) for p in sorted(folder.rglob("*.hex"))]


def _manifest() -> dict[str, list[bytes]]:
    doc = json.loads((VECTORS / "netbat-ops" / "batpak.manifest.json").read_text())
    frames: dict[str, list[bytes]] = {"request": [], "response": [], "payload": []}
    for op in doc["operations"]:
        frames["request"].append(bytes.fromhex(op["goldenRequestFrameHex"]))
        frames["response"].append(bytes.fromhex(op["goldenOkFrameHex"]))
        frames["payload"] += [bytes.fromhex(op["goldenInputHex"])]
        frames["payload"] += [bytes.fromhex(op["goldenOutputHex"])]
        fixture = op.get("errorFixture") or {}
        for key in ("requestFrameHex", "errFrameHex", "responseFrameHex"):
            if key in fixture:
                kind = "request" if key.startswith("request") else "response"
                frames[kind].append(bytes.fromhex(fixture[key]))
    for event in doc.get("events", []):
        if "goldenPayloadHex" in event:
            frames["payload"].append(bytes.fromhex(event["goldenPayloadHex"]))
    return frames


@functools.cache
def netbat_lines() -> dict[str, tuple[bytes, ...]]:
    """Golden NETBAT lines by direction: ``request``, ``response`` and ``stream``."""
    folder = VECTORS / "netbat"
    request = [bytes.fromhex(p.read_text().strip()) for p in sorted(folder.glob("request_*"))]
    response = [bytes.fromhex(p.read_text().strip()) for p in sorted(folder.glob("response_*"))]
    stream = [bytes.fromhex(p.read_text().strip()) for p in sorted(folder.glob("stream_*"))]
    manifest = _manifest()
    return {
        "request": tuple(request + manifest["request"]),
        "response": tuple(response + manifest["response"]),
        "stream": tuple(stream),
    }


@functools.cache
def canonical_bodies() -> tuple[bytes, ...]:
    """Every canonical MessagePack golden: core bodies, event payloads, syncbat rows, op bodies."""
    bodies = _hex_files(VECTORS / "core") + _hex_files(VECTORS / "syncbat")
    return tuple(bodies + _manifest()["payload"])


def _clock() -> object:
    now = [START_US]

    def tick() -> int:
        now[0] += 1_000
        return now[0]

    return tick


def write_seed_store(directory: Path) -> None:
    """Two sessions: single, keyed and batched appends, extensions, a cursor checkpoint."""
    config = StoreConfig(directory, clock=_clock())  # type: ignore[arg-type]
    alice, bob = Coordinate("acct:alice", "fz"), Coordinate("acct:bob", "fz")
    with Store.open(config) as store:
        store.append(alice, 0x1000, {"op": "open", "amount": 100})
        key = IdempotencyKey.for_operation("fz", ["deposit", "1"])
        options = AppendOptions(idempotency_key=key, extensions={"fz.tag": b"\x01\x02"})
        store.append(alice, 0x1001, {"op": "deposit", "amount": 20}, options)
        store.append_batch(
            [
                BatchAppendItem.from_msgpack_bytes(bob, 0x1000, b"\x81\xa1n\x01"),
                BatchAppendItem.from_msgpack_bytes(alice, 0x1002, b"\x81\xa1n\x02"),
            ]
        )
        cursor = store.cursor(Region.all(), CURSOR_ID)
        cursor.poll_batch()
        cursor.commit()
        cursor.close()
    with Store.open(config) as store:
        store.append(bob, 0x1000, {"op": "close", "note": "\u00e9t\u00e9"})


@functools.cache
def seed_store() -> Path:
    """The seed store, written once per process into a temporary directory."""
    root = Path(tempfile.mkdtemp(prefix="fz-seed-"))
    atexit.register(shutil.rmtree, root, True)
    write_seed_store(root / "store")
    (root / "store" / ".batpak.lock").unlink(missing_ok=True)
    return root / "store"


def copy_seed_store(dest: Path) -> Path:
    shutil.copytree(seed_store(), dest)
    return dest


def seed_file(name: str) -> bytes:
    """One file of the seed store (``NEWEST``/``OLDEST`` name the segments)."""
    directory = seed_store()
    segments = sorted(directory.glob("*.fbat"))
    if name == "NEWEST":
        return segments[-1].read_bytes()
    if name == "OLDEST":
        return segments[0].read_bytes()
    path = directory / name
    return path.read_bytes() if path.exists() else b""


def _side(magic: bytes, version: int, body: bytes) -> bytes:
    return magic + version.to_bytes(2, "little") + zlib.crc32(body).to_bytes(4, "little") + body


def _legacy_footer(segment: bytes) -> bytes:
    """The segment with its SDX3 footer turned into a legacy SDX2 one (no CRC word)."""
    if segment[-4:] != b"SDX3":
        return segment
    return segment[:-20] + segment[-16:-4] + b"SDX2"


def store_seeds(target: str) -> tuple[bytes, ...]:
    """Valid starting bytes for a store target (before the mode byte)."""
    id16 = bytes(range(16))
    lineage = canonical.decode(seed_file("store.meta")[12:])["lineage"]
    files = {
        "store_segment": (
            seed_file("NEWEST"),
            seed_file("OLDEST"),
            _legacy_footer(seed_file("OLDEST")),
        ),
        "store_meta": (seed_file("store.meta"),),
        "store_idemp": (seed_file("index.idemp"),),
        "store_cols": (seed_file("index.cols"),),
        "store_cursor": (seed_file(f"cursors/{CURSOR_ID}.ckpt"),),
        "store_hidden": (
            _side(b"FBATVR", 2, canonical.encode({"ranges": [{"start": 1, "end": 3}]})),
            _side(
                b"FBATVR",
                2,
                canonical.encode(
                    {"ranges": [], "lane_ranges": [{"lane": 0, "ranges": [{"start": 0, "end": 9}]}]}
                ),
            ),
        ),
        "store_pending": (
            _side(
                b"FBATCM",
                2,
                canonical.encode(
                    {
                        "compaction_id": id16,
                        "lineage": lineage,
                        "merged_id": 9,
                        "source_segment_ids": [1],
                        "expected_authority_image_id": None,
                    }
                ),
            ),
        ),
        "store_foreign": (_side(b"FBATIX", 5, b"\x80"), _side(b"FBATCK", 6, b"\x80")),
    }
    return files[target]
