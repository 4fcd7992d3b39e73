"""The recovery oracle: is what a store recovered after a crash a legal outcome?

Pure: it compares an observation (the events a reopened store shows, or the error its open
raised) with a model history, and knows nothing about files or batpak internals.

The model is the list of states a workload passed through, each the ordered tuple of its
user-visible event ids (``states[0]`` before the first operation, one state per operation:
an append, a batch, a compaction that drops events). ``durable`` is the newest state the
store had acknowledged as durable when the crash happened (a returned ``sync()``, gated
append, batch or compaction); ``started`` the newest state whose operation had begun.

Legal outcomes, exactly one per case:
- ``CommittedPrefix``: the store shows state j with durable < j <= started, or everything
  acknowledged and nothing was in flight;
- ``RolledBack``: the store shows the acknowledged state while later work was in flight (or,
  on a disk whose fsync lies, any earlier state: the dropped commit is lost, the rest legal);
- ``CanonicalRefusal``: the open raised a typed store error.

Violations: ``LostDurableCommit`` (an acknowledged event is gone), ``UndeadEvent`` (an event
never appended, one with other bytes, or one a durable compaction dropped), ``BrokenHashChain``,
``NonCanonicalReopen`` (an untyped error), ``IllegalState`` (any other mix, such as a torn
batch or a gap).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from refstore import ZERO32, b3


class Outcome(enum.Enum):
    COMMITTED_PREFIX = "CommittedPrefix"
    ROLLED_BACK = "RolledBack"
    CANONICAL_REFUSAL = "CanonicalRefusal"


class Violation(enum.Enum):
    LOST_DURABLE_COMMIT = "LostDurableCommit"
    UNDEAD_EVENT = "UndeadEvent"
    BROKEN_HASH_CHAIN = "BrokenHashChain"
    NON_CANONICAL_REOPEN = "NonCanonicalReopen"
    ILLEGAL_STATE = "IllegalState"


@dataclass(frozen=True, slots=True)
class Seen:
    """One recovered user event as a reader sees it."""

    event_id: int
    entity: str
    lane: int
    payload: bytes
    prev_hash: bytes
    event_hash: bytes


@dataclass(slots=True)
class History:
    """The model: the states a workload went through and what was acknowledged."""

    states: list[tuple[int, ...]] = field(default_factory=lambda: [()])
    payloads: dict[int, bytes] = field(default_factory=dict)
    durable: int = 0
    started: int = 0

    def begin(self) -> None:
        """An operation is about to run (its effects may reach the disk from now on)."""
        self.started = len(self.states)

    def commit(self, state: tuple[int, ...], payloads: dict[int, bytes], acked: bool) -> None:
        """The operation returned with ``state``; ``acked`` when it was durable on return."""
        self.states.append(state)
        self.payloads.update(payloads)
        self.started = len(self.states) - 1
        if acked:
            self.ack()

    def ack(self) -> None:
        """Everything so far is acknowledged durable (a returned ``sync()``)."""
        self.durable = len(self.states) - 1

    def at(self, durable: int, started: int) -> History:
        """The same history as seen at an earlier moment."""
        return History(self.states, self.payloads, durable, started)


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome | None
    state: int | None = None
    violations: tuple[tuple[Violation, str], ...] = ()

    @property
    def legal(self) -> bool:
        return self.outcome is not None and not self.violations


def classify(
    history: History,
    observed: Sequence[Seen] | BaseException,
    *,
    typed: Callable[[BaseException], bool],
    honest: bool = True,
) -> Verdict:
    """Classify one recovery. ``typed`` says whether an open error is a typed refusal;
    ``honest=False`` (a lying fsync) allows losing acknowledged commits."""
    if isinstance(observed, BaseException):
        if typed(observed):
            return Verdict(Outcome.CANONICAL_REFUSAL)
        return Verdict(None, None, ((Violation.NON_CANONICAL_REOPEN, repr(observed)),))
    problems: list[tuple[Violation, str]] = []
    ids = tuple(seen.event_id for seen in observed)
    for seen in observed:
        expected = history.payloads.get(seen.event_id)
        if expected is None:
            problems.append((Violation.UNDEAD_EVENT, f"{seen.event_id:032x} was never appended"))
        elif expected != seen.payload:
            problems.append((Violation.UNDEAD_EVENT, f"{seen.event_id:032x} has other bytes"))
    problems += _chain_problems(observed)
    acked = history.states[history.durable]
    matches = [j for j, state in enumerate(history.states) if state == ids]
    state = matches[-1] if matches else None
    if honest and (state is None or state < history.durable):
        # A later state may drop acknowledged events legally (a compaction with retain).
        lost = [i for i in acked if i not in ids]
        if lost:
            problems.append((Violation.LOST_DURABLE_COMMIT, f"{len(lost)} acknowledged gone"))
    if state is not None and state < history.durable:
        undead = [i for i in ids if i not in acked]
        if undead:
            problems.append((Violation.UNDEAD_EVENT, f"{len(undead)} dropped events are back"))
    if state is None or state > history.started:
        if not problems:
            problems.append((Violation.ILLEGAL_STATE, f"{len(ids)} events match no state"))
        return Verdict(None, None, tuple(problems))
    if problems:
        return Verdict(None, state, tuple(problems))
    if (state == history.durable and history.started > history.durable) or state < history.durable:
        return Verdict(Outcome.ROLLED_BACK, state)
    return Verdict(Outcome.COMMITTED_PREFIX, state)


def _chain_problems(observed: Sequence[Seen]) -> list[tuple[Violation, str]]:
    problems = []
    heads: dict[tuple[str, int], bytes] = {}
    for seen in observed:
        chain = (seen.entity, seen.lane)
        if seen.event_hash != b3(seen.payload):
            problems.append((Violation.BROKEN_HASH_CHAIN, f"{seen.event_id:032x} hash"))
        if seen.prev_hash != heads.get(chain, ZERO32):
            problems.append((Violation.BROKEN_HASH_CHAIN, f"{seen.event_id:032x} prev link"))
        heads[chain] = seen.event_hash
    return problems
