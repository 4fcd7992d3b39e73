"""What every workload shares: the 200-byte record, sizes for quick and full runs, results.

Targets are ratios measured in one run, so every workload measures its own side and its
peer's side here, in the same process, on the same payload bytes.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from batpak import event_payload


@event_payload(category=0xF, type_id=0x0B7, version=1)
class Order(msgspec.Struct):
    """The typed form of the record (workload 4 decodes into it)."""

    id: int
    customer: str
    email: str
    amount_cents: int
    currency: str
    items: list[str]
    status: str
    note: str


ORDER_KIND = 0xF0B7


def record(n: int) -> Order:
    """Record ``n``: 200 bytes as JSON, about 160 as MessagePack, the same for every side."""
    return Order(
        id=1_000_000 + n % 9_000_000,
        customer=f"customer-{n % 100_000:06d}",
        email=f"buyer{n % 100_000:06d}@example.com",
        amount_cents=10_000 + n % 90_000,
        currency="EUR",
        items=["sku-000123", "sku-000456", "sku-000789"],
        status="paid",
        note="n" * 10,
    )


def record_dict(n: int) -> dict[str, Any]:
    return msgspec.to_builtins(record(n))  # type: ignore[no-any-return]


def entity(n: int) -> str:
    return f"order:{n % 5000}"


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much each workload does; ``quick`` keeps the whole run under two minutes."""

    quick: bool
    durable_appends: int  # workload 1, per round and side
    rounds: int  # workloads 1 and 2 alternate the sides this many times
    group_threads: int
    group_appends_per_thread: int
    batch_events: int  # workload 3
    batch_size: int
    replay_events: int  # workloads 4, 5, 8 share one store of this many events
    eventsourcing_events: int
    server_seconds: float  # workloads 6 and 7, per side and op
    http_clients: int
    line_clients: int

    @classmethod
    def tiny(cls) -> Sizes:
        """Sizes for the runner's smoke test: every code path, no meaningful figure."""
        return cls(True, 10, 1, 4, 3, 600, 256, 2000, 500, 0.3, 4, 4)

    @classmethod
    def for_mode(cls, quick: bool) -> Sizes:
        if quick:
            return cls(True, 150, 2, 32, 10, 20_480, 256, 50_000, 20_000, 2.0, 64, 32)
        return cls(False, 1500, 3, 32, 150, 200_000, 256, 1_000_000, 1_000_000, 8.0, 64, 32)


@dataclass(slots=True)
class Check:
    """One row of the results table: this project's figure against its peer's and a target."""

    workload: int
    name: str
    unit: str
    this: float
    peer: float | None
    target: str
    passed: bool | None  # None: a figure shown for context, with no target
    ratio: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


def ratio_check(
    workload: int,
    name: str,
    unit: str,
    this: float,
    peer: float,
    at_least: float,
    details: dict[str, Any] | None = None,
) -> Check:
    """A ``this / peer >= at_least`` target (both are rates: more is better)."""
    ratio = this / peer if peer else float("inf")
    return Check(
        workload,
        name,
        unit,
        this,
        peer,
        f">= {at_least:g}x",
        ratio >= at_least,
        ratio,
        details or {},
    )


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def median(values: list[float]) -> float:
    return statistics.median(values)


def machine() -> dict[str, Any]:
    """The facts a reader needs to compare two runs: CPU, cores, Python, load."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "load_average": list(os.getloadavg()),
    }
