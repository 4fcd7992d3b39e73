"""Typed payload versions across a schema change: upcast in memory, never rewritten on disk.

PROVES: INV-EVENT-PAYLOAD-DECODE-BACKCOMPAT (one kind written at payload versions 0, 1, 2 and
3 through ``Store.append``/``append_typed``, read by its version-2 type after a reopen: version
1 is upcast by the registered upcaster (the frozen v1 body is the golden ``e_c02__v1``), 0 and
2 decode as they are, 3 is ``PayloadFutureVersion`` from ``decode`` and from a projection
replay, also after a cold start that rebuilds the index from the segments; the segment bytes
are identical before and after every read, and arbitrary stored payloads decode to the type or
a ``TypedDecodeError``, never anything else).
CATCHES: upcasting by rewriting frames, a future version silently decoded or dropped, an
upcaster run on current or version-0 payloads, decode errors that escape untyped.
SEEDED: hypothesis draws the arbitrary payload values.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuzz_goldens import golden

from batpak import (
    Coordinate,
    Projection,
    Store,
    StoreConfig,
    TypedDecodeError,
    event_payload,
    handles,
    upcaster,
)

# A kind of its own (0xEF02), so that re-binding it to newer shapes disturbs no other test;
# its frozen v1 body is the 0xEC02 golden.
CATEGORY, TYPE_ID = 0xE, 0xF02


def _sample(version: int) -> type[msgspec.Struct]:
    """The payload type at ``version``; one qualified name, so the kind can be re-bound."""
    if version == 1:

        @event_payload(category=CATEGORY, type_id=TYPE_ID, version=1)
        class Sample(msgspec.Struct):
            count: int

    elif version == 2:

        @event_payload(category=CATEGORY, type_id=TYPE_ID, version=2)
        class Sample(msgspec.Struct):  # type: ignore[no-redef]
            total: int
            label: str

    else:

        @event_payload(category=CATEGORY, type_id=TYPE_ID, version=3)
        class Sample(msgspec.Struct):  # type: ignore[no-redef]
            total: int
            label: str
            unit: str

    return Sample


Current = _sample(2)


@upcaster(Current, from_version=1)
def _count_to_total(old: dict[str, Any]) -> dict[str, Any]:
    return {"total": old["count"], "label": "legacy"}


class Totals(Projection):
    def __init__(self) -> None:
        self.seen: list[tuple[int, str]] = []

    @handles(Current)
    def on_sample(self, payload: Any) -> None:
        self.seen.append((payload.total, payload.label))


def _segments(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.glob("*.fbat"))}


@pytest.mark.invariant("INV-EVENT-PAYLOAD-DECODE-BACKCOMPAT")
def test_versions_zero_to_future_across_reopen_and_cold_start(tmp_path: Path) -> None:
    path = tmp_path / "s"
    a, b = Coordinate("sample:a", "versions"), Coordinate("sample:b", "versions")
    kind = (CATEGORY << 12) | TYPE_ID
    try:
        with Store.open(StoreConfig(path, event_payload_validation="silent")) as store:
            v0 = store.append(a, kind, {"total": 5, "label": "zero"}).event_id
            v1 = store.append_typed(a, _sample(1)(count=7)).event_id
            future = _sample(3)(total=1, label="x", unit="kg")
            v3 = store.append_typed(b, future).event_id
            v2 = store.append_typed(a, _sample(2)(total=9, label="now")).event_id
            assert store.read_raw(v1) == golden("payloads/e_c02__v1")
    finally:
        _sample(2)  # leave the registry consistent for every later open
    written = _segments(path)

    with Store.open(StoreConfig(path)) as store:
        versions = {i: store.get(i).event.header.payload_version for i in (v0, v1, v2, v3)}
        assert versions == {v0: 0, v1: 1, v2: 2, v3: 3}
        assert store.get(v1).decode(Current) == Current(total=7, label="legacy")
        assert store.get(v0).decode(Current) == Current(total=5, label="zero")
        assert store.get(v2).decode(Current) == Current(total=9, label="now")
        with pytest.raises(TypedDecodeError) as future_error:
            store.get(v3).decode(Current)
        assert type(future_error.value).__name__ == "PayloadFutureVersion"
        assert store.project(Totals, "sample:a").seen == [(5, "zero"), (7, "legacy"), (9, "now")]
        with pytest.raises(TypedDecodeError, match="newer"):
            store.project(Totals, "sample:b")
        assert store.read_raw(v1) == golden("payloads/e_c02__v1")
    after = _segments(path)
    assert {name: after[name] for name in written} == written  # nothing rewritten on disk

    (path / "index.cols").unlink()  # cold start: rebuild the index from the frames
    with Store.open_read_only(StoreConfig(path)) as store:
        assert store.get(v3).event.header.payload_version == 3
        with pytest.raises(TypedDecodeError, match="newer"):
            store.get(v3).decode(Current)
        with pytest.raises(TypedDecodeError, match="newer"):
            store.project(Totals, "sample:b")
        assert store.get(v1).decode(Current) == Current(total=7, label="legacy")
    assert {name: _segments(path)[name] for name in written} == written


PAYLOADS = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["total", "label", "count", "x"]), inner, max_size=4)
    ),
    max_leaves=12,
)


@pytest.mark.invariant("INV-EVENT-PAYLOAD-DECODE-BACKCOMPAT")
@settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(st.lists(PAYLOADS, min_size=1, max_size=8))
def test_arbitrary_stored_payloads_decode_or_fail_typed(payloads: list[object]) -> None:
    kind = (CATEGORY << 12) | TYPE_ID
    with tempfile.TemporaryDirectory() as tmp, Store.open(StoreConfig(Path(tmp) / "s")) as store:
        ids = [store.append(Coordinate("sample:any", "v"), kind, p).event_id for p in payloads]
        for event_id, payload in zip(ids, payloads, strict=True):
            try:
                value = store.get(event_id).decode(Current)
            except TypedDecodeError:
                continue
            assert isinstance(payload, dict)  # unknown keys are ignored, as serde does
            assert msgspec.to_builtins(value) == {k: payload[k] for k in ("total", "label")}
