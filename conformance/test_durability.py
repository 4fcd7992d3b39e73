"""Real child processes: kill -9 a writer mid-stream, and hold the directory lock across processes.

The writer interleaves single appends with atomic batches (append_batch) and rotates segments
every few frames (4 KiB segments), so kills land in batches, rotations and segment creation.

PROVES: INV-DST-RECOVERY-LEGAL (after SIGKILL the store reopens to a legal prefix: every
sync-acknowledged event present and identical, nothing invented, no torn batch, chains intact,
lock released),
INV-JOURNAL-SINGLE-LIVE-OWNER (a live owner in another process refuses both open modes with
StoreLocked{path, mode}).
CATCHES: acknowledging before fsync, lost or duplicated frames, renumbered sequences, broken
chains after a crash, a lock that survives its process or is not exclusive across processes.
SEEDED: each kill round draws its sync cadence, kill point and delay from a fixed seed.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest
from refstore import (
    KIND_DATA,
    LIFECYCLE_ENTITY,
    ZERO32,
    b3,
    kill9_boundaries,
    kill9_payload,
    parse_segment,
    segment_files,
    unpack,
)

import batpak
from batpak import DomainError, IndexEntry, Region, Store, StoreConfig, StoredEvent, StoreLocked

CHILD_WRITER = """\
import itertools
import sys
from pathlib import Path

from refstore import KILL9_GROUPS, kill9_payload

from batpak import BatchAppendItem, Coordinate, Store, StoreConfig

directory, round_no, every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = Store.open(StoreConfig(Path(directory), segment_max_bytes=4096))
out = sys.stdout
out.write("READY\\n")
out.flush()
pending = []
i = 0
for size in itertools.cycle(KILL9_GROUPS):
    coords = [Coordinate(f"acct:{j % 3}", "kill9") for j in range(i, i + size)]
    payloads = [kill9_payload(round_no, j) for j in range(i, i + size)]
    if size == 1:
        pending.append(store.append_msgpack(coords[0], 0x1000, payloads[0]))
    else:
        items = [
            BatchAppendItem.from_msgpack_bytes(c, 0x1000, p) for c, p in zip(coords, payloads)
        ]
        pending.extend(store.append_batch(items))
    i += size
    if len(pending) >= every:
        store.sync()
        out.write("".join(f"ACK {r.global_sequence} {r.event_id:032x}\\n" for r in pending))
        out.flush()
        pending.clear()
"""

LOCK_HOLDER = """\
import sys
from pathlib import Path

from batpak import Store, StoreConfig

