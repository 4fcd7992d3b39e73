"""StoreReceiptSink: receipts as batpak events, with ``syncbat.*`` receipt extensions.

Each envelope is appended at the sink's coordinate as kind ``0xC5B7`` (payload version 1),
with these batpak receipt extensions, which the store signs when signing is configured:

- ``syncbat.descriptor``: the operation name; ``syncbat.outcome``: ``completed`` /
  ``failed`` / ``denied``; ``syncbat.kind``: the receipt kind, when non-empty;
- ``syncbat.input`` / ``syncbat.output``: the 32 raw hash bytes, when present;
- ``syncbat.signed``: the signed drawer (:func:`encode_drawer`), when non-empty.

The local drawer is never promoted.
"""

from __future__ import annotations

import dataclasses

from batpak import AppendOptions, Coordinate, Store, StoreError
from syncbat.errors import ReceiptSinkError
from syncbat.receipt import ReceiptEnvelope, RecordedReceipt

__all__ = ("DRAWER_HEADER", "StoreReceiptSink", "encode_drawer", "receipt_extensions")

DRAWER_HEADER = b"syncbat.drawer.v1\0"
"""The first bytes of an encoded drawer."""


def encode_drawer(drawer: dict[str, bytes]) -> bytes:
    """The header, then for each key in sorted order ``u64be len, key, u64be len, value``."""
    out = bytearray(DRAWER_HEADER)
    for key in sorted(drawer):
        for part in (key.encode("utf-8"), drawer[key]):
            out += len(part).to_bytes(8, "big")
            out += part
    return bytes(out)


def receipt_extensions(envelope: ReceiptEnvelope) -> dict[str, bytes]:
    """The ``syncbat.*`` batpak receipt extensions for an envelope."""
    extensions = {
        "syncbat.descriptor": envelope.descriptor_name.encode("utf-8"),
        "syncbat.outcome": envelope.outcome.outcome_class.encode("ascii"),
    }
    if envelope.receipt_kind:
        extensions["syncbat.kind"] = envelope.receipt_kind.encode("utf-8")
    if envelope.input_hash is not None:
        extensions["syncbat.input"] = envelope.input_hash
    if envelope.output_hash is not None:
        extensions["syncbat.output"] = envelope.output_hash
    if envelope.signed_extensions:
        extensions["syncbat.signed"] = encode_drawer(envelope.signed_extensions)
    return extensions


class StoreReceiptSink:
    """Appends receipt envelopes to one coordinate of a batpak store.

    ``options`` is the baseline for every append; the ``syncbat.*`` extensions overwrite any
    key of the same name in it.
    """

    def __init__(
        self, store: Store, coordinate: Coordinate, options: AppendOptions | None = None
    ) -> None:
        self.store = store
        self.coordinate = coordinate
        self.options = options or AppendOptions()

    def record_receipt(self, envelope: ReceiptEnvelope) -> RecordedReceipt:
        extensions = {**self.options.extensions, **receipt_extensions(envelope)}
        options = dataclasses.replace(self.options, extensions=extensions)
        try:
            receipt = self.store.append_typed(self.coordinate, envelope.to_wire(), options)
        except (StoreError, ValueError, TypeError) as exc:
            raise ReceiptSinkError(f"batpak receipt append failed: {exc}") from exc
        return RecordedReceipt(envelope, receipt)
