"""A bounded HTTP load on loopback against a real `batenbase serve` process.

Many clients (threads, one keep-alive httpx connection each) spread over two tenants mix
writes, reads, prefix scans, events and tenant info for a fixed time. Each client checks its
own reads (a GET of its own key returns what it last wrote: read-your-writes). At the end
every acknowledged write is read back (listings and event scans, paged), and each tenant's
acknowledged sequences must be distinct. The result: errors (any non-2xx, transport error or
wrong read), lost writes, and p50/p99 latencies per operation.

    python conformance/load.py [--duration 30] [--clients 16] [--json load.json]

exits 1 on any error or lost write. ``nox -s load`` runs it; the conformance suite runs a
short one (test_batenbase_load.py).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

OPS = ("put", "overwrite", "get", "list", "event", "scan", "tenant")
WEIGHTS = (25, 10, 30, 10, 10, 10, 5)


@dataclass
class ClientLog:
    """What one client did: latencies per op, errors, and what the server acknowledged."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {op: [] for op in OPS})
    errors: list[str] = field(default_factory=list)
    blocks: dict[str, Any] = field(default_factory=dict)  # key -> last acknowledged data
    keys: list[str] = field(default_factory=list)  # the keys of `blocks`, in write order
    events: dict[int, Any] = field(default_factory=dict)  # seq -> details
    seqs: list[int] = field(default_factory=list)  # sequences of every acknowledged write


@dataclass
class LoadResult:
    duration_s: float
    clients: int
    ops: dict[str, dict[str, float]]
    errors: list[str]
    lost: list[str]
    acknowledged_writes: int

    def ok(self) -> bool:
        return not self.errors and not self.lost and self.acknowledged_writes > 0

    def to_json(self) -> dict[str, Any]:
        return {
            "duration_s": round(self.duration_s, 3),
            "clients": self.clients,
            "ops": self.ops,
            "errors": self.errors[:50],
            "error_count": len(self.errors),
            "lost": self.lost[:50],
            "lost_count": len(self.lost),
            "acknowledged_writes": self.acknowledged_writes,
        }

    def table(self) -> str:
        lines = [
            f"BatenBase load: {self.clients} clients, {self.duration_s:.1f} s, "
            f"{len(self.errors)} errors, {len(self.lost)} lost, "
            f"{self.acknowledged_writes} acknowledged writes",
            f"{'op':<10}{'count':>8}{'ops/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}",
        ]
        for op, s in self.ops.items():
            lines.append(
                f"{op:<10}{int(s['count']):>8}{s['per_s']:>9.1f}"
                f"{s['p50_ms']:>9.2f}{s['p99_ms']:>9.2f}{s['max_ms']:>9.2f}"
            )
        return "\n".join(lines)


def _percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return 0.0
    rank = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
    return ordered[rank]


def _client(url: str, token: str, name: str, seed: int, until: float, log: ClientLog) -> None:
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        i = 0
        while time.monotonic() < until:
            i += 1
            op = rng.choices(OPS, WEIGHTS)[0]
            if op in ("overwrite", "get") and not log.blocks:
                op = "put"
            start = time.perf_counter()
            try:
                problem = _one(http, op, name, i, rng, log)
            except httpx.HTTPError as exc:
                problem = f"{op}: {type(exc).__name__}: {exc}"
            log.latencies[op].append(time.perf_counter() - start)
            if problem:
                log.errors.append(f"{name} {problem}")


def _one(
    http: httpx.Client, op: str, name: str, i: int, rng: random.Random, log: ClientLog
) -> str | None:
    """Run one operation; a description of what went wrong, or None."""
    if op in ("put", "overwrite"):
        key = f"{name}:{i}" if op == "put" else rng.choice(log.keys)
        data = {"c": name, "i": i, "pad": "p" * rng.randrange(0, 400)}
        resp = http.put(f"/blocks/{key}", json={"data": data})
        if resp.status_code != 200:
            return f"{op} {key}: {resp.status_code} {resp.text[:200]}"
        if key not in log.blocks:
            log.keys.append(key)
        log.blocks[key] = data
        log.seqs.append(int(resp.json()["seq"]))
        return None
    if op == "get":
        key = rng.choice(log.keys)
        resp = http.get(f"/blocks/{key}")
        if resp.status_code != 200:
            return f"get {key}: {resp.status_code} {resp.text[:200]}"
        if resp.json()["data"] != log.blocks[key]:
            return f"get {key}: read {resp.json()['data']}, wrote {log.blocks[key]}"
        return None
    if op == "list":
        resp = http.get("/blocks", params={"prefix": f"{name}:", "limit": 50})
        if resp.status_code != 200:
            return f"list: {resp.status_code} {resp.text[:200]}"
        keys = [item["key"] for item in resp.json()["items"]]
        if keys != sorted(keys) or any(not k.startswith(f"{name}:") for k in keys):
            return f"list: keys out of order or outside the prefix: {keys[:5]}"
        return None
    if op == "event":
        details = {"c": name, "i": i}
        resp = http.post("/events", json={"kind": "load.event", "details": details})
        if resp.status_code != 200:
            return f"event: {resp.status_code} {resp.text[:200]}"
        seq = int(resp.json()["seq"])
        log.events[seq] = details
        log.seqs.append(seq)
        return None
    path = "/events" if op == "scan" else "/tenants/me"
    resp = http.get(path, params={"since": "1h", "limit": 50} if op == "scan" else None)
    if resp.status_code != 200:
        return f"{op}: {resp.status_code} {resp.text[:200]}"
    return None


