"""The fuzz targets: one function per untrusted input, each checking the law for that input.

Store targets write the input into a copy of the seed store and open it read-only, then
writable, then read-only again. Legal outcomes are a clean open (every listed event reads back,
the chain check runs, a read-only open changes no byte, a store left by a writable open opens
again) or a ``batpak.StoreError``. The first input byte is a mode: bit 0 repairs the CRCs after
the mutation, bit 1 picks the alternative file (the older, sealed segment; ``index.ckpt``) or,
for ``index.cols``, points the checkpoint at the segments present so that open trusts it.

Wire targets decode one NETBAT line or one canonical MessagePack value. Legal outcomes are the
package's typed error (a frozen NETBAT code whose ERR frame decodes back to the same error,
``CanonicalDecodeError``) or a value whose encoding decodes to the same value and re-encodes to
the same bytes.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import netbat
from batpak import Coordinate, Region, Store, StoreConfig, StoreError, canonical
from fuzz.mutate import align_cols, fix_segment, fix_side_file
from fuzz.seeds import CURSOR_ID, copy_seed_store
from netbat.frames import strip_line_ending

HANG_SECONDS = 20.0
MAX_LINE = 65536
FROZEN_CODES = frozenset(
    {
        "io",
        "empty_stream",
        "line_too_long",
        "malformed_request",
        "unsupported_protocol_version",
        "operation_name_too_long",
        "input_too_large",
        "output_too_large",
        "malformed_stream_frame",
        "subscription_id_too_long",
        "cursor_too_large",
        "stream_payload_too_large",
        "stream_message_too_large",
        "unknown_operation",
        "missing_handler",
        "handler",
        "receipt_sink",
        "runtime",
    }
)
STREAM_VERBS = frozenset(
    {
        b"SUBSCRIBE",
        b"SUB_EVENT",
        b"SUB_WATERMARK",
        b"SUB_ACK",
        b"SUB_CANCEL",
        b"SUB_ERR",
        b"SUB_END",
    }
)
Target = Callable[[bytes], str]


class Violation(AssertionError):
    """A fuzz input broke the target's law."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise Violation(message)


# -- store directories ------------------------------------------------------------------------


