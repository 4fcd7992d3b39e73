"""The recovery oracle judged on planted histories: it must accept the legal outcomes and name
every planted violation, or the crash tests built on it prove nothing.

PROVES: INV-RECOVERY-ORACLE-LEGAL (each planted case is exactly one of CommittedPrefix,
RolledBack, CanonicalRefusal, or the named violation: LostDurableCommit, UndeadEvent,
BrokenHashChain, NonCanonicalReopen, IllegalState).
CATCHES: an oracle that passes everything, or confuses a lost commit with a rollback.
SEEDED: fixed planted histories.
"""

from __future__ import annotations

import pytest
from oracle import History, Outcome, Seen, Violation, classify
from refstore import ZERO32, b3

from batpak.errors import CorruptSegment


def _events(n: int) -> list[Seen]:
    out, prev = [], ZERO32
    for i in range(n):
        payload = bytes([i]) * 4
        out.append(Seen(100 + i, "e:1", 0, payload, prev, b3(payload)))
        prev = b3(payload)
    return out


def _history(n: int, durable: int, started: int) -> History:
    events = _events(n)
    history = History()
    for i in range(n):
        history.commit(
            tuple(e.event_id for e in events[: i + 1]), {100 + i: events[i].payload}, False
        )
    return history.at(durable, started)


def _typed(error: BaseException) -> bool:
    return isinstance(error, CorruptSegment)


@pytest.mark.invariant("INV-RECOVERY-ORACLE-LEGAL")
def test_the_oracle_accepts_the_three_legal_classes() -> None:
    history = _history(4, durable=2, started=4)
    events = _events(4)
    assert classify(history, events[:2], typed=_typed).outcome is Outcome.ROLLED_BACK
    assert classify(history, events[:3], typed=_typed).outcome is Outcome.COMMITTED_PREFIX
    assert classify(history, events, typed=_typed).outcome is Outcome.COMMITTED_PREFIX
    refusal = classify(history, CorruptSegment(1, "torn"), typed=_typed)
    assert refusal.outcome is Outcome.CANONICAL_REFUSAL
    assert refusal.legal
    lying = classify(history, events[:1], typed=_typed, honest=False)
    assert lying.outcome is Outcome.ROLLED_BACK
    assert lying.legal


@pytest.mark.invariant("INV-RECOVERY-ORACLE-LEGAL")
def test_the_oracle_names_every_planted_violation() -> None:
    history = _history(4, durable=2, started=3)
    events = _events(4)

    def kinds(observed: list[Seen] | BaseException) -> set[Violation]:
        verdict = classify(history, observed, typed=_typed)
        assert not verdict.legal
        assert verdict.outcome is None
        return {kind for kind, _ in verdict.violations}

    assert kinds(events[:1]) == {Violation.LOST_DURABLE_COMMIT}
    assert Violation.UNDEAD_EVENT in kinds(
        [*events[:2], Seen(999, "e:1", 0, b"x", ZERO32, b3(b"x"))]
    )
    forged = Seen(101, "e:1", 0, b"forged", events[0].event_hash, b3(b"forged"))
    assert Violation.UNDEAD_EVENT in kinds([events[0], forged])
    broken = Seen(101, "e:1", 0, events[1].payload, ZERO32, events[1].event_hash)
    assert kinds([events[0], broken]) == {Violation.BROKEN_HASH_CHAIN}
    assert kinds([events[0], events[2]]) & {Violation.ILLEGAL_STATE, Violation.LOST_DURABLE_COMMIT}
    assert kinds(events) == {Violation.ILLEGAL_STATE}  # state 4 never started
    assert kinds(RuntimeError("untyped")) == {Violation.NON_CANONICAL_REOPEN}
