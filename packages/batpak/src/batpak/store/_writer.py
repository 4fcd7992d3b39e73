"""The single writer thread: sequencing, chaining, framing, segment I/O and publishing.

Callers enqueue commands on a bounded queue and wait on a Future. Only this thread touches the
active segment, the allocator and the chain heads, so appends need no other locking. Any I/O
failure poisons the writer: every later command gets ``WriterCrashed``.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

from batpak import canonical
from batpak.config import StoreConfig
from batpak.coordinate import Coordinate
from batpak.errors import EntityClockOverflow, InvalidClock, StoreError, WriterCrashed
from batpak.event import ZERO_HASH
from batpak.frame import WireEvent, WireFrame, WireHashChain, WireHeader, WirePosition, encode_frame
from batpak.ids import uuid7
from batpak.kinds import SYSTEM_CLOSE_COMPLETED
from batpak.options import DEFAULT_OPTIONS, AppendOptions
from batpak.receipt import AppendReceipt, DiskPos
from batpak.store._index import Index, IndexEntry
from batpak.store._segments import ActiveSegment, sidx_row

_U32_MAX = 0xFFFF_FFFF


@dataclass(slots=True)
class Append:
    coordinate: Coordinate
    kind: int
    payload: bytes
    payload_version: int
    options: AppendOptions
    durable: bool = False
    timestamp_us: int | None = None
    """Lifecycle events carry a timestamp fixed from the HLC; others read the clock."""
    future: Future[AppendReceipt] = field(default_factory=Future)


@dataclass(slots=True)
class Sync:
    future: Future[None] = field(default_factory=Future)


@dataclass(slots=True)
class Close:
    """Append CLOSE_COMPLETED, seal the active segment and stop the thread."""

    future: Future[None] = field(default_factory=Future)


Command = Append | Sync | Close


class Writer:
    """Owns the active segment; runs commands from a bounded queue on one thread."""

    def __init__(
        self, config: StoreConfig, index: Index, segment: ActiveSegment, next_sequence: int
    ) -> None:
        self._config = config
        self._index = index
        self._segment = segment
        self._next_sequence = next_sequence
        self._unsynced = 0
        self._crash: BaseException | None = None
        self._queue: queue.Queue[Command] = queue.Queue(config.writer_channel_capacity)
        self._thread = threading.Thread(target=self._run, name="batpak-writer", daemon=True)
        self._thread.start()

    @property
    def next_sequence(self) -> int:
        return self._next_sequence

    def submit(self, command: Command) -> None:
        if self._crash is not None:
            raise WriterCrashed(f"writer crashed: {self._crash}") from self._crash
        if not self._thread.is_alive():
            raise WriterCrashed("writer thread is not running")
        self._queue.put(command)

    def join(self) -> None:
        self._thread.join()

    def _run(self) -> None:
        while True:
            command = self._queue.get()
            if self._crash is not None:
                command.future.set_exception(WriterCrashed(f"writer crashed: {self._crash}"))
                if isinstance(command, Close):
                    return
                continue
            try:
                if isinstance(command, Append):
                    command.future.set_result(self._append(command))
                elif isinstance(command, Sync):
                    self._sync()
                    command.future.set_result(None)
                else:
                    self._close()
                    command.future.set_result(None)
                    return
            except StoreError as exc:
                command.future.set_exception(exc)
            except BaseException as exc:  # I/O or a bug: poison rather than guess
                self._crash = exc
                self._segment.close()
                error = WriterCrashed(f"writer crashed: {exc!r}")
                error.__cause__ = exc
                command.future.set_exception(error)
                if isinstance(command, Close):
                    return

    def _append(self, command: Append) -> AppendReceipt:
        config = self._config
        segment = self._segment
        if segment.size >= config.segment_max_bytes:
            segment = self._rotate()
        coordinate = command.coordinate
        head = self._index.head(coordinate.entity)
        now_us = config.clock() if command.timestamp_us is None else command.timestamp_us
        if now_us < 0:
            raise InvalidClock(f"clock returned {now_us}")
        if head is None:
            sequence, prev_hash, wall_ms = 0, ZERO_HASH, now_us // 1000
        else:
            if head.clock >= _U32_MAX:
                raise EntityClockOverflow(f"entity {coordinate.entity!r} sequence overflow")
            sequence, prev_hash = head.clock + 1, head.event_hash
            wall_ms = max(now_us // 1000, head.wall_ms)
        options = command.options
        kind = int(command.kind)
        event_id = uuid7(now_us)
        correlation_id = options.correlation_id or event_id
        causation_id = options.causation_id or None
        payload = command.payload
        content_hash = canonical.digest(payload)
        extensions = dict(options.extensions)
        frame = WireFrame(
            event=WireEvent(
                header=WireHeader(
                    event_id=event_id.to_bytes(16, "big"),
                    correlation_id=correlation_id.to_bytes(16, "big"),
                    causation_id=None if causation_id is None else causation_id.to_bytes(16, "big"),
                    timestamp_us=now_us,
                    position=WirePosition(wall_ms, 0, 0, 0, sequence),
                    payload_size=len(payload),
                    event_kind=kind,
                    flags=options.flags,
                    content_hash=list(content_hash),
                    payload_version=command.payload_version,
                ),
                payload=list(payload),
                hash_chain=WireHashChain(list(prev_hash), list(content_hash)),
            ),
            entity=coordinate.entity,
            scope=coordinate.scope,
            receipt_extensions={k: list(extensions[k]) for k in sorted(extensions, key=str.encode)},
        )
        data = encode_frame(frame)
        offset = segment.append(data)
        global_sequence = self._next_sequence
        self._next_sequence += 1
        entry = IndexEntry(
            event_id=event_id,
            correlation_id=correlation_id,
            causation_id=causation_id,
            entity=coordinate.entity,
            scope=coordinate.scope,
            event_kind=kind,
            wall_ms=wall_ms,
            clock=sequence,
            lane=0,
            depth=0,
            prev_hash=prev_hash,
            event_hash=content_hash,
            global_sequence=global_sequence,
            segment_id=segment.segment_id,
            offset=offset,
            length=len(data),
            receipt_extensions=extensions or None,
        )
        segment.rows.append(sidx_row(entry))
        self._unsynced += 1
        if command.durable or self._unsynced >= config.sync_every_n_events:
            self._sync()
        self._index.insert((entry,))
        return AppendReceipt(
            event_id=event_id,
            global_sequence=global_sequence,
            disk_pos=DiskPos(segment.segment_id, offset, len(data)),
            content_hash=content_hash,
            extensions=extensions,
        )

    def _sync(self) -> None:
        self._segment.sync(self._config.sync_mode == "sync_data")
        self._unsynced = 0

    def _rotate(self) -> ActiveSegment:
        old = self._segment
        new = ActiveSegment(old.path.parent, old.segment_id + 1, time.time_ns())
        old.sync(data_only=False)
        self._unsynced = 0
        self._segment = new
        try:
            old.seal()
        except OSError:
            old.close()  # the footer is an accelerator: without it the segment is scanned
        return new

    def _close(self) -> None:
        # The CLOSE payload and timestamp are the visible HLC: the last published event's
        # (wall_ms, global_sequence), exactly as the reference records it.
        last = self._index.entries[-1] if self._index.entries else None
        wall_ms, sequence = (last.wall_ms, last.global_sequence) if last else (0, 0)
        payload = canonical.encode({"wall_ms": wall_ms, "global_sequence": sequence})
        self._append(
            Append(
                LIFECYCLE,
                SYSTEM_CLOSE_COMPLETED,
                payload,
                0,
                DEFAULT_OPTIONS,
                durable=True,
                timestamp_us=wall_ms * 1000,
            )
        )
        self._segment.seal()


LIFECYCLE = Coordinate("batpak:store", "batpak:lifecycle")
