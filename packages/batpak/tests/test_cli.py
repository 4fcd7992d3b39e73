"""The ``batpak`` command line, run in-process through ``main(argv)`` and as ``python -m batpak``.

Stores come from ``examples/quickstart.py`` (two sessions: two sealed segments) plus a third
session written here with several entities, scopes, kinds, extensions, a raw MessagePack payload
and an atomic batch.
"""

from __future__ import annotations

import datetime
import importlib.util
import io
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

import batpak
from batpak import (
    AppendOptions,
    BatchAppendItem,
    Coordinate,
    Region,
    Store,
    StoreConfig,
)
from batpak.cli import Tailer, follow, json_value, main
from batpak.segment import read_footer, read_header, scan_frames

REPO = Path(__file__).resolve().parents[3]
SRC = Path(batpak.__file__).resolve().parents[1]
NOTE = 0xF101
BLOB = 0xF102
TAMPER_PAYLOAD = {"note": "tamper-me"}
DEADLINE = 30.0
CHECKPOINT_FILES = ("index.cols", "index.ckpt", "index.fbati")  # optional cold-start caches

Run = Callable[..., tuple[int, str, str]]


# -- fixtures -----------------------------------------------------------------------------


def _quickstart() -> Callable[[Path], None]:
    """examples/quickstart.py's ``main``, loaded once (it registers an event payload type)."""
    name = "batpak_example_quickstart"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, REPO / "examples" / "quickstart.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    run: Callable[[Path], None] = module.main
    return run


