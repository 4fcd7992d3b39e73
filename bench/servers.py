"""Start a server as a child process, wait for its ready line, stop it with SIGINT.

Servers run in their own interpreter so the load generator (this process) and the server
each get a core, for this project and its peers alike.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.load import Tally

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def child(
    argv: list[str],
    ready: str,
    log: Path,
    *,
    timeout: float = 60.0,
    prefix: list[str] | None = None,
) -> Iterator[tuple[int, list[str]]]:
    """Run ``python argv...`` until its stdout matches the regex ``ready``; yield
    ``(pid, stdout lines so far)``. Stderr (access logs, tracebacks) goes to the file ``log``.
    ``prefix`` wraps the command (a profiler), and the pid is then the wrapper's."""
    env = dict(os.environ)
    path = [str(ROOT), *(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p)]
    env["PYTHONPATH"] = os.pathsep.join(path)
    env["PYTHONUNBUFFERED"] = "1"
    with log.open("ab") as errors:
        proc = subprocess.Popen(
            [*(prefix or []), sys.executable, *argv],
            stdout=subprocess.PIPE,
            stderr=errors,
            stdin=subprocess.DEVNULL,
            env=env,
            text=True,
        )
    assert proc.stdout is not None
    lines: list[str] = []
    stdout = proc.stdout

    def pump() -> None:  # a thread, so buffered lines are never missed by a select()
        for line in stdout:
            lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    pattern = re.compile(ready)
    try:
        deadline = time.monotonic() + timeout
        while not any(pattern.search(line) for line in list(lines)):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{argv} did not become ready: {lines}\n{tail}")
            time.sleep(0.05)
        yield proc.pid, lines
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        reader.join(timeout=5)
        stdout.close()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(pid: int, run: Callable[[], Tally]) -> tuple[Tally, dict[str, float | int | str]]:
    """Run a load phase against server ``pid``; return its tally and summary, with the
    server's CPU time per answer."""
    before = cpu_seconds(pid)
    tally = run()
    return tally, tally.summary(cpu_seconds(pid) - before)


def port_of(lines: list[str], ready: str) -> int:
    for line in lines:
        found = re.search(ready, line)
        if found:
            return int(found.group(1))
    raise LookupError(ready)
