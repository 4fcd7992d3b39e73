"""The projection cache through the public API: entries keyed by entity and schema_version.

PROVES: INV-SCHEMA-VERSION-ISOLATION (a projection whose schema_version changed never reads
state folded under the old version, entities never read each other's state, and the old
version's entry still serves the old fold).
CATCHES: a cache key without the version or the entity (the wrong fold comes back), a stale
entry served after the entity moved on, a damaged entry trusted.
SEEDED: no randomness.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from batpak import Coordinate, Projection, Store, StoreConfig, event_payload, handles

pytestmark = pytest.mark.invariant("INV-SCHEMA-VERSION-ISOLATION")


@event_payload(category=0xF, type_id=0x3D1)
class Deposited(msgspec.Struct):
    amount: int


class Balance(Projection):
    def __init__(self) -> None:
        self.value = 0

    @handles(Deposited)
    def on_deposit(self, event: Deposited) -> None:
        self.value += event.amount


class BalanceInCents(Projection):
    """``Balance`` after a schema change: same name, version 1, a different fold."""

    __qualname__ = "Balance"
    schema_version = 1

    def __init__(self) -> None:
        self.value = 0

    @handles(Deposited)
    def on_deposit(self, event: Deposited) -> None:
        self.value += 100 * event.amount


class RecordingCache:
    """A byte map that remembers every key it was asked for (the public cache protocol)."""

    def __init__(self) -> None:
        self.entries: dict[bytes, bytes] = {}
        self.asked: list[bytes] = []

    def get(self, key: bytes) -> bytes | None:
        self.asked.append(key)
        return self.entries.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self.entries[key] = value

    def delete_prefix(self, prefix: bytes) -> None:
        for key in [k for k in self.entries if k.startswith(prefix)]:
            del self.entries[key]


def test_versions_and_entities_never_share_state(tmp_path: Path) -> None:
    cache = RecordingCache()
    with Store.open(StoreConfig(tmp_path).with_projection_cache(cache)) as store:
        store.append_typed(Coordinate("acct:a", "bank"), Deposited(5))
        store.append_typed(Coordinate("acct:b", "bank"), Deposited(7))
        assert store.project(Balance, "acct:a").value == 5
        assert store.project(Balance, "acct:b").value == 7
        assert store.project(BalanceInCents, "acct:a").value == 500
        assert store.project(Balance, "acct:a").value == 5  # v0's entry still serves v0
        assert len(cache.entries) == 3
        store.append_typed(Coordinate("acct:a", "bank"), Deposited(1))
        assert store.project(BalanceInCents, "acct:a").value == 600
        assert store.project(Balance, "acct:a").value == 6
    assert len(set(cache.asked)) == 3


def test_entries_are_hits_only_for_the_current_state(tmp_path: Path) -> None:
    cache = RecordingCache()
    config = StoreConfig(tmp_path).with_projection_cache(cache)
    with Store.open(config) as store:
        store.append_typed(Coordinate("acct:a", "bank"), Deposited(5))
        assert store.project(Balance, "acct:a").value == 5
        for key in cache.entries:
            cache.entries[key] = b"\xc1 not msgpack"
        assert store.project(Balance, "acct:a").value == 5
        # A planted entry claiming another state is used only if it covers the same head:
        planted = dict(cache.entries)
        store.append_typed(Coordinate("acct:a", "bank"), Deposited(2))
        cache.entries.update(planted)
        assert store.project(Balance, "acct:a").value == 7
