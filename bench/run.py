"""Run issue 7's workloads beside their peers, print the table, write ``bench-results.json``.

    python -m bench.run [--quick] [--only 1,3] [--out bench-results.json] [--dir DIR]

Every target is a ratio of two figures taken in this run (or an absolute bound), so the
table holds for this machine at this load; the JSON records the machine, the load average
around each workload and the fsync rate the disk gave workload 1's raw loop.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import fixture
from bench.common import Check, Sizes, machine

Plain = Callable[[Sizes, Path], list[Check]]
Large = Callable[[Sizes, Path, fixture.LargeStore], list[Check]]


def _workloads() -> dict[int, tuple[str, Plain | None, Large | None]]:
    from bench import (  # noqa: PLC0415 - peers import only when a workload needs them
        w1_durable_append,
        w2_group_commit,
        w3_batch,
        w4_replay,
        w5_reopen,
        w6_batenbase,
        w7_netbat,
        w8_memory,
    )

    return {
        1: ("durable single append", w1_durable_append.run, None),
        2: ("group commit, 32 threads", w2_group_commit.run, None),
        3: ("batched append", w3_batch.run, None),
        4: ("replay with typed decode", None, w4_replay.run),
        5: ("reopen", None, w5_reopen.run),
        6: ("BatenBase GET/PUT", w6_batenbase.run, None),
        7: ("NETBAT/1 heartbeat, bank.commit", w7_netbat.run, None),
        8: ("index memory", None, w8_memory.run),
    }


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def table(checks: list[Check]) -> str:
    rows = [("#", "check", "this", "peer", "unit", "ratio", "target", "result")]
    for c in checks:
        result = "-" if c.passed is None else ("PASS" if c.passed else "MISS")
        ratio = "-" if c.ratio is None else f"{c.ratio:.2f}x"
        rows.append(
            (str(c.workload), c.name, _fmt(c.this), _fmt(c.peer), c.unit, ratio, c.target, result)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under two minutes")
    parser.add_argument("--only", default="", help="comma-separated workload numbers")
    parser.add_argument("--out", default="bench-results.json", type=Path)
    parser.add_argument("--dir", default=None, type=Path, help="scratch directory (kept)")
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # smoke test
    args = parser.parse_args(argv)
    sizes = Sizes.tiny() if args.tiny else Sizes.for_mode(args.quick)
    workloads = _workloads()
    chosen = sorted(int(n) for n in args.only.split(",") if n) or sorted(workloads)
    scratch = args.dir or Path(tempfile.mkdtemp(prefix="batpak-bench-"))
    scratch.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "mode": "tiny" if args.tiny else "quick" if args.quick else "full",
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "sizes": dataclasses.asdict(sizes),
        "workloads": {},
    }
    checks: list[Check] = []
    large: fixture.LargeStore | None = None
    try:
        for number in chosen:
            title, plain, needs_large = workloads[number]
            print(f"[{time.strftime('%H:%M:%S')}] workload {number}: {title}", flush=True)
            load_before = os.getloadavg()
            started = time.perf_counter()
            error = None
            try:
                if needs_large is not None:
                    if large is None:
                        large = fixture.build(scratch, sizes.replay_events)
                        report["large_store"] = {
                            "events": large.events,
                            "build_seconds": large.build_seconds,
                        }
                    found = needs_large(sizes, scratch, large)
                else:
                    assert plain is not None
                    found = plain(sizes, scratch)
            except Exception as exc:  # one broken workload must not lose the others' figures
                traceback.print_exc()
                error = f"{type(exc).__name__}: {exc}"
                found = [Check(number, f"{title}: ERROR {error[:60]}", "-", 0.0, None, "-", False)]
            checks.extend(found)
            report["workloads"][str(number)] = {
                "title": title,
                "seconds": time.perf_counter() - started,
                "load_average_before": list(load_before),
                "load_average_after": list(os.getloadavg()),
                "checks": [dataclasses.asdict(c) for c in found],
                "error": error,
            }
            if number == 1 and error is None:
                report["fsync_per_s"] = found[0].peer
    finally:
        if args.dir is None:
            shutil.rmtree(scratch, ignore_errors=True)
    report["finished_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    report["load_average_end"] = list(os.getloadavg())
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    info = report["machine"]
    print()
    print(f"{info['cpu']}, {info['cores']} cores, Python {info['python']}, {report['mode']} run")
    print(f"load average at start {info['load_average']}, at end {report['load_average_end']}")
    if "fsync_per_s" in report:
        print(f"fsync rate (raw write+fsync loop): {report['fsync_per_s']:,.0f}/s")
    print(table(checks))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