opener = Store.open if sys.argv[2] == "rw" else Store.open_read_only
store = opener(StoreConfig(Path(sys.argv[1])))
print("LOCKED", flush=True)
sys.stdin.readline()
store.close()
print("RELEASED", flush=True)
"""

ROUNDS = 5
SEED = 0xBA7
ACK_TIMEOUT_S = 10.0


def _child_env() -> dict[str, str]:
    src = Path(batpak.__file__).resolve().parents[1]
    here = Path(__file__).resolve().parent
    inherited = os.environ.get("PYTHONPATH", "")
    paths = [str(src), str(here), *([inherited] if inherited else [])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def _spawn(script: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_child_env(),
    )


class _Lines:
    """Collects the child's complete stdout lines on a thread (a cut last line is dropped)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._done = False
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._thread.start()

    def _run(self, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            if raw.endswith(b"\n"):
                with self._cond:
                    self.lines.append(raw.decode().rstrip("\n"))
                    self._cond.notify_all()
        with self._cond:
            self._done = True
            self._cond.notify_all()

    def wait_for(self, count: int, prefix: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while sum(line.startswith(prefix) for line in self.lines) < count:
                left = deadline - time.monotonic()
                if self._done or left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def join(self) -> None:
        self._thread.join(timeout=ACK_TIMEOUT_S)


def _kill_round(
    script: Path, directory: Path, round_no: int, rng: random.Random
) -> list[tuple[int, int]]:
    """Run one writer, SIGKILL it at a seeded moment; return its (sequence, id) ACKs in order."""
    every = rng.choice([1, 2, 3, 5, 8])
    target = rng.randint(1, 45)
    delay = rng.uniform(0.0, 0.03)
    with _spawn(script, str(directory), str(round_no), str(every)) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stderr is not None
            lines = _Lines(proc.stdout)
            reached = lines.wait_for(target, "ACK ", ACK_TIMEOUT_S)
            time.sleep(delay)
        finally:
            proc.send_signal(signal.SIGKILL)  # the writer never stops by itself
            proc.wait()
        lines.join()
        stderr = proc.stderr.read().decode(errors="replace")
    assert reached, f"round {round_no}: child never reached {target} ACKs; stderr:\n{stderr}"
    assert proc.returncode == -signal.SIGKILL, stderr
    assert lines.lines[0] == "READY"
    acks = []
    for line in lines.lines[1:]:
        tag, seq, event_id = line.split()
        assert tag == "ACK"
        acks.append((int(seq), int(event_id, 16)))
    assert len(acks) >= target
    return acks


def _check_recovered(directory: Path, acked: list[list[tuple[int, int]]]) -> list[IndexEntry]:
    """Every ACKed event is present and identical, nothing is invented, chains are intact."""
    with Store.open_read_only(StoreConfig(directory)) as store:
        entries = store.query(Region.all())
        events = store.events(entries)
    assert [e.global_sequence for e in entries] == list(range(len(entries))), "sequence gaps"
    by_id: dict[int, tuple[IndexEntry, StoredEvent]] = {}
    seen: dict[int, list[int]] = {}
    for entry, stored in zip(entries, events, strict=True):
        assert entry.event_id not in by_id, "duplicate event id"
        by_id[entry.event_id] = (entry, stored)
        if entry.entity == LIFECYCLE_ENTITY:
            continue
        value = unpack(stored.event.payload)
        round_no, i = value["round"], value["i"]
        assert stored.event.payload == kill9_payload(round_no, i), "invented payload"
        coordinate = (entry.entity, entry.scope, entry.event_kind)
        assert coordinate == (value["entity"], "kill9", KIND_DATA)
        seen.setdefault(round_no, []).append(i)
    assert set(seen) <= set(range(len(acked))), "events from a round that never ran"
    for round_no, acks in enumerate(acked):
        visible = seen.get(round_no, [])
        assert visible == list(range(len(visible))), f"round {round_no} is not an append prefix"
        assert len(visible) in kill9_boundaries(len(visible)), f"round {round_no}: torn batch"
        assert len(visible) >= len(acks), f"round {round_no} lost acknowledged events"
        for i, (seq, event_id) in enumerate(acks):
            assert event_id in by_id, f"ACKed event {event_id:032x} (round {round_no}) is gone"
            entry, stored = by_id[event_id]
            assert entry.global_sequence == seq
            assert stored.event.payload == kill9_payload(round_no, i)
    chains: dict[tuple[str, int], list[tuple[IndexEntry, StoredEvent]]] = {}
    for entry, stored in zip(entries, events, strict=True):
        chains.setdefault((entry.entity, entry.lane), []).append((entry, stored))
    for chain in chains.values():
        assert [e.clock for e, _ in chain] == list(range(len(chain))), "chain sequence gap"
        assert chain[0][0].prev_hash == ZERO32
        for (older, _), (newer, _) in itertools.pairwise(chain):
            assert newer.prev_hash == older.event_hash, "broken prev_hash link"
        for entry, stored in chain:
            assert entry.event_hash == b3(stored.event.payload) == stored.event.header.content_hash
    return entries


def _check_on_disk(directory: Path, acked: list[list[tuple[int, int]]]) -> None:
    """Independently of batpak: each ACKed event is a CRC-valid, canonical frame on disk."""
    frames: dict[int, bytes] = {}
    for path in segment_files(directory):
        for frame in parse_segment(path).frames:
            value = frame.value
            event_id = int.from_bytes(value["event"]["header"]["event_id"], "big")
            frames[event_id] = bytes(value["event"]["payload"])
    for round_no, acks in enumerate(acked):
        for i, (_, event_id) in enumerate(acks):
            assert frames.get(event_id) == kill9_payload(round_no, i)


@pytest.mark.invariant("INV-DST-RECOVERY-LEGAL")
def test_kill9_writer_recovers_a_legal_prefix(tmp_path: Path) -> None:
    script = tmp_path / "child_writer.py"
    script.write_text(CHILD_WRITER)
    directory = tmp_path / "store"
    rng = random.Random(SEED)
    acked: list[list[tuple[int, int]]] = []
    for round_no in range(ROUNDS):
        acked.append(_kill_round(script, directory, round_no, rng))
        _check_recovered(directory, acked)  # the killed writer's lock is gone: open succeeds
        _check_on_disk(directory, acked)
    with Store.open(StoreConfig(directory)) as store:  # a clean writable session afterwards
        store.sync()
    entries = _check_recovered(directory, acked)
    assert entries[-1].entity == LIFECYCLE_ENTITY
    assert [e.event_kind for e in entries[-2:]] == [0x0008, 0x0009]


@pytest.mark.invariant("INV-JOURNAL-SINGLE-LIVE-OWNER")
@pytest.mark.parametrize("holder", ["rw", "ro"])
def test_live_owner_in_another_process_locks_out_both_modes(tmp_path: Path, holder: str) -> None:
    directory = tmp_path / "store"
    with Store.open(StoreConfig(directory)):
        pass
    script = tmp_path / "lock_holder.py"
    script.write_text(LOCK_HOLDER)
    with _spawn(script, str(directory), holder) as proc:
        assert proc.stdin is not None
        assert proc.stdout is not None
        assert proc.stderr is not None
        lines = _Lines(proc.stdout)
        locked = lines.wait_for(1, "LOCKED", ACK_TIMEOUT_S)
        assert locked, proc.stderr.read().decode(errors="replace") if proc.poll() else "no LOCKED"
        before = sorted(p.name for p in directory.iterdir())
        modes = []
        for opener in (Store.open, Store.open_read_only):
            with pytest.raises(StoreLocked) as caught:
                opener(StoreConfig(directory)).close()
            error = caught.value
            assert isinstance(error, DomainError)
            where = Path(error.path).resolve()
            assert where in (directory.resolve(), directory.resolve() / ".batpak.lock")
            assert isinstance(error.mode, str)
            assert error.mode
            modes.append(error.mode)
        assert modes[0] != modes[1], "StoreLocked.mode must say which open was refused"
        assert sorted(p.name for p in directory.iterdir()) == before, "a refused open wrote"
        proc.stdin.write(b"\n")
        proc.stdin.flush()
        released = lines.wait_for(1, "RELEASED", ACK_TIMEOUT_S)
        assert proc.wait(timeout=ACK_TIMEOUT_S) == 0, proc.stderr.read().decode(errors="replace")
        lines.join()
    assert released
    with Store.open(StoreConfig(directory)) as store:  # the owner is gone: open succeeds
        assert store.query(Region.all())