def _read_back(url: str, token: str, logs: list[ClientLog]) -> list[str]:
    """Every acknowledged write of one tenant's clients, missing or different at the end."""
    lost: list[str] = []
    blocks: dict[str, Any] = {}
    events: dict[int, Any] = {}
    seqs: list[int] = []
    for log in logs:
        blocks.update(log.blocks)
        events.update(log.events)
        seqs.extend(log.seqs)
    if len(seqs) != len(set(seqs)):
        lost.append(f"{len(seqs) - len(set(seqs))} acknowledged writes share a sequence")
    stored: dict[str, Any] = {}
    found: dict[int, Any] = {}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as http:
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 1000} | ({"cursor": cursor} if cursor else {})
            page = http.get("/blocks", params=params).json()
            stored.update({item["key"]: item["data"] for item in page["items"]})
            cursor = page["next_cursor"]
            if cursor is None:
                break
        while True:
            params = {"since": "7d", "kind": "load.event", "limit": 1000}
            page = http.get("/events", params=params | ({"cursor": cursor} if cursor else {}))
            found.update({item["seq"]: item["details"] for item in page.json()["items"]})
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
    lost += [
        f"block {k}: wrote {v}, read {stored.get(k)}"
        for k, v in blocks.items()
        if stored.get(k) != v
    ]
    lost += [
        f"event {n}: wrote {d}, read {found.get(n)}" for n, d in events.items() if found.get(n) != d
    ]
    return lost


def run_load(
    url: str, tokens: list[str], *, duration: float, clients: int, seed: int = 6
) -> LoadResult:
    """Run `clients` threads spread over the tenants of `tokens` (writer tokens, one per
    tenant) for `duration` seconds, then read every acknowledged write back."""
    logs = [ClientLog() for _ in range(clients)]
    start = time.monotonic()
    until = start + duration
    threads = [
        threading.Thread(
            target=_client,
            args=(url, tokens[n % len(tokens)], f"c{n}", seed * 1000 + n, until, logs[n]),
        )
        for n in range(clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    lost: list[str] = []
    for index, token in enumerate(tokens):
        lost += _read_back(url, token, logs[index :: len(tokens)])
    ops: dict[str, dict[str, float]] = {}
    for op in OPS:
        times = sorted(t for log in logs for t in log.latencies[op])
        ops[op] = {
            "count": len(times),
            "per_s": len(times) / elapsed,
            "p50_ms": _percentile(times, 0.50) * 1000,
            "p99_ms": _percentile(times, 0.99) * 1000,
            "max_ms": (times[-1] if times else 0.0) * 1000,
        }
    errors = [e for log in logs for e in log.errors]
    writes = sum(len(log.seqs) for log in logs)
    return LoadResult(elapsed, clients, ops, errors, lost, writes)


def main(argv: list[str] | None = None) -> int:
    from bbserver import BBServer  # noqa: PLC0415 - only the command starts a server

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--json", default="batenbase-load.json", help="where to write figures")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bbload-") as tmp:
        srv = BBServer(Path(tmp)).start()
        try:
            tokens = [srv.tenant(name, "unlimited")["writer"] for name in ("loada", "loadb")]
            result = run_load(srv.url, tokens, duration=args.duration, clients=args.clients)
        finally:
            srv.close()
    print(result.table())
    for line in (result.errors + result.lost)[:20]:
        print("  " + line)
    Path(args.json).write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
    print(f"figures written to {args.json}")
    return 0 if result.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
