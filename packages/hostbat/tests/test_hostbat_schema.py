"""Schema identity: id grammar, role order, encoding sensitivity and the registry."""

from __future__ import annotations

import pytest
from hostbat_fixtures import PING

from batpak import canonical
from hostbat.errors import SchemaInvalid, SchemaValidation
from hostbat.identity import CanonicalEncoding
from hostbat.schema import (
    SCHEMA_ENCODING_DOMAIN,
    GoldenVector,
    SchemaDescriptor,
    SchemaRegistry,
    SchemaRole,
    validate_schema_id,
)


def desc(
    sid: str = "s.in",
    version: int = 1,
    role: SchemaRole = SchemaRole.OPERATION_INPUT,
    golden: list[GoldenVector] | None = None,
) -> SchemaDescriptor:
    return SchemaDescriptor(
        sid, version, role, golden if golden is not None else [GoldenVector("c", PING)]
    )


def test_roles_sort_in_enum_order_with_kebab_wire_strings() -> None:
    assert sorted(SchemaRole, key=lambda r: r.wire) != list(SchemaRole)
    assert [r.wire for r in SchemaRole] == [
        "operation-input",
        "operation-output",
        "event-payload",
        "receipt-payload",
        "subscription-payload",
    ]
    assert SchemaRole.OPERATION_OUTPUT < SchemaRole.EVENT_PAYLOAD < SchemaRole.RECEIPT_PAYLOAD


@pytest.mark.parametrize(
    ("sid", "detail"),
    [
        ("", "empty"),
        ("a" * 257, "longer than 256"),
        (".a", "leading or trailing"),
        ("a.", "leading or trailing"),
        ("a..b", "doubled"),
        ("A.b", "outside"),
        ("a b", "outside"),
    ],
)
def test_schema_id_grammar_rejects(sid: str, detail: str) -> None:
    with pytest.raises(SchemaInvalid, match=detail):
        validate_schema_id(sid)
    with pytest.raises(SchemaInvalid):
        desc(sid)


def test_schema_id_grammar_accepts_256_bytes() -> None:
    assert validate_schema_id("a" * 256) == "a" * 256
    assert validate_schema_id("hostbat.op.echo-in_v1") == "hostbat.op.echo-in_v1"


def test_version_must_be_u32() -> None:
    with pytest.raises(SchemaInvalid, match="u32"):
        desc(version=2**32)
    with pytest.raises(SchemaInvalid, match="u32"):
        desc(version=-1)


def test_encoding_is_the_hash_of_the_v3_view() -> None:
    d = desc(golden=[GoldenVector("b", b"\x01"), GoldenVector("a", PING)])
    view = {
        "domain": SCHEMA_ENCODING_DOMAIN,
        "id": "s.in",
        "version": 1,
        "role": "operation-input",
        "golden": [{"case": "a", "bytes": list(PING)}, {"case": "b", "bytes": [1]}],
    }
    assert d.encoding == CanonicalEncoding(canonical.digest(canonical.encode(view)))
    assert [g.case for g in d.golden] == ["a", "b"]
    assert d.verify_encoding()


def test_encoding_is_sensitive_to_every_axis() -> None:
    base = desc().encoding
    variants = [
        desc(sid="s.other").encoding,
        desc(version=2).encoding,
        desc(role=SchemaRole.OPERATION_OUTPUT).encoding,
        desc(golden=[GoldenVector("c", b"\xc0")]).encoding,
        desc(golden=[GoldenVector("d", PING)]).encoding,
        desc(golden=[]).encoding,
    ]
    assert len({base, *variants}) == 1 + len(variants)


def test_golden_declaration_order_does_not_matter() -> None:
    a = [GoldenVector("a", PING), GoldenVector("b", b"\xc0")]
    assert desc(golden=a).encoding == desc(golden=a[::-1]).encoding


def test_duplicate_golden_case_is_rejected() -> None:
    with pytest.raises(SchemaInvalid, match="declared twice"):
        desc(golden=[GoldenVector("a", PING), GoldenVector("a", b"\xc0")])


