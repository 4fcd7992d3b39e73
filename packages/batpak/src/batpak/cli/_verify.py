"""``batpak verify``: frame CRCs, content hashes and chain links, with a progress line."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from batpak import (
    FailClosedError,
    IndexEntry,
    Region,
    Store,
    StoreConfig,
    StoreError,
    StoreLocked,
    canonical,
)
from batpak.cli._common import (
    EXIT_DAMAGE,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    describe,
    require_store,
    segment_files,
)
from batpak.segment import (
    Posture,
    read_footer,
    read_header,
    scan_frames,
)

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
    path = require_store(args.dir)
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
    listed = segment_files(directory)
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
