"""Callers racing the crash seam ``_abandon()`` or ``close()`` always get an answer.

Found by the conformance suite (INV-GROUP-COMMIT-IDEMPOTENCY, retry after a crash mid-batch):
an abandoned writer returned without answering what was still pending, such as a ``sync()`` in
the same group-commit cycle, and a caller that enqueued after the final drain of a close or
abandon waited forever.
"""

import contextlib
import threading
import time
from pathlib import Path

from batpak import BatchAppendItem, Coordinate, IdempotencyKey, Store, StoreConfig, StoreError
from batpak.options import AppendOptions

KIND = 0xEB33


def key(round_no: int, i: int) -> IdempotencyKey:
    return IdempotencyKey.for_operation("stop", [str(round_no), str(i)])


def busy_batch(store: Store, round_no: int) -> None:
    items = [
        BatchAppendItem.new(
            Coordinate("stop:1", "stop"),
            KIND,
            {"i": i, "pad": "x" * 2000},
            AppendOptions(
                idempotency_key=IdempotencyKey.for_operation("s", [str(round_no), str(i)])
            ),
        )
        for i in range(200)
    ]
    with contextlib.suppress(StoreError):  # the abandon may land first
        store.append_batch(items)


def syncer(store: Store, answers: list[str]) -> None:
    try:
        store.sync()
        answers.append("synced")
    except StoreError as exc:
        answers.append(type(exc).__name__)


def test_a_sync_pending_in_an_abandoned_group_is_answered(tmp_path: Path) -> None:
    for round_no in range(8):
        store = Store.open(StoreConfig(tmp_path / f"s{round_no}").with_group_commit(0))
        answers: list[str] = []
        batch = threading.Thread(target=busy_batch, args=(store, round_no), daemon=True)
        batch.start()
        time.sleep(0.002)  # the writer is busy with the batch
        sync = threading.Thread(target=syncer, args=(store, answers), daemon=True)
        sync.start()
        time.sleep(0.001)
        store._abandon()
        for thread in (batch, sync):
            thread.join(timeout=10)
        assert not batch.is_alive()
        assert not sync.is_alive(), "a pending sync() was never answered"
        assert len(answers) == 1
