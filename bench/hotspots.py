"""Profiles of this project's side of a workload, with py-spy (all threads, native speed).

    python -m bench.hotspots N [--seconds S] [--wall]   # writes bench/profiles/wN-*.txt

Library workloads (1-4, 8) run their batpak side in a child interpreter under ``py-spy
record``; server workloads (6, 7) run the server under py-spy while this process drives the
same load as ``bench.run``. Each report lists the top functions by own time and by total
time (time with the function on the stack), from py-spy's collapsed stacks: by default only
samples of the thread holding the GIL (Python CPU time); ``--wall`` samples every thread, so
fsync and other blocking calls show. Workload 8 lists tracemalloc's biggest allocation sites.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from bench import fixture, load, servers
from bench.common import Sizes

PROFILES = Path(__file__).resolve().parent / "profiles"
RATE = 250  # samples per second
TOP = 30


def _pyspy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed (the bench nox session installs it)")
    return found


def _function(frame: str) -> str:
    """``name (path:line)`` -> ``name (short/path)``: one row per function, not per line."""
    found = re.match(r"(.*) \((.*?)(?::\d+)?\)$", frame)
    if not found:
        return frame
    name, path = found.groups()
    for marker in ("site-packages/", "/src/", "/lib/python3.11/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


WAITING = re.compile(
    r"^(Condition\.wait|Event\.wait|Thread\._wait_for_tstate_lock|\w*Selector\.select|"
    r"Semaphore\.acquire|SimpleQueue\.get|Reply\.result|_worker) "
)

LIFECYCLE = (
    "Store.open ",
    "Store.open_read_only ",
    "Store.close ",
    "Store.__exit__ ",
    "Writer._run_close ",
)


def summarize(raw: Path, title: str) -> str:
    """Top functions of the samples that were running Python (not blocked, not importing)."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = waiting = importing = lifecycle = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [
            _function(f) for f in stack.split(";") if not f.startswith(("process ", "thread "))
        ]
        if not frames:
            continue
        if WAITING.match(frames[-1]):
            waiting += count
            continue
        if any(f.startswith("_find_and_load ") for f in frames):
            importing += count
            continue
        if any(f.startswith(LIFECYCLE) for f in frames):
            lifecycle += count  # open and close are outside every timed region
            continue
        samples += count
        own[frames[-1]] += count
        for name in set(frames):
            total[name] += count
    out = [
        f"# {title}",
        f"# {samples} running samples at {RATE}/s (py-spy); left out: "
        f"{waiting} blocked on a lock, queue or selector, {importing} importing, "
        f"{lifecycle} opening or closing the store (not timed by the workload)",
        "",
    ]
    out.append("## own time (the function itself was running)")
    out += [f"{100 * n / samples:6.1f}%  {name}" for name, n in own.most_common(TOP)]
    out.append("")
    out.append("## total time (the function was on the stack)")
    out += [f"{100 * n / samples:6.1f}%  {name}" for name, n in total.most_common(TOP)]
    return "\n".join(out) + "\n"


def _record(raw: Path, wall: bool) -> list[str]:
    """py-spy's command line; without ``wall`` it samples only the thread holding the GIL."""
    return [
        _pyspy(),
        "record",
        "-r",
        str(RATE),
        "-f",
        "raw",
        "--threads",
        *([] if wall else ["--gil"]),
        "-o",
        str(raw),
        "--",
    ]


def _library(number: int, raw: Path, scratch: Path, wall: bool) -> None:
    code = f"from bench.hotspots import target; target({number}, {str(scratch)!r})"
    env = {**os.environ, "PYTHONPATH": str(servers.ROOT)}
    import subprocess  # noqa: PLC0415

    subprocess.run([*_record(raw, wall), sys.executable, "-c", code], check=True, env=env)


def target(number: int, scratch_text: str) -> None:
    """The batpak side alone, at a size that samples well (run under py-spy)."""
    from bench import w1_durable_append, w2_group_commit, w3_batch, w4_replay  # noqa: PLC0415

    scratch = Path(scratch_text)
    if number == 1:
        w1_durable_append.durable_rate(scratch / "p1", 3000)
    elif number == 2:
        w2_group_commit.group_side(scratch / "p2", 32, 1000)
    elif number == 3:
        w3_batch.batpak_side(scratch / "p3", 100_000, 256)
    elif number == 4:
        w4_replay.batpak_side(scratch / "large-store")
    else:
        raise SystemExit(f"no library target for workload {number}")


