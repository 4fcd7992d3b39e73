"""Subscription descriptors, their id grammar and event-payload bindings."""

from __future__ import annotations

import pytest

from batpak.coordinate import Coordinate
from hostbat.binding import EventPayloadBinding
from hostbat.errors import (
    EventPayloadBindingInvalid,
    SubscriptionInvalidId,
    SubscriptionInvalidProjectionId,
    SubscriptionReservedCategory,
)
from hostbat.schema import SchemaRole
from hostbat.subscription import (
    BoundedQueue,
    EntityStreamSource,
    EventCategorySource,
    OperationStatusSource,
    ProjectionSource,
    ReceiptStreamSource,
    SubscriptionDescriptor,
    SubscriptionSource,
    validate_subscription_id,
)


@pytest.mark.parametrize("sid", ["orders.open.v1", "a.v9", "0x.v10", "a-b_c.d.v123", "a.v1.v2"])
def test_subscription_id_accepts(sid: str) -> None:
    assert validate_subscription_id(sid) == sid


@pytest.mark.parametrize(
    ("sid", "detail"),
    [
        ("", "empty"),
        ("a" * 126 + ".v1", "longer than 128"),
        (".a.v1", "leading or trailing"),
        ("a.v1.", "leading or trailing"),
        ("a..b.v1", "doubled"),
        ("orders", "version suffix"),
        (".v1", "leading or trailing"),
        ("-a.v1", "start with"),
        ("A.v1", "start with"),
        ("a/b.v1", "outside"),
        ("a.v", "missing version digits"),
        ("a.v0", "1-9"),
        ("a.v01", "1-9"),
        ("a.v1x", "digits only"),
    ],
)
def test_subscription_id_rejects(sid: str, detail: str) -> None:
    with pytest.raises(SubscriptionInvalidId, match=detail):
        validate_subscription_id(sid)


def test_event_category_range() -> None:
    for ok in [1, 2, 0xC, 0xE, 0xF]:
        EventCategorySource(ok)
    for bad in [0, 0xD, 16, -1]:
        with pytest.raises(SubscriptionReservedCategory):
            EventCategorySource(bad)


def test_projection_id_grammar() -> None:
    ProjectionSource("orders.open")
    with pytest.raises(SubscriptionInvalidProjectionId):
        ProjectionSource("Orders")
    with pytest.raises(SubscriptionInvalidProjectionId):
        ProjectionSource("a" * 129)


def test_source_views_put_kind_first_and_require_roles() -> None:
    cases: list[tuple[SubscriptionSource, dict[str, object], SchemaRole]] = [
        (
            EventCategorySource(3),
            {"kind": "event-category", "category": 3},
            SchemaRole.EVENT_PAYLOAD,
        ),
        (
            EntityStreamSource(Coordinate("order:1", "shop")),
            {"kind": "entity-stream", "coordinate": {"entity": "order:1", "scope": "shop"}},
            SchemaRole.EVENT_PAYLOAD,
        ),
        (
            ProjectionSource("open"),
            {"kind": "projection", "projection_id": "open"},
            SchemaRole.SUBSCRIPTION_PAYLOAD,
        ),
        (
            ReceiptStreamSource("r.v1"),
            {"kind": "receipt-stream", "receipt_kind": "r.v1"},
            SchemaRole.RECEIPT_PAYLOAD,
        ),
        (
            OperationStatusSource("a.op"),
            {"kind": "operation-status", "operation": "a.op"},
            SchemaRole.SUBSCRIPTION_PAYLOAD,
        ),
    ]
    for source, view, role in cases:
        assert source.view() == view
        assert next(iter(source.view())) == "kind"
        assert source.required_payload_role is role


def test_descriptor_view_field_order_and_defaults() -> None:
    d = SubscriptionDescriptor("a.feed.v1", EventCategorySource(1), "a.evt")
    assert d.view() == {
        "id": "a.feed.v1",
        "source": {"kind": "event-category", "category": 1},
        "payload_schema_ref": "a.evt",
        "delivery": "cursor-at-least-once",
        "backpressure": {"kind": "bounded-queue", "capacity": 256},
    }
    assert list(d.view()) == ["id", "source", "payload_schema_ref", "delivery", "backpressure"]
    with pytest.raises(SubscriptionInvalidId):
        SubscriptionDescriptor("nope", EventCategorySource(1), "a.evt")
    with pytest.raises(ValueError, match="u32"):
        BoundedQueue(2**32)


def test_event_payload_binding() -> None:
    b = EventPayloadBinding(0xF001, "a.evt")
    assert b.view() == {"kind": 0xF001, "payload_schema_ref": "a.evt"}
    with pytest.raises(EventPayloadBindingInvalid, match="empty"):
        EventPayloadBinding(1, "")
    with pytest.raises(EventPayloadBindingInvalid, match="u16"):
        EventPayloadBinding(0x10000, "a.evt")
