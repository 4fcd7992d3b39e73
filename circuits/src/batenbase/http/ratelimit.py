"""Per-client request rate limiting: a token bucket per bearer token (or per peer address
for requests without one), answered with the spec's 429 and a ``Retry-After`` header.

Limiting by the token, before authentication, keeps the check cheap and means a flood of bad
tokens is limited by address. The table of buckets is bounded: the least recently used
client is forgotten first (a forgotten client starts again with a full bucket).
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

MAX_CLIENTS = 100_000


class TokenBuckets:
    """``rate`` requests per second per client, with bursts up to ``burst``."""

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._max = max_clients
        self._buckets: OrderedDict[bytes, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, client: bytes) -> float:
        """Spend one token of ``client``'s bucket: 0.0 if allowed, else the seconds until
        the next token."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.pop(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            allowed = tokens >= 1
            self._buckets[client] = (tokens - 1 if allowed else tokens, now)
            if len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        return 0.0 if allowed else (1 - tokens) / self.rate


def client_id(scope: Scope) -> bytes:
    """The bearer token's hash, else the peer address."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            return b"t" + hashlib.blake2b(value, digest_size=16).digest()
    peer = scope.get("client") or ("?", 0)
    return b"a" + str(peer[0]).encode()


class RateLimitMiddleware:
    """Refuses a client's request with 429 ``rate_limited`` once its bucket is empty."""

    def __init__(self, app: ASGIApp, *, buckets: TokenBuckets) -> None:
        self.app = app
        self.buckets = buckets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") == "/health":
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(client_id(scope))
        if not wait:
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            {
                "ok": False,
                "error": {"code": "rate_limited", "message": "too many requests; slow down"},
            }
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"retry-after", str(max(1, math.ceil(wait))).encode()),
        ]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})
