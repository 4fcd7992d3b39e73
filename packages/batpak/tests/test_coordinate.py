"""Coordinate validation (format.md §2) and Region matching (store-api.md §1.2)."""

import pytest
from vectors import load_vector

from batpak import Coordinate, DomainError, KindFilter, Region
from batpak.canonical import encode
from batpak.errors import InvalidCoordinate
from batpak.kinds import EventKind

PARTS = ("entity", "scope")


def make(part: str, value: str) -> Coordinate:
    """A coordinate whose ``part`` is ``value`` and whose other part is valid."""
    return Coordinate(value, "scope:ok") if part == "entity" else Coordinate("entity:ok", value)


# --- valid coordinates -------------------------------------------------------------------


def test_valid_coordinate_keeps_parts_and_displays_entity_at_scope() -> None:
    coord = Coordinate("user:42", "tenant:acme")
    assert (coord.entity, coord.scope) == ("user:42", "tenant:acme")
    assert str(coord) == "user:42@tenant:acme"


def test_wire_form_matches_the_coordinate_golden() -> None:
    wire = Coordinate("entity:test", "scope:test").to_wire()
    assert list(wire) == ["entity", "scope"]
    assert encode(wire) == load_vector("core/golden/coordinate_v1.hex")


@pytest.mark.parametrize(
    "value",
    ["x", "no-prefix-needed", "a.b", "a . b", "space ok", "caf\u00e9", "\u4e16\u754c", "a:b:c"],
)
@pytest.mark.parametrize("part", PARTS)
def test_accepts_ordinary_text(part: str, value: str) -> None:
    coord = make(part, value)
    assert getattr(coord, part) == value


def test_coordinates_are_frozen_values() -> None:
    a, b = Coordinate("e", "s"), Coordinate("e", "s")
    assert a == b
    assert hash(a) == hash(b)
    assert a != Coordinate("e", "t")
    with pytest.raises(AttributeError):
        a.entity = "other"  # type: ignore[misc]


# --- the rules of format.md §2 -----------------------------------------------------------


@pytest.mark.parametrize("part", PARTS)
def test_empty_part_is_rejected(part: str) -> None:
    with pytest.raises(InvalidCoordinate, match=part):
        make(part, "")


@pytest.mark.parametrize("part", PARTS)
def test_length_limit_is_1024_utf8_bytes(part: str) -> None:
    assert getattr(make(part, "a" * 1024), part) == "a" * 1024
    with pytest.raises(InvalidCoordinate):
        make(part, "a" * 1025)


@pytest.mark.parametrize("part", PARTS)
def test_length_is_counted_in_bytes_not_characters(part: str) -> None:
    two_byte = "\u00e9"  # é is 2 bytes of UTF-8
    at_limit = two_byte * 512
    assert len(at_limit.encode()) == 1024
    assert getattr(make(part, at_limit), part) == at_limit  # 1024 bytes: accepted
    with pytest.raises(InvalidCoordinate):
        make(part, two_byte * 512 + "a")  # 1025 bytes, 513 characters
    with pytest.raises(InvalidCoordinate):
        make(part, "\U0001f600" * 257)  # 1028 bytes, 257 characters


@pytest.mark.parametrize("byte", [*range(0x00, 0x20), 0x7F])
@pytest.mark.parametrize("part", PARTS)
def test_control_bytes_and_delete_are_rejected(part: str, byte: int) -> None:
    with pytest.raises(InvalidCoordinate):
        make(part, f"ok{chr(byte)}ok")


@pytest.mark.parametrize("value", ["a/b", "/", "a/", "..", "a..b", "a/../b", "...", "x.."])
@pytest.mark.parametrize("part", PARTS)
def test_slash_and_dot_dot_are_rejected(part: str, value: str) -> None:
    with pytest.raises(InvalidCoordinate):
        make(part, value)


@pytest.mark.parametrize("value", ["a|b", "|", "a=b", "=", "k=v|w"])
@pytest.mark.parametrize("part", PARTS)
def test_pipe_and_equals_are_rejected(part: str, value: str) -> None:
    with pytest.raises(InvalidCoordinate):
        make(part, value)


@pytest.mark.parametrize("part", PARTS)
def test_lone_surrogate_is_not_utf8_and_is_rejected(part: str) -> None:
    with pytest.raises(InvalidCoordinate):
        make(part, "a\ud800b")


