"""Run every example as a user would, in a fresh process, and check what it prints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def _run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(HERE / script), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_quickstart_reopens_the_same_journal(tmp_path: Path) -> None:
    first = _run("quickstart.py", str(tmp_path))
    assert "payload:   PlayerMoved(x=10, y=20)" in first
    assert "receipt:   unsigned_accepted" in first
    assert "alice has moved 1 time(s)" in first
    second = _run("quickstart.py", str(tmp_path))
    assert "alice has moved 2 time(s)" in second


def test_eight_jobs_walk_runs_every_step(tmp_path: Path) -> None:
    out = _run("eight_jobs.py", str(tmp_path))
    steps = [line.split()[0] for line in out.splitlines()]
    assert steps == ["1", "2", "3", "4", "5", "6", "7", "8", "reopen:"]
    assert "7 project: count=2 last='second note'" in out
    assert "reopen:  count=2, same as before close" in out


def test_eight_jobs_default_directory_is_temporary() -> None:
    out = _run("eight_jobs.py")
    assert "6 verify:  unsigned_accepted" in out
