"""Import: re-apply another store's events (or this store's own) as new events here.

Imported events get new ids, global sequences and chain links in the destination, but keep
their coordinate, kind, payload bytes (so their content hashes) and correlation id; causation
is cleared because the cause lives in another log. Each carries the reference's receipt
extension ``batpak.import.provenance`` (signed with the receipt when the store signs), and its
idempotency key is derived from (namespace, source event id), so importing the same event
again is a no-op, across restarts too. The import reads only what the source showed when the
call began, so a store importing from itself stops instead of chasing its own output.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import msgspec

from batpak import canonical
from batpak.batch import BatchAppendItem
from batpak.coordinate import Region
from batpak.errors import Configuration
from batpak.kinds import is_reserved
from batpak.options import AppendOptions, IdempotencyKey
from batpak.receipt import AppendReceipt, encode_extensions
from batpak.store._entry import IndexEntry

if TYPE_CHECKING:
    from batpak.store._store import Store

PROVENANCE_KEY = "batpak.import.provenance"
PROVENANCE_SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class ImportSelector:
    """Which visible source events to import: a region, after an exclusive global sequence."""

    region: Region = field(default_factory=Region.all)
    after: int | None = None

    @classmethod
    def all(cls) -> ImportSelector:
        return cls()

    @classmethod
    def of_region(cls, region: Region) -> ImportSelector:
        return cls(region)

    @classmethod
    def after_sequence(cls, after: int) -> ImportSelector:
        return cls(Region.all(), after)


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """The caller-owned ``namespace`` naming the source log (with the source event id it forms
    the import's idempotency key); ``chunk_size`` events per atomic batch (clamped to the
    destination's batch limits); ``filter`` returns False to skip a source entry."""

    namespace: str
    chunk_size: int = 256
    filter: Callable[[IndexEntry], bool] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.namespace, str) or not self.namespace:
            raise Configuration("import namespace must be a non-empty string")
        if self.chunk_size < 1:
            raise Configuration("import chunk_size must be at least 1")


@dataclass(slots=True)
class ImportReport:
    """What one ``import_events`` call did with each selected source event."""

    imported: int = 0
    deduplicated: int = 0
    skipped_reserved: int = 0
    skipped_filtered: int = 0
    skipped_reimported: int = 0
    source_high_watermark: int | None = None


class ImportProvenance(msgspec.Struct, frozen=True):
    """The ``batpak.import.provenance`` extension body: where an imported event came from."""

    schema_version: int
    source_namespace: str
    source_event_id: bytes
    source_global_sequence: int
    source_kind: int
    source_content_hash: list[int]

    @staticmethod
    def of(extensions: Mapping[str, bytes] | None) -> ImportProvenance | None:
        """The provenance in an event's (or receipt's) extensions, if it carries one."""
        data = (extensions or {}).get(PROVENANCE_KEY)
        if data is None:
            return None
        try:
            return canonical.decode(data, ImportProvenance)
        except canonical.CanonicalDecodeError:
            return None


def import_key(namespace: str, source_event_id: int) -> IdempotencyKey:
    """The reference's deterministic key: ``for_operation("batpak.import", [ns, hex32(id)])``."""
    return IdempotencyKey.for_operation("batpak.import", [namespace, f"{source_event_id:032x}"])


def import_events(
    dest: Store, source: Store, selector: ImportSelector, options: ImportOptions
) -> ImportReport:
    config = dest.config
    chunk = max(1, min(options.chunk_size, config.batch_max_size))
    ceiling = source.frontier().visible.global_sequence  # the call-time source frontier
    before = dest.frontier().accepted.global_sequence
    report = ImportReport()
    after = selector.after
    while True:
        page = source.query_entries_after(selector.region, after, chunk)
        if not page:
            return report
        after = page[-1].global_sequence
        items: list[BatchAppendItem] = []
        reached = False
        for entry in page:
            if entry.global_sequence > ceiling:
                reached = True
                break
            report.source_high_watermark = max(
                report.source_high_watermark or 0, entry.global_sequence
            )
            item = _item(dest, source, entry, options, report)
            if item is not None:
                items.append(item)
        for receipts in _batches(dest, items):
            for receipt in receipts:
                if receipt.global_sequence <= before:
                    report.deduplicated += 1
                else:
                    report.imported += 1
        if reached:
            return report


def _item(
    dest: Store, source: Store, entry: IndexEntry, options: ImportOptions, report: ImportReport
) -> BatchAppendItem | None:
    if is_reserved(entry.event_kind):
        report.skipped_reserved += 1
        return None
    if options.filter is not None and not options.filter(entry):
        report.skipped_filtered += 1
        return None
    carried = ImportProvenance.of(entry.receipt_extensions)
    if carried is not None and carried.source_namespace == options.namespace:
        # Our own earlier output for this namespace: the original it copies is in the
        # selection too and carries the dedup credit (the reference's no-runaway guard).
        report.skipped_reimported += 1
        return None
    key = import_key(options.namespace, entry.event_id)
    if dest._knows_key(key):
        report.deduplicated += 1
        return None
    stored = source.get(entry.event_id)
    header = stored.event.header
    body = ImportProvenance(
        PROVENANCE_SCHEMA_VERSION,
        options.namespace,
        canonical.u128_to_bytes(entry.event_id),
        entry.global_sequence,
        header.event_kind,
        canonical.byte_array(header.content_hash),
    )
    append = AppendOptions(idempotency_key=key, correlation_id=header.correlation_id)
    # AppendOptions refuses the reserved ``batpak`` namespace from callers; the store itself
    # writes this one key, so it is set after validation.
    object.__setattr__(append, "extensions", {PROVENANCE_KEY: canonical.encode(body)})
    return BatchAppendItem(stored.coordinate, header.event_kind, stored.event.payload, append)


def _batches(dest: Store, items: list[BatchAppendItem]) -> list[list[AppendReceipt]]:
    """Append ``items`` in atomic batches that respect the destination's byte limit."""
    limit = dest.config.batch_max_bytes
    done: list[list[AppendReceipt]] = []
    start, size = 0, 0
    for i, item in enumerate(items):
        cost = len(item.payload) + len(encode_extensions(item.options.extensions))
        if i > start and size + cost > limit:
            done.append(dest.append_batch(items[start:i]))
            start, size = i, 0
        size += cost
    if start < len(items):
        done.append(dest.append_batch(items[start:]))
    return done