@pytest.mark.parametrize("part", PARTS)
def test_non_string_part_is_rejected(part: str) -> None:
    value: object = b"bytes"
    with pytest.raises(InvalidCoordinate):
        make(part, value)  # type: ignore[arg-type]


def test_both_parts_are_checked_for_emptiness_before_other_rules() -> None:
    # Rule 1 (entity then scope non-empty) comes before the per-part rules 2-5.
    with pytest.raises(InvalidCoordinate, match="scope") as caught:
        Coordinate("a/b", "")
    assert "empty" in str(caught.value)
    with pytest.raises(InvalidCoordinate, match="entity") as caught:
        Coordinate("", "")
    assert "empty" in str(caught.value)


def test_invalid_coordinate_is_a_domain_error_and_value_error() -> None:
    with pytest.raises(DomainError) as caught:
        Coordinate("a|b", "s")
    assert isinstance(caught.value, InvalidCoordinate)
    assert isinstance(caught.value, ValueError)
    assert caught.value.handling_class == "domain"


# --- Region --------------------------------------------------------------------------------

DATA = 0x1000
KIND_F1 = EventKind.custom(0xF, 0x001)
KIND_F2 = EventKind.custom(0xF, 0x002)
KIND_E1 = EventKind.custom(0xE, 0x001)


def test_region_all_matches_everything() -> None:
    region = Region.all()
    assert region.matches("anything", "anywhere", DATA)
    assert region.matches("batpak:store", "batpak:lifecycle", 0x0008)
    assert region.matches("x", "y", 0xFFFF)


@pytest.mark.parametrize(
    ("entity", "expected"),
    [
        ("user", True),
        ("user:1", True),
        ("user:1:nested", True),
        ("user:", True),
        ("userfoo", False),
        ("user1", False),
        ("use", False),
        ("users:1", False),
        ("other:user", False),
        ("USER:1", False),
    ],
)
def test_region_entity_prefix_matches_name_or_colon_children(entity: str, expected: bool) -> None:
    assert Region.entity("user").matches(entity, "any-scope", DATA) is expected


def test_region_entity_prefix_with_colon_inside() -> None:
    region = Region.entity("org:7")
    assert region.matches("org:7", "s", DATA)
    assert region.matches("org:7:team", "s", DATA)
    assert not region.matches("org:70", "s", DATA)
    assert not region.matches("org", "s", DATA)


def test_region_scope_matches_exactly() -> None:
    region = Region.scope("tenant:a")
    assert region.matches("any", "tenant:a", DATA)
    assert not region.matches("any", "tenant:a:sub", DATA)
    assert not region.matches("any", "tenant:ab", DATA)
    assert not region.matches("any", "tenant", DATA)


def test_with_kind_narrows_to_one_exact_kind() -> None:
    region = Region.entity("user").with_kind(KIND_F1)
    assert region.matches("user:1", "s", KIND_F1)
    assert not region.matches("user:1", "s", KIND_F2)
    assert not region.matches("other", "s", KIND_F1)  # the entity filter is kept
    assert region.kinds == KindFilter(exact=int(KIND_F1))
    assert Region.all().with_kind(0xF001).matches("e", "s", 0xF001)


def test_with_category_narrows_to_one_category() -> None:
    region = Region.scope("s").with_category(0xF)
    assert region.matches("e", "s", KIND_F1)
    assert region.matches("e", "s", KIND_F2)
    assert not region.matches("e", "s", KIND_E1)
    assert not region.matches("e", "other", KIND_F1)  # the scope filter is kept
    system = Region.all().with_category(0x0)
    assert system.matches("batpak:store", "batpak:lifecycle", 0x0008)
    assert not system.matches("e", "s", DATA)


def test_kind_filters_replace_each_other_and_leave_the_original_alone() -> None:
    base = Region.entity("user")
    by_kind = base.with_kind(KIND_E1)
    by_category = by_kind.with_category(0xF)
    assert by_category.matches("user:1", "s", KIND_F2)
    assert not by_category.matches("user:1", "s", KIND_E1)
    assert base.matches("user:1", "s", KIND_E1)  # regions are immutable values
    assert by_kind.matches("user:1", "s", KIND_E1)
    assert not by_kind.matches("user:1", "s", KIND_F2)


@pytest.mark.parametrize("category", [-1, 16, 0x10F])
def test_with_category_rejects_out_of_range(category: int) -> None:
    with pytest.raises(ValueError, match="category"):
        Region.all().with_category(category)
