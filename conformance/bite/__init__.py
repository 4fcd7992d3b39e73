"""Bite: the conformance suite must fail against deliberately broken implementations.

Each variant plants one bug the suite claims to catch, and names the invariants whose tests
should catch it. ``python -m bite`` (``nox -s bite``) runs those tests once unmutated (they
must pass) and once per variant (at least one must fail, or the variant is MISSED).

The bugs are planted by monkeypatching, in the pytest process (the ``bite.plugin`` pytest
plugin, ``--bite NAME``) and in every Python child it starts (``CONFORMANCE_BITE=NAME`` with
``bite/site`` on ``PYTHONPATH``, whose ``sitecustomize`` plants the same bug), so real server
and writer processes run broken too. Mutants live here only, never in package code.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Variant:
    """A planted bug and the invariants whose tests must catch it."""

    name: str
    bug: str
    invariants: tuple[str, ...]


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            "lying-fsync",
            "fsync is a no-op: batpak acknowledges writes that never reached stable storage "
            "(os.fsync/os.fdatasync and every StoreFs sync and sync_dir are dropped)",
            (
                "INV-DURABLE-ACKS",
                "INV-DST-RECOVERY-LEGAL",
                "INV-RECOVERY-ORACLE-LEGAL",
                "INV-BATCH-CRASH-RECOVERY",
                "INV-FRONTIER-DURABLE-COVERS-RECOVERED",
                "INV-FRONTIER-APPEND-GATE-HONORED",
                "INV-COMPACTION-NAMESPACE-COMMIT",
            ),
        ),
        Variant(
            "no-chain-check",
            "Store.verify_chain accepts anything: it reports every chain intact",
            ("INV-HASH-CHAIN-INTEGRITY", "INV-DST-RECOVERY-LEGAL"),
        ),
        Variant(
            "duplicate-idempotency-key",
            "a keyed retry is not recognised: the writer appends a second event",
            (
                "INV-IDEMPOTENCY-DURABLE-WINDOW",
                "INV-GROUP-COMMIT-IDEMPOTENCY",
                "INV-CONCURRENCY-SCHEDULE-PROOF",
                "INV-IDEMPOTENCY-AUTHORITY-ATOMIC-COMPACTION",
            ),
        ),
        Variant(
            "cross-tenant-read",
            "BatenBase serves another tenant's block when the caller's tenant has none",
            ("INV-TENANT-ISOLATION", "INV-INVISIBLE-EQUALS-MISSING"),
        ),
        Variant(
            "invisible-forbidden",
            "BatenBase answers 403 instead of 404 for a block that exists but is invisible",
            ("INV-INVISIBLE-EQUALS-MISSING",),
        ),
        Variant(
            "redaction-ignored",
            "BatenBase checks v before h: a redacted block stays readable to whom v admits",
            ("INV-REDACTION-PRECEDENCE", "INV-INVISIBLE-EQUALS-MISSING"),
        ),
        Variant(
            "quota-ignored",
            "BatenBase stores a write the quota refused (it lifts the plan for that write)",
            ("INV-QUOTA-EXACT",),
        ),
        Variant(
            "ack-before-durable",
            "BatenBase answers a PUT at once and writes it 0.2 s later, in the background",
            ("INV-DURABLE-ACKS",),
        ),
    )
}

ENV = "CONFORMANCE_BITE"
"""The environment variable naming the variant planted in child processes."""
