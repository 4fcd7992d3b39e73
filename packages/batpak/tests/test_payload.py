"""Typed payloads: @event_payload binding, the kind registry, and version-dispatched decode.

The registry is global per process and ``Store.open`` re-checks it, so every test that binds a
kind runs inside the ``registry`` fixture, which restores the registry afterwards. This keeps
deliberately incomplete upcast chains from leaking into other test modules. Kinds used here are
0xE7xx (plus the golden 0xEC01/0xEC02, which the fixture frees for the test's duration).
"""

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from vectors import load_vector

from batpak import StoreError, TypedDecodeError, event_payload, upcaster
from batpak import payload as registry_module
from batpak.canonical import encode
from batpak.errors import (
    DecodeFailure,
    EventPayloadRegistryError,
    InvalidKind,
    KindMismatch,
    PayloadFutureVersion,
    UpcastMissing,
)
from batpak.kinds import EventKind
from batpak.payload import (
    decode_payload,
    encode_payload,
    kind_of,
    registered,
    verify_registry,
    version_of,
)

GOLDEN_KINDS = (0xEC01, 0xEC02)


@pytest.fixture
def registry() -> Iterator[None]:
    """Run with the golden kinds unbound, then restore the global registry exactly."""
    saved_types = dict(registry_module._registry)
    saved_upcasters = dict(registry_module._upcasters)
    for kind in GOLDEN_KINDS:
        registry_module._registry.pop(kind, None)
    for key in [key for key in registry_module._upcasters if key[0] in GOLDEN_KINDS]:
        del registry_module._upcasters[key]
    try:
        yield
    finally:
        registry_module._registry.clear()
        registry_module._registry.update(saved_types)
        registry_module._upcasters.clear()
        registry_module._upcasters.update(saved_upcasters)


pytestmark = pytest.mark.usefixtures("registry")


# --- binding -------------------------------------------------------------------------------


def test_event_payload_sets_kind_and_default_version_and_registers() -> None:
    @event_payload(category=0xE, type_id=0x701)
    class Opened(msgspec.Struct):
        account: str

    assert vars(Opened)["KIND"] == 0xE701
    assert isinstance(vars(Opened)["KIND"], EventKind)
    assert vars(Opened)["PAYLOAD_VERSION"] == 1
    assert (kind_of(Opened), version_of(Opened)) == (0xE701, 1)
    assert registered(0xE701) is Opened


def test_event_payload_explicit_version() -> None:
    @event_payload(category=0xF, type_id=0x702, version=4)
    class Moved(msgspec.Struct):
        to: str

    assert (kind_of(Moved), version_of(Moved)) == (0xF702, 4)


def test_duplicate_kind_by_a_different_class_is_refused() -> None:
    @event_payload(category=0xE, type_id=0x703)
    class First(msgspec.Struct):
        a: int

    class Second(msgspec.Struct):
        b: int

    with pytest.raises(EventPayloadRegistryError, match="already bound"):
        event_payload(category=0xE, type_id=0x703)(Second)
    assert registered(0xE703) is First
    assert "KIND" not in vars(Second)


def test_error_for_a_duplicate_kind_is_a_domain_store_error() -> None:
    @event_payload(category=0xE, type_id=0x704)
    class One(msgspec.Struct):
        a: int

    class Two(msgspec.Struct):
        a: int

    with pytest.raises(StoreError) as caught:
        event_payload(category=0xE, type_id=0x704)(Two)
    assert caught.value.handling_class == "domain"
    assert registered(0xE704) is One


@pytest.mark.parametrize(("category", "type_id"), [(0x0, 0x705), (0xD, 0x705), (0xE, 0x1000)])
def test_reserved_or_out_of_range_kinds_cannot_be_bound(category: int, type_id: int) -> None:
    with pytest.raises(InvalidKind):
        event_payload(category=category, type_id=type_id)


@pytest.mark.parametrize("version", [0, -1, 0x10000])
def test_version_must_be_1_to_65535(version: int) -> None:
    with pytest.raises(EventPayloadRegistryError):
        event_payload(category=0xE, type_id=0x706, version=version)


def test_only_map_encoded_structs_can_be_bound() -> None:
    class ArrayLike(msgspec.Struct, array_like=True):
        a: int

    not_a_struct: Any = dict
    with pytest.raises(EventPayloadRegistryError):
        event_payload(category=0xE, type_id=0x707)(ArrayLike)
    with pytest.raises(EventPayloadRegistryError):
        event_payload(category=0xE, type_id=0x707)(not_a_struct)
    assert registered(0xE707) is None


def test_kind_of_an_unbound_type_is_an_error() -> None:
    class Plain(msgspec.Struct):
        a: int

    with pytest.raises(EventPayloadRegistryError):
        kind_of(Plain)


# --- upcasters and version dispatch ---------------------------------------------------------


CALLS: list[int] = []


@event_payload(category=0xE, type_id=0x710, version=3)
class Thing(msgspec.Struct):
    """A v3 type with upcasters 1->2 (rename a->b) and 2->3 (add c) that log their steps."""

    b: int
    c: str


