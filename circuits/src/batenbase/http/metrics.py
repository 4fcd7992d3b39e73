"""Prometheus counters and histograms kept in process, rendered as text."""

from __future__ import annotations

import threading
from collections import defaultdict

_DUR = "batenbase_http_request_duration_seconds"
BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Request counts by route and status, a latency histogram and tenant gauges."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.buckets: dict[str, list[int]] = {}
        self.sums: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)
        self.internal_errors = 0
        self.tenant_blocks: dict[str, int] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, status)] += 1
            hist = self.buckets.setdefault(route, [0] * len(BUCKETS))
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    hist[i] += 1
            self.sums[route] += seconds
            self.counts[route] += 1

    def internal_error(self) -> None:
        with self._lock:
            self.internal_errors += 1

    def set_tenant_blocks(self, tenant: str, count: int) -> None:
        with self._lock:
            self.tenant_blocks[tenant] = count

    def render(self) -> str:
        with self._lock:
            out = [
                "# HELP batenbase_http_requests_total HTTP requests by route and status.",
                "# TYPE batenbase_http_requests_total counter",
            ]
            for (method, route, status), n in sorted(self.requests.items()):
                out.append(
                    f'batenbase_http_requests_total{{method="{_label(method)}",'
                    f'route="{_label(route)}",status="{status}"}} {n}'
                )
            out += [
                "# HELP batenbase_http_request_duration_seconds Request latency.",
                "# TYPE batenbase_http_request_duration_seconds histogram",
            ]
            for route, hist in sorted(self.buckets.items()):
                r = _label(route)
                for bound, n in zip(BUCKETS, hist, strict=True):
                    out.append(f'{_DUR}_bucket{{route="{r}",le="{bound}"}} {n}')
                total = self.counts[route]
                out.append(f'{_DUR}_bucket{{route="{r}",le="+Inf"}} {total}')
                out.append(f'{_DUR}_sum{{route="{r}"}} {self.sums[route]:.6f}')
                out.append(f'{_DUR}_count{{route="{r}"}} {total}')
            out += [
                "# HELP batenbase_http_internal_errors_total Requests that hit the catch-all.",
                "# TYPE batenbase_http_internal_errors_total counter",
                f"batenbase_http_internal_errors_total {self.internal_errors}",
                "# HELP batenbase_tenant_blocks Live blocks per tenant.",
                "# TYPE batenbase_tenant_blocks gauge",
            ]
            for tenant, n in sorted(self.tenant_blocks.items()):
                out.append(f'batenbase_tenant_blocks{{tenant="{_label(tenant)}"}} {n}')
            return "\n".join(out) + "\n"
