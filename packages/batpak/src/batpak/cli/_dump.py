"""``batpak dump``: committed events as JSON Lines, and the JSON form of an event."""

from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
from typing import Any

import msgspec

from batpak import (
    KindFilter,
    Region,
    StoredEvent,
)
from batpak.cli._common import EXIT_OK, PAGE, open_store, write_json
from batpak.coordinate import ANY_KIND
from batpak.frame import WireFrame

# -- dump -------------------------------------------------------------------------------------


def cmd_dump(args: argparse.Namespace) -> int:
    out = sys.stdout
    kinds = ANY_KIND if args.kind is None else KindFilter(exact=args.kind)
    region = Region(entity_prefix=args.entity, scope_name=args.scope, kinds=kinds)
    left: int | None = args.limit
    after: int | None = args.after
    with open_store(args.dir, writable=False) as store:
        while left is None or left > 0:
            page = store.query_entries_after(
                region, after, PAGE if left is None else min(left, PAGE)
            )
            if not page:
                break
            for stored in store.events(page):
                write_json(out, stored_record(stored))
            after = page[-1].global_sequence
            if left is not None:
                left -= len(page)
    out.flush()
    return EXIT_OK


def stored_record(stored: StoredEvent) -> dict[str, Any]:
    """The JSON object ``dump`` prints for a committed event."""
    header = stored.event.header
    chain = stored.event.hash_chain
    return _record(
        global_sequence=stored.global_sequence,
        event_id=header.event_id,
        correlation_id=header.correlation_id,
        causation_id=header.causation_id,
        entity=stored.coordinate.entity,
        scope=stored.coordinate.scope,
        kind=header.event_kind,
        timestamp_us=header.timestamp_us,
        wall_ms=header.position.wall_ms,
        sequence=header.position.sequence,
        payload_version=header.payload_version,
        content_hash=header.content_hash,
        prev_hash=None if chain is None else chain.prev_hash,
        extensions=stored.extensions,
        payload=stored.event.payload,
    )


def frame_record(frame: WireFrame, global_sequence: int) -> dict[str, Any]:
    """The same JSON object, built from a frame read straight from a segment file."""
    header = frame.event.header
    chain = frame.event.hash_chain
    return _record(
        global_sequence=global_sequence,
        event_id=int.from_bytes(header.event_id, "big"),
        correlation_id=int.from_bytes(header.correlation_id, "big"),
        causation_id=(
            None if header.causation_id is None else int.from_bytes(header.causation_id, "big")
        ),
        entity=frame.entity,
        scope=frame.scope,
        kind=header.event_kind,
        timestamp_us=header.timestamp_us,
        wall_ms=header.position.wall_ms,
        sequence=header.position.sequence,
        payload_version=header.payload_version,
        content_hash=bytes(header.content_hash),
        prev_hash=None if chain is None else bytes(chain.prev_hash),
        extensions={key: bytes(value) for key, value in frame.receipt_extensions.items()},
        payload=bytes(frame.event.payload),
    )


def _record(
    *,
    global_sequence: int,
    event_id: int,
    correlation_id: int,
    causation_id: int | None,
    entity: str,
    scope: str,
    kind: int,
    timestamp_us: int,
    wall_ms: int,
    sequence: int,
    payload_version: int,
    content_hash: bytes,
    prev_hash: bytes | None,
    extensions: dict[str, bytes],
    payload: bytes,
) -> dict[str, Any]:
    return {
        "global_sequence": global_sequence,
        "event_id": f"{event_id:032x}",
        "correlation_id": f"{correlation_id:032x}",
        "causation_id": None if causation_id is None else f"{causation_id:032x}",
        "entity": entity,
        "scope": scope,
        "kind": f"0x{kind:04X}",
        "timestamp_us": timestamp_us,
        "wall_ms": wall_ms,
        "sequence": sequence,
        "payload_version": payload_version,
        "content_hash": content_hash.hex(),
        "prev_hash": None if prev_hash is None else prev_hash.hex(),
        "extensions": {key: value.hex() for key, value in sorted(extensions.items())},
        "payload": decode_payload(payload),
    }


def decode_payload(payload: bytes) -> Any:
    """The payload's MessagePack as JSON values; ``{"$undecodable": hex}`` if it is not one."""
    try:
        value = msgspec.msgpack.decode(payload)
    except (msgspec.DecodeError, TypeError, ValueError):
        return {"$undecodable": payload.hex()}
    return json_value(value)


def json_value(value: Any) -> Any:
    """Plain JSON for a decoded MessagePack value.

    Bytes become ``{"$bytes": hex}``, extension types ``{"$ext": {"type", "data"}}``,
    timestamps ``{"$timestamp": iso8601}``, non-finite floats ``{"$float": "nan"}``; map keys
    that are not strings are stringified (bytes as hex, others as their JSON text).
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": bytes(value).hex()}
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    if isinstance(value, dict):
        return {_json_key(key): json_value(item) for key, item in value.items()}
    if isinstance(value, msgspec.msgpack.Ext):
        return {"$ext": {"type": value.code, "data": bytes(value.data).hex()}}
    if isinstance(value, datetime.datetime):
        return {"$timestamp": value.isoformat()}
    return {"$unknown": repr(value)}


def _json_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bytes | bytearray | memoryview):
        return bytes(key).hex()
    return json.dumps(json_value(key), allow_nan=False, separators=(",", ":"))