@upcaster(Thing, from_version=1)
def one_to_two(value: dict[str, Any]) -> dict[str, Any]:
    CALLS.append(1)
    return {"b": value["a"]}


@upcaster(Thing, from_version=2)
def two_to_three(value: dict[str, Any]) -> dict[str, Any]:
    CALLS.append(2)
    return {**value, "c": f"from-v2:{value['b']}"}


@pytest.fixture(autouse=True)
def clear_calls() -> None:
    CALLS.clear()


def test_current_and_zero_versions_decode_directly() -> None:
    data = encode({"b": 5, "c": "now"})
    assert decode_payload(Thing, 0xE710, 3, data) == Thing(b=5, c="now")
    assert decode_payload(Thing, 0xE710, 0, data) == Thing(b=5, c="now")
    assert CALLS == []


def test_unknown_fields_are_tolerated_at_the_current_version() -> None:
    data = encode({"b": 1, "extra": [1, 2], "c": "x"})
    assert decode_payload(Thing, 0xE710, 3, data) == Thing(b=1, c="x")


def test_older_versions_run_the_upcast_chain_in_order() -> None:
    v1 = decode_payload(Thing, 0xE710, 1, encode({"a": 9}))
    assert v1 == Thing(b=9, c="from-v2:9")
    assert CALLS == [1, 2]
    CALLS.clear()
    v2 = decode_payload(Thing, 0xE710, 2, encode({"b": 4}))
    assert v2 == Thing(b=4, c="from-v2:4")
    assert CALLS == [2]


def test_missing_upcaster_is_upcast_missing_and_registry_check_flags_it() -> None:
    @event_payload(category=0xE, type_id=0x720, version=3)
    class Gappy(msgspec.Struct):
        x: int

    @upcaster(Gappy, from_version=1)
    def only_one(value: dict[str, Any]) -> dict[str, Any]:
        return value

    with pytest.raises(UpcastMissing):
        decode_payload(Gappy, 0xE720, 2, encode({"x": 1}))
    with pytest.raises(UpcastMissing):
        decode_payload(Gappy, 0xE720, 1, encode({"x": 1}))
    with pytest.raises(EventPayloadRegistryError, match=r"\[2\]"):
        verify_registry()


def test_newer_version_is_payload_future_version() -> None:
    with pytest.raises(PayloadFutureVersion):
        decode_payload(Thing, 0xE710, 4, encode({"b": 1, "c": "x"}))
    assert CALLS == []


def test_wrong_kind_is_kind_mismatch() -> None:
    with pytest.raises(KindMismatch):
        decode_payload(Thing, 0xE711, 3, encode({"b": 1, "c": "x"}))


def test_bad_bytes_are_decode_failure() -> None:
    with pytest.raises(DecodeFailure):
        decode_payload(Thing, 0xE710, 3, encode({"b": "not an int", "c": "x"}))
    with pytest.raises(DecodeFailure):
        decode_payload(Thing, 0xE710, 3, b"\xc1")
    with pytest.raises(DecodeFailure):
        decode_payload(Thing, 0xE710, 1, encode([1, 2]))  # an old payload that is not a map


def test_typed_decode_errors_are_not_store_errors() -> None:
    for cls in (KindMismatch, DecodeFailure, PayloadFutureVersion, UpcastMissing):
        assert issubclass(cls, TypedDecodeError)
        assert not issubclass(cls, StoreError)


def test_upcaster_registration_rules() -> None:
    for bad in (0, 3, 4):
        with pytest.raises(EventPayloadRegistryError):
            upcaster(Thing, from_version=bad)
    with pytest.raises(EventPayloadRegistryError, match="already has"):
        upcaster(Thing, from_version=1)(lambda value: value)


# --- golden payloads (format.md §8, payloads/) ------------------------------------------------


def test_frozen_sample_encodes_to_golden_e_c01() -> None:
    @event_payload(category=0xE, type_id=0xC01)
    class FrozenSample(msgspec.Struct):
        amount: int
        note: str

    golden = load_vector("core/golden/payloads/e_c01__v1.hex")
    assert kind_of(FrozenSample) == 0xEC01
    assert encode_payload(FrozenSample(amount=100, note="hello")) == golden
    assert decode_payload(FrozenSample, 0xEC01, 1, golden) == FrozenSample(100, "hello")


def test_v2_upcaster_lifts_golden_e_c02_v1() -> None:
    @event_payload(category=0xE, type_id=0xC02, version=2)
    class Sample(msgspec.Struct):
        total: int
        label: str

    @upcaster(Sample, from_version=1)
    def count_to_total(value: dict[str, Any]) -> dict[str, Any]:
        return {"total": value["count"], "label": "legacy"}

    golden = load_vector("core/golden/payloads/e_c02__v1.hex")
    assert golden == encode({"count": 7})
    assert decode_payload(Sample, 0xEC02, 1, golden) == Sample(total=7, label="legacy")
    verify_registry()  # the chain for Sample is complete
    current = encode_payload(Sample(total=8, label="new"))
    assert decode_payload(Sample, 0xEC02, 2, current) == Sample(total=8, label="new")
