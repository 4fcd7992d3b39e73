"""Start a server as a child process, wait for its ready line, stop it with SIGINT.

Servers run in their own interpreter so the load generator (this process) and the server
each get a core, for this project and its peers alike.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def child(
    argv: list[str], ready: str, log: Path, *, timeout: float = 60.0
) -> Iterator[tuple[int, list[str]]]:
    """Run ``python argv...`` until its stdout matches the regex ``ready``; yield
    ``(pid, stdout lines so far)``. Stderr (access logs, tracebacks) goes to the file ``log``."""
    env = dict(os.environ)
    path = [str(ROOT), *(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p)]
    env["PYTHONPATH"] = os.pathsep.join(path)
    env["PYTHONUNBUFFERED"] = "1"
    with log.open("ab") as errors:
        proc = subprocess.Popen(
            [sys.executable, *argv],
            stdout=subprocess.PIPE,
            stderr=errors,
            stdin=subprocess.DEVNULL,
            env=env,
            text=True,
        )
    assert proc.stdout is not None
    lines: list[str] = []
    pattern = re.compile(ready)
    try:
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while not any(pattern.search(line) for line in lines):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{argv} did not become ready: {lines}")
                if sel.select(timeout=0.5):
                    line = proc.stdout.readline()
                    if line:
                        lines.append(line.rstrip("\n"))
        yield proc.pid, lines
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stdout.close()


def port_of(lines: list[str], ready: str) -> int:
    for line in lines:
        found = re.search(ready, line)
        if found:
            return int(found.group(1))
    raise LookupError(ready)
