"""EventKind: the 4-bit category / 12-bit type id split and the reserved categories (§3)."""

import pytest

from batpak import DomainError, EventKind
from batpak import kinds as k
from batpak.canonical import encode
from batpak.errors import InvalidKind


@pytest.mark.parametrize(
    ("raw", "category", "type_id"),
    [
        (0x0000, 0x0, 0x000),
        (0x0008, 0x0, 0x008),
        (0x1000, 0x1, 0x000),
        (0xEC01, 0xE, 0xC01),
        (0xF001, 0xF, 0x001),
        (0xD007, 0xD, 0x007),
        (0x0FFE, 0x0, 0xFFE),
        (0xFFFF, 0xF, 0xFFF),
    ],
)
def test_category_is_high_nibble_and_type_id_low_twelve_bits(
    raw: int, category: int, type_id: int
) -> None:
    kind = EventKind(raw)
    assert (kind.category, kind.type_id) == (category, type_id)
    assert int(kind) == raw


@pytest.mark.parametrize(
    ("category", "type_id", "raw"),
    [(0x1, 0x000, 0x1000), (0xE, 0xC01, 0xEC01), (0xF, 0x201, 0xF201), (0xF, 0xFFF, 0xFFFF)],
)
def test_custom_composes_category_and_type_id(category: int, type_id: int, raw: int) -> None:
    kind = EventKind.custom(category, type_id)
    assert kind == raw
    assert isinstance(kind, EventKind)
    assert (kind.category, kind.type_id) == (category, type_id)
    assert not kind.is_reserved


@pytest.mark.parametrize("category", range(16))
def test_custom_accepts_every_category_except_system_and_effect(category: int) -> None:
    if category in (0x0, 0xD):
        with pytest.raises(InvalidKind, match="reserved"):
            EventKind.custom(category, 1)
    else:
        assert EventKind.custom(category, 1).category == category


@pytest.mark.parametrize("category", [-1, 16, 0x20, 0xFF])
def test_custom_rejects_category_outside_four_bits(category: int) -> None:
    with pytest.raises(InvalidKind):
        EventKind.custom(category, 1)


@pytest.mark.parametrize("type_id", [-1, 0x1000, 0x1001, 0xFFFF])
def test_custom_rejects_type_id_outside_twelve_bits(type_id: int) -> None:
    with pytest.raises(InvalidKind):
        EventKind.custom(0xF, type_id)


def test_custom_type_id_boundaries() -> None:
    assert EventKind.custom(0xE, 0) == 0xE000
    assert EventKind.custom(0xE, 0xFFF) == 0xEFFF


@pytest.mark.parametrize("raw", [-1, 0x10000, 1 << 20])
def test_raw_kind_must_fit_u16(raw: int) -> None:
    with pytest.raises(InvalidKind):
        EventKind(raw)


def test_invalid_kind_is_a_domain_value_error() -> None:
    with pytest.raises(DomainError) as caught:
        EventKind.custom(0xD, 1)
    assert isinstance(caught.value, ValueError)
    assert caught.value.handling_class == "domain"


@pytest.mark.parametrize(
    ("raw", "reserved"),
    [
        (0x0000, True),
        (0x0001, True),
        (0x0FFE, True),
        (0x0FFF, True),
        (0xD000, True),
        (0xD001, True),
        (0xDFFF, True),
        (0x1000, False),
        (0xC000, False),
        (0xE000, False),
        (0xEC01, False),
        (0xFFFF, False),
    ],
)
def test_reserved_categories_are_system_0x0_and_effect_0xd(raw: int, reserved: bool) -> None:
    assert k.is_reserved(raw) is reserved
    assert EventKind(raw).is_reserved is reserved


def test_kind_encodes_as_bare_uint() -> None:
    assert encode(EventKind(0xF001)) == bytes.fromhex("cdf001")
    assert encode(EventKind(8)) == b"\x08"
    assert encode({"event_kind": EventKind(0xEC01)}) == encode({"event_kind": 0xEC01})


def test_repr_shows_hex() -> None:
    assert repr(EventKind(0xEC01)) == "EventKind(0xEC01)"


def test_constants_have_the_reference_values() -> None:
    expected = {
        k.DATA: 0x1000,
        k.SYSTEM_INIT: 0x0001,
        k.SYSTEM_SHUTDOWN: 0x0002,
        k.SYSTEM_HEARTBEAT: 0x0003,
        k.SYSTEM_CONFIG_CHANGE: 0x0004,
        k.SYSTEM_CHECKPOINT: 0x0005,
        k.SYSTEM_BATCH_BEGIN: 0x0006,
        k.SYSTEM_BATCH_COMMIT: 0x0007,
        k.SYSTEM_OPEN_COMPLETED: 0x0008,
        k.SYSTEM_CLOSE_COMPLETED: 0x0009,
        k.SYSTEM_DENIAL: 0x000F,
        k.TOMBSTONE: 0x0FFE,
        k.EFFECT_ERROR: 0xD001,
        k.EFFECT_RETRY: 0xD002,
        k.EFFECT_ACK: 0xD004,
        k.EFFECT_BACKPRESSURE: 0xD005,
        k.EFFECT_CANCEL: 0xD006,
        k.EFFECT_CONFLICT: 0xD007,
        k.HEARTBEAT_REQUEST: 0xFA01,
        k.HEARTBEAT_ACK: 0xFA02,
        k.UNINIT: 0,
    }
    for constant, raw in expected.items():
        assert isinstance(constant, EventKind)
        assert int(constant) == raw


def test_system_and_effect_constants_are_reserved_but_data_and_heartbeats_are_not() -> None:
    assert k.SYSTEM_OPEN_COMPLETED.is_reserved
    assert k.TOMBSTONE.is_reserved
    assert k.EFFECT_CONFLICT.is_reserved
    assert not k.DATA.is_reserved
    assert not k.HEARTBEAT_REQUEST.is_reserved
