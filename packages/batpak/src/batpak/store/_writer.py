"""The single writer thread: sequencing, chaining, framing, segment I/O and publishing.

Callers enqueue commands on a bounded queue and wait on a ``Reply``. Only this thread touches
the active segment, the allocator and the chain heads, so appends need no other locking. The
writer drains queued commands as one group (up to ``group_commit_max_batch``) and makes every
durable request in the group durable with one fsync; with group commit on, that fsync runs
on a second thread (:mod:`batpak.store._syncer`) while the writer frames the next group. Any
I/O failure poisons the writer: the durable watermark freezes and every later command gets
``WriterCrashed``.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from batpak import canonical
from batpak.config import StoreConfig
from batpak.coordinate import Coordinate
from batpak.errors import (
    EntityClockOverflow,
    IdempotencyPartialBatch,
    InvalidClock,
    SequenceMismatch,
    StoreClosed,
    StoreError,
    WriterCrashed,
)
from batpak.event import ZERO_HASH
from batpak.frontier import HlcPoint, Watermarks
from batpak.fs import WriteFile
from batpak.ids import uuid7
from batpak.kinds import SYSTEM_CLOSE_COMPLETED
from batpak.options import DEFAULT_OPTIONS, AppendOptions
from batpak.receipt import AppendReceipt, Signer
from batpak.store._authority import IdempEntry, KeyRecords
from batpak.store._build import event_frame, marker_frame, receipt_for, replay_receipt
from batpak.store._fence import FenceLedger, VisibilityFenceActive, VisibilityFenceNotActive
from batpak.store._index import Index, IndexEntry
from batpak.store._lifecycle import persist_cancelled
from batpak.store._reply import Reply
from batpak.store._segments import ActiveSegment
from batpak.store._syncer import Syncer

_U32_MAX = 0xFFFF_FFFF
LIFECYCLE = Coordinate("batpak:store", "batpak:lifecycle")


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
    reply: Reply[AppendReceipt] = field(default_factory=Reply)
    written: AppendReceipt | None = None
    """A durable append's receipt once written, before its group's fsync settles the reply
    (so a caller that times out can name the sequence it waited for)."""


_WINDOW_MAX_S = 0.001
"""The longest a group waits for more durable appends."""


@dataclass(slots=True)
class BatchItem:
    """One validated batch item; ``prior`` is the index of an earlier item it was caused by."""

    coordinate: Coordinate
    kind: int
    payload: bytes
    options: AppendOptions
    prior: int | None = None


@dataclass(slots=True)
class Batch:
    items: list[BatchItem]
    reply: Reply[list[AppendReceipt]] = field(default_factory=Reply)


@dataclass(slots=True)
class Sync:
    reply: Reply[None] = field(default_factory=Reply)


@dataclass(slots=True)
class Exclusive:
    """Run ``fn`` on the writer thread, after an fsync, with no append in flight."""

    fn: Callable[[Writer], Any]
    reply: Reply[Any] = field(default_factory=Reply)


@dataclass(slots=True)
class Abandon:
    """Stop at once, as a crash would: no CLOSE event, no footer, no final fsync."""

    reply: Reply[None] = field(default_factory=Reply)


@dataclass(slots=True)
class Close:
    """Append CLOSE_COMPLETED, seal the active segment and stop the thread."""

    reply: Reply[None] = field(default_factory=Reply)


@dataclass(slots=True)
class Written:
    """A written group handed to the syncer: the file to fsync, the written watermark that
    fsync makes durable, and the replies it settles."""

    file: WriteFile
    written: HlcPoint
    answers: list[tuple[Reply[Any], Any]]


Command = Append | Batch | Sync | Exclusive | Abandon | Close
Publish = Callable[[Sequence[IndexEntry]], None]


class Writer:
    """Owns the active segment; runs commands from a bounded queue on one thread."""

    def __init__(
        self,
        config: StoreConfig,
        index: Index,
        segment: ActiveSegment,
        next_sequence: int,
        watermarks: Watermarks,
        signer: Signer,
        publish: Publish,
        keys: KeyRecords,
    ) -> None:
        self._config = config
        self._index = index
        self._segment = segment
        self._next_sequence = next_sequence
        self._watermarks = watermarks
        self._signer = signer
        self._publish = publish
        self._keys = keys
        self._unsynced = 0
        self._sync_requested = False
        self._crash: BaseException | None = None
        self._stopped = False  # set before the last drain; late submitters drain themselves
        self._fence: FenceLedger | None = None
        self._staged: list[IndexEntry] = []  # this group's events, shown once written
        self._held: list[IndexEntry] = []  # a batch and what follows it: shown once synced
        self._staged_heads: dict[str, IndexEntry] = {}  # chain heads not yet in the index
        self._answers: list[tuple[Reply[Any], Any]] = []  # answered when _staged is shown
        self._held_answers: list[tuple[Reply[Any], Any]] = []  # answered when _held is shown
        self._queue: queue.Queue[Command] = queue.Queue(config.writer_channel_capacity)
        self.gated = 0
        """Callers inside a gated append: the group window waits only while others are."""
        self._gated_lock = threading.Lock()
        self._fsync_s = 0.0  # a moving average of the fsync time
        self._written = watermarks.snapshot().written
        self._syncer: Syncer[Written] | None = None
        if config.group_commit_max_batch != 1:
            self._syncer = Syncer(self._sync_behind, "batpak-syncer")
        self._thread = threading.Thread(target=self._run, name="batpak-writer", daemon=True)
        self._thread.start()

    def gated_enter(self) -> None:
        with self._gated_lock:
            self.gated += 1

    def gated_exit(self) -> None:
        with self._gated_lock:
            self.gated -= 1

    def submit(self, command: Command) -> None:
        if self._crash is not None:
            raise WriterCrashed(f"writer crashed: {self._crash!r}") from self._crash
        if not self._thread.is_alive():
            raise StoreClosed("the writer has stopped")
        self._queue.put(command)
        if self._stopped:  # the writer may have drained the queue before this put
            self._fail_queued()

    def stop(self, command: Close | Abandon) -> None:
        """Hand the thread its last command, even when poisoned, and wait for it to end.

        Raises what the command raised (``WriterCrashed`` for a poisoned writer's close)."""
        if self._thread.is_alive():
            self._queue.put(command)
            try:
                command.reply.result()
            finally:
                self._thread.join()

    @property
    def next_sequence(self) -> int:
        return self._next_sequence

    @property
    def segment(self) -> ActiveSegment:
        """The active segment (for ``Exclusive`` work on the writer thread only)."""
        return self._segment

    def replace_index(self, entries: list[IndexEntry]) -> None:
        """Swap the index contents after compaction (writer thread only)."""
        self._index.replace(entries)

    # -- visibility fences (writer thread only, through ``Exclusive``) -------------------

    @property
    def fence(self) -> FenceLedger | None:
        return self._fence

    def begin_fence(self, token: int) -> None:
        if self._fence is not None:
            raise VisibilityFenceActive("a visibility fence is already open")
        self._fence = FenceLedger(token)

    def end_fence(self, token: int, publish: bool) -> None:
        """Publish the held events, or persist their range as hidden (an I/O failure here
        poisons the writer rather than let cancelled events resurface at the next open)."""
        fence = self._fence
        if fence is None or fence.token != token:
            raise VisibilityFenceNotActive(f"visibility fence {token} is not open")
        self._sync()
        span = fence.span()
        if span is not None and not publish:
            persist_cancelled(self._segment.path.parent, span, self._config.fs)
        self._fence = None
        if span is not None and publish:
            self._reveal(fence.entries)

    # -- the loop -------------------------------------------------------------------------

    def _take_group(self) -> list[Command]:
        """The next group: what is queued, and, when it holds durable appends while other
        gated callers are still at work, what they submit within a short window (at most half
        an fsync), so that one fsync serves them all (PostgreSQL's commit_delay)."""
        group = [self._queue.get()]
        limit = self._config.group_commit_max_batch or None
        durable = sum(1 for c in group if isinstance(c, Append) and c.durable)
        deadline: float | None = None
        while limit is None or len(group) < limit:
            try:
                command = self._queue.get_nowait()
            except queue.Empty:
                behind = self._syncer.waiting if self._syncer is not None else 0
                if limit == 1 or not durable or durable + behind >= self.gated:
                    break
                if deadline is None:
                    deadline = time.monotonic() + min(self._fsync_s / 2, _WINDOW_MAX_S)
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    command = self._queue.get(timeout=left)
                except queue.Empty:
                    break
            group.append(command)
            durable += isinstance(command, Append) and command.durable
        return group

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            if self._syncer is not None:
                self._syncer.stop()

    def _loop(self) -> None:
        while True:
            group = self._take_group()
            waiting: list[tuple[Reply[Any], Any]] = []
            closing: Close | None = None
            for command in group:
                if closing is not None:
                    command.reply.set_exception(StoreClosed("the store is closing"))
                elif isinstance(command, Abandon):
                    self._write_group()  # what was written survives a crash, in the page cache
                    self._drain()
                    self._segment.close()
                    # A crash: the group's fsync never happened.
                    for reply, _ in waiting + self._held_answers:
                        reply.set_exception(StoreClosed("the store was abandoned"))
                    for later in group[group.index(command) + 1 :]:
                        later.reply.set_exception(StoreClosed("the store was abandoned"))
                    self._fail_queued()
                    command.reply.set_result(None)
                    return
                elif isinstance(command, Close):
                    closing = command
                else:
                    self._run_one(command, waiting)
            self._write_group()
            self._settle(waiting)
            if closing is not None:
                self._run_close(closing)
                self._fail_queued()
                return

    def _run_one(
        self, command: Append | Batch | Sync | Exclusive, waiting: list[tuple[Reply[Any], Any]]
    ) -> None:
        if self._crash is not None:
            command.reply.set_exception(WriterCrashed(f"writer crashed: {self._crash!r}"))
            return
        try:
            if isinstance(command, Append):
                receipt = self._append(command)
                if command.durable:
                    # Answered after this group's fsync: the caller wakes once, durable.
                    command.written = receipt
                    waiting.append((command.reply, receipt))
                elif self._held:  # behind a batch: shown, and answered, after the fsync
                    self._held_answers.append((command.reply, receipt))
                else:
                    self._answers.append((command.reply, receipt))
            elif isinstance(command, Batch):
                # Durable before visible; the group's fsync serves every batch in it.
                waiting.append((command.reply, self._batch(command)))
            elif isinstance(command, Exclusive):
                if not self._write_group():  # the work sees every earlier event, indexed
                    command.reply.set_exception(self._crashed_error())
                    return
                self._sync()
                command.reply.set_result(command.fn(self))
            else:
                waiting.append((command.reply, None))
        except StoreError as exc:
            command.reply.set_exception(exc)
        except BaseException as exc:  # I/O or a bug: poison rather than guess
            self._poison(exc)
            command.reply.set_exception(self._crashed_error())

    def _write_group(self) -> bool:
        """Write the group's frames with one write, make its events visible, then answer
        its requests that do not wait for an fsync. Nothing is visible or answered before
        its bytes are in the file; held events (a batch and what follows it) wait for the
        next fsync. A failed write poisons the writer (False)."""
        if self._crash is None:
            try:
                self._segment.flush()
            except BaseException as exc:
                self._poison(exc)
            else:
                self._mark_written()
        self._show_written()
        return self._crash is None

    def _mark_written(self) -> None:
        """Advance accepted and written to the last committed event, once per group (its
        bytes are in the file)."""
        self._watermarks.advance("accepted", "written", to=self._written)

    def _show_written(self) -> None:
        """Reveal the staged events (their bytes are in the file) and answer their callers."""
        staged, self._staged = self._staged, []
        if not self._held:
            self._staged_heads.clear()
        if staged and self._crash is None:
            self._reveal(staged)
        self._answer(self._answers)
        self._answers = []

    def _answer(self, answers: list[tuple[Reply[Any], Any]]) -> None:
        for reply, result in answers:
            if self._crash is None:
                reply.set_result(result)
            else:
                reply.set_exception(self._crashed_error())

    def _settle(self, waiting: list[tuple[Reply[Any], Any]]) -> None:
        """One fsync for every durable request of the group (and the cadence): handed to the
        syncer with group commit on, unless a batch waits to be shown after it."""
        due = waiting or self._sync_requested or self._unsynced >= self._config.sync_every_n_events
        self._sync_requested = False
        if self._crash is None and due:
            syncer, file = self._syncer, self._segment.file
            if syncer is not None and not self._held and file is not None:
                self._unsynced = 0
                syncer.submit(Written(file, self._written, waiting), len(waiting))
                return
            try:
                self._sync()
            except BaseException as exc:
                self._poison(exc)
        self._answer(waiting)

    def _run_close(self, command: Close) -> None:
        if self._crash is not None:
            self._drain()
            self._segment.close()
            command.reply.set_exception(self._crashed_error())
            return
        try:
            self._close()
        except BaseException as exc:
            self._poison(exc)
            self._segment.close()
            command.reply.set_exception(self._crashed_error())
        else:
            command.reply.set_result(None)

    def _fail_queued(self) -> None:
        self._stopped = True
        while True:
            try:
                command = self._queue.get_nowait()
            except queue.Empty:
                return
            command.reply.set_exception(StoreClosed("the store is closed"))

    def _poison(self, exc: BaseException) -> None:
        if self._crash is None:  # the syncer may have been first
            self._crash = exc
        self._watermarks.crash()
        self._answer(self._held_answers)  # their events will never be shown
        self._held_answers = []

    def _crashed_error(self) -> WriterCrashed:
        error = WriterCrashed(f"writer crashed: {self._crash!r}")
        error.__cause__ = self._crash
        return error

    # -- appends --------------------------------------------------------------------------

    def _now_us(self, fixed: int | None = None) -> int:
        now_us = self._config.clock() if fixed is None else fixed
        if now_us < 0:
            raise InvalidClock(f"clock returned {now_us}")
        return now_us

    def _head(self, entity: str) -> IndexEntry | None:
        held = self._fence.head(entity) if self._fence is not None else None
        return held or self._staged_heads.get(entity) or self._index.head(entity)

    def _check_cas(self, entity: str, expected: int | None) -> None:
        if expected is None:
            return
        head = self._head(entity)
        actual = 0 if head is None else head.clock  # the reference reads a new entity as 0
        if actual != expected:
            raise SequenceMismatch(entity, expected, actual)

    def _draft(
        self,
        coordinate: Coordinate,
        kind: int,
        payload: bytes,
        options: AppendOptions,
        now_us: int,
        heads: dict[str, IndexEntry],
        causation_id: int | None,
        global_sequence: int,
    ) -> IndexEntry:
        """The index entry of a new event, chained to its entity's head; no position yet."""
        entity = coordinate.entity
        head = heads.get(entity) or self._head(entity)
        if head is None:
            sequence, prev_hash, wall_ms = 0, ZERO_HASH, now_us // 1000
        else:
            if head.clock >= _U32_MAX:
                raise EntityClockOverflow(f"entity {entity!r} sequence would overflow u32")
            sequence, prev_hash = head.clock + 1, head.event_hash
            wall_ms = max(now_us // 1000, head.wall_ms)
        key = options.idempotency_key
        event_id = uuid7(now_us) if key is None else int(key)
        extensions = dict(options.extensions)
        entry = IndexEntry(
            event_id=event_id,
            correlation_id=options.correlation_id or event_id,
            causation_id=causation_id or None,
            entity=entity,
            scope=coordinate.scope,
            event_kind=int(kind),
            wall_ms=wall_ms,
            clock=sequence,
            lane=0,
            depth=0,
            prev_hash=prev_hash,
            event_hash=canonical.digest(payload),
            global_sequence=global_sequence,
            segment_id=0,
            offset=0,
            length=0,
            receipt_extensions=extensions or None,
        )
        heads[entity] = entry
        return entry

    def _append(self, command: Append) -> AppendReceipt:
        options = command.options
        self._check_cas(command.coordinate.entity, options.expected_sequence)
        if options.idempotency_key is not None:
            replayed = self._replay(int(options.idempotency_key))
            if replayed is not None:
                return replayed
        segment = self._rotate_if_full()
        now_us = self._now_us(command.timestamp_us)
        entry = self._draft(
            command.coordinate,
            command.kind,
            command.payload,
            options,
            now_us,
            {},
            options.causation_id,
            self._next_sequence,
        )
        frame = event_frame(entry, now_us, options.flags, command.payload, command.payload_version)
        offset = segment.append(frame)
        entry = msgspec.structs.replace(
            entry, segment_id=segment.segment_id, offset=offset, length=len(frame)
        )
        self._unsynced += 1
        self._commit([entry])
        self._remember_keys([entry], [options.idempotency_key])
        return receipt_for(entry, self._signer)

    def _batch(self, command: Batch) -> list[AppendReceipt]:
        items = command.items
        keys = [item.options.idempotency_key for item in items]
        if keys[0] is not None:
            replays = [self._replay(int(key)) for key in keys if key is not None]
            found = [receipt for receipt in replays if receipt is not None]
            if len(found) == len(items):
                return found
            if found:
                raise IdempotencyPartialBatch("partial idempotency-key replay")
        segment = self._rotate_if_full()  # rotation happens only before BEGIN
        now_us = self._now_us()
        heads: dict[str, IndexEntry] = {}
        drafts: list[IndexEntry] = []
        for position, item in enumerate(items):
            causation = (
                item.options.causation_id if item.prior is None else drafts[item.prior].event_id
            )
            drafts.append(
                self._draft(
                    item.coordinate,
                    item.kind,
                    item.payload,
                    item.options,
                    now_us,
                    heads,
                    causation,
                    self._next_sequence + position,
                )
            )
        batch_id = self._next_sequence
        parts = [marker_frame(True, batch_id, len(items), self._now_us())]
        offset = segment.size + len(parts[0])
        entries: list[IndexEntry] = []
        for draft, item in zip(drafts, items, strict=True):
            # Batch item frames carry flags 0 and payload_version 0, as the reference writes.
            frame = event_frame(draft, now_us, 0, item.payload, 0)
            entries.append(
                msgspec.structs.replace(
                    draft, segment_id=segment.segment_id, offset=offset, length=len(frame)
                )
            )
            parts.append(frame)
            offset += len(frame)
        parts.append(marker_frame(False, batch_id, 0, self._now_us()))
        segment.append(b"".join(parts))
        self._unsynced += len(entries)
        self._commit(entries, held=True)  # durable before visible: shown after the fsync
        self._remember_keys(entries, keys)
        return [receipt_for(entry, self._signer) for entry in entries]

    def _replay(self, key: int) -> AppendReceipt | None:
        """The original receipt for a known key: the durable record first, then the index."""
        record = self._keys.get(key)
        if isinstance(record, IdempEntry):
            return replay_receipt(record, self._signer)
        if record is not None:
            return receipt_for(record, self._signer)
        entry = self._index.get(key)
        return None if entry is None else receipt_for(entry, self._signer)

    def _remember_keys(self, entries: list[IndexEntry], keys: Sequence[int | None]) -> None:
        for entry, key in zip(entries, keys, strict=True):
            if key is not None:
                self._keys[key] = entry  # an IdempEntry once published (settled)

    def _commit(self, entries: list[IndexEntry], *, held: bool = False) -> None:
        """Record written entries (footer rows, allocator, the written point), then stage them to be
        published when the group is written, or, when ``held`` (a batch) or behind held
        entries, after the next fsync; or hold them back (durably) while a visibility fence
        is open."""
        self._segment.entries.extend(entries)
        self._next_sequence = entries[-1].global_sequence + 1
        last = entries[-1]
        self._written = HlcPoint(last.wall_ms, last.global_sequence)  # marked once flushed
        if self._fence is not None:
            self._fence.stage(entries)
            self._sync_requested = True  # fenced writes are durable before the fence ends
            return
        (self._held if held or self._held else self._staged).extend(entries)
        for entry in entries:
            self._staged_heads[entry.entity] = entry

    def _reveal(self, entries: list[IndexEntry]) -> None:
        """Make entries visible: index, visible watermark, then subscribers."""
        self._index.insert(entries)
        last = entries[-1]
        self._watermarks.advance("visible", to=HlcPoint(last.wall_ms, last.global_sequence))
        self._publish(entries)

    def _drain(self) -> None:
        """Wait until the syncer has settled every group handed to it."""
        if self._syncer is not None:
            self._syncer.drain()

    def _sync_behind(self, groups: list[Written]) -> None:
        """On the syncer thread: one fsync for the written groups, then their answers. A
        failure poisons the writer as :meth:`_poison` does; the writer answers its own held
        requests when it next drains."""
        if self._crash is None:
            try:
                self._fsync(groups[-1].file.sync)
            except BaseException as exc:
                self._crash = exc
                self._watermarks.crash()
            else:
                if self._crash is None:  # frozen once the writer is poisoned
                    self._watermarks.advance("durable", to=groups[-1].written)
        for group in groups:
            self._answer(group.answers)

    def _fsync(self, sync: Callable[[bool], None]) -> None:
        """One fsync, its time folded into the average the group window waits on."""
        started = time.monotonic()
        sync(self._config.sync_mode == "sync_data")
        self._fsync_s += (time.monotonic() - started - self._fsync_s) / 8

    def _sync(self) -> None:
        self._drain()
        if self._crash is not None:  # a failed fsync on the syncer
            raise self._crashed_error()
        if self._unsynced == 0:
            return
        self._fsync(self._segment.sync)
        self._unsynced = 0
        self._mark_written()  # the sync wrote every buffered frame
        self._watermarks.advance("durable", to=self._written)
        if self._held:  # now durable: shown in sequence order, after the staged ones
            self._show_written()
            held, self._held = self._held, []
            self._staged_heads.clear()
            self._reveal(held)
            self._answer(self._held_answers)
            self._held_answers = []

    def _rotate_if_full(self) -> ActiveSegment:
        """Seal a full segment (frames and footer fsynced), and only then create the next.

        A newer segment must never follow a torn one: recovery ignores a torn tail only on
        the newest segment and refuses it on any other. So a crash before the next segment
        exists leaves the old one newest (its torn footer is ignored and resealed at open),
        and a crash after finds it whole. A failed seal or create poisons the writer."""
        old = self._segment
        if old.size < self._config.segment_max_bytes:
            return old
        self._sync()
        old.seal()
        created_ns = max(self._config.clock(), 0) * 1000
        self._segment = ActiveSegment(
            old.path.parent, old.segment_id + 1, created_ns, self._config.fs
        )
        return self._segment

    def _close(self) -> None:
        if self._fence is not None:  # closing cancels an open fence, as the reference does
            self.end_fence(self._fence.token, publish=False)
        # The CLOSE payload and timestamp are the visible HLC: the last published event's
        # (wall_ms, global_sequence), exactly as the reference records it.
        last = self._index.last()
        wall_ms, sequence = (last.wall_ms, last.global_sequence) if last else (0, 0)
        payload = canonical.encode({"wall_ms": wall_ms, "global_sequence": sequence})
        self._append(
            Append(
                LIFECYCLE,
                SYSTEM_CLOSE_COMPLETED,
                payload,
                0,
                DEFAULT_OPTIONS,
                timestamp_us=wall_ms * 1000,
            )
        )
        self._sync()
        self._segment.seal()
        self._write_group()  # the CLOSE event joins the index (its bytes are sealed above)
