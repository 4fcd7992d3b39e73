"""``python -m bench.report [bench-results.json]``: the results as Markdown, for
docs/performance.md (machine, load, fsync rate, and the table of ratios and targets)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def markdown(report: dict[str, Any]) -> str:
    info = report["machine"]
    loads = [w["load_average_before"][0] for w in report["workloads"].values()]
    lines = [
        f"- {info['cpu']}, {info['cores']} cores; {info['platform']}",
        f"- {info['implementation']} {info['python']}",
        f"- {report['mode']} run, {report['started_utc']} to {report['finished_utc']}",
        f"- load average (1 min) before the workloads: {min(loads):.1f} to {max(loads):.1f}",
    ]
    if "fsync_per_s" in report:
        lines.append(f"- fsync rate of the raw write+fsync loop: {report['fsync_per_s']:,.0f}/s")
    if "large_store" in report:
        big = report["large_store"]
        lines.append(
            f"- large store: {big['events']:,} events, built in {big['build_seconds']:.0f} s"
        )
    lines += [
        "",
        "| # | check | this project | peer | unit | ratio | target | result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for number, workload in report["workloads"].items():
        for c in workload["checks"]:
            result = "—" if c["passed"] is None else ("PASS" if c["passed"] else "**MISS**")
            ratio = "—" if c["ratio"] is None else f"{c['ratio']:.2f}x"
            lines.append(
                f"| {number} | {c['name']} | {_fmt(c['this'])} | {_fmt(c['peer'])} | {c['unit']} "
                f"| {ratio} | {c['target']} | {result} |"
            )
    servers = [
        (number, name, figures)
        for number, workload in report["workloads"].items()
        if workload["checks"]
        for name, figures in workload["checks"][0]["details"].items()
        if isinstance(figures, dict) and "server_cpu_us_per_answer" in figures
    ]
    if servers:
        lines += [
            "",
            "| # | server side | answers/s | server CPU µs per answer | load generator CPU |",
            "|---|---|---|---|---|",
        ]
        for number, name, f in servers:
            lines.append(
                f"| {number} | {name} | {f['rate']:,.0f} | {f['server_cpu_us_per_answer']:,.0f} "
                f"| {100 * f['client_cpu_share']:.0f}% |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "bench-results.json")
    print(markdown(json.loads(source.read_text())), end="")
