"""The eight jobs of a journal, end to end: open, append, page, get, walk, verify, project, close.

A one-to-one port of the reference's eight-jobs walk, plus a reopen that shows the same state.
Run it from the repository root: ``python3 examples/eight_jobs.py [DATA_DIR]`` (a fresh
temporary directory by default). Every step checks what it proves and prints one line.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import msgspec

from batpak import (
    Coordinate,
    Outcome,
    Projection,
    Region,
    Store,
    StoreConfig,
    event_payload,
    handles,
)
from batpak.kinds import SYSTEM_OPEN_COMPLETED


@event_payload(category=0xF, type_id=0x201)
class NoteAdded(msgspec.Struct):
    body: str


class NoteStream(Projection):
    """How many notes an entity has, and the newest one."""

    def __init__(self) -> None:
        self.count = 0
        self.last_body = ""

    @handles(NoteAdded)
    def on_note_added(self, note: NoteAdded) -> None:
        self.count += 1
        self.last_body = note.body


ENTITY = "entity:eight-jobs"
COORD = Coordinate(ENTITY, "scope:eight-jobs")


def run(path: Path) -> NoteStream:
    # 1. Open: the store records a durable lifecycle event that readers can see.
    store = Store.open(StoreConfig(path))
    opened = store.by_fact(SYSTEM_OPEN_COMPLETED)
    assert opened, "no OPEN_COMPLETED lifecycle event"
    lifecycle = store.get(opened[-1].event_id).coordinate
    assert (lifecycle.entity, lifecycle.scope) == ("batpak:store", "batpak:lifecycle")
    print(f"1 open:    lifecycle event at {lifecycle}")

    # 2. Append twice: the type decides the kind; each receipt names its committed position.
    first = store.append_typed(COORD, NoteAdded(body="first note"))
    second = store.append_typed(COORD, NoteAdded(body="second note"))
    print(f"2 append:  sequences {first.global_sequence} and {second.global_sequence}")

    # 3. Page in commit order; the scope excludes lifecycle events.
    page = store.query_entries_after(Region.scope("scope:eight-jobs"), None, 16)
    assert page[0].event_id == first.event_id
    print(f"3 page:    {len(page)} entries, first is the first receipt")

    # 4. Get and decode through the type's version-dispatched decoder.
    body = store.get(first.event_id).decode(NoteAdded).body
    assert body == "first note"
    print(f"4 get:     {body!r}")

    # 5. Walk the BLAKE3 prev_hash chain, newest first.
    walked = store.walk_ancestors(second.event_id, 8)
    assert [e.event_id for e in walked[:2]] == [second.event_id, first.event_id]
    print(f"5 walk:    {len(walked)} events back from the second note")

    # 6. Verify the receipt against the committed id, sequence, position, hash and extensions.
    verdict = store.verify_append_receipt(second)
    assert verdict.outcome is Outcome.UNSIGNED_ACCEPTED
    print(f"6 verify:  {verdict.outcome}")

    # 7. Project: a deterministic replay of the entity's events.
    notes = store.project(NoteStream, ENTITY)
    assert notes.count >= 2
    print(f"7 project: count={notes.count} last={notes.last_body!r}")

    # 8. Close: drain, write the close event and the footer, release the lock.
    store.close()
    print("8 close:   lock released")

    # Reopen: the journal rebuilds the same state from its segment files.
    with Store.open(StoreConfig(path)) as again:
        replayed = again.project(NoteStream, ENTITY)
        assert (replayed.count, replayed.last_body) == (notes.count, notes.last_body)
        assert again.get(second.event_id).decode(NoteAdded).body == "second note"
        print(f"  reopen:  count={replayed.count}, same as before close")
    return replayed


if __name__ == "__main__":
    if len(sys.argv) > 1:
        run(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            run(Path(tmp))