def _server(
    number: int, sizes: Sizes, raw: Path, scratch: Path, op: str, seconds: float, wall: bool
) -> None:
    from bench import w6_batenbase, w7_netbat  # noqa: PLC0415

    if number == 6:
        argv = ["-m", "batenbase", "serve", "--data", str(scratch / f"p6-{op}"), "--port", "0"]
        ready = r"(bbt_\S+)"
    else:
        argv = ["-m", "refhost", "serve", "--store", str(scratch / f"p7-{op}")]
        ready = r"REFHOST_READY .*\"port\": (\d+)"
    with servers.child(argv, ready, scratch / f"p{number}-{op}.log", prefix=_record(raw, wall)) as (
        pid,
        lines,
    ):
        if number == 6:
            port, token = w6_batenbase._batenbase_token(lines)
            get = w6_batenbase._get(token)

            def request(client: int, n: int) -> bytes:
                return get if op == "get" else w6_batenbase._put(token, client, n)

            load.http("127.0.0.1", port, request, sizes.http_clients, seconds)
        else:
            port = servers.port_of(lines, ready)
            make = w7_netbat.heartbeat if op == "heartbeat" else w7_netbat.commit
            load.lines("127.0.0.1", port, make, sizes.line_clients, seconds)
        for python in _children(pid):
            os.kill(python, signal.SIGINT)


MEMORY_PROBE = r"""
import gc, sys, tracemalloc
from batpak import Region, Store, StoreConfig
tracemalloc.start(4)
store = Store.open_read_only(StoreConfig(sys.argv[1]))
gc.collect()
total = tracemalloc.get_traced_memory()[0]
snapshot = tracemalloc.take_snapshot()
events = len(store.query_entries_after(Region.all(), None, 10**9))
print(f"# {total:,} bytes held after the open, {events:,} events, {total / events:.0f} B/event")
for stat in snapshot.statistics("traceback")[:12]:
    print(f"{stat.size:>14,} B {stat.count:>10,} blocks")
    for line in stat.traceback.format()[-6:]:
        print("    " + line)
store.close()
"""


def _memory(scratch: Path, events: int) -> str:
    """tracemalloc's biggest allocation sites after opening, with and without checkpoint."""
    import subprocess  # noqa: PLC0415

    large = fixture.build(scratch, events)
    env = {**os.environ, "PYTHONPATH": str(servers.ROOT)}
    parts = []
    for label in ("opened from its checkpoint", "rebuilt from segments (checkpoint aside)"):
        if label.startswith("rebuilt"):
            (large.store / "index.cols").rename(large.store / "index.cols.aside")
        out = subprocess.run(
            [sys.executable, "-c", MEMORY_PROBE, str(large.store)],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        )
        parts.append(f"## index {label}\n{out.stdout}")
    return f"# workload 8: where the index's memory goes ({events:,} events)\n\n" + "\n".join(parts)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.hotspots", description=__doc__.splitlines()[0])
    parser.add_argument("workload", type=int)
    parser.add_argument("--seconds", type=float, default=10.0, help="server load per op")
    parser.add_argument("--events", type=int, default=300_000, help="store size for workload 4")
    parser.add_argument(
        "--wall", action="store_true", help="sample every thread (waits on I/O show as fsync)"
    )
    args = parser.parse_args(argv)
    sizes = Sizes.for_mode(quick=False)
    PROFILES.mkdir(exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="batpak-hotspots-"))
    try:
        jobs: list[tuple[str, Path]] = []
        if args.workload == 8:
            (PROFILES / "w8-memory.txt").write_text(_memory(scratch, args.events))
            print("wrote bench/profiles/w8-memory.txt")
            return 0
        if args.workload in (6, 7):
            ops = ["get", "put"] if args.workload == 6 else ["heartbeat", "commit"]
            for op in ops:
                raw = scratch / f"w{args.workload}-{op}.raw"
                _server(args.workload, sizes, raw, scratch, op, args.seconds, args.wall)
                jobs.append((op, raw))
        else:
            if args.workload == 4:
                fixture.build(scratch, args.events)
            raw = scratch / f"w{args.workload}.raw"
            _library(args.workload, raw, scratch, args.wall)
            jobs.append(("batpak", raw))
        for op, raw in jobs:
            view = "-wall" if args.wall else ""
            name = f"w{args.workload}-{op}{view}.txt"
            how = "every thread" if args.wall else "only the thread holding the GIL"
            text = summarize(raw, f"workload {args.workload}, {op}: this project's side ({how})")
            (PROFILES / name).write_text(text)
            print(f"wrote bench/profiles/{name}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
