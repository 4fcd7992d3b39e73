"""Proofs: a key's revision events with their chain links, for offline verification.

A verifier recomputes ``blake3(payload) == content_hash`` for every event whose payload is
shown, and checks that each event's ``prev_hash`` equals the previous event's
``content_hash`` (the first event of a never-compacted key links to 32 zero bytes; after
compaction the oldest kept revision links to the hash of a dropped one). Payloads of
revisions the caller may not see are withheld (``payload_hex`` is None); their hashes still
carry the chain.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from batenbase._tenant import Tenant, block_entity
from batenbase.model import Proof

if TYPE_CHECKING:
    from batenbase._blocks import Revision


def build_proof(tenant: Tenant, key: str, revisions: list[Revision], shown: set[int]) -> Proof:
    by_seq = {r.seq: r for r in revisions}
    entries = [e for e in tenant.store.by_entity(block_entity(key)) if e.global_sequence in by_seq]
    events: list[dict[str, Any]] = []
    for entry, stored in zip(entries, tenant.store.events(entries), strict=True):
        revision = by_seq[entry.global_sequence]
        chain = stored.event.hash_chain
        events.append(
            {
                "rev": revision.rev,
                "event_id": f"{entry.event_id:032x}",
                "seq": entry.global_sequence,
                "entity": entry.entity,
                "scope": entry.scope,
                "kind": entry.event_kind,
                "payload_hex": stored.event.payload.hex()
                if entry.global_sequence in shown
                else None,
                "content_hash": stored.event.header.content_hash.hex(),
                "prev_hash": (chain.prev_hash if chain is not None else entry.prev_hash).hex(),
                "receipt": {
                    "event_id": f"{entry.event_id:032x}",
                    "global_sequence": entry.global_sequence,
                    "disk_pos": {
                        "segment_id": entry.segment_id,
                        "offset": entry.offset,
                        "length": entry.length,
                    },
                    "content_hash": entry.event_hash.hex(),
                },
            }
        )
    visible_revs = [r.rev for r in revisions if r.seq in shown]
    return Proof(key=key, rev=max(visible_revs) if visible_revs else 0, events=events)
