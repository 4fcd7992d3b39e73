"""The ``batpak`` command line: inspect, verify, dump, tail and compact a store directory.

Every command takes the store directory first: ``batpak <command> DIR [options]``.
``inspect``, ``verify`` and ``dump`` open the store read-only (which takes the directory lock,
so they refuse a store another process has open); ``compact`` opens it for writing; ``tail``
takes no lock at all and reads the segment files directly, so it can follow a store that
another process is writing.

Exit status: 0 success, 1 damage found, 2 usage error, missing or locked directory, or any
other refusal. Expected errors print one ``batpak: ...`` line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import mmap
import os
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, cast

import msgspec

from batpak import (
    FailClosedError,
    IndexEntry,
    KindFilter,
    Region,
    Store,
    StoreConfig,
    StoredEvent,
    StoreError,
    StoreLocked,
    __version__,
    canonical,
)
from batpak.coordinate import ANY_KIND
from batpak.errors import CorruptFrame, CorruptSegment
from batpak.frame import FRAME_HEADER, MAX_FRAME_BYTES, FrameDecodeError, WireFrame, decode_body
from batpak.kinds import SYSTEM_BATCH_BEGIN, SYSTEM_BATCH_COMMIT, SYSTEM_OPEN_COMPLETED
from batpak.segment import (
    Posture,
    any_frame_after,
    has_trusted_footer,
    parse_segment_id,
    read_footer,
    read_header,
    scan_frames,
    segment_name,
)

__all__ = (
    "EXIT_DAMAGE",
    "EXIT_OK",
    "EXIT_USAGE",
    "SegmentInfo",
    "Tailer",
    "build_parser",
    "decode_payload",
    "describe",
    "follow",
    "frame_record",
    "json_value",
    "main",
    "segment_infos",
    "stored_record",
)

EXIT_OK = 0
EXIT_DAMAGE = 1
EXIT_USAGE = 2
BATCH_ENTITY = "_batch"  # batch markers' raw entity string (format.md §7.1)
LIFECYCLE_ENTITY = "batpak:store"  # OPEN_COMPLETED / CLOSE_COMPLETED (format.md §7.2)
PAGE = 1024
META_NAME = "store.meta"


class CliError(Exception):
    """An expected failure: printed as one ``batpak: ...`` line, exits with ``code``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


# -- entry point ------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except CliError as exc:
        _error(str(exc))
        return exc.code
    except StoreLocked:
        _error(f"{args.dir} is locked by another process")
        return EXIT_USAGE
    except FailClosedError as exc:
        _error(describe(exc))
        return EXIT_DAMAGE
    except StoreError as exc:
        _error(f"{type(exc).__name__}: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except BrokenPipeError:
        _silence_stdout()  # the reader went away (``batpak dump DIR | head``)
        return EXIT_OK
    except OSError as exc:
        _error(f"{exc.filename or args.dir}: {exc.strerror or exc}")
        return EXIT_USAGE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batpak",
        description="Inspect, verify, dump, follow and compact a batpak store directory.",
        epilog="Exit status: 0 ok, 1 damage found, 2 usage error or locked/missing store.",
    )
    parser.add_argument("--version", action="version", version=f"batpak {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    inspect = commands.add_parser("inspect", help="segments, counts, frontier and identity")
    _dir_argument(inspect)
    inspect.add_argument("--json", action="store_true", help="print one JSON object")
    inspect.set_defaults(run=cmd_inspect)

    verify = commands.add_parser("verify", help="check frames, content hashes and chain links")
    _dir_argument(verify)
    verify.add_argument(
        "--progress", action="store_true", help="show progress on stderr even when not a TTY"
    )
    verify.set_defaults(run=cmd_verify)

    dump = commands.add_parser("dump", help="print events as JSON Lines, in commit order")
    _dir_argument(dump)
    dump.add_argument("--entity", metavar="PREFIX", help="the entity or any PREFIX:... entity")
    dump.add_argument("--scope", metavar="NAME", help="exactly this scope")
    dump.add_argument("--kind", metavar="KIND", type=_kind, help="exactly this kind (0xF001)")
    dump.add_argument(
        "--after", metavar="SEQ", type=_natural, help="only global sequences above SEQ"
    )
    dump.add_argument("--limit", metavar="N", type=_natural, help="at most N events")
    dump.set_defaults(run=cmd_dump)

    tail = commands.add_parser(
        "tail", help="print committed events as JSON Lines without taking the lock"
    )
    _dir_argument(tail)
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    tail.add_argument(
        "--interval",
        metavar="SECONDS",
        type=_interval,
        default=0.25,
        help="poll interval while following (default 0.25)",
    )
    tail.set_defaults(run=cmd_tail)

    compact = commands.add_parser("compact", help="merge sealed segments (opens for writing)")
    _dir_argument(compact)
    compact.add_argument(
        "--min-segments",
        metavar="N",
        type=_positive,
        default=2,
        help="skip unless at least N sealed segments exist (default 2)",
    )
    compact.set_defaults(run=cmd_compact)
    return parser


def _dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="the store directory")


