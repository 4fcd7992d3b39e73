"""The syncer thread behind group commit: jobs queued while it works share its next run."""

import threading

from batpak.store._syncer import Syncer


def test_jobs_queued_while_work_runs_share_the_next_run() -> None:
    started, release = threading.Event(), threading.Event()
    runs: list[list[int]] = []

    def work(jobs: list[int]) -> None:
        runs.append(list(jobs))
        if len(runs) == 1:
            started.set()
            release.wait(5)

    syncer: Syncer[int] = Syncer(work, "test-syncer")
    syncer.submit(1, 1)
    assert started.wait(5)
    syncer.submit(2, 1)
    syncer.submit(3, 2)
    assert syncer.waiting == 4  # the running job's caller and the queued ones
    release.set()
    syncer.drain()
    assert runs == [[1], [2, 3]]
    assert syncer.waiting == 0
    syncer.stop()


def test_stop_runs_what_is_queued_then_ends_the_thread() -> None:
    release = threading.Event()
    runs: list[list[str]] = []

    def work(jobs: list[str]) -> None:
        release.wait(5)
        runs.append(list(jobs))

    syncer: Syncer[str] = Syncer(work, "test-syncer")
    syncer.submit("a", 0)
    syncer.submit("b", 0)
    stopper = threading.Thread(target=syncer.stop)
    stopper.start()
    release.set()
    stopper.join(5)
    assert not stopper.is_alive()
    assert [job for run in runs for job in run] == ["a", "b"]
    assert not any(t.name == "test-syncer" and t.is_alive() for t in threading.enumerate())
