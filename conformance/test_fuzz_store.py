"""Untrusted store directories: every file batpak reads, fuzzed, then opened every way.

PROVES: INV-WIRE-ROUNDTRIP-TOTALITY (a segment, ``store.meta``, ``index.idemp``,
``index.cols``, ``visibility_ranges.fbv``, ``compaction.pending``, a foreign side file or a
cursor checkpoint holding arbitrary or mutated bytes opens cleanly or is refused with a typed
``batpak.StoreError``; after a clean open every listed event reads back as itself (or its read
is refused typed, as the per-read CRC does for a segment changed under a same-size checkpoint);
no other exception, no hang, no partial decode, no write by a read-only open, and the store a
writable open leaves opens again).
CATCHES: a decoder error that escapes untyped (``UnicodeDecodeError`` from a CRC-valid frame,
``RecursionError`` from deep nesting), an index entry that cannot be read back, a read-only
open that repairs files, a writable open that leaves an unopenable store.
SEEDED: hypothesis draws raw bytes and structure-aware edits of a seed store written through
the public API (with the CRCs repaired after the edit, so the decoders behind them are reached).
"""

from __future__ import annotations

import pytest
from fuzz.mutate import mutated
from fuzz.seeds import store_seeds
from fuzz.targets import TARGETS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

STORE_TARGETS = sorted(name for name in TARGETS if name.startswith("store_"))
EXAMPLES = {"store_segment": 60, "store_cols": 30}


def _inputs(target: str) -> st.SearchStrategy[bytes]:
    mode = st.integers(0, 3).map(lambda m: bytes([m]))
    raw = st.binary(max_size=512)
    structured = mutated(store_seeds(target))
    body = st.one_of(raw, structured, structured)
    return st.tuples(mode, body).map(lambda t: t[0] + t[1])


@pytest.mark.invariant("INV-WIRE-ROUNDTRIP-TOTALITY")
@pytest.mark.parametrize("target", STORE_TARGETS)
def test_store_file_fuzz(target: str) -> None:
    @settings(
        max_examples=EXAMPLES.get(target, 25),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=_inputs(target))
    def run(data: bytes) -> None:
        TARGETS[target](data)

    run()