def _fingerprint(directory: Path) -> dict[str, str]:
    return {
        p.relative_to(directory).as_posix(): hashlib.blake2b(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != ".batpak.lock"
    }


def _exercise(store: Store, cursor: bool) -> int:
    """Read back everything listed. A read may refuse with a typed error (the CRC check on
    every read catches a sealed segment changed under an index checkpoint of the same size),
    but it never returns another event or raises anything untyped."""
    entries = store.query(Region.all())
    for entry in entries:
        try:
            stored = store.get(entry.event_id)
        except StoreError:
            continue
        _require(stored.event.header.event_id == entry.event_id, "get returned another event")
    try:
        report = store.verify_chain()
        _require(report.events_checked == len(entries), "verify_chain skipped listed events")
    except StoreError:
        pass
    if cursor:
        try:
            reader = store.cursor(Region.all(), CURSOR_ID)
        except StoreError:
            return len(entries)  # a typed refusal of the checkpoint is legal
        reader.poll_batch()
        reader.close()
    return len(entries)


def _attempt(directory: Path, writable: bool, cursor: bool) -> str:
    config = StoreConfig(directory)
    try:
        store = Store.open(config) if writable else Store.open_read_only(config)
    except StoreError as exc:
        return type(exc).__name__
    try:
        _exercise(store, cursor and writable)
    finally:
        store.close()
    return "open"


def check_store_dir(directory: Path, cursor: bool = False) -> str:
    """Open ``directory`` every way; return the outcome or raise on an illegal one."""
    before = _fingerprint(directory)
    read_only = _attempt(directory, writable=False, cursor=False)
    _require(_fingerprint(directory) == before, "a read-only open changed the directory")
    writable = _attempt(directory, writable=True, cursor=cursor)
    if writable == "open":
        again = _attempt(directory, writable=False, cursor=False)
        _require(again == "open", f"the store a writable open left behind refuses: {again}")
    return f"ro={read_only} rw={writable}"


def _store_target(
    name: str, alternative: str | None, fix: Callable[[bytes], bytes], cursor: bool = False
) -> Target:
    def target(data: bytes) -> str:
        mode, body = (data[0], data[1:]) if data else (0, b"")
        if mode & 1:
            body = fix(body)
        started = time.monotonic()
        root = Path(tempfile.mkdtemp(prefix="fz-"))
        try:
            directory = copy_seed_store(root / "store")
            file = alternative if (mode & 2 and alternative) else name
            path = _segment_path(directory, file)
            if file == "index.cols" and mode & 2:
                body = align_cols(
                    body, [(int(p.stem), p.stat().st_size) for p in _segments(directory)]
                )
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(body)
            outcome = check_store_dir(directory, cursor)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        _require(time.monotonic() - started < HANG_SECONDS, "the open took too long")
        return outcome

    return target


def _segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.fbat"))


def _segment_path(directory: Path, name: str) -> Path:
    if name in ("NEWEST", "OLDEST"):
        return _segments(directory)[-1 if name == "NEWEST" else 0]
    return directory / name


# -- NETBAT lines -----------------------------------------------------------------------------


def _check_wire_error(exc: netbat.NetbatError, data: bytes) -> str:
    _require(exc.code in FROZEN_CODES, f"code {exc.code!r} is not one of the 18 frozen tokens")
    frame = netbat.encode_error(exc)
    _require(frame.startswith(b"ERR " + exc.code.encode() + b" "), "ERR frame shape")
    _require(netbat.decode_response(frame) == exc, "an ERR frame does not decode to its error")
    if len(data) > MAX_LINE:
        _require(isinstance(exc, netbat.LineTooLong), "an over-long line is not line_too_long")
    return exc.code


def netbat_request(data: bytes) -> str:
    try:
        request = netbat.decode_request(data)
    except netbat.NetbatError as exc:
        return _check_wire_error(exc, data)
    _require(len(data) <= MAX_LINE, "an over-long line decoded")
    line = netbat.encode_request(request.operation, request.input)
    _require(netbat.decode_request(line) == request, "request does not round-trip")
    parts = strip_line_ending(data).split(b" ")
    _require(line == b" ".join([*parts[:3], parts[3].lower()]) + b"\n", "re-encoding differs")
    return "request"


def netbat_response(data: bytes) -> str:
    try:
        result = netbat.decode_response(data)
    except netbat.MalformedResponse:
        return "malformed_response"
    body = strip_line_ending(data)
    if isinstance(result, bytes):
        line = netbat.encode_ok(result)
        _require(netbat.decode_response(line) == result, "OK does not round-trip")
        _require(line == b"OK " + body[3:].lower() + b"\n", "OK re-encoding differs")
        return "ok"
    if isinstance(result, netbat.UnrecognizedError):
        return "unrecognized"
    line = netbat.encode_error(result)
    _require(netbat.decode_response(line) == result, "ERR does not round-trip")
    token, _, message = body[4:].partition(b" ")
    _require(line == b"ERR " + token + b" " + message.lower() + b"\n", "ERR re-encoding differs")
    code: str = result.code
    return code


def netbat_stream(data: bytes) -> str:
    try:
        frame = netbat.decode_stream_line(data)
    except netbat.NetbatError as exc:
        return _check_wire_error(exc, data)
    _require(len(data) <= MAX_LINE, "an over-long line decoded")
    line: bytes = netbat.encode_stream_frame(frame)
    _require(line.split(b" ")[1] in STREAM_VERBS, "unknown verb on the way out")
    again = netbat.decode_stream_line(line)
    _require(again == frame, "stream frame does not round-trip")
    _require(netbat.encode_stream_frame(again) == line, "stream re-encoding is not stable")
    return type(frame).__name__


# -- canonical MessagePack --------------------------------------------------------------------


def canonical_value(data: bytes) -> str:
    try:
        value = canonical.decode(data)
    except canonical.CanonicalDecodeError:
        return "rejected"
    encoded = canonical.encode(value)
    _require(canonical.encode(canonical.decode(encoded)) == encoded, "value does not round-trip")
    for junk in (b"\xc0", b"\x00"):
        try:
            canonical.decode(data + junk)
        except canonical.CanonicalDecodeError:
            continue
        raise Violation("trailing bytes after a value were accepted (partial decode)")
    return "value"


def canonical_coordinate(data: bytes) -> str:
    try:
        coordinate = canonical.decode(data, Coordinate)
    except canonical.CanonicalDecodeError:
        return "rejected"
    _require(Coordinate(coordinate.entity, coordinate.scope) == coordinate, "invalid Coordinate")
    encoded = canonical.encode(coordinate)
    _require(canonical.decode(encoded, Coordinate) == coordinate, "Coordinate does not round-trip")
    return "coordinate"


TARGETS: dict[str, Target] = {
    "store_segment": _store_target("NEWEST", "OLDEST", fix_segment),
    "store_meta": _store_target("store.meta", None, fix_side_file),
    "store_idemp": _store_target("index.idemp", None, fix_side_file),
    "store_cols": _store_target("index.cols", "index.cols", fix_side_file),
    "store_hidden": _store_target("visibility_ranges.fbv", None, fix_side_file),
    "store_pending": _store_target("compaction.pending", None, fix_side_file),
    "store_foreign": _store_target("index.fbati", "index.ckpt", fix_side_file),
    "store_cursor": _store_target(f"cursors/{CURSOR_ID}.ckpt", None, bytes, cursor=True),
    "netbat_request": netbat_request,
    "netbat_response": netbat_response,
    "netbat_stream": netbat_stream,
    "canonical_value": canonical_value,
    "canonical_coordinate": canonical_coordinate,
}
"""Every target by name; the name is also the folder of its regressions."""