def _kind(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        try:
            value = int(text, 16)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid kind {text!r} (try 0xF001)") from None
    if not 0 <= value <= 0xFFFF:
        raise argparse.ArgumentTypeError(f"kind {text!r} is outside 0x0000..0xFFFF")
    return value


def _natural(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def _positive(text: str) -> int:
    value = _natural(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} must be in (0, 3600] seconds")
    return value


def _error(message: str) -> None:
    print(f"batpak: {message}", file=sys.stderr)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is an OSError
        pass


def describe(exc: BaseException) -> str:
    """``ErrorName: message [segment N, offset M]`` for a typed store error."""
    where = []
    segment_id = getattr(exc, "segment_id", None)
    offset = getattr(exc, "offset", None)
    if isinstance(segment_id, int):
        where.append(f"segment {segment_id}")
    if isinstance(offset, int):
        where.append(f"offset {offset}")
    suffix = f" [{', '.join(where)}]" if where else ""
    return f"{type(exc).__name__}: {exc}{suffix}"


# -- opening ----------------------------------------------------------------------------------


def _segment_files(directory: Path) -> list[tuple[int, Path]]:
    found = []
    for name in os.listdir(directory):
        segment_id = parse_segment_id(name)
        if segment_id is not None:
            found.append((segment_id, directory / name))
    found.sort()
    return found


def _require_store(text: str, *, allow_empty: bool = False) -> Path:
    """The store directory named on the command line, refusing anything that is not one."""
    path = Path(text)
    if not path.exists():
        raise CliError(EXIT_USAGE, f"{text}: no such directory")
    if not path.is_dir():
        raise CliError(EXIT_USAGE, f"{text} is not a directory")
    try:
        empty = not _segment_files(path) and not (path / META_NAME).exists()
    except OSError as exc:
        raise CliError(EXIT_USAGE, f"{text}: cannot list directory: {exc.strerror}") from None
    if empty and not allow_empty:
        raise CliError(EXIT_USAGE, f"{text} is not a batpak store (no segment files)")
    return path


@contextmanager
def _open_store(text: str, *, writable: bool) -> Iterator[Store]:
    path = _require_store(text)
    config = StoreConfig(path)
    try:
        store = Store.open(config) if writable else Store.open_read_only(config)
    except StoreLocked:
        raise CliError(EXIT_USAGE, f"{text} is locked by another process") from None
    with store:
        yield store


def _write_json(out: TextIO, value: Any, *, indent: int | None = None) -> None:
    separators = (",", ":") if indent is None else (",", ": ")
    out.write(json.dumps(value, allow_nan=False, indent=indent, separators=separators))
    out.write("\n")


# -- segment files ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """One segment file as found on disk."""

    segment_id: int
    name: str
    size: int
    footer: str | None  # "SDX3" / "SDX2" when sealed, else None
    frames_end: int  # where the whole, CRC-valid frames end
    torn_bytes: int  # bytes after the last whole frame of an unsealed segment

    @property
    def sealed(self) -> bool:
        return self.footer is not None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.segment_id,
            "file": self.name,
            "bytes": self.size,
            "sealed": self.sealed,
            "footer": self.footer,
            "torn_bytes": self.torn_bytes,
        }


def segment_infos(directory: Path) -> list[SegmentInfo]:
    """Describe every segment file: size, footer and (for unsealed ones) any torn tail.

    Files are memory-mapped, so a sealed segment costs its header and footer pages only.
    """
    infos = []
    for segment_id, path in _segment_files(directory):
        try:
            with open(path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size == 0:
                    infos.append(SegmentInfo(segment_id, path.name, 0, None, 0, 0))
                    continue
                with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                    # slices of an mmap are bytes copies: read_header / read_footer only
                    # slice and unpack, so no buffer outlives the mapping
                    infos.append(_segment_info(segment_id, path.name, cast(bytes, mapped)))
        except FileNotFoundError:
            continue
    return infos


def _segment_info(segment_id: int, name: str, data: bytes) -> SegmentInfo:
    size = len(data)
    try:
        start = read_header(segment_id, data)
    except CorruptSegment:
        return SegmentInfo(segment_id, name, size, None, 0, size)
    footer = read_footer(segment_id, data, start)
    if footer is not None:
        magic = bytes(data[size - 4 :]).decode("ascii")
        return SegmentInfo(segment_id, name, size, magic, footer.string_table_offset, 0)
    end = start
    for _offset, length in _whole_frames(data, start, size):
        end += length
    return SegmentInfo(segment_id, name, size, None, end, size - end)


def _whole_frames(data: bytes, start: int, end: int) -> Iterator[tuple[int, int]]:
    """``(offset, size)`` of each whole, CRC-valid frame from ``start`` up to the first that
    is not (a torn tail, a footer, or damage), without decoding them."""
    pos = start
    while end - pos >= FRAME_HEADER.size:
        length, crc = FRAME_HEADER.unpack_from(data, pos)
        if length == 0 or length > MAX_FRAME_BYTES or pos + 8 + length > end:
            return
        if zlib.crc32(data[pos + 8 : pos + 8 + length]) != crc:
            return
        yield pos, 8 + length
        pos += 8 + length


# -- inspect ----------------------------------------------------------------------------------


def cmd_inspect(args: argparse.Namespace) -> int:
    out = sys.stdout
    with _open_store(args.dir, writable=False) as store:
        entries = store.query(Region.all())
        frontier = store.frontier()
        identity = store.identity()
        segments = segment_infos(Path(args.dir))
    kinds: dict[int, int] = {}
    for entry in entries:
        kinds[entry.event_kind] = kinds.get(entry.event_kind, 0) + 1
    report: dict[str, Any] = {
        "path": str(Path(args.dir).resolve()),
        "identity": None if identity is None else f"{identity:032x}",
        "segments": [info.as_json() for info in segments],
        "events": len(entries),
        "first_global_sequence": entries[0].global_sequence if entries else None,
        "last_global_sequence": entries[-1].global_sequence if entries else None,
        "frontier": {
            mark: {"wall_ms": point.wall_ms, "global_sequence": point.global_sequence}
            for mark, point in frontier._asdict().items()
        },
        "kinds": {f"0x{kind:04X}": count for kind, count in sorted(kinds.items())},
        "entities": len({entry.entity for entry in entries}),
        "scopes": len({entry.scope for entry in entries}),
    }
    if args.json:
        _write_json(out, report, indent=2)
        return EXIT_OK
    lines = [
        f"store        {report['path']}",
        f"identity     {report['identity'] or 'none'}",
        f"segments     {len(segments)}",
    ]
    width = max((len(str(info.size)) for info in segments), default=1)
    for info in segments:
        state = f"sealed ({info.footer})" if info.sealed else "open (no footer)"
        if info.torn_bytes:
            state += f", {info.torn_bytes} torn bytes at offset {info.frames_end}"
        lines.append(f"  {info.name}  id {info.segment_id:<4} {info.size:>{width}} bytes  {state}")
    first, last = report["first_global_sequence"], report["last_global_sequence"]
    lines.append(f"events       {len(entries)}")
    lines.append(f"sequences    {'none' if first is None else f'{first} .. {last}'}")
    lines.append("frontier     (wall_ms, global_sequence)")
    for mark, point in frontier._asdict().items():
        lines.append(f"  {mark:<10} ({point.wall_ms}, {point.global_sequence})")
    lines.append(f"kinds        {len(kinds)}")
    for kind_hex, count in report["kinds"].items():
        lines.append(f"  {kind_hex}     {count}")
    lines.append(f"entities     {report['entities']}")
    lines.append(f"scopes       {report['scopes']}")
    out.write("\n".join(lines) + "\n")
    return EXIT_OK


# -- verify -----------------------------------------------------------------------------------


class _Progress:
    """A ``\\r``-rewritten progress line on stderr, at most ten updates a second."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self._stream = stream
        self._enabled = enabled
        self._last = 0.0
        self._shown = False
        self._width = 0

    def update(self, done: int, total: int, unit: str) -> None:
        if not self._enabled:
            return
        now = time.monotonic()
        if done < total and self._shown and now - self._last < 0.1:
            return
        self._last = now
        self._shown = True
        percent = 100 if total == 0 else done * 100 // total
        line = f"verify: {done}/{total} {unit} ({percent}%)"
        self._stream.write(f"\r{line:<{self._width}}")
        self._width = len(line)
        self._stream.flush()

    def finish(self) -> None:
        if self._enabled and self._shown:
            self._stream.write("\n")
            self._stream.flush()


@dataclass(slots=True)
class _Verification:
    """What ``verify`` found: problems, and where the whole frames of each segment are."""

    findings: list[str]
    frames: dict[tuple[int, int], tuple[int, int]]  # (segment, offset) -> (length, event id)
    whole: set[int] = field(default_factory=set)  # segments that scanned without damage
    segments: int = 0
    torn: tuple[int, int, int] | None = None  # (segment, offset, bytes) of a torn tail


def cmd_verify(args: argparse.Namespace) -> int:
    """Check the store three ways, all read-only and under the directory lock:

    1. every segment file, as a cold start without checkpoints would: header, footer, frame
       CRCs, frame decoding, the torn-tail and mid-stream corruption rules;
    2. every index entry against those frames, then every event's content hash and its
       per-(entity, lane) chain link (with a progress line);
    3. ``Store.verify_chain()``, whose findings are merged in.
    """
    out = sys.stdout
    path = _require_store(args.dir)
    progress = _Progress(sys.stderr, args.progress or sys.stderr.isatty())
    try:
        store = Store.open_read_only(StoreConfig(path))
    except StoreLocked:
        raise CliError(EXIT_USAGE, f"{args.dir} is locked by another process") from None
    except FailClosedError as exc:
        out.write(f"DAMAGED  the store refuses to open: {describe(exc)}\n")
        return EXIT_DAMAGE
    result = _Verification([], {})
    with store:
        _verify_segments(path, progress, result)
        entries = store.query(Region.all())
        flagged_hash, flagged_link = _verify_events(store, entries, progress, result)
        progress.finish()
        by_id = {entry.event_id: entry for entry in entries}
        try:
            report = store.verify_chain()
        except StoreError as exc:
            result.findings.append(f"verify_chain stopped: {describe(exc)}")
        else:
            for event_id in report.content_hash_mismatches:
                if event_id not in flagged_hash:
                    where = _where(by_id.get(event_id), event_id)
                    result.findings.append(f"content hash mismatch: {where}")
            for event_id in report.dangling_links:
                if event_id not in flagged_link:
                    where = _where(by_id.get(event_id), event_id)
                    result.findings.append(f"broken chain link: {where}")
    findings = result.findings
    if findings:
        out.write(f"DAMAGED  {len(findings)} problem(s) in {len(entries)} events\n")
        for finding in findings:
            out.write(f"  {finding}\n")
        return EXIT_DAMAGE
    out.write(
        f"ok  {len(entries)} events in {result.segments} segment(s): frames, "
        "content hashes and chain links intact\n"
    )
    if result.torn is not None:
        segment_id, offset, size = result.torn
        out.write(
            f"note: segment {segment_id} ends in {size} torn bytes at offset {offset} "
            "(an interrupted write; ignored, never truncated)\n"
        )
    return EXIT_OK


def _verify_segments(directory: Path, progress: _Progress, result: _Verification) -> None:
    """Scan every segment file under the cold-start rules, recording its whole frames.

    A read-only open may load the index from a checkpoint and skip these checks, so verify
    repeats them itself. The newest segment may end in a torn tail; older ones must be whole.
    """
    listed = _segment_files(directory)
    result.segments = len(listed)
    for position, (segment_id, path) in enumerate(listed):
        progress.update(position, len(listed), "segments")
        last = position == len(listed) - 1
        try:
            data = path.read_bytes()
            start = read_header(segment_id, data)
            footer = read_footer(segment_id, data, start)
            if footer is None:
                posture: Posture = "recover_torn_tail" if last else "fail_closed"
                frames, end = scan_frames(segment_id, data, start, len(data), posture)
                if end < len(data):
                    result.torn = (segment_id, end, len(data) - end)
            else:
                boundary = footer.string_table_offset
                frames, end = scan_frames(segment_id, data, start, boundary, "fail_closed")
        except OSError as exc:
            result.findings.append(f"segment {segment_id}: cannot read {path.name}: {exc}")
            continue
        except StoreError as exc:
            result.findings.append(f"segment {segment_id}: {describe(exc)}")
            continue
        result.whole.add(segment_id)
        for scanned in frames:
            event_id = int.from_bytes(scanned.frame.event.header.event_id, "big")
            result.frames[(segment_id, scanned.offset)] = (scanned.length, event_id)
    progress.update(len(listed), len(listed), "segments")


def _verify_events(
    store: Store, entries: list[IndexEntry], progress: _Progress, result: _Verification
) -> tuple[set[int], set[int]]:
    """Match every index entry to a whole frame, recompute its content hash and check its
    chain link; return the ids flagged for hashes and for links."""
    heads: dict[tuple[str, int], bytes] = {}
    flagged_hash: set[int] = set()
    flagged_link: set[int] = set()
    findings = result.findings
    zero = bytes(32)
    total = len(entries)
    for done, entry in enumerate(entries):
        progress.update(done, total, "events")
        where = _where(entry, entry.event_id)
        chain = (entry.entity, entry.lane)
        expected_prev = heads.get(chain, zero)
        heads[chain] = entry.event_hash
        if entry.prev_hash != expected_prev:
            flagged_link.add(entry.event_id)
            findings.append(
                f"broken chain link: {where}: prev_hash {entry.prev_hash.hex()} is not the "
                f"previous event's hash {expected_prev.hex()} on lane {entry.lane}"
            )
        frame = result.frames.get((entry.segment_id, entry.offset))
        if entry.segment_id in result.whole and frame != (entry.length, entry.event_id):
            findings.append(
                f"index mismatch: {where}: no whole frame of this event at that position"
            )
        try:
            stored = store.get(entry.event_id)
        except StoreError as exc:
            flagged_hash.add(entry.event_id)
            findings.append(f"unreadable event: {where}: {describe(exc)}")
            continue
        link = stored.event.hash_chain
        if link is not None and (link.prev_hash, link.event_hash) != (
            entry.prev_hash,
            entry.event_hash,
        ):
            findings.append(f"index mismatch: {where}: the frame's hash chain is not the index's")
        digest = canonical.digest(stored.event.payload)
        header_hash = stored.event.header.content_hash
        if digest != header_hash or digest != entry.event_hash:
            flagged_hash.add(entry.event_id)
            findings.append(
                f"content hash mismatch: {where}: payload hashes to {digest.hex()}, "
                f"header says {header_hash.hex()}"
            )
    progress.update(total, total, "events")
    return flagged_hash, flagged_link


def _where(entry: IndexEntry | None, event_id: int) -> str:
    if entry is None:
        return f"event {event_id:032x}"
    return (
        f"event {event_id:032x} ({entry.entity}@{entry.scope}, global sequence "
        f"{entry.global_sequence}, segment {entry.segment_id} offset {entry.offset})"
    )


# -- dump -------------------------------------------------------------------------------------


def cmd_dump(args: argparse.Namespace) -> int:
    out = sys.stdout
    kinds = ANY_KIND if args.kind is None else KindFilter(exact=args.kind)
    region = Region(entity_prefix=args.entity, scope_name=args.scope, kinds=kinds)
    left: int | None = args.limit
    after: int | None = args.after
    with _open_store(args.dir, writable=False) as store:
        while left is None or left > 0:
            page = store.query_entries_after(
                region, after, PAGE if left is None else min(left, PAGE)
            )
            if not page:
                break
            for stored in store.events(page):
                _write_json(out, stored_record(stored))
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


# -- tail -------------------------------------------------------------------------------------


_Staged = tuple[int, int, dict[int, int] | None, WireFrame]  # segment, offset, rows, frame


class Tailer:
    """Reads committed events straight from the segment files, without the store lock.

    Each ``poll()`` emits the events committed since the last one, in commit order: it
    resumes the newest segment at the remembered offset and moves on when a newer segment
    file appears. Batch markers are never emitted, and batch items only once their COMMIT
    marker is read (format.md §7.1). A torn or half-written last frame is simply left for a
    later poll. Global sequences come from a trusted SDX3 footer when the segment has one,
    and otherwise count on from the last one seen, as a cold start computes them.

    The batch rules are the cold start's (``store._recover``): batch state carries across
    segment files, an excess item discards the batch with it, and a new session's
    OPEN_COMPLETED ends a batch a crash cut short.
    """

    def __init__(self, directory: Path, emit: Callable[[dict[str, Any]], None]) -> None:
        self._directory = directory
        self._emit = emit
        self._current: int | None = None
        self._offset = 0  # next unread byte of the current segment; 0 = header not read yet
        self._finished = False  # the current segment is sealed or superseded: fully read
        self._sequences: dict[int, int] | None = None
        self._next_sequence = 0
        self._staged: list[_Staged] | None = None
        self._expected = 0

    def poll(self) -> int:
        """Emit what was committed since the last poll; return how many events."""
        emitted = 0
        listed = [segment_id for segment_id, _ in _segment_files(self._directory)]
        if not listed:
            return 0
        newest = listed[-1]
        for segment_id in listed:
            current = self._current
            if current is not None and (
                segment_id < current or (segment_id == current and self._finished)
            ):
                continue  # already read (or a compaction's merged segment: old events)
            if segment_id != current:
                self._current, self._offset, self._sequences = segment_id, 0, None
            count, self._finished = self._read(segment_id, last=segment_id == newest)
            emitted += count
            if not self._finished:
                break
        return emitted

    def _read(self, segment_id: int, last: bool) -> tuple[int, bool]:
        """Emit the segment's new frames; True when nothing more can come from it."""
        path = self._directory / segment_name(segment_id)
        base = self._offset
        try:
            with open(path, "rb") as handle:
                handle.seek(base)
                data = handle.read()
        except FileNotFoundError:
            return 0, not last
        end = len(data)
        if base == 0:
            try:
                start = read_header(segment_id, data)
            except CorruptSegment:
                if last:
                    return 0, False  # being created: the header is not all there yet
                raise
            footer = read_footer(segment_id, data, start)
            if footer is not None:
                end = footer.string_table_offset
                if footer.rows is not None:
                    reach = max((r.frame_offset + r.frame_length for r in footer.rows), default=0)
                    # rows that stop short of the boundary are trusted only when every
                    # segment has a valid SDX3 footer (format.md §7.1, as at cold start)
                    if reach == footer.string_table_offset or self._all_footers_trusted():
                        self._sequences = {r.frame_offset: r.global_sequence for r in footer.rows}
                last = False  # sealed: nothing is ever appended again
        else:
            start = 0
        count = 0
        pos = start
        for offset, size in _whole_frames(data, start, end):
            try:
                frame = decode_body(memoryview(data)[offset + 8 : offset + size])
            except FrameDecodeError as exc:
                raise CorruptFrame(segment_id, base + offset, str(exc)) from exc
            count += self._accept(segment_id, base + offset, frame)
            pos = offset + size
        self._offset = base + pos
        if last:
            return count, False
        if pos < end and any_frame_after(memoryview(data)[:end], pos + 1):
            raise CorruptSegment(
                segment_id,
                f"the damaged frame at offset {base + pos} is followed by a valid frame",
            )
        return count, True

    def _all_footers_trusted(self) -> bool:
        try:
            return all(has_trusted_footer(path) for _, path in _segment_files(self._directory))
        except FileNotFoundError:  # a compaction removed one meanwhile
            return False

    def _accept(self, segment_id: int, offset: int, frame: WireFrame) -> int:
        header = frame.event.header
        kind = header.event_kind
        marker = frame.entity == BATCH_ENTITY
        staged = self._staged
        if marker and kind == SYSTEM_BATCH_BEGIN:
            self._staged = []
            self._expected = header.payload_size
            return 0
        if marker and kind == SYSTEM_BATCH_COMMIT:
            self._staged = None
            if staged is None or len(staged) != self._expected:
                return 0  # an orphan COMMIT, or a count mismatch: the batch never happened
            for item in staged:
                self._release(*item)
            return len(staged)
        if staged is not None and len(staged) >= self._expected:
            self._staged = None  # an excess item: the batch and the item are discarded
            return 0
        opens_session = kind == SYSTEM_OPEN_COMPLETED and frame.entity == LIFECYCLE_ENTITY
        if staged is not None and not opens_session:
            staged.append((segment_id, offset, self._sequences, frame))
            return 0
        self._staged = None  # a new session ends a batch that a crash cut short
        self._release(segment_id, offset, self._sequences, frame)
        return 1

    def _release(
        self, segment_id: int, offset: int, sequences: dict[int, int] | None, frame: WireFrame
    ) -> None:
        if sequences is None:
            sequence = self._next_sequence
        else:
            found = sequences.get(offset)
            if found is None:
                raise CorruptSegment(segment_id, f"frame at {offset} has no row in the SIDX footer")
            sequence = found
        self._next_sequence = max(self._next_sequence, sequence + 1)
        self._emit(frame_record(frame, sequence))


def follow(
    directory: Path,
    out: TextIO,
    *,
    interval: float,
    stop: threading.Event | None = None,
    keep_following: bool = True,
) -> None:
    """Print committed events as JSON Lines; with ``keep_following``, poll every ``interval``
    seconds until ``stop`` is set (or the process is interrupted)."""
    tailer = Tailer(directory, lambda record: _write_json(out, record))
    tailer.poll()
    out.flush()
    if not keep_following:
        return
    stop = stop or threading.Event()
    while not stop.wait(interval):
        if tailer.poll():
            out.flush()


def cmd_tail(args: argparse.Namespace) -> int:
    path = _require_store(args.dir, allow_empty=args.follow)
    try:
        follow(path, sys.stdout, interval=args.interval, keep_following=args.follow)
    except KeyboardInterrupt:
        sys.stdout.flush()
        return EXIT_OK  # Ctrl-C is how a follow ends
    return EXIT_OK


# -- compact ----------------------------------------------------------------------------------


def cmd_compact(args: argparse.Namespace) -> int:
    with _open_store(args.dir, writable=True) as store:
        result = store.compact(min_segments=args.min_segments)
    outcome = getattr(result.outcome, "value", result.outcome)
    merged = result.merged_segment_id
    sys.stdout.write(
        f"outcome            {outcome}\n"
        f"segments removed   {result.segments_removed}\n"
        f"bytes reclaimed    {result.bytes_reclaimed}\n"
        f"merged segment id  {'none' if merged is None else merged}\n"
        f"events dropped     {result.events_dropped}\n"
    )
    return EXIT_OK
