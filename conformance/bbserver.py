"""A real `python -m batenbase serve` process for black-box tests, and its tokens.

The server runs on a temporary data directory and a free loopback port (``--port 0``; the
printed URL is the real one). The operator token is taken the documented way: the first
start prints it once ("First operator token (shown once, keep it): ..."). Tenant tokens are
issued over ``/admin``. A server can be stopped (SIGTERM), killed (SIGKILL) and restarted on
the same directory; the operator token of the first start stays valid.

Child processes inherit ``os.environ`` (so a bite variant's ``PYTHONPATH`` and
``CONFORMANCE_BITE`` reach the server), with the repository's source trees put first on
``PYTHONPATH`` so an uninstalled checkout runs too.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from batenbase.client import Client
from batenbase.model import Plan, Role

ROOT = Path(__file__).resolve().parents[1]
SOURCES = (
    "circuits/src",
    "packages/batpak/src",
    "packages/syncbat/src",
    "packages/netbat/src",
    "packages/hostbat/src",
)
ROLES: tuple[Role, ...] = ("admin", "writer", "reader")


def child_env() -> dict[str, str]:
    """The environment of a child process: ours, with the source trees on PYTHONPATH."""
    paths = [str(ROOT / p) for p in SOURCES if (ROOT / p).is_dir()]
    inherited = os.environ.get("PYTHONPATH")
    if inherited:
        paths.append(inherited)
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


class BBServer:
    """One `batenbase serve` process on a data directory: startable, stoppable, killable."""

    def __init__(self, root: Path, *extra: str) -> None:
        self.root = root
        self.data = root / "data"
        self.extra = extra
        self.url = ""
        self.op = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self._http: httpx.Client | None = None

    def start(self, timeout: float = 30.0) -> BBServer:
        self.runs += 1
        self.root.mkdir(parents=True, exist_ok=True)
        out = self.root / f"server.{self.runs}.out"
        err = self.root / f"server.{self.runs}.err"
        cmd = [sys.executable, "-m", "batenbase", "serve", "--data", str(self.data), "--port", "0"]
        with out.open("wb") as stdout, err.open("wb") as stderr:
            self.proc = subprocess.Popen(
                [*cmd, *self.extra], stdout=stdout, stderr=stderr, env=child_env()
            )
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = out.read_text()
            found = re.search(r"listening on (http://\S+)", text)
            if found:
                self.url = found.group(1)
                token = re.search(r"First operator token \(shown once, keep it\): (\S+)", text)
                if token:
                    self.op = token.group(1)
                if self._healthy():
                    return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"batenbase serve did not start:\n{text}\n{err.read_text()}")

    def _healthy(self) -> bool:
        try:
            return httpx.get(self.url + "/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def stderr(self) -> str:
        return (self.root / f"server.{self.runs}.err").read_text()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> int:
        """SIGTERM (graceful) and wait; the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)

    def kill(self) -> None:
        """SIGKILL, as a crash would, and reap."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        if self.running():
            try:
                self.stop()
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self, token: str | None = None, *, timeout: float = 30.0) -> Client:
        return Client(self.url, token if token is not None else self.op, timeout=timeout)

    def tenant(
        self,
        name: str,
        plan: Plan = "free",
        observers: dict[str, tuple[Role, list[int]]] | None = None,
    ) -> dict[str, str]:
        """Create a tenant and one token per role (observer ``<name>-<role>``), plus a token
        per extra observer given as ``{observer: (role, [scope, ...])}``; tokens by role or
        observer name."""
        with self.client() as op:
            op.admin_create_tenant(name, plan)
            tokens: dict[str, str] = {
                role: op.admin_issue_token(name, f"{name}-{role}", role).token for role in ROLES
            }
            for observer, (role, scopes) in (observers or {}).items():
                tokens[observer] = op.admin_issue_token(name, observer, role, scopes).token
        return tokens

    def request(self, method: str, path: str, token: str | None, **kw: Any) -> httpx.Response:
        """One raw HTTP request (no client-side parsing), with ``token`` as the bearer.

        Requests share one keep-alive connection pool: call from one thread at a time."""
        headers = dict(kw.pop("headers", None) or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if self._http is None:
            self._http = httpx.Client(timeout=30)
        return self._http.request(method, self.url + path, headers=headers, **kw)