def write_session(path: Path) -> None:
    """One writable session with varied entities, scopes, kinds, options and a batch."""
    with Store.open(StoreConfig(path)) as store:
        first = store.append(Coordinate("note:1", "scope:notes"), NOTE, {"body": "hi"})
        store.append(
            Coordinate("note:1", "scope:notes"),
            NOTE,
            {"body": "again"},
            AppendOptions(causation_id=first.event_id, extensions={"app.trace": b"\x01\xfe"}),
        )
        store.append(Coordinate("note:2", "scope:other"), NOTE, {"body": "elsewhere"})
        store.append(Coordinate("victim:1", "scope:notes"), NOTE, TAMPER_PAYLOAD)
        raw = msgspec.msgpack.encode({1: b"\x00\xff", "list": [1.5, None, True]})
        store.append_msgpack(Coordinate("blob:1", "scope:notes"), BLOB, raw)
        store.append_batch(
            [
                BatchAppendItem.new(Coordinate("batch:1", "scope:batch"), NOTE, {"i": i})
                for i in range(3)
            ]
        )


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """Run ``main(argv)``; return its exit code, stdout and stderr."""

    def invoke(*argv: str | Path) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([str(arg) for arg in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


@pytest.fixture
def store_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    path = tmp_path / "store"
    quickstart = _quickstart()
    quickstart(path)
    quickstart(path)
    write_session(path)
    capsys.readouterr()
    return path


def all_entries(path: Path) -> list[batpak.IndexEntry]:
    with Store.open_read_only(StoreConfig(path)) as store:
        return store.query(Region.all())


def json_lines(text: str) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in text.splitlines()]
    assert all(isinstance(row, dict) for row in rows)
    return rows


def env_with_src() -> dict[str, str]:
    env = os.environ.copy()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    return env


# -- inspect ------------------------------------------------------------------------------


def test_inspect_text(store_dir: Path, run: Run) -> None:
    entries = all_entries(store_dir)
    with Store.open_read_only(StoreConfig(store_dir)) as store:
        identity = store.identity()
    assert identity is not None
    code, out, err = run("inspect", store_dir)
    assert (code, err) == (0, "")
    assert f"identity     {identity:032x}" in out
    assert "segments     3" in out
    for segment_id in (1, 2, 3):
        assert f"{segment_id:06d}.fbat  id {segment_id}" in out
    assert out.count("sealed (SDX3)") == 3
    assert f"events       {len(entries)}" in out
    assert f"sequences    0 .. {entries[-1].global_sequence}" in out
    assert "  0xF001     2" in out
    assert "  0xF101     7" in out
    assert "  0xF102     1" in out
    assert "  visible    (" in out


def test_inspect_json(store_dir: Path, run: Run) -> None:
    entries = all_entries(store_dir)
    code, out, _ = run("inspect", store_dir, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["events"] == len(entries)
    assert report["first_global_sequence"] == 0
    assert report["last_global_sequence"] == entries[-1].global_sequence
    assert report["frontier"]["visible"]["global_sequence"] == entries[-1].global_sequence
    assert len(report["identity"]) == 32
    int(report["identity"], 16)
    assert [s["id"] for s in report["segments"]] == [1, 2, 3]
    assert all(s["sealed"] and s["footer"] == "SDX3" for s in report["segments"])
    assert report["segments"][0]["bytes"] == (store_dir / "000001.fbat").stat().st_size
    assert report["kinds"] == {"0x0008": 3, "0x0009": 3, "0xF001": 2, "0xF101": 7, "0xF102": 1}
    assert report["entities"] == len({e.entity for e in entries}) == 7
    assert report["scopes"] == len({e.scope for e in entries}) == 5


def test_inspect_shows_torn_tail_of_crashed_segment(tmp_path: Path, run: Run) -> None:
    path = tmp_path / "crashed"
    with Store.open(StoreConfig(path)) as store:
        store.append(Coordinate("a:1", "s"), NOTE, {"n": 1})
        store.sync()
        crashed = {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()}
    shutil.rmtree(path)
    path.mkdir()
    for name, data in crashed.items():
        (path / name).write_bytes(
            data + (b"\x00\x00\x01\x00torn" if name.endswith("fbat") else b"")
        )
    code, out, _ = run("inspect", path, "--json")
    assert code == 0
    (segment,) = json.loads(out)["segments"]
    assert (segment["sealed"], segment["torn_bytes"]) == (False, 8)
    code, out, _ = run("verify", path)
    assert code == 0
    assert "ends in 8 torn bytes" in out


def test_python_dash_m_inspect(store_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "batpak", "inspect", str(store_dir), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env_with_src(),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["events"] == len(all_entries(store_dir))
    text = subprocess.run(
        [sys.executable, "-m", "batpak", "inspect", str(store_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env_with_src(),
        check=False,
    )
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("store        ")


# -- verify -------------------------------------------------------------------------------


def test_verify_intact(store_dir: Path, run: Run) -> None:
    code, out, err = run("verify", store_dir)
    assert code == 0
    assert out.startswith(f"ok  {len(all_entries(store_dir))} events in 3 segment(s)")
    assert err == ""  # no progress: stderr is not a TTY


def test_verify_progress_line(store_dir: Path, run: Run) -> None:
    total = len(all_entries(store_dir))
    code, _, err = run("verify", store_dir, "--progress")
    assert code == 0
    assert err.startswith("\rverify: 0/3 segments (0%)")
    assert "\rverify: 3/3 segments (100%)" in err
    assert f"\rverify: {total}/{total} events (100%)" in err
    assert err.endswith("\n")
    assert err.count("\n") == 1


def int_array(data: bytes) -> bytes:
    """How a frame stores payload bytes: a MessagePack array of ints (format.md §1)."""
    head = bytes([0x90 | len(data)]) if len(data) < 16 else b"\xdc" + len(data).to_bytes(2, "big")
    return head + b"".join(bytes([b]) if b < 0x80 else bytes([0xCC, b]) for b in data)


def _rewrite_frame(path: Path, entry: batpak.IndexEntry, old: bytes, new: bytes) -> None:
    """Replace ``old`` by ``new`` (same length) inside the entry's frame and fix its CRC."""
    segment = path / f"{entry.segment_id:06d}.fbat"
    data = bytearray(segment.read_bytes())
    body_start, body_end = entry.offset + 8, entry.offset + entry.length
    at = body_start + bytes(data[body_start:body_end]).index(old)
    data[at : at + len(old)] = new
    data[entry.offset + 4 : body_start] = zlib.crc32(data[body_start:body_end]).to_bytes(4, "big")
    segment.write_bytes(bytes(data))


def test_verify_finds_tampered_payload_with_fixed_crc(store_dir: Path, run: Run) -> None:
    with Store.open_read_only(StoreConfig(store_dir)) as store:
        (victim,) = store.by_entity("victim:1")
        payload = store.read_raw(victim.event_id)
    assert payload.endswith(b"me")
    encoded = int_array(payload)  # "tamper-me" -> "tamper-mE": a fixint stays a fixint
    _rewrite_frame(store_dir, victim, encoded, encoded[:-1] + b"E")
    with Store.open_read_only(StoreConfig(store_dir)) as store:  # every frame CRC is valid
        assert store.read_raw(victim.event_id).endswith(b"mE")

    code, out, _ = run("verify", store_dir)
    assert code == 1
    assert out.startswith("DAMAGED  1 problem(s)")
    assert f"content hash mismatch: event {victim.event_id:032x}" in out
    assert f"segment {victim.segment_id} offset {victim.offset}" in out
    # dump still prints it (dump reads; verify judges)
    code, out, _ = run("dump", store_dir, "--entity", "victim")
    assert code == 0
    assert json_lines(out)[0]["payload"] == {"note": "tamper-mE"}


@pytest.mark.parametrize("checkpoint", [True, False], ids=["checkpoint", "frames"])
def test_verify_finds_broken_chain_link_with_fixed_crc(
    store_dir: Path, run: Run, checkpoint: bool
) -> None:
    if not checkpoint:  # the index is rebuilt from the frames at open
        for name in CHECKPOINT_FILES:
            (store_dir / name).unlink(missing_ok=True)
    _, second = [e for e in all_entries(store_dir) if e.entity == "note:1"]
    old = int_array(second.prev_hash)
    new = old[:-1] + bytes([old[-1] ^ 0x01])  # a fixint stays a fixint, a cc XX stays cc XX
    _rewrite_frame(store_dir, second, old, new)

    code, out, _ = run("verify", store_dir)
    assert code == 1
    where = f"event {second.event_id:032x} (note:1@scope:notes"
    # The stored prev_hash links to nothing, whichever way the index was loaded.
    assert f"broken chain link: {where}" in out
    if checkpoint:  # and the checkpointed index disagrees with the frame
        assert out.startswith("DAMAGED  2 problem(s)")
        assert f"index mismatch: {where}" in out
    else:
        assert out.startswith("DAMAGED  1 problem(s)")


@pytest.mark.parametrize("checkpoint", [True, False], ids=["checkpoint", "frames"])
def test_verify_corrupt_sealed_segment(store_dir: Path, run: Run, checkpoint: bool) -> None:
    if not checkpoint:
        for name in CHECKPOINT_FILES:
            (store_dir / name).unlink(missing_ok=True)
    segment = store_dir / "000001.fbat"
    data = bytearray(segment.read_bytes())
    first_frame = read_header(1, bytes(data))
    data[first_frame + 20] ^= 0xFF  # inside the first frame; its CRC no longer matches
    segment.write_bytes(bytes(data))

    code, out, err = run("verify", store_dir)
    assert code == 1
    assert "Traceback" not in out + err
    damage = "CorruptSegment: corrupt segment 1: the damaged frame at offset"
    if checkpoint:  # the open trusts the checkpoint; verify's own segment scan finds it
        assert out.startswith("DAMAGED  ")
        assert f"  segment 1: {damage}" in out
    else:  # the open scans the frames and refuses
        assert out.startswith(f"DAMAGED  the store refuses to open: {damage}")
    assert "[segment 1]" in out
    code, _, err = run("dump", store_dir)
    assert code == 1
    name = err.removeprefix("batpak: ").split(":")[0]
    assert name in {"CorruptSegment", "CorruptFrame", "CrcMismatch"}  # open or read refuses
    assert "[segment 1" in err


# -- errors -------------------------------------------------------------------------------


def test_locked_store_exits_2(store_dir: Path, run: Run) -> None:
    with Store.open(StoreConfig(store_dir)):
        for command in ("inspect", "verify", "dump", "compact"):
            code, out, err = run(command, store_dir)
            assert (code, out) == (2, ""), command
            assert err == f"batpak: {store_dir} is locked by another process\n", command


def test_missing_and_foreign_directories_exit_2(tmp_path: Path, run: Run) -> None:
    missing = tmp_path / "nope"
    for command in ("inspect", "verify", "dump", "tail", "compact"):
        code, _, err = run(command, missing)
        assert code == 2, command
        assert err == f"batpak: {missing}: no such directory\n"
    assert not missing.exists()  # compact did not create it
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    code, _, err = run("inspect", foreign)
    assert code == 2
    assert "is not a batpak store" in err
    assert list(foreign.iterdir()) == []  # not even a lock file
    a_file = tmp_path / "file"
    a_file.write_text("x")
    code, _, err = run("dump", a_file)
    assert (code, err) == (2, f"batpak: {a_file} is not a directory\n")


def test_usage_errors_exit_2(store_dir: Path, run: Run) -> None:
    assert run()[0] == 2
    assert run("frobnicate", store_dir)[0] == 2
    code, _, err = run("dump", store_dir, "--kind", "0x1FFFF")
    assert code == 2
    assert "outside 0x0000..0xFFFF" in err
    assert run("dump", store_dir, "--limit", "-1")[0] == 2
    assert run("tail", store_dir, "--interval", "0")[0] == 2
    assert run("compact", store_dir, "--min-segments", "0")[0] == 2
    code, out, _ = run("--help")
    assert code == 0
    assert "inspect" in out


# -- dump ---------------------------------------------------------------------------------


def test_dump_everything_in_commit_order(store_dir: Path, run: Run) -> None:
    entries = all_entries(store_dir)
    code, out, err = run("dump", store_dir)
    assert (code, err) == (0, "")
    rows = json_lines(out)
    assert [r["global_sequence"] for r in rows] == [e.global_sequence for e in entries]
    assert [r["event_id"] for r in rows] == [f"{e.event_id:032x}" for e in entries]
    assert all(r["entity"] != "_batch" for r in rows)
    keys = {
        "global_sequence",
        "event_id",
        "correlation_id",
        "causation_id",
        "entity",
        "scope",
        "kind",
        "timestamp_us",
        "wall_ms",
        "sequence",
        "payload_version",
        "content_hash",
        "prev_hash",
        "extensions",
        "payload",
    }
    assert all(set(r) == keys for r in rows)
    by_id = {r["event_id"]: r for r in rows}
    for entry in entries:
        row = by_id[f"{entry.event_id:032x}"]
        assert row["content_hash"] == entry.event_hash.hex()
        assert row["prev_hash"] == entry.prev_hash.hex()
        assert row["kind"] == f"0x{entry.event_kind:04X}"
        assert row["sequence"] == entry.clock
        assert row["wall_ms"] == entry.wall_ms
    moved = [r for r in rows if r["kind"] == "0xF001"]
    assert [m["payload"] for m in moved] == [{"x": 10, "y": 20}] * 2
    assert [m["payload_version"] for m in moved] == [1, 1]
    assert [m["sequence"] for m in moved] == [0, 1]


def test_dump_payloads_ids_and_extensions_as_json(store_dir: Path, run: Run) -> None:
    code, out, _ = run("dump", store_dir, "--entity", "note:1")
    assert code == 0
    first, second = json_lines(out)
    assert first["causation_id"] is None
    assert first["correlation_id"] == first["event_id"]
    assert second["causation_id"] == first["event_id"]
    assert second["extensions"] == {"app.trace": "01fe"}
    assert second["prev_hash"] == first["content_hash"]
    assert second["payload"] == {"body": "again"}
    code, out, _ = run("dump", store_dir, "--kind", "0xF102")
    (blob,) = json_lines(out)
    assert blob["payload"] == {"1": {"$bytes": "00ff"}, "list": [1.5, None, True]}


def test_dump_filters(store_dir: Path, run: Run) -> None:
    entries = all_entries(store_dir)

    def dumped(*options: str) -> list[int]:
        code, out, _ = run("dump", store_dir, *options)
        assert code == 0
        return [row["global_sequence"] for row in json_lines(out)]

    def expected(keep: Callable[[batpak.IndexEntry], bool]) -> list[int]:
        return [e.global_sequence for e in entries if keep(e)]

    assert dumped("--entity", "note") == expected(lambda e: e.entity.startswith("note:"))
    assert dumped("--entity", "note:2") == expected(lambda e: e.entity == "note:2")
    assert dumped("--scope", "scope:notes") == expected(lambda e: e.scope == "scope:notes")
    assert dumped("--kind", "0xf101") == expected(lambda e: e.event_kind == NOTE)
    assert dumped("--kind", "61697") == expected(lambda e: e.event_kind == NOTE)
    assert dumped("--kind", "0x0008") == expected(lambda e: e.event_kind == 0x0008)
    assert dumped("--after", "4") == expected(lambda e: e.global_sequence > 4)
    assert dumped("--limit", "3") == expected(lambda e: True)[:3]
    assert dumped("--limit", "0") == []
    assert dumped("--after", "2", "--limit", "2") == expected(lambda e: e.global_sequence > 2)[:2]
    both = dumped("--scope", "scope:notes", "--kind", "0xF101", "--entity", "note")
    assert both == expected(
        lambda e: e.scope == "scope:notes" and e.event_kind == NOTE and e.entity.startswith("note:")
    )
    assert len(both) == 2
    assert dumped("--entity", "nobody") == []


def test_dump_pages_through_many_events(tmp_path: Path, run: Run) -> None:
    path = tmp_path / "many"
    with Store.open(StoreConfig(path)) as store:
        for i in range(2500):
            store.append(Coordinate(f"n:{i % 3}", "s"), NOTE, i)
    code, out, _ = run("dump", path, "--entity", "n")
    assert code == 0
    rows = json_lines(out)
    assert [r["payload"] for r in rows] == list(range(2500))
    code, out, _ = run("dump", path, "--after", "10", "--limit", "1500")
    assert [r["global_sequence"] for r in json_lines(out)] == list(range(11, 1511))


def test_json_value_edge_cases() -> None:
    ext = msgspec.msgpack.decode(msgspec.msgpack.encode(msgspec.msgpack.Ext(5, b"\x01")))
    moment = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    value = {
        (1, 2): float("nan"),
        None: float("-inf"),
        b"\xab": [ext, moment, bytearray(b"\x02")],
        2: {"x": 1.25},
    }
    assert json_value(value) == {
        "[1,2]": {"$float": "nan"},
        "null": {"$float": "-inf"},
        "ab": [
            {"$ext": {"type": 5, "data": "01"}},
            {"$timestamp": "2024-01-02T03:04:05+00:00"},
            {"$bytes": "02"},
        ],
        "2": {"x": 1.25},
    }
    json.dumps(json_value(value), allow_nan=False)


# -- tail ---------------------------------------------------------------------------------


def test_tail_without_follow_equals_dump(store_dir: Path, run: Run) -> None:
    code, dumped, _ = run("dump", store_dir)
    assert code == 0
    code, tailed, err = run("tail", store_dir)
    assert (code, err) == (0, "")
    assert tailed == dumped
    assert '"_batch"' not in tailed
    assert len(json_lines(tailed)) == len(all_entries(store_dir))


def test_tail_after_compaction_equals_dump(store_dir: Path, run: Run) -> None:
    assert run("compact", store_dir)[0] == 0
    code, dumped, _ = run("dump", store_dir)
    assert code == 0
    assert run("tail", store_dir)[1] == dumped


def _frames(path: Path, segment_id: int) -> list[tuple[int, int, int, str]]:
    """(offset, length, kind, entity) of every frame before the segment's footer."""
    data = path.read_bytes()
    start = read_header(segment_id, data)
    footer = read_footer(segment_id, data, start)
    end = len(data) if footer is None else footer.string_table_offset
    frames, _ = scan_frames(segment_id, data, start, end, "fail_closed")
    return [(f.offset, f.length, f.frame.event.header.event_kind, f.frame.entity) for f in frames]


def test_tail_releases_batch_items_only_at_commit(store_dir: Path, run: Run) -> None:
    segment = store_dir / "000003.fbat"
    frames = _frames(segment, 3)
    (commit,) = [f for f in frames if f[2] == 0x0007 and f[3] == "_batch"]
    whole = segment.read_bytes()
    commit_frame = whole[commit[0] : commit[0] + commit[1]]
    segment.write_bytes(whole[: commit[0]])  # a crash just before the COMMIT marker

    # a cold start discards the unfinished batch, and so does tail
    code, dumped, _ = run("dump", store_dir)
    assert code == 0
    assert run("tail", store_dir)[1] == dumped
    assert "batch:1" not in dumped

    seen: list[dict[str, Any]] = []
    tailer = Tailer(store_dir, seen.append)
    tailer.poll()
    assert [r["global_sequence"] for r in seen] == [
        r["global_sequence"] for r in json_lines(dumped)
    ]
    assert tailer.poll() == 0
    with open(segment, "ab") as handle:  # the COMMIT arrives in two halves
        handle.write(commit_frame[:10])
    assert tailer.poll() == 0
    with open(segment, "ab") as handle:
        handle.write(commit_frame[10:])
    assert tailer.poll() == 3
    items = seen[-3:]
    assert [r["entity"] for r in items] == ["batch:1"] * 3
    assert [r["payload"] for r in items] == [{"i": 0}, {"i": 1}, {"i": 2}]
    last = json_lines(dumped)[-1]["global_sequence"]
    assert [r["global_sequence"] for r in items] == [last + 1, last + 2, last + 3]


def test_tail_drops_a_batch_that_a_crash_cut_short(store_dir: Path, run: Run) -> None:
    segment = store_dir / "000003.fbat"
    frames = _frames(segment, 3)
    begin = next(i for i, f in enumerate(frames) if f[2] == 0x0006 and f[3] == "_batch")
    segment.write_bytes(segment.read_bytes()[: frames[begin + 2][0]])  # BEGIN and one item
    with Store.open(StoreConfig(store_dir)) as store:  # the next session starts segment 4
        store.append(Coordinate("after:1", "scope:notes"), NOTE, {"after": True})
    code, dumped, _ = run("dump", store_dir)
    assert code == 0
    assert run("tail", store_dir)[1] == dumped
    rows = json_lines(dumped)
    assert "batch:1" not in {r["entity"] for r in rows}
    assert [r["kind"] for r in rows].count("0x0008") == 4  # the new session's OPEN survives
    assert rows[-2]["entity"] == "after:1"


class _Lines(io.StringIO):
    """A thread-safe text sink that hands out complete lines."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._text = ""

    def write(self, text: str) -> int:
        with self._lock:
            self._text += text
        return len(text)

    def lines(self) -> list[str]:
        with self._lock:
            return self._text.splitlines()


def _wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_follow_in_a_thread_sees_a_live_writer_rotate(tmp_path: Path, run: Run) -> None:
    path = tmp_path / "live"
    sink = _Lines()
    stop = threading.Event()
    path.mkdir()
    worker = threading.Thread(
        target=follow, args=(path, sink), kwargs={"interval": 0.02, "stop": stop}
    )
    worker.start()
    try:
        config = StoreConfig(path, segment_max_bytes=4096)
        with Store.open(config) as store:
            for i in range(40):
                store.append(Coordinate("live:1", "s"), NOTE, {"i": i, "pad": "x" * 200})
            _wait_for(lambda: len(sink.lines()) >= 41, "the live events")
            assert len(list(path.glob("*.fbat"))) > 2  # it followed across rotations
        code, dumped, _ = run("dump", path)
        assert code == 0
        _wait_for(lambda: len(sink.lines()) == len(dumped.splitlines()), "CLOSE_COMPLETED")
    finally:
        stop.set()
        worker.join(timeout=DEADLINE)
    assert not worker.is_alive()
    assert sink.lines() == dumped.splitlines()


@pytest.fixture
def tail_process(store_dir: Path) -> Iterator[tuple[subprocess.Popen[str], queue.Queue[str]]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "batpak", "tail", str(store_dir), "--follow", "--interval", "0.05"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env_with_src(),
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        yield process, lines
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=DEADLINE)
        reader.join(timeout=DEADLINE)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _take(lines: queue.Queue[str], count: int) -> list[str]:
    taken: list[str] = []
    deadline = time.monotonic() + DEADLINE
    while len(taken) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"tail printed {len(taken)} of {count} lines in time")
        try:
            taken.append(lines.get(timeout=left))
        except queue.Empty:
            continue
    return taken


def test_tail_follow_subprocess_sees_appends_and_stops_on_ctrl_c(
    store_dir: Path,
    tail_process: tuple[subprocess.Popen[str], queue.Queue[str]],
    run: Run,
) -> None:
    process, lines = tail_process
    before = len(all_entries(store_dir))
    printed = _take(lines, before)
    with Store.open(StoreConfig(store_dir, segment_max_bytes=4096)) as store:
        store.append(Coordinate("live:1", "scope:live"), NOTE, {"n": 1})
        store.append_batch(
            [
                BatchAppendItem.new(Coordinate("live:2", "scope:live"), NOTE, {"n": n})
                for n in (2, 3)
            ]
        )
        for n in range(4, 30):
            store.append(Coordinate("live:1", "scope:live"), NOTE, {"n": n, "pad": "y" * 300})
    code, dumped, _ = run("dump", store_dir)
    assert code == 0
    expected = dumped.splitlines(keepends=True)
    printed += _take(lines, len(expected) - before)
    assert printed == expected
    assert process.poll() is None  # still following
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=DEADLINE) == 0
    assert process.stderr is not None
    assert process.stderr.read() == ""
    assert lines.empty()


# -- compact ------------------------------------------------------------------------------


def test_compact_merges_sealed_segments(store_dir: Path, run: Run) -> None:
    code, before, _ = run("dump", store_dir)
    code, out, err = run("compact", store_dir, "--min-segments", "2")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "outcome            performed",
        "segments removed   2",
        out.splitlines()[2],
        "merged segment id  1",
        "events dropped     0",
    ]
    assert int(out.splitlines()[2].split()[-1]) > 0  # bytes reclaimed
    code, after, _ = run("dump", store_dir)
    assert after.startswith(before)  # same events; the compact session added OPEN and CLOSE
    assert len(after.splitlines()) == len(before.splitlines()) + 2
    assert run("verify", store_dir)[0] == 0
    code, out, _ = run("inspect", store_dir, "--json")
    assert [s["id"] for s in json.loads(out)["segments"]] == [1, 4]


def test_compact_skips_below_min_segments(store_dir: Path, run: Run) -> None:
    code, out, _ = run("compact", store_dir, "--min-segments", "99")
    assert code == 0
    assert out.splitlines()[0] == "outcome            skipped"
    assert "merged segment id  none" in out
