"""The operation-name grammar and the ref grammar: valid and invalid tables."""

import pytest

from syncbat import DescriptorValidationError, OperationName, OperationNameError
from syncbat.errors import (
    ConsecutiveDots,
    EmptyName,
    IllegalCharacter,
    LeadingOrTrailingDot,
    NameTooLong,
)
from syncbat.names import check_grammar, validate_ref

VALID = [
    "system.heartbeat",
    "bank.commit",
    "event.get",
    "a-b_c.d",
    "ping",
    "0",
    "a",
    "0123456789",
    "-",
    "_",
    "A.B.C",
    "a" * 128,
]


@pytest.mark.parametrize("name", VALID)
def test_valid_names(name: str) -> None:
    assert OperationName(name) == name
    assert isinstance(OperationName(name), str)


INVALID: list[tuple[str, type[OperationNameError], dict[str, int]]] = [
    ("", EmptyName, {}),
    ("a" * 129, NameTooLong, {"length": 129, "maximum": 128}),
    ("a b", IllegalCharacter, {"byte": 0x20}),
    ("a/b", IllegalCharacter, {"byte": 0x2F}),
    ("a:b", IllegalCharacter, {"byte": 0x3A}),
    ("a@b", IllegalCharacter, {"byte": 0x40}),
    ("a$b", IllegalCharacter, {"byte": 0x24}),
    ("a\tb", IllegalCharacter, {"byte": 0x09}),
    ("café", IllegalCharacter, {"byte": 0xC3}),
    (".x", LeadingOrTrailingDot, {}),
    ("x.", LeadingOrTrailingDot, {}),
    (".", LeadingOrTrailingDot, {}),
    (".a.b", LeadingOrTrailingDot, {}),
    ("a.b.", LeadingOrTrailingDot, {}),
    ("a..b", ConsecutiveDots, {}),
    ("foo..bar..baz", ConsecutiveDots, {}),
]


@pytest.mark.parametrize(("name", "error", "attrs"), INVALID)
def test_invalid_names(name: str, error: type[OperationNameError], attrs: dict[str, int]) -> None:
    with pytest.raises(error) as info:
        OperationName(name)
    assert type(info.value) is error
    for key, value in attrs.items():
        assert getattr(info.value, key) == value


@pytest.mark.parametrize(
    ("name", "error"),
    [
        # checks run in order: length before characters, characters before dots
        ("." * 129, NameTooLong),
        (".a b", IllegalCharacter),
        ("..a/", IllegalCharacter),
        (".a..b", LeadingOrTrailingDot),
    ],
)
def test_rule_order(name: str, error: type[OperationNameError]) -> None:
    with pytest.raises(error):
        check_grammar(name)


def test_first_illegal_byte_is_reported() -> None:
    with pytest.raises(IllegalCharacter) as info:
        OperationName("ok:then/")
    assert info.value.byte == ord(":")
    assert "0x3a" in str(info.value)


def test_error_messages() -> None:
    assert "empty" in str(EmptyName())
    assert "max 128" in str(NameTooLong(200, 128))
    assert "'.'" in str(LeadingOrTrailingDot())
    assert "'..'" in str(ConsecutiveDots())


def test_ref_grammar_allows_256_bytes() -> None:
    validate_ref("input_schema_ref", "a" * 256)
    with pytest.raises(DescriptorValidationError) as info:
        validate_ref("input_schema_ref", "a" * 257)
    assert (info.value.field, info.value.message) == ("input_schema_ref", "too long")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "empty"),
        ("a b", "expected ASCII letters, digits, '.', '_' or '-'"),
        ("a..b", "dot-separated tokens must be non-empty"),
        (".a", "dot-separated tokens must be non-empty"),
    ],
)
def test_ref_grammar_messages(value: str, message: str) -> None:
    with pytest.raises(DescriptorValidationError) as info:
        validate_ref("receipt_kind", value, f"op:{value}")
    assert info.value == DescriptorValidationError("receipt_kind", f"op:{value}", message)


def test_non_str_name_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        OperationName(5)  # type: ignore[arg-type]
