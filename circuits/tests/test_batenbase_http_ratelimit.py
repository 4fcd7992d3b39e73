"""Rate limiting: token buckets per client, 429 rate_limited with Retry-After."""

from __future__ import annotations

import httpx
import pytest

from batenbase.http.ratelimit import RateLimitMiddleware, TokenBuckets, client_id


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_bursts_then_refills_at_the_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(2.0, 3.0, clock=clock)
    assert [buckets.take(b"a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take(b"a") == pytest.approx(0.5)
    assert buckets.take(b"b") == 0.0  # clients are independent
    clock.now += 0.5
    assert buckets.take(b"a") == 0.0
    assert buckets.take(b"a") > 0
    clock.now += 60
    assert [buckets.take(b"a") for _ in range(4)][:3] == [0.0, 0.0, 0.0]  # capped at burst


def test_the_table_forgets_the_least_recently_used_client() -> None:
    clock = Clock()
    buckets = TokenBuckets(1.0, 1.0, clock=clock, max_clients=2)
    assert buckets.take(b"a") == 0.0
    assert buckets.take(b"b") == 0.0
    assert buckets.take(b"c") == 0.0  # "a" is forgotten
    assert buckets.take(b"a") == 0.0
    assert buckets.take(b"c") > 0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBuckets(0, 1)
    with pytest.raises(ValueError, match="burst"):
        TokenBuckets(1, 0.5)


def test_clients_are_told_apart_by_token_then_address() -> None:
    one = {"headers": [(b"authorization", b"Bearer a")], "client": ("1.2.3.4", 1)}
    two = {"headers": [(b"authorization", b"Bearer b")], "client": ("1.2.3.4", 1)}
    anon = {"headers": [], "client": ("1.2.3.4", 1)}
    assert len({client_id(one), client_id(two), client_id(anon)}) == 3
    assert b"Bearer" not in client_id(one)


async def _ok(scope: object, receive: object, send: object) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b"{}"})  # type: ignore[operator]


@pytest.mark.anyio
async def test_the_middleware_answers_429_with_retry_after() -> None:
    app = RateLimitMiddleware(_ok, buckets=TokenBuckets(1.0, 2.0, clock=Clock()))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        h = {"Authorization": "Bearer x"}
        codes = [(await client.get("/blocks/k", headers=h)).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        refused = await client.get("/blocks/k", headers=h)
        assert refused.json()["error"]["code"] == "rate_limited"
        assert refused.headers["retry-after"] == "1"
        assert (await client.get("/health", headers=h)).status_code == 200
        other = await client.get("/blocks/k", headers={"Authorization": "Bearer y"})
        assert other.status_code == 200


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
