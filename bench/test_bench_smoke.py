"""The benchmark runner end to end at tiny sizes: the library workloads that need no peer
package run, the table prints and the results file has a figure for every check. Not a
benchmark: no figure is compared with a target. Runs in about 3 s:
``pytest bench/test_bench_smoke.py`` with the workspace installed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import run


def test_runner_writes_every_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results.json"
    assert run.main(["--tiny", "--only", "1,2,3,5,8", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert sorted(report["workloads"]) == ["1", "2", "3", "5", "8"]
    for workload in report["workloads"].values():
        assert workload["error"] is None
        assert workload["checks"]
        assert all(check["this"] > 0 for check in workload["checks"])
    assert report["fsync_per_s"] > 0
    table = capsys.readouterr().out
    assert "durable append vs raw write+fsync" in table
    assert "PASS" in table or "MISS" in table