def test_diagnostic_type_is_not_identity() -> None:
    plain = desc()
    typed = SchemaDescriptor(
        "s.in",
        1,
        SchemaRole.OPERATION_INPUT,
        [GoldenVector("c", PING)],
        diagnostic_rust_type="a::B",
    )
    assert plain.encoding == typed.encoding
    assert plain.manifest_view() == typed.manifest_view()


def test_registry_validates_structurally() -> None:
    registry = SchemaRegistry([desc()])
    registry.validate("s.in", SchemaRole.OPERATION_INPUT, canonical.encode({"any": [1, 2]}))
    with pytest.raises(SchemaValidation, match="not canonical bytes"):
        registry.validate("s.in", SchemaRole.OPERATION_INPUT, b"\xc1")
    with pytest.raises(SchemaValidation, match="not canonical bytes"):
        registry.validate("s.in", SchemaRole.OPERATION_INPUT, b"")
    with pytest.raises(SchemaValidation, match="not canonical bytes"):
        registry.validate("s.in", SchemaRole.OPERATION_INPUT, PING + b"\x00")


def test_registry_resolves_by_id_and_role() -> None:
    registry = SchemaRegistry([desc(), desc(version=2, role=SchemaRole.OPERATION_OUTPUT)])
    with pytest.raises(SchemaValidation, match="not present"):
        registry.validate("s.in", SchemaRole.EVENT_PAYLOAD, PING)
    with pytest.raises(SchemaValidation, match="not present"):
        registry.validate("s.missing", SchemaRole.OPERATION_INPUT, PING)
    registry.validate("s.in", SchemaRole.OPERATION_OUTPUT, PING)


def test_registry_rejects_an_ambiguous_ref() -> None:
    registry = SchemaRegistry([desc(version=2), desc(version=1)])
    with pytest.raises(SchemaValidation, match=r"ambiguous across versions \[1, 2\]"):
        registry.validate("s.in", SchemaRole.OPERATION_INPUT, PING)


def test_registry_rejects_a_tampered_encoding_and_a_bad_golden() -> None:
    tampered = desc()
    object.__setattr__(tampered, "_encoding", CanonicalEncoding(bytes(32)))
    with pytest.raises(SchemaValidation, match="no longer matches"):
        SchemaRegistry([tampered]).validate("s.in", SchemaRole.OPERATION_INPUT, PING)
    bad_golden = desc(golden=[GoldenVector("broken", b"\xc1")])
    with pytest.raises(SchemaValidation, match="golden vector 'broken'"):
        SchemaRegistry([bad_golden]).validate("s.in", SchemaRole.OPERATION_INPUT, PING)


def test_digest_hex_is_lowercase_64_chars() -> None:
    enc = desc().encoding
    assert enc.hex() == enc.hex().lower()
    assert len(enc.hex()) == 64
    assert str(enc) == enc.hex()
    with pytest.raises(ValueError, match="32 bytes"):
        CanonicalEncoding(b"short")


def test_registry_checks_a_descriptor_once_and_every_payload(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checks: list[str] = []
    real = SchemaDescriptor.verify_encoding

    def counted(self: SchemaDescriptor) -> bool:
        checks.append(self.id)
        return real(self)

    monkeypatch.setattr(SchemaDescriptor, "verify_encoding", counted)
    registry = SchemaRegistry([desc()])
    for _ in range(3):
        registry.validate("s.in", SchemaRole.OPERATION_INPUT, PING)
    assert checks == ["s.in"]
    with pytest.raises(SchemaValidation, match="payload is not canonical"):
        registry.validate("s.in", SchemaRole.OPERATION_INPUT, b"\xc1")
    bad = SchemaRegistry([desc(golden=[GoldenVector("broken", b"\xc1")])])
    for _ in range(2):  # a descriptor that fails is checked (and refused) again
        with pytest.raises(SchemaValidation, match="golden vector 'broken'"):
            bad.validate("s.in", SchemaRole.OPERATION_INPUT, PING)
