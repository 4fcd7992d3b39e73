"""The public surface of ``batpak``: the exact export list, and a docstring on every export."""

import inspect

import pytest

import batpak

EXPORTS = (
    "AppendOptions",
    "AppendReceipt",
    "BatchAppendItem",
    "ChainReport",
    "CompactionResult",
    "Coordinate",
    "Cursor",
    "DagPosition",
    "DiskPos",
    "DomainError",
    "DurabilityGate",
    "Event",
    "EventHeader",
    "EventKind",
    "FailClosedError",
    "ForkReport",
    "Frontier",
    "HashChain",
    "HlcPoint",
    "IdempotencyKey",
    "ImportOptions",
    "ImportProvenance",
    "ImportReport",
    "ImportSelector",
    "IndexEntry",
    "KindFilter",
    "MemoryCache",
    "NativeCache",
    "NoCache",
    "NotFound",
    "Notification",
    "Outcome",
    "PriorItem",
    "Projection",
    "ProjectionCache",
    "ReceiptVerdict",
    "Region",
    "RetryableError",
    "SequenceMismatch",
    "Store",
    "StoreConfig",
    "StoreError",
    "StoreLocked",
    "StoredEvent",
    "Subscription",
    "SubscriptionDropped",
    "TypedDecodeError",
    "VisibilityFence",
    "VisibilityFenceActive",
    "VisibilityFenceNotActive",
    "WaitTimeout",
    "WriterCrashed",
    "event_payload",
    "handles",
    "upcaster",
    "verify_receipt_claim",
)


def own_docstring(obj: object) -> str | None:
    """The docstring written on ``obj`` itself: inherited or generated ones do not count."""
    if inspect.isclass(obj):
        doc = vars(obj).get("__doc__")
        if isinstance(doc, str) and doc.startswith(f"{obj.__name__}("):
            return None  # the signature a dataclass generates when the class has no docstring
        return doc if isinstance(doc, str) else None
    doc = getattr(obj, "__doc__", None)
    return doc if isinstance(doc, str) else None


def test_all_is_pinned() -> None:
    assert batpak.__all__ == EXPORTS


def test_every_export_exists_and_star_import_matches() -> None:
    namespace: dict[str, object] = {}
    exec("from batpak import *", namespace)
    namespace.pop("__builtins__", None)
    assert set(namespace) == set(EXPORTS)
    for name in EXPORTS:
        assert namespace[name] is getattr(batpak, name)


@pytest.mark.parametrize("name", EXPORTS)
def test_every_export_has_its_own_docstring(name: str) -> None:
    doc = own_docstring(getattr(batpak, name))
    assert doc is not None, f"batpak.{name} has no docstring of its own"
    assert doc.strip(), f"batpak.{name} has an empty docstring"


def test_package_has_a_docstring_and_version() -> None:
    assert batpak.__doc__
    assert batpak.__doc__.strip()
    assert isinstance(batpak.__version__, str)
