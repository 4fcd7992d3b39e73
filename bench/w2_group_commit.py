"""Workload 2: durable appends from 32 threads sharing fsyncs (group commit).

The peer is workload 1 of this project (one caller, one fsync per append), measured again in
this run, round by round beside the group-commit side, so both see the same disk and load.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from batpak import AppendOptions, Coordinate, DurabilityGate, IdempotencyKey, Store, StoreConfig
from bench.common import Check, Sizes, median, ratio_check, record
from bench.w1_durable_append import durable_rate


def group_side(path: Path, threads: int, per_thread: int) -> float:
    """Events per second of ``threads`` callers doing gated, keyed appends concurrently."""
    config = StoreConfig(path).with_group_commit(0)
    start = threading.Barrier(threads + 1)
    errors: list[BaseException] = []
    with Store.open(config) as store:

        def caller(t: int) -> None:
            coord = Coordinate(f"order:{t}", "bench")
            work = [
                (
                    record(t * per_thread + i),
                    AppendOptions(
                        idempotency_key=IdempotencyKey.for_operation("w2", [str(t), str(i)]),
                        gate=DurabilityGate(60.0),
                    ),
                )
                for i in range(per_thread)
            ]
            start.wait()
            try:
                for value, options in work:
                    store.append_typed(coord, value, options)
            except BaseException as exc:  # reported after the join
                errors.append(exc)

        workers = [threading.Thread(target=caller, args=(t,)) for t in range(threads)]
        for worker in workers:
            worker.start()
        start.wait()
        started = time.perf_counter()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return threads * per_thread / elapsed


def run(sizes: Sizes, workdir: Path) -> list[Check]:
    single: list[float] = []
    group: list[float] = []
    for round_ in range(sizes.rounds):
        single.append(durable_rate(workdir / f"w2-single-{round_}", sizes.durable_appends))
        group.append(
            group_side(
                workdir / f"w2-group-{round_}", sizes.group_threads, sizes.group_appends_per_thread
            )
        )
    details = {
        "threads": sizes.group_threads,
        "appends_per_thread": sizes.group_appends_per_thread,
        "group_commit_max_batch": 0,
        "single_rounds": single,
        "group_rounds": group,
    }
    return [
        ratio_check(
            2,
            "group commit, 32 threads vs workload 1",
            "events/s",
            median(group),
            median(single),
            5.0,
            details,
        )
    ]
