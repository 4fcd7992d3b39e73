"""A short bounded load (load.py) against a real `batenbase serve` process, in the default run.

Twelve clients over two tenants mix PUTs (new keys and overwrites), GETs checked against the
client's own last write, prefix listings, POST /events, event scans and /tenants/me for about
eight seconds; then every acknowledged write is read back. `nox -s load` runs it longer.

PROVES: INV-JOURNAL-WRITER-SERIALIZES-COMMITS (concurrent writers through the service: every
acknowledged block and event is persisted and read back, each tenant's acknowledged writes
carry distinct sequences, and no request fails).
CATCHES: lost or reordered concurrent writes, two writes sharing a sequence, stale reads of
one's own write, errors or 5xx under concurrency, a stuck group commit (p99 is reported).
SEEDED: each client's operation mix comes from random.Random(6000 + client).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from bbserver import BBServer
from load import OPS, run_load

DURATION = 8.0


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[BBServer]:
    server = BBServer(tmp_path).start()
    try:
        yield server
    finally:
        server.close()


@pytest.mark.invariant("INV-JOURNAL-WRITER-SERIALIZES-COMMITS")
def test_bounded_load_has_no_errors_and_loses_nothing(
    srv: BBServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tokens = [srv.tenant(name, "unlimited")["writer"] for name in ("loada", "loadb")]
    result = run_load(srv.url, tokens, duration=DURATION, clients=12)
    figures = tmp_path / "batenbase-load.json"
    figures.write_text(json.dumps(result.to_json(), indent=2), encoding="utf-8")
    with capsys.disabled():
        print("\n" + result.table())
    assert not result.errors, "\n".join(result.errors[:20])
    assert not result.lost, "\n".join(result.lost[:20])
    for op in OPS:
        assert result.ops[op]["count"] > 0, op
    assert result.acknowledged_writes > 100
    assert srv.running()
