"""The kill -9 loop: a real child writer (test_durability's) is SIGKILLed at seeded moments, over
and over, and every reopen is held to a durable-ack oracle.

The child prints ``ACK <seq> <id>`` only after ``sync()`` returned, so each ACK is a durable
acknowledgement. ``BATPAK_CRASH_KILLS`` sets the number of kills (3 by default; ``nox -s crash``
runs 1000). The store directory is renewed every ``ROUNDS_PER_STORE`` kills to bound the cost
of each reopen.

PROVES: INV-DURABLE-ACKS (batpak side: every sync-acknowledged append survives SIGKILL, same
sequence and bytes), INV-DST-RECOVERY-LEGAL (every reopen is a legal prefix: nothing invented,
no torn batch, chains intact, the lock released).
CATCHES: acknowledging before fsync, lost or renumbered events, torn batches, broken chains,
a lock that outlives its process; rare interleavings through sheer repetition.
SEEDED: kill moments, cadences and delays come from BATPAK_CRASH_SEED (default 0xC4A5).
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest
from test_durability import CHILD_WRITER, _check_on_disk, _check_recovered, _kill_round

KILLS = int(os.environ.get("BATPAK_CRASH_KILLS", "3"))
SEED = int(os.environ.get("BATPAK_CRASH_SEED", str(0xC4A5)), 0)
ROUNDS_PER_STORE = 10


@pytest.mark.invariant("INV-DURABLE-ACKS")
@pytest.mark.invariant("INV-DST-RECOVERY-LEGAL")
def test_kill9_loop_keeps_every_durable_ack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "child_writer.py"
    script.write_text(CHILD_WRITER)
    rng = random.Random(SEED)
    started = time.monotonic()
    acks_checked = 0
    acked: list[list[tuple[int, int]]] = []
    directory = tmp_path / "store-0"
    for kill in range(KILLS):
        if kill % ROUNDS_PER_STORE == 0:
            directory = tmp_path / f"store-{kill // ROUNDS_PER_STORE}"
            acked = []
        acked.append(_kill_round(script, directory, len(acked), rng))
        _check_recovered(directory, acked)
        _check_on_disk(directory, acked)
        acks_checked += sum(len(round_acks) for round_acks in acked)
    elapsed = time.monotonic() - started
    assert KILLS >= 1
    assert acks_checked > 0
    with capsys.disabled():
        print(
            f"\nkill -9 loop: {KILLS} kills, {acks_checked} durable-ack checks, "
            f"{elapsed:.1f} s ({elapsed / KILLS * 1000:.0f} ms per kill), seed {SEED:#x}"
        )
